"""`Client` and `AsyncClient`: thin drivers over the pure core.

Everything that decides (URL, body, retry, fallback, parsing) lives in pure modules;
the two classes below only perform I/O: send, sleep, read chunks. Their loops are
written line for line alike so a reviewer can lay them side by side; a change to one
without the other is a bug.

    with human.Client() as client:                      # provider/model from the config
        answer = client.chat([human.user("hi")])
        for event in client.stream("tell me a story"):
            if event.type == "content":
                print(event.text, end="")
"""

from __future__ import annotations

import dataclasses
import logging
import random as _random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config, Target, Timeouts, load_config, resolve
from .core.classify import Headers, classify
from .core.parse import decode_body, parse_completion
from .core.pump import Pump, Replay, events_from_whole, html_error
from .core.retry import CircuitBreaker, Plan, RetryPolicy, Send, Sleep
from .core.secret import Secret, scrub
from .core.wire import NOT_GIVEN, NotGiven, build_body, encode
from .errors import APIError, APITimeoutError, BadResponseError, ClientClosedError, HumanError, RedirectError
from .pricing import Pricer
from .profile import changes_for, warn_once
from .transport import Deadlines
from .transport.sync import SyncTransport
from .types import ChatResponse, StreamEvent

if TYPE_CHECKING:
    from .agent import AsyncRunStream, RunResult, RunStream
    from .batching import BatchSummary
    from .discover import Found
    from .structured.drive import AsyncStructuredStream, StructuredStream
    from .transport.aio import AsyncExchange

__all__ = ["AsyncChatStream", "AsyncClient", "ChatStream", "Client", "Progress"]

log = logging.getLogger("human.client")

# A number bounds the whole call: every attempt, retry and wait (README "Timeouts and
# limits"). A mapping or a `Timeouts` sets the per-exchange limits (connect, first_byte,
# idle, total) instead.
TimeoutArg = float | Mapping[str, float | None] | Timeouts | None
# Called with each action the client is about to perform: `Send` before a request goes
# out, `Sleep` before a wait between tries (the CLI's status line is made from these).
Progress = Callable[[Send | Sleep], None]

_OPTIONS = (
    "temperature", "max_tokens", "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "stop", "seed", "top_p", "reasoning_effort", "extra_body",
)


class _Base:
    """What both clients share: settings, target resolution, request building, stamping."""

    def __init__(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        config: Config | str | Path | None = None,
        timeout: TimeoutArg = None,
        retries: int | None = None,
        sleep: Any = None,
        clock: Any = None,
        random: Any = None,
        profiles: bool = True,
        progress: Progress | None = None,
        log: bool | str | Path | Any = None,
    ) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        self._profiles = profiles  # apply what `human doctor` saved (human/profile.py)
        self._provider = provider or self.config.default_provider or ("compatible" if base_url else None)
        self._model = model
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._progress = progress
        self._reliability = reliability = self.config.reliability
        self._policy = RetryPolicy(
            retries=reliability.provider_retries if retries is None else retries,
            backoff_s=reliability.provider_backoff_ms / 1000,
            max_backoff_s=reliability.max_backoff_ms / 1000,
            max_retry_after_s=reliability.max_retry_after_ms / 1000,
            budget_s=None if reliability.retry_budget_ms is None else reliability.retry_budget_ms / 1000,
        )
        self._breaker = CircuitBreaker(reliability.breaker_threshold, reliability.breaker_recovery_s)
        self._sleep_fn = sleep
        self._clock = clock or time.monotonic
        self._random = random or _random.random
        self._targets: dict[tuple[str | None, str | None], Target] = {}
        self._changes: dict[tuple[str, str, str], Any] = {}  # profile drop/rename, read once per endpoint
        self._price_answer = Pricer(self.config.prices).price_answer  # response.cost, worked out on access
        self._log = _logbook(log, self.config)  # None when off: then nothing below costs anything
        self._closed = False
        self.discovered: Found | None = None  # the local server the zero-config start chose

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self._provider!r}, model={self._model!r})"

    def target(self, provider: str | None = None, model: str | None = None, *, require_key: bool = True,
               discover: bool = True) -> Target:
        """Where a request with these settings would go (resolved once, then cached).

        With no provider given or configured, the first local server found on its default
        port is used (`human.discover`), once per client; `discover=False` skips that."""
        if discover and provider is None and self._provider is None:
            self._discover()
        key = (provider or self._provider, model or self._model)
        cached = self._targets.get(key)
        if cached is not None:
            return cached
        primary = key[0] == self._provider
        target = resolve(
            self.config,
            key[0],
            key[1],
            api_key=self._api_key if primary else None,
            base_url=self._base_url if primary else None,
            require_key=require_key,
        )
        if require_key:
            self._targets[key] = target
        return target

    def _discover(self) -> None:
        """The zero-config start: nothing configured, so use the first local server that
        lists a model (never a cloud provider), and say so once on the log."""
        from .discover import find_local, no_server_error, servers_from_env

        env = self.config.env
        found = find_local(env)
        if found is None or not found.models:
            raise no_server_error(servers_from_env(env))
        self._provider = found.provider or f"custom:{found.base_url}"
        self._base_url = found.base_url if found.provider else None
        self._model = self._model or self.config.default_model or found.models[0]
        self.discovered = found
        log.warning("%s", found.announce(self._provider, self._model), extra={"human_notice": True})

    def dry_run(self, messages: Any, *, stream: bool = False, **options: Any) -> dict[str, Any]:
        """What would be sent, secrets masked, without sending anything (not even a look
        for a local server: with nothing configured, name a provider)."""
        target = self.target(options.pop("provider", None), options.pop("model", None), require_key=False,
                             discover=False)
        notes: list[str] = []
        if "response_format" in options and _wants_object(options["response_format"]):
            from .structured.drive import first_ask  # the first request a structured call would send

            messages, options, notes = first_ask(self, target, messages, options.pop("response_format"), options)
        options = _pick(options, options.pop("temperature", NOT_GIVEN))
        drop, rename = self._profile_changes(target)
        body, adjustments = build_body(target, messages, stream=stream, drop=drop, rename=rename, **options)
        adjustments = notes + adjustments
        return {
            "provider": target.provider,
            "model": target.model,
            "method": "POST",
            "url": target.url,
            "headers": target.display_headers(stream=stream),
            "key_source": target.key_source,
            "body": body,
            "adjustments": adjustments,
            "notes": list(target.notes),
        }

    def _plan(self, provider: str | None, model: str | None, retries: int | None, deadline: float | None = None,
              ) -> Plan:
        first = self.target(provider, model)
        reliability = self._reliability
        providers = [first.provider, *(p for p in reliability.fallback_providers if p != first.provider)]
        models = [first.model, *(m for m in reliability.model_fallbacks.get(first.model, ()) if m != first.model)]
        policy = self._policy if retries is None else dataclasses.replace(self._policy, retries=retries)
        return Plan(
            providers=providers,
            models=models,
            resolve=lambda p, m: self.target(p, m),
            policy=policy,
            breaker=self._breaker,
            now=self._clock,
            random=self._random,
            first_target=first,
            deadline=deadline,
        )

    def plan(self, provider: str | None = None, model: str | None = None) -> Plan:
        """The retry plan a call to this provider and model follows (the config's retries,
        fallbacks and circuit breaker, this client's breaker state): for a driver of its own
        (the gateway drives it with `AsyncClient.send_prepared`)."""
        return self._plan(provider, model, None)

    def profile_changes(self, target: Target) -> tuple[frozenset[str], dict[str, str]]:
        """(drop, rename) from the endpoint's capability profile (`human doctor`)."""
        drop, rename = self._profile_changes(target)
        return drop, rename

    def stamped(self, exc: HumanError, target: Target) -> HumanError:
        """`exc` saying who failed, scrubbed of the target's secrets (what `chat` raises)."""
        return _stamp_error(exc, target)

    def _profile_changes(self, target: Target) -> Any:
        """(drop, rename) from the endpoint's capability profile, read once per client."""
        endpoint = (target.provider, target.base_url, target.model)
        changes = self._changes.get(endpoint)
        if changes is None:
            changes = self._changes[endpoint] = (
                changes_for(*endpoint) if self._profiles else (frozenset(), {}))
        return changes

    def _start(self, provider: str | None, model: str | None, retries: int | None) -> tuple[Any, Any]:
        """The first action, and the retry plan only if it is already needed (the first
        provider's circuit is open). Most calls succeed at once and never build a plan."""
        first = self.target(provider, model)
        if self._breaker.allow(first.provider, self._clock()):
            return Send(first, 1), None
        plan = self._plan(provider, model, retries).run()
        return next(plan), plan

    def _replan(self, provider: str | None, model: str | None, retries: int | None, call: _CallTime) -> Any:
        """The plan after a first try made outside it failed: its first Send is that try."""
        plan = self._plan(provider, model, retries, call.ends).run()
        next(plan)
        return plan

    def _first_time(self, outcome: tuple[ChatResponse, list[str]], send: Send) -> ChatResponse:
        self._breaker.record(send.target.provider, True, self._clock())
        response, adjustments = outcome
        if adjustments or send.target.reasoning_replay:
            return self._stamp(response, send, adjustments)
        # parsed for this very target and attempt 1: only the price tag to add
        object.__setattr__(response, "_pricing", (self._price_answer, send.target, time.time()))
        return response

    def _request(self, target: Target, messages: Any, stream: bool, options: Mapping[str, Any],
                 call: _CallTime) -> tuple[bytes, list[str], Deadlines]:
        drop, rename = self._profile_changes(target)
        body, adjustments = build_body(target, messages, stream=stream, drop=drop, rename=rename, **options)
        if adjustments:  # never silent: a warning once per process, and response.adjustments
            warn_once(log, target.provider, target.model, adjustments)
        if log.isEnabledFor(logging.DEBUG):  # headers as display_headers shows them: key masked
            log.debug("POST %s stream=%s headers=%s adjustments=%s", target.url, stream,
                      target.display_headers(stream=stream), adjustments)
        return encode(body), adjustments, self._deadlines(target, call)

    def _call_time(self, timeout: TimeoutArg) -> _CallTime:
        """The call's limits: a number (the call's, else the client's) bounds the whole call."""
        if timeout is None and self._timeout is None:
            return _NO_LIMITS
        whole = _whole(timeout)
        if whole is None:
            whole = _whole(self._timeout)
        ends = None if whole is None else self._clock() + whole
        return _CallTime(timeout, whole, ends, self._clock)

    def _deadlines(self, target: Target, call: _CallTime | None = None) -> Deadlines:
        """The target's timeouts, overridden by the client's, then by the call's; the
        exchange's total is capped by what is left of the whole call's timeout."""
        limits = _timeouts(target.timeouts, self._timeout, call.timeout if call else None)
        total = limits.total
        if call is not None and call.ends is not None:
            left = call.ends - self._clock()
            if left <= 0:
                raise call.expired()
            total = left if total is None else min(total, left)
        return Deadlines(limits.connect, limits.first_byte, limits.idle, total)

    def _error(self, target: Target, status: int, headers: Headers, raw: bytes) -> APIError:
        return classify(status, headers, raw, provider=target.provider, model=target.model,
                        url=target.url, secrets=target.secrets())

    def _parse(self, target: Target, headers: Headers, raw: bytes) -> ChatResponse:
        body = decode_body(raw, headers.get("content-type"), provider=target.provider, model=target.model,
                           status=200)
        return parse_completion(body, provider=target.provider, model=target.model)

    def _stamp(self, response: ChatResponse, send: Send, adjustments: Sequence[str]) -> ChatResponse:
        """The response, saying who served it, with what prices it (`response.cost`, for
        streams and whole answers alike). Built field by field: dataclasses.replace costs
        several times more, on every request."""
        r = response
        return ChatResponse(r.content, r.tool_calls, r.usage, r.finish_reason, r.model, send.target.provider,
                            r.reasoning, r.id, r.raw, send.target.model, send.attempt, tuple(adjustments),
                            r.parsed, send.target.reasoning_replay,
                            _pricing=(self._price_answer, send.target, time.time()))

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this client is closed; create a new one")

    def _hand_over(self, began: tuple[float, float], messages: Any, options: dict[str, Any], stream: bool,
                   outcome: Any, first: float | None, provider: str | None, model: str | None) -> None:
        """Give one finished exchange (the answer or the error, with its timings) to the
        log: a deque append; the log's own thread prices, serialises and writes it
        (human/store/record.py describes the tuple)."""
        requested = (provider or self._provider, model or self._model or self.config.default_model)
        self._log.add((began[0], began[1], first, time.perf_counter(), messages, options, stream, outcome,
                       self._targets, requested))


_KNOWN = frozenset(_OPTIONS)


def _pick(options: dict[str, Any], temperature: Any = NOT_GIVEN) -> dict[str, Any]:
    """The request options that were given (None means "not sent"), checked by name.
    Works in place on the dict the call's **options made."""
    for name in options:
        if name not in _KNOWN:
            unknown = sorted(set(options) - _KNOWN)
            raise TypeError(f"unexpected option(s): {', '.join(unknown)}")
    if None in options.values():
        options = {name: value for name, value in options.items() if value is not None}
    options["temperature"] = temperature
    return options


def _wants_object(value: Any) -> bool:
    """True when `response_format` asks for a parsed object (a type or a JSON Schema),
    not for one of the wire forms "json_object" / {"type": ...} sent as they are."""
    if value is None or isinstance(value, str):
        return False
    if isinstance(value, Mapping):
        return value.get("type") not in ("json_object", "json_schema", "text")
    return True


def _route(provider: str | None, model: str | None, timeout: TimeoutArg, retries: int | None,
           temperature: Any) -> dict[str, Any]:
    """The call's own settings, passed on to each request a structured call makes."""
    return {"provider": provider, "model": model, "timeout": timeout, "retries": retries,
            "temperature": temperature}


def _structured(options: Mapping[str, Any]) -> bool:
    """A call for a parsed object: `human.structured` sends its requests (re-asks
    included) through `chat`, so each is logged and priced once, not the sum again."""
    return "response_format" in options and _wants_object(options["response_format"])


def _with(options: dict[str, Any], temperature: Any) -> dict[str, Any]:
    """The call's options for the log, temperature included (`_pick` adds it in place,
    except when it had to copy)."""
    if "temperature" in options or temperature is NOT_GIVEN:
        return options
    return {**options, "temperature": temperature}


def _logbook(log: Any, config: Config) -> Any:
    """The shared `Logbook` this client writes to, or None when logging is off (the
    default for library clients: `log=True`, a path, a `Store`, or "log": true in the
    config turns it on). The store is imported only when it is used."""
    if log is None:
        log = config.log
    if log is False:
        return None
    from .store import default_path
    from .store.writer import logbook_for

    retention = config.log_retention_days
    if log is True:
        return logbook_for(default_path(config.env), config.env, retention_days=retention)
    if isinstance(log, (str, Path)):
        return logbook_for(Path(log).expanduser(), config.env, retention_days=retention)
    if hasattr(log, "append"):
        return logbook_for(log)
    raise TypeError(f"log must be True, False, a path or a human.store.Store, not {type(log).__name__}")


def _timeouts(base: Timeouts, *overrides: TimeoutArg) -> Timeouts:
    """Per-exchange limits; a number is the whole call's timeout (see `_CallTime`)."""
    for override in overrides:
        if isinstance(override, Timeouts):
            base = override
        elif isinstance(override, Mapping):
            base = base.merged(override)
    return base


def _whole(timeout: TimeoutArg) -> float | None:
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        if timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout}")
        return float(timeout)
    return None


@dataclass(frozen=True, slots=True)
class _CallTime:
    """One call's time limits: the per-exchange overrides it passed, and the whole call's
    timeout (`seconds`) with the moment it runs out (`ends`, on the client's clock)."""

    timeout: TimeoutArg
    seconds: float | None
    ends: float | None
    clock: Callable[[], float]

    def expired(self) -> APITimeoutError:
        seconds = self.seconds or 0.0
        return APITimeoutError(f"no complete answer within the call's timeout of {seconds:g} s "
                               "(every attempt and wait included)", kind="call", seconds=seconds)

    def restate(self, exc: HumanError) -> HumanError:
        """A per-exchange timeout that fired because the call's time ran out is the call's."""
        if (self.ends is not None and isinstance(exc, APITimeoutError) and exc.kind != "call"
                and self.clock() >= self.ends - 0.05):
            error = self.expired()
            error.provider, error.model, error.partial = exc.provider, exc.model, exc.partial
            return error
        return exc


_NO_LIMITS = _CallTime(None, None, None, time.monotonic)


def _stamp_error(exc: HumanError, target: Target, *, model: bool = True, call: _CallTime = _NO_LIMITS,
                 ) -> HumanError:
    """Say who failed, and scrub what the server sent back before anyone can print it.
    (`model=False` for GET /models, which no model took part in.)"""
    exc = call.restate(exc)
    if isinstance(exc, APIError):
        exc.provider = exc.provider or target.provider
        exc.model = exc.model or (target.model if model else None)
        secrets = target.secrets()
        exc.message = scrub(exc.message, *secrets)
        exc.args = (exc.message,)
        if exc.request_id:  # a server can echo anything into X-Request-Id, a key included
            exc.request_id = scrub(exc.request_id, *secrets)
        if isinstance(exc, RedirectError) and exc.location:
            exc.location = scrub(exc.location, *secrets)
        if isinstance(exc, BadResponseError):
            exc.body_preview = scrub(exc.body_preview, *secrets)
    return exc


# ---- sync --------------------------------------------------------------------------------


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
            from .structured.drive import chat

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
            from .structured.drive import StructuredStream

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
        from .agent.drive import RunStream

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


class ChatStream:
    """The events of one streamed answer. Retries and fallbacks happen only before the
    first event reaches you; after that a failure raises with `.partial` set."""

    def __init__(self, client: Client, plan: Plan, messages: Any, options: Mapping[str, Any],
                 call: _CallTime) -> None:
        self._client, self._plan, self._messages = client, plan, messages
        self._options, self._call = options, call
        self.response: ChatResponse | None = None
        self._iterator: Iterator[StreamEvent] | None = None

    def __iter__(self) -> Iterator[StreamEvent]:
        if self._iterator is None:
            events = self._events()
            self._iterator = events if self._client._log is None else _logged_events(self, events)
        return self._iterator

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._iterator is not None:
            self._iterator.close()  # type: ignore[attr-defined]

    def until_done(self) -> ChatResponse:
        """Consume the stream and return the assembled answer."""
        for _ in self:
            pass
        assert self.response is not None
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


def _models_list(client: _Base, target: Target, status: int, headers: Headers,
                 raw: bytes) -> list[dict[str, Any]]:
    if status >= 300:
        raise client._error(target, status, headers, raw)
    body = decode_body(raw, headers.get("content-type"), provider=target.provider, model=target.model,
                       status=status)
    data = body.get("data") if isinstance(body, dict) else body
    if not isinstance(data, list):
        raise BadResponseError("GET /models did not return a list under \"data\"", provider=target.provider)
    return [item if isinstance(item, dict) else {"id": str(item)} for item in data]


# ---- async -------------------------------------------------------------------------------


class AsyncClient(_Base):
    """Asynchronous client: the same methods as `Client`, as coroutines."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        import asyncio

        from .transport.aio import AsyncTransport

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
            from .structured.drive import achat

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
            from .structured.drive import AsyncStructuredStream

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
        from .agent.drive import AsyncRunStream

        return AsyncRunStream(self, messages, tools=tools, **settings)
    async def batch(self, input: str | Path, output: str | Path, **options: Any) -> BatchSummary:
        """Send every request in the JSONL file `input` through this client, writing each
        result to `output` as it finishes; rerun to resume. Options: concurrency, rpm, tpm,
        retry_failed, skip_invalid, dry_run, errors, progress (see `human.batch`)."""
        self._check_open()
        from .batching import run_with  # the runner sits above the client; loaded on first use

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


class AsyncChatStream:
    """The async twin of `ChatStream`."""

    def __init__(self, client: AsyncClient, plan: Plan, messages: Any, options: Mapping[str, Any],
                 call: _CallTime) -> None:
        self._client, self._plan, self._messages = client, plan, messages
        self._options, self._call = options, call
        self.response: ChatResponse | None = None
        self._iterator: AsyncIterator[StreamEvent] | None = None

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        if self._iterator is None:
            events = self._events()
            self._iterator = events if self._client._log is None else _alogged_events(self, events)
        return self._iterator

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]

    async def until_done(self) -> ChatResponse:
        """Consume the stream and return the assembled answer."""
        async for _ in self:
            pass
        assert self.response is not None
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
