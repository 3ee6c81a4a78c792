"""`Client` and `ChatStream`: the blocking driver. Its twin is aio.py, written line for
line alike: a change to one without the other is a bug."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config import Target
from ..core.handle import StreamHandle
from ..core.pump import Pump, Replay, events_from_whole, html_error
from ..core.retry import Plan, Sleep
from ..core.wire import NOT_GIVEN, NotGiven
from ..errors import APIError, HumanError
from ..transport.sync import SyncTransport
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
    from ..agent import RunResult, RunStream
    from ..structured.drive import StructuredStream


class Client(_Base):
    """Synchronous client. Thread-safe; reuses connections; use as a context manager."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._transport = SyncTransport()
        self._sleep = self._sleep_fn or time.sleep

    def chat(self, messages: Any, *, provider: str | None = None, model: str | None = None,
             timeout: TimeoutArg = None, retries: int | None = None,
             temperature: float | None | NotGiven = NOT_GIVEN, **options: Any) -> ChatResponse:
        """Send a chat request and return the whole answer.

        With `response_format=T` (a Pydantic model, dataclass, TypedDict, `list[...]` of
        those, or a JSON Schema dict) the answer's `.parsed` is a validated `T`
        (`human.structured`; options `mode`, `max_retries`, `token_budget`)."""
        if self._log is not None and not _structured(options):  # a structured call's requests log themselves
            return self._logged(messages, provider, model, timeout, retries, temperature, options)
        return self._chat(messages, provider, model, timeout, retries, temperature, options)

    def _logged(self, messages: Any, provider: str | None, model: str | None, timeout: TimeoutArg,
                retries: int | None, temperature: Any, options: dict[str, Any]) -> ChatResponse:
        began = time.time(), time.perf_counter()
        sent = list(messages) if messages.__class__ is list else messages  # the caller may change it later
        try:
            response = self._chat(messages, provider, model, timeout, retries, temperature, options)
        except BaseException as exc:
            self._hand_over(began, sent, _with(options, temperature), False, exc, None, provider, model)
            raise
        self._hand_over(began, sent, _with(options, temperature), False, response, None, provider, model)
        return response

    def _chat(self, messages: Any, provider: str | None, model: str | None, timeout: TimeoutArg,
              retries: int | None, temperature: Any, options: dict[str, Any]) -> ChatResponse:
        self._check_open()
        if "response_format" in options and _wants_object(options["response_format"]):
            from ..structured.drive import chat

            route = _route(provider, model, timeout, retries, temperature)
            return chat(self, messages, options.pop("response_format"), route, options)
        options = _pick(options, temperature)
        call = self._call_time(timeout)
        action, plan = self._start(provider, model, retries)
        while True:
            if self._progress is not None:
                self._progress(action)
            if isinstance(action, Sleep):
                self._sleep(action.seconds)
                action = plan.send(None)
                continue
            try:
                outcome: Any = self._send(action.target, messages, options, call)
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

    def _send(self, target: Target, messages: Any, options: Mapping[str, Any],
              call: _CallTime) -> tuple[ChatResponse, list[str]]:
        body, adjustments, deadlines = self._request(target, messages, False, options, call)
        exchange = self._transport.send("POST", target.url, target.request_headers(), body, deadlines,
                                        target.max_response_bytes, target.network)
        raw = exchange.read()
        if exchange.status >= 300:
            raise self._error(target, exchange.status, exchange.headers, raw)
        return self._parse(target, exchange.headers, raw), adjustments

    def stream(self, messages: Any, *, provider: str | None = None, model: str | None = None,
               timeout: TimeoutArg = None, retries: int | None = None,
               temperature: float | None | NotGiven = NOT_GIVEN, **options: Any) -> ChatStream | StructuredStream:
        """Send a streaming request. Iterate the result for typed events; after the loop,
        `.response` holds the assembled answer. With `response_format=T` the events also
        carry partial objects and, last, the validated one (`human.structured`)."""
        self._check_open()
        if "response_format" in options and _wants_object(options["response_format"]):
            from ..structured.drive import StructuredStream

            route = _route(provider, model, timeout, retries, temperature)
            return StructuredStream(self, messages, options.pop("response_format"), route, options)
        options = _pick(options, temperature)
        call = self._call_time(timeout)
        return ChatStream(self, self._plan(provider, model, retries, call.ends), messages, options, call)

    def parse(self, messages: Any, response_format: Any, **options: Any) -> Any:
        """The answer as a validated instance of `response_format` (see `chat`); raises
        `StructuredOutputError` when no answer fits, re-asks included.

            person = client.parse("Ada Lovelace, 36", Person)
        """
        return self.chat(messages, response_format=response_format, **options).parsed

    def run(self, messages: Any, *, tools: Sequence[Any] = (), **settings: Any) -> RunResult:
        """Ask, run every tool call the model makes, append the results, ask again, until it
        answers without tools. Settings as for `run_stream`; raises `MaxTurnsError`.

            result = client.run("Weather in Oslo?", tools=[get_weather])
            result.content, result.steps, result.usage, result.messages
        """
        return self.run_stream(messages, tools=tools, stream=False, **settings).until_done()

    def run_stream(self, messages: Any, *, tools: Sequence[Any] = (), **settings: Any) -> RunStream:
        """The run as it happens: iterate for the chat events plus `tool_start` and
        `tool_result`; `.result` afterwards, `.messages` (always paired) at any time.

        Settings: `mcp` (MCPServer objects, or names from the config's mcp_servers),
        `max_turns` (10), `max_parallel` (8 calls at once), `approve` (call -> bool, asked
        before each call), `on_tool_error` ("return" the error to the model, or "raise"),
        `repeat_limit` (3 identical calls in a row: the last is not run), `tool_mode`
        ("auto", "native", "emulate"), `tool_timeout` (seconds); anything else is a chat
        option sent on every turn (provider, model, temperature, tool_choice: first turn).
        """
        self._check_open()
        from ..agent.drive import RunStream

        return RunStream(self, messages, tools=tools, **settings)

    def models(self, provider: str | None = None) -> list[dict[str, Any]]:
        """The provider's own `GET …/models` list."""
        target = self.target(provider, require_key=False)
        deadlines = self._deadlines(target)
        try:
            exchange = self._transport.send("GET", target.models_url, target.request_headers(), None, deadlines,
                                            target.max_response_bytes, target.network)
            raw = exchange.read()
            return _models_list(self, target, exchange.status, exchange.headers, raw)
        except HumanError as exc:
            raise _stamp_error(exc, target, model=False) from None

    def close(self) -> None:
        self._closed = True
        self._transport.close()
        if self._log is not None:
            self._log.flush()  # what this client logged is on disk when close() returns

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChatStream(StreamHandle[StreamEvent, ChatResponse]):
    """The events of one streamed answer. Retries and fallbacks happen only before the
    first event reaches you; after that a failure raises with `.partial` set."""

    def __init__(self, client: Client, plan: Plan, messages: Any, options: Mapping[str, Any],
                 call: _CallTime) -> None:
        self._client, self._plan, self._messages = client, plan, messages
        self._options, self._call = options, call
        self.response: ChatResponse | None = None

    def __iter__(self) -> Iterator[StreamEvent]:  # the shell's, with the log (if any) around the events
        if self._iterator is None:
            events = self._events()
            self._iterator = events if self._client._log is None else _logged_events(self, events)
        return self._iterator

    def _outcome(self) -> ChatResponse | None:
        return self.response

    def _events(self) -> Iterator[StreamEvent]:
        client = self._client
        plan = self._plan.run()
        action = next(plan)
        while True:
            if client._progress is not None:
                client._progress(action)
            if isinstance(action, Sleep):
                client._sleep(action.seconds)
                action = plan.send(None)
                continue
            target = action.target
            failure: HumanError | None = None
            try:
                chunks, pump, first, adjustments = self._open(target)
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
            yield from first
            if not pump.done:
                for chunk in chunks:
                    yield from pump.feed(chunk)
                    if pump.done:  # [DONE]: the answer is complete, whatever follows
                        break
            yield from pump.end()
            response = pump.finish()
        except HumanError as exc:
            if isinstance(exc, APIError) and exc.partial is None:
                exc.partial = pump.assembler.partial()
            failure = _stamp_error(exc, target, call=self._call)
        finally:
            chunks.close()
        if failure is not None:
            raise failure
        self.response = client._stamp(response, send, adjustments)

    def _open(self, target: Target) -> tuple[Generator[bytes, None, None], Pump, list[StreamEvent], list[str]]:
        """Send, check the status, and read until the first event (retry is still possible)."""
        client = self._client
        body, adjustments, deadlines = client._request(target, self._messages, True, self._options, self._call)
        exchange = client._transport.send("POST", target.url, target.request_headers(stream=True), body,
                                          deadlines, target.max_stream_bytes, target.network)
        if exchange.status >= 300:
            raise client._error(target, exchange.status, exchange.headers, exchange.read())
        pump = Pump(target.provider, target.model)
        chunks = exchange.chunks()
        kind = exchange.headers.get("content-type", "")
        if "json" in kind:
            raw = b"".join(chunks)
            if raw.lstrip()[:5] != b"data:":
                whole = client._parse(target, exchange.headers, raw)
                pump.assembler = Replay(whole)  # type: ignore[assignment]
                return _nothing(), pump, events_from_whole(whole), adjustments
            chunks = _once(raw)  # server-sent events labelled as JSON: read them as a stream
        try:
            if "html" in kind:
                raise html_error(target.provider, target.model, next(chunks, b"<html>"))
            for chunk in chunks:
                events = pump.feed(chunk)
                if events or pump.done:
                    return chunks, pump, events, adjustments
            events = pump.end()
            if not events:
                pump.finish()  # nothing was handed out yet: an incomplete stream may still be retried
        except BaseException:
            chunks.close()
            raise
        return _nothing(), pump, events, adjustments


def _nothing() -> Generator[bytes, None, None]:
    yield from ()


def _once(data: bytes) -> Generator[bytes, None, None]:
    yield data


def _logged_events(stream: ChatStream, events: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    """The stream's events, passed through; at the end (or a failure, or the caller
    stopping early) the exchange is handed to the log with its time to first event."""
    client, began, first = stream._client, (time.time(), time.perf_counter()), None
    messages = stream._messages
    sent = list(messages) if messages.__class__ is list else messages
    requested = stream._plan.providers[0], stream._plan.models[0]
    try:
        for event in events:
            if first is None:
                first = time.perf_counter()
            yield event
    except BaseException as exc:
        client._hand_over(began, sent, dict(stream._options), True, exc, first, *requested)
        raise
    finally:
        events.close()  # type: ignore[attr-defined]
    client._hand_over(began, sent, dict(stream._options), True, stream.response, first, *requested)
