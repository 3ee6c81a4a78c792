"""The shell every stream handle shares: `StreamHandle` under `ChatStream` (client/sync.py),
`RunStream` (agent/drive.py) and `StructuredStream` (structured/drive.py), and its twin
`AsyncStreamHandle` under their async twins. A handle wraps one generator of events, made
at the first `iter()` and the same one after that; closing the handle (or leaving its
`with` block) closes that generator; `until_done()` drains it and returns the outcome.

    class ChatStream(StreamHandle[StreamEvent, ChatResponse]):
        def _events(self) -> Iterator[StreamEvent]: ...   # the generator: the driver itself
        def _outcome(self) -> ChatResponse | None: ...    # what until_done() returns (.response)

Nothing here runs per event: `__iter__` hands back the generator itself, so a `for` loop
calls the generator's `__next__` directly, never a method of the handle (the client's
stream is the hot path).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["AsyncStreamHandle", "StreamHandle"]

E = TypeVar("E")  # the events
R = TypeVar("R")  # what the stream ends with
_H = TypeVar("_H", bound="StreamHandle[Any, Any]")
_A = TypeVar("_A", bound="AsyncStreamHandle[Any, Any]")


class StreamHandle(Generic[E, R]):
    """Iterate once for the events; use as a context manager, or `close()`, to stop early."""

    _iterator: Iterator[E] | None = None

    def __iter__(self) -> Iterator[E]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._iterator is not None:
            self._iterator.close()  # type: ignore[attr-defined]

    def until_done(self) -> R:
        """Consume the events and return the outcome: a stream's `.response` (with
        `response_format`, `.parsed` holds the object), a run's `.result`."""
        for _ in self:
            pass
        outcome = self._outcome()
        assert outcome is not None
        return outcome

    def _events(self) -> Iterator[E]:
        raise NotImplementedError

    def _outcome(self) -> R | None:
        raise NotImplementedError


class AsyncStreamHandle(Generic[E, R]):
    """The async twin of `StreamHandle`: `async for`, `async with`, `aclose()`."""

    _iterator: AsyncIterator[E] | None = None

    def __aiter__(self) -> AsyncIterator[E]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]

    async def until_done(self) -> R:
        """Consume the events and return the outcome: a stream's `.response` (with
        `response_format`, `.parsed` holds the object), a run's `.result`."""
        async for _ in self:
            pass
        outcome = self._outcome()
        assert outcome is not None
        return outcome

    def _events(self) -> AsyncIterator[E]:
        raise NotImplementedError

    def _outcome(self) -> R | None:
        raise NotImplementedError
