"""What `Client` and `AsyncClient` share: settings, targets, the retry plan, deadlines,
request building, parsing and error stamping. No I/O here: the two drivers (sync.py,
aio.py) perform it, line for line alike."""

from __future__ import annotations

import dataclasses
import logging
import random as _random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config, Target, Timeouts, load_config, resolve
from ..core.classify import Headers, classify
from ..core.parse import decode_body, parse_completion
from ..core.retry import CircuitBreaker, Plan, RetryPolicy, Send, Sleep
from ..core.secret import Secret, scrub
from ..core.wire import NOT_GIVEN, build_body, encode
from ..errors import APIError, APITimeoutError, BadResponseError, ClientClosedError, HumanError, RedirectError
from ..pricing import Pricer
from ..profile import changes_for, warn_once
from ..transport import Deadlines
from ..types import ChatResponse

if TYPE_CHECKING:
    from ..discover import Found


__all__ = ["Progress", "TimeoutArg"]

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
        from ..discover import find_local, no_server_error, servers_from_env

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
            from ..structured.drive import first_ask  # the first request a structured call would send

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
    from ..store import default_path
    from ..store.books import logbook_for

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
