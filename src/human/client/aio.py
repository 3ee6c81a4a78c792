"""`AsyncClient` and `AsyncChatStream`: the asyncio driver. Its twin is sync.py, written
line for line alike: a change to one without the other is a bug."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Target
from ..core.handle import AsyncStreamHandle
from ..core.pump import Pump, Replay, events_from_whole, html_error
from ..core.retry import Plan, Sleep
from ..core.wire import NOT_GIVEN, NotGiven
from ..errors import APIError, HumanError
from ..types import ChatResponse, StreamEvent
from .base import (
    TimeoutArg,
    _Base,
    _CallTime,
    _models_list,
    _pick,
    _route,
    _stamp_error,
    _structured,
    _wants_object,
    _with,
    log,
)

if TYPE_CHECKING:
    from ..agent import AsyncRunStream, RunResult
    from ..batching import BatchSummary
    from ..structured.drive import AsyncStructuredStream
    from ..transport.aio import AsyncExchange


class AsyncClient(_Base):
    """Asynchronous client: the same methods as `Client`, as coroutines."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        import asyncio

        from ..transport.aio import AsyncTransport

        self._transport = AsyncTransport()
        self._sleep = self._sleep_fn or asyncio.sleep

    async def chat(self, messages: Any, *, provider: str | None = None, model: str | None = None,
                   timeout: TimeoutArg = None, retries: int | None = None,
                   temperature: float | None | NotGiven = NOT_GIVEN, **options: Any) -> ChatResponse:
        """Send a chat request and return the whole answer.

        With `response_format=T` (a Pydantic model, dataclass, TypedDict, `list[...]` of
        those, or a JSON Schema dict) the answer's `.parsed` is a validated `T`
        (`human.structured`; options `mode`, `max_retries`, `token_budget`)."""
        if self._log is not None and not _structured(options):  # a structured call's requests log themselves
            return await self._logged(messages, provider, model, timeout, retries, temperature, options)
        return await self._chat(messages, provider, model, timeout, retries, temperature, options)

    async def _logged(self, messages: Any, provider: str | None, model: str | None, timeout: TimeoutArg,
                      retries: int | None, temperature: Any, options: dict[str, Any]) -> ChatResponse:
        began = time.time(), time.perf_counter()
        sent = list(messages) if messages.__class__ is list else messages  # the caller may change it later
        try:
            response = await self._chat(messages, provider, model, timeout, retries, temperature, options)
        except BaseException as exc:
            self._hand_over(began, sent, _with(options, temperature), False, exc, None, provider, model)
            raise
        self._hand_over(began, sent, _with(options, temperature), False, response, None, provider, model)
        return response

    async def _chat(self, messages: Any, provider: str | None, model: str | None, timeout: TimeoutArg,
                    retries: int | None, temperature: Any, options: dict[str, Any]) -> ChatResponse:
        self._check_open()
        if "response_format" in options and _wants_object(options["response_format"]):
            from ..structured.drive import achat

            route = _route(provider, model, timeout, retries, temperature)
            return await achat(self, messages, options.pop("response_format"), route, options)
        options = _pick(options, temperature)
        call = self._call_time(timeout)
        action, plan = self._start(provider, model, retries)
        while True:
            if self._progress is not None:
                self._progress(action)
            if isinstance(action, Sleep):
                await self._sleep(action.seconds)
                action = plan.send(None)
                continue
            try:
                outcome: Any = await self._send(action.target, messages, options, call)
            except HumanError as exc:
                outcome = _stamp_error(exc, action.target, call=call)
                log.debug("attempt %d failed: %s", action.attempt, outcome)
                if plan is None:
                    plan = self._replan(provider, model, retries, call)
            else:
                if plan is None:
                    return self._first_time(outcome, action)
            try:
                action = plan.send(outcome)
            except StopIteration as done:
                (response, adjustments), send = done.value
                return self._stamp(response, send, adjustments)

    async def _send(self, target: Target, messages: Any, options: Mapping[str, Any],
                    call: _CallTime) -> tuple[ChatResponse, list[str]]:
        body, adjustments, deadlines = self._request(target, messages, False, options, call)
        exchange = await self._transport.send("POST", target.url, target.request_headers(), body, deadlines,
                                              target.max_response_bytes, target.network)
        raw = await exchange.read()
        if exchange.status >= 300:
            raise self._error(target, exchange.status, exchange.headers, raw)
        return self._parse(target, exchange.headers, raw), adjustments

    def stream(self, messages: Any, *, provider: str | None = None, model: str | None = None,
               timeout: TimeoutArg = None, retries: int | None = None,
               temperature: float | None | NotGiven = NOT_GIVEN,
               **options: Any) -> AsyncChatStream | AsyncStructuredStream:
        """Send a streaming request. `async for` the result for typed events; after the
        loop, `.response` holds the assembled answer. With `response_format=T` the events
        also carry partial objects and, last, the validated one (`human.structured`)."""
        self._check_open()
        if "response_format" in options and _wants_object(options["response_format"]):
            from ..structured.drive import AsyncStructuredStream

            route = _route(provider, model, timeout, retries, temperature)
            return AsyncStructuredStream(self, messages, options.pop("response_format"), route, options)
        options = _pick(options, temperature)
        call = self._call_time(timeout)
        return AsyncChatStream(self, self._plan(provider, model, retries, call.ends), messages, options, call)

    async def parse(self, messages: Any, response_format: Any, **options: Any) -> Any:
        """The answer as a validated instance of `response_format` (see `chat`); raises
        `StructuredOutputError` when no answer fits, re-asks included.

            person = await client.parse("Ada Lovelace, 36", Person)
        """
        return (await self.chat(messages, response_format=response_format, **options)).parsed

    async def run(self, messages: Any, *, tools: Sequence[Any] = (), **settings: Any) -> RunResult:
        """Ask, run every tool call the model makes, append the results, ask again, until it
        answers without tools. Settings as for `Client.run_stream`; `approve` may be async."""
        return await self.run_stream(messages, tools=tools, stream=False, **settings).until_done()

    def run_stream(self, messages: Any, *, tools: Sequence[Any] = (), **settings: Any) -> AsyncRunStream:
        """The run as it happens: `async for` the chat events plus `tool_start` and
        `tool_result`; `.result` afterwards, `.messages` (always paired) at any time."""
        self._check_open()
        from ..agent.drive import AsyncRunStream

        return AsyncRunStream(self, messages, tools=tools, **settings)
    async def batch(self, input: str | Path, output: str | Path, **options: Any) -> BatchSummary:
        """Send every request in the JSONL file `input` through this client, writing each
        result to `output` as it finishes; rerun to resume. Options: concurrency, rpm, tpm,
        retry_failed, skip_invalid, dry_run, errors, progress (see `human.batch`)."""
        self._check_open()
        from ..batching import run_with  # the runner sits above the client; loaded on first use

        return await run_with(self, input, output, **options)

    async def send_prepared(self, target: Target, body: bytes, *, stream: bool = False) -> AsyncExchange:
        """Send a body already encoded for `target` (one exchange: no retry, no log) and
        return the open exchange; a status >= 300 raises its classified error, scrubbed
        of the target's secrets. The gateway's seam: it drives `plan()` itself."""
        exchange = await self._transport.send(
            "POST", target.url, target.request_headers(stream=stream), body, self._deadlines(target),
            target.max_stream_bytes if stream else target.max_response_bytes, target.network)
        if exchange.status >= 300:
            raw = await exchange.read()
            raise _stamp_error(self._error(target, exchange.status, exchange.headers, raw), target)
        return exchange

    async def models(self, provider: str | None = None) -> list[dict[str, Any]]:
        """The provider's own `GET …/models` list."""
        target = self.target(provider, require_key=False)
        deadlines = self._deadlines(target)
        try:
            exchange = await self._transport.send("GET", target.models_url, target.request_headers(), None,
                                                  deadlines, target.max_response_bytes, target.network)
            raw = await exchange.read()
            return _models_list(self, target, exchange.status, exchange.headers, raw)
        except HumanError as exc:
            raise _stamp_error(exc, target, model=False) from None

    async def close(self) -> None:
        self._closed = True
        await self._transport.close()
        if self._log is not None:
            import asyncio

            await asyncio.get_running_loop().run_in_executor(None, self._log.flush)  # never block the loop

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncChatStream(AsyncStreamHandle[StreamEvent, ChatResponse]):
    """The async twin of `ChatStream`."""

    def __init__(self, client: AsyncClient, plan: Plan, messages: Any, options: Mapping[str, Any],
                 call: _CallTime) -> None:
        self._client, self._plan, self._messages = client, plan, messages
        self._options, self._call = options, call
        self.response: ChatResponse | None = None

    def __aiter__(self) -> AsyncIterator[StreamEvent]:  # the shell's, with the log (if any) around the events
        if self._iterator is None:
            events = self._events()
            self._iterator = events if self._client._log is None else _alogged_events(self, events)
        return self._iterator

    def _outcome(self) -> ChatResponse | None:
        return self.response

    async def _events(self) -> AsyncIterator[StreamEvent]:
        client = self._client
        plan = self._plan.run()
        action = next(plan)
        while True:
            if client._progress is not None:
                client._progress(action)
            if isinstance(action, Sleep):
                await client._sleep(action.seconds)
                action = plan.send(None)
                continue
            target = action.target
            failure: HumanError | None = None
            try:
                chunks, pump, first, adjustments = await self._open(target)
            except HumanError as exc:
                failure = _stamp_error(exc, target, call=self._call)
            if failure is None:
                break
            action = plan.send(failure)  # outside the except: no exception chain to carry
        try:
            plan.send(("started", None))
        except StopIteration:
            pass
        send = action
        try:
            for event in first:
                yield event
            if not pump.done:
                async for chunk in chunks:
                    for event in pump.feed(chunk):
                        yield event
                    if pump.done:  # [DONE]: the answer is complete, whatever follows
                        break
            for event in pump.end():
                yield event
            response = pump.finish()
        except HumanError as exc:
            if isinstance(exc, APIError) and exc.partial is None:
                exc.partial = pump.assembler.partial()
            failure = _stamp_error(exc, target, call=self._call)
        finally:
            await chunks.aclose()
        if failure is not None:
            raise failure
        self.response = client._stamp(response, send, adjustments)

    async def _open(self, target: Target) -> tuple[AsyncGenerator[bytes, None], Pump, list[StreamEvent],
                                                   list[str]]:
        """Send, check the status, and read until the first event (retry is still possible)."""
        client = self._client
        body, adjustments, deadlines = client._request(target, self._messages, True, self._options, self._call)
        exchange = await client._transport.send("POST", target.url, target.request_headers(stream=True), body,
                                                deadlines, target.max_stream_bytes, target.network)
        if exchange.status >= 300:
            raise client._error(target, exchange.status, exchange.headers, await exchange.read())
        pump = Pump(target.provider, target.model)
        chunks = exchange.chunks()
        kind = exchange.headers.get("content-type", "")
        if "json" in kind:
            raw = b"".join([c async for c in chunks])
            if raw.lstrip()[:5] != b"data:":
                whole = client._parse(target, exchange.headers, raw)
                pump.assembler = Replay(whole)  # type: ignore[assignment]
                return _empty(), pump, events_from_whole(whole), adjustments
            chunks = _aonce(raw)  # server-sent events labelled as JSON: read them as a stream
        try:
            if "html" in kind:
                raise html_error(target.provider, target.model, await anext(chunks, b"<html>"))
            async for chunk in chunks:
                events = pump.feed(chunk)
                if events or pump.done:
                    return chunks, pump, events, adjustments
            events = pump.end()
            if not events:
                pump.finish()  # nothing was handed out yet: an incomplete stream may still be retried
        except BaseException:
            await chunks.aclose()
            raise
        return _empty(), pump, events, adjustments


async def _aonce(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


async def _alogged_events(stream: AsyncChatStream, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """The async twin of `_logged_events`."""
    client, began, first = stream._client, (time.time(), time.perf_counter()), None
    messages = stream._messages
    sent = list(messages) if messages.__class__ is list else messages
    requested = stream._plan.providers[0], stream._plan.models[0]
    try:
        async for event in events:
            if first is None:
                first = time.perf_counter()
            yield event
    except BaseException as exc:
        client._hand_over(began, sent, dict(stream._options), True, exc, first, *requested)
        raise
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    client._hand_over(began, sent, dict(stream._options), True, stream.response, first, *requested)


async def _empty() -> AsyncGenerator[bytes, None]:
    return
    yield b""  # pragma: no cover - makes this an async generator
