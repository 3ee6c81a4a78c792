"""Bytes of a streamed answer in, typed events out, with the stream end rules. Pure:
no I/O; both clients' stream drivers feed it whatever chunks their transport read.

    pump = Pump(provider, model)
    for chunk in chunks:
        yield from pump.feed(chunk)
        if pump.done:                   # [DONE]: stop reading, whatever follows
            break
    yield from pump.end()
    response = pump.finish()            # or the error that ended the stream

It joins the SSE decoder (`sse.py`) and the assembler (`stream.py`) and applies the end
rules of issue 10 once, for both clients: `[DONE]` ends the stream; an `error` event
fails it; a body cut off before a finish_reason fails it (`StreamAssembler.end_error`).
A body that never held an SSE event is recognised for what it is: an HTML page (an
error, not retried), or a JSON answer or error object (read as a whole answer).
"""

from __future__ import annotations

from typing import Any

from ..errors import HumanError
from ..types import ChatResponse, ContentDelta, FinishEvent, ReasoningDelta, StreamEvent, ToolCallDone, UsageEvent
from .parse import decode_body, parse_completion
from .sse import SSEDecoder
from .stream import StreamAssembler

__all__ = ["Pump", "Replay", "events_from_whole", "html_error"]


class Pump:
    """Bytes in, typed events out: the SSE decoder and the assembler, joined, with the
    stream end rules of `core/stream.py` (`[DONE]` ends it; an `error` event fails it;
    a body cut off before a finish_reason fails it).

    An error found in a chunk is raised only after the events before it were handed
    out, so the caller sees the same events however the bytes were split into reads.
    """

    __slots__ = ("decoder", "assembler", "_error", "_head", "_provider", "_model")

    def __init__(self, provider: str | None, model: str | None) -> None:
        self.decoder = SSEDecoder()
        self.assembler = StreamAssembler(provider=provider, model=model)
        self._error: HumanError | None = None
        # The body so far, until the first SSE event: to tell what a server sent instead
        # of a stream (an HTML page, a JSON answer or error) when no event ever came.
        self._head: bytearray | None = bytearray()
        self._provider, self._model = provider, model

    @property
    def done(self) -> bool:
        """`[DONE]` arrived: stop reading (what follows is not part of the answer)."""
        return self.assembler.done

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if self._error is not None:
            raise self._error
        sses = self.decoder.feed(chunk)
        head = self._head
        if head is not None:
            if sses:
                self._head = None
            elif len(head) < _HEAD_BYTES:
                head += chunk[: _HEAD_BYTES - len(head)]
        return self._events(sses)

    def end(self) -> list[StreamEvent]:
        """End of the body: a last event without its blank line, held-back text, tool calls
        done. An incomplete answer is raised by `finish()`, after these events."""
        if self._error is not None:
            raise self._error
        events = [] if self.assembler.done else self._events(self.decoder.close())
        if self._error is None:
            error = self.assembler.end_error()
            if error is not None and self._head is not None and not events:
                whole, error = _not_a_stream(self._provider, self._model, bytes(self._head), error)
                if whole is not None:
                    self.assembler = Replay(whole)  # type: ignore[assignment]
                    return events_from_whole(whole)
            self._error = error
        return events + self.assembler.close()

    def finish(self) -> ChatResponse:
        if self._error is not None:
            raise self._error
        return self.assembler.finish()

    def _events(self, sses: Any) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        assembler = self.assembler
        try:
            for sse in sses:
                if sse.event == "error":
                    raise assembler.error_event(sse.data)
                events += assembler.add(sse.data)
                if assembler.done:
                    break
        except HumanError as exc:
            if not events:
                raise
            self._error = exc
        return events


_HEAD_BYTES = 1 << 16


def _not_a_stream(provider: str | None, model: str | None, head: bytes,
                  error: HumanError) -> tuple[ChatResponse | None, HumanError]:
    """A body with no SSE event in it, read whole: an HTML page is an error that is not
    retried; a JSON body is read as a whole answer (or its error object), as when the
    server says application/json."""
    stripped = head.lstrip()
    if stripped[:1] == b"<":
        return None, html_error(provider, model, head)
    if stripped[:1] == b"{" and len(head) < _HEAD_BYTES:
        try:
            body = decode_body(head, "application/json", provider=provider, model=model, status=200)
            return parse_completion(body, provider=provider, model=model), error
        except HumanError as exc:
            return None, exc
    return None, error


def html_error(provider: str | None, model: str | None, head: bytes) -> HumanError:
    """An HTML page where a stream was expected (a login portal, a wrong base_url): the
    same answer will come again, so it is not retried."""
    try:
        decode_body(head, "text/html", provider=provider, model=model, status=200)
    except HumanError as exc:
        return exc
    raise AssertionError("decode_body accepted an HTML page")  # pragma: no cover


def events_from_whole(response: ChatResponse) -> list[StreamEvent]:
    """A server that ignored stream=true and sent one JSON body: replay it as events."""
    events: list[StreamEvent] = []
    if response.reasoning:
        events.append(ReasoningDelta(response.reasoning))
    if response.content:
        events.append(ContentDelta(response.content))
    events += [ToolCallDone(i, call) for i, call in enumerate(response.tool_calls)]
    if response.usage is not None:
        events.append(UsageEvent(response.usage))
    events.append(FinishEvent(response.finish_reason))
    return events


class Replay:
    """Stands in for the assembler when the server answered a stream with one JSON body."""

    def __init__(self, response: ChatResponse) -> None:
        self._response = response
        self.done = True

    def close(self) -> list[StreamEvent]:
        return []

    def end_error(self) -> None:
        return None

    def finish(self) -> ChatResponse:
        return self._response

    def partial(self) -> ChatResponse:
        return self._response
