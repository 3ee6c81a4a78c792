"""The two drivers of a structured-output call: they send what `Session` asks for through
the client's own `chat` / `stream` (so every attempt gets the client's retries, fallbacks,
profile adjustments and logging) and hand back what it decides. No decisions here; the
sync and async halves are written line for line alike.

    Client.chat(..., response_format=T)   -> chat(client, ...)          -> ChatResponse (.parsed)
    AsyncClient.chat(...)                 -> achat(client, ...)
    Client.stream(..., response_format=T) -> StructuredStream           events, then ParsedObject
    AsyncClient.stream(...)               -> AsyncStructuredStream
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..core.handle import AsyncStreamHandle, StreamHandle
from ..core.secret import scrub
from ..errors import APITimeoutError, HumanError, StructuredOutputError
from ..profile import load_profile
from ..types import ChatResponse, ParsedObject, PartialObject, ReaskEvent, StreamEvent
from . import modes
from .session import Ask, PartialReader, Session
from .spec import output_spec

__all__ = ["AsyncStructuredStream", "StructuredStream", "achat", "chat", "first_ask", "start"]

# What each client learned per endpoint (provider, base_url, model) -> mode: a step down
# after a 400, or "prompt" after json_schema was ignored. Lives as long as the client.
_learned: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, str], str]] = weakref.WeakKeyDictionary()

_OWN = ("mode", "max_retries", "token_budget")


def start(client: Any, target: Any, messages: Any, response_format: Any, options: dict[str, Any]) -> Session:
    """The session of one call: the spec of `response_format`, the mode for the endpoint of
    `target` (a `human.Target`), and the caller's options split from ours."""
    own = {name: options.pop(name) for name in _OWN if name in options}
    spec = output_spec(response_format)
    endpoint = _endpoint(target)
    profile = load_profile(*endpoint) if client._profiles else None
    learned = _learned.get(client, {}).get(endpoint)
    mode, why = modes.choose(own.get("mode"), learned, profile, target.structured_output, spec)
    return Session(spec, messages, options, mode, why, max_retries=own.get("max_retries", 2),
                   token_budget=own.get("token_budget"))


def first_ask(client: Any, target: Any, messages: Any, response_format: Any,
              options: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """(messages, options, notes) of the first request: what `dry_run` shows."""
    session = start(client, target, messages, response_format, options)
    ask = session.ask()
    return ask.messages, ask.options, session.notes


def _target(client: Any, route: dict[str, Any]) -> Any:
    # require_key=False: the mode is chosen before the key matters; chat() itself still
    # raises MissingCredentialError when the key is missing
    return client.target(route["provider"], route["model"], require_key=False)


def _endpoint(target: Any) -> tuple[str, str, str]:
    return target.provider, target.base_url, target.model


class _Deadline:
    """A number given as `timeout=` (the call's, else the client's) bounds the whole call,
    re-asks included, as it bounds one `chat()` with its retries: each request gets what
    is left of it."""

    def __init__(self, client: Any, route: dict[str, Any]) -> None:
        self._clock = client._clock
        self.seconds = _seconds(route["timeout"]) or _seconds(client._timeout)
        self._ends = None if self.seconds is None else self._clock() + self.seconds

    def route(self, route: dict[str, Any]) -> dict[str, Any]:
        """The settings for the next request; raises when no time is left."""
        if self._ends is None:
            return route
        left = self._ends - self._clock()
        if left <= 0:
            raise APITimeoutError(f"no answer that fits within the call's timeout of {self.seconds:g} s "
                                  "(every request and re-ask included)", kind="call", seconds=self.seconds)
        return {**route, "timeout": left}


def _seconds(timeout: Any) -> float | None:
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
        return float(timeout)
    return None


@contextlib.contextmanager
def _finishing(client: Any, target: Any, session: Session) -> Iterator[None]:
    """How each of the four drivers ends, whatever ends it: a mode the session learned for
    the endpoint is remembered, and a `StructuredOutputError` leaves without the key."""
    try:
        yield
    except StructuredOutputError as exc:
        raise _scrubbed(exc, target) from None
    finally:
        if session.learned is not None:
            _learned.setdefault(client, {})[_endpoint(target)] = session.learned


def _scrubbed(exc: StructuredOutputError, target: Any) -> StructuredOutputError:
    """The error without the key, should a server have echoed it into an answer: its
    message and every attempt's raw answer and problems (as `APIError`s are scrubbed)."""
    secrets = target.secrets()
    if not secrets:
        return exc
    exc.message = scrub(exc.message, *secrets)
    exc.args = (exc.message,)
    exc.attempts = [dataclasses.replace(a, raw=None if a.raw is None else scrub(a.raw, *secrets),
                                        errors=tuple(scrub(e, *secrets) for e in a.errors)) for a in exc.attempts]
    last = exc.response
    if isinstance(last, ChatResponse):
        leaked = any(secret in repr(last) for secret in secrets)
        exc.response = dataclasses.replace(
            last, content=None if last.content is None else scrub(last.content, *secrets),
            reasoning=None if last.reasoning is None else scrub(last.reasoning, *secrets),
            tool_calls=tuple(dataclasses.replace(call, arguments=scrub(call.arguments, *secrets))
                             for call in last.tool_calls),
            raw=None) if leaked else last
    return exc


class _StreamBase:
    """What both structured streams hold (the shell, `__iter__` to `until_done`, is
    core/handle.py's): the target and the session are settled when the stream is made."""

    def __init__(self, client: Any, messages: Any, response_format: Any, route: dict[str, Any],
                 options: dict[str, Any]) -> None:
        self._client, self._route = client, route
        self._target = _target(client, route)
        self._session = start(client, self._target, messages, response_format, options)
        self.response: ChatResponse | None = None

    def _outcome(self) -> ChatResponse | None:
        return self.response


# ---- sync ------------------------------------------------------------------------------------


def chat(client: Any, messages: Any, response_format: Any, route: dict[str, Any],
         options: dict[str, Any]) -> ChatResponse:
    """One structured answer through `client.chat` (a `human.Client`)."""
    target = _target(client, route)
    session = start(client, target, messages, response_format, options)
    ask = session.ask()
    deadline = _Deadline(client, route)
    with _finishing(client, target, session):
        while True:
            try:
                response = client.chat(ask.messages, **deadline.route(route), **ask.options)
            except HumanError as exc:
                ask = session.rejected(exc)
                continue
            outcome = session.answered(response)
            if isinstance(outcome, ChatResponse):
                return outcome
            ask = outcome


class StructuredStream(_StreamBase, StreamHandle[StreamEvent, ChatResponse]):
    """The events of a structured answer: the stream's own events, a `PartialObject`
    whenever another field is complete, a `ReaskEvent` before a re-ask, and last a
    `ParsedObject` with the validated result (also on `.response.parsed`)."""

    def _events(self) -> Iterator[StreamEvent]:
        session = self._session
        ask: Ask = session.ask()
        deadline = _Deadline(self._client, self._route)
        with _finishing(self._client, self._target, session):
            while True:
                stream = self._client.stream(ask.messages, **deadline.route(self._route), **ask.options)
                reader = PartialReader(session.spec, ask.mode)
                started = False
                try:
                    with stream:
                        for event in stream:
                            started = True
                            yield event
                            changed, value = reader.feed(event)
                            if changed:
                                yield PartialObject(value)
                except HumanError as exc:
                    if started:
                        raise
                    ask = session.rejected(exc)
                    continue
                outcome = session.answered(stream.response)
                if isinstance(outcome, ChatResponse):
                    self.response = outcome
                    yield ParsedObject(outcome.parsed)
                    return
                yield ReaskEvent(len(session.attempts) + 1, session.attempts[-1].errors)
                ask = outcome


# ---- async -----------------------------------------------------------------------------------


async def achat(client: Any, messages: Any, response_format: Any, route: dict[str, Any],
                options: dict[str, Any]) -> ChatResponse:
    """One structured answer through `await client.chat` (a `human.AsyncClient`)."""
    target = _target(client, route)
    session = start(client, target, messages, response_format, options)
    ask = session.ask()
    deadline = _Deadline(client, route)
    with _finishing(client, target, session):
        while True:
            try:
                response = await client.chat(ask.messages, **deadline.route(route), **ask.options)
            except HumanError as exc:
                ask = session.rejected(exc)
                continue
            outcome = session.answered(response)
            if isinstance(outcome, ChatResponse):
                return outcome
            ask = outcome


class AsyncStructuredStream(_StreamBase, AsyncStreamHandle[StreamEvent, ChatResponse]):
    """The async twin of `StructuredStream`."""

    async def _events(self) -> AsyncIterator[StreamEvent]:
        session = self._session
        ask: Ask = session.ask()
        deadline = _Deadline(self._client, self._route)
        with _finishing(self._client, self._target, session):
            while True:
                stream = self._client.stream(ask.messages, **deadline.route(self._route), **ask.options)
                reader = PartialReader(session.spec, ask.mode)
                started = False
                try:
                    async with stream:
                        async for event in stream:
                            started = True
                            yield event
                            changed, value = reader.feed(event)
                            if changed:
                                yield PartialObject(value)
                except HumanError as exc:
                    if started:
                        raise
                    ask = session.rejected(exc)
                    continue
                outcome = session.answered(stream.response)
                if isinstance(outcome, ChatResponse):
                    self.response = outcome
                    yield ParsedObject(outcome.parsed)
                    return
                yield ReaskEvent(len(session.attempts) + 1, session.attempts[-1].errors)
                ask = outcome
