"""Probes one OpenAI-compatible endpoint, says what works there, and saves what it
learned as the endpoint's capability profile (`human/profile.py`): `human doctor`.

Two halves, so the decisions can be tested without a server:

    diagnose(...)  I/O: tiny requests through the public `Client` (profiles off, no
                   retries, no fallbacks), each recorded as an `Outcome` in `Observations`
    decide(obs)    pure: one `Check` per row
    learn(obs)     pure: the `Profile` the observations support (or None)

The rows, in order (status "pass", "fail" or "n/a"; a failure carries one line of advice):

    config        the config loads, and from where
    key           where the key comes from (masked), or why none is needed
    endpoint      the URL resolves and the server answers at all
    auth          no 401 / 403
    model         GET …/models lists the model (n/a without that route)
    chat          a plain chat answers
    stream        a streamed chat answers
    stream usage  stream_options.include_usage is accepted and usage arrives
    token field   max_tokens / max_completion_tokens: which the server accepts
    content parts content as an array of {"type": "text"} parts
    tools         a tool definition is accepted (and the model calls it)
    tool stream   streamed tool-call fragments carry `index` and `id`
    json_object   response_format {"type": "json_object"} is accepted and honoured
    json_schema   response_format {"type": "json_schema", ...} likewise
    latency       time to the first streamed token

The requests, in order: GET /models; a chat with the target's own token field, then one
with the other field (and, only when both are rejected by name, one with no limit);
then, with a field that worked: a stream, a stream with stream_options, content parts,
tools, a streamed tool call (read as raw SSE: the typed events do not show whether the
server sent `index` and `id`), json_object, json_schema. A failed step skips what
depends on it (no auth: nothing more; no chat: no capability probes).

A capability counts as missing only when the server *rejects* it (HTTP 400/422) while
the same request without it succeeds; any other failure leaves it unknown, so a flaky
server never teaches the client to drop a parameter. At most `MAX_REQUESTS` requests are
sent, each with a token limit of `PROBE_TOKENS`; the caller is told before the first.

With no provider named, `scan_local()` also looks for local servers on their default
ports (`LOCAL_SERVERS`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .client import Client
from .config import Config, Target, load_config, resolve
from .core.secret import mask
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    ConfigError,
    ContextLengthError,
    HumanError,
    MissingCredentialError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from .profile import Profile, save_profile
from .types import ChatResponse

__all__ = [
    "LOCAL_SERVERS",
    "MAX_REQUESTS",
    "Check",
    "Found",
    "LocalServer",
    "Observations",
    "Outcome",
    "Report",
    "decide",
    "diagnose",
    "learn",
    "scan_local",
]

PASS, FAIL, NA = "pass", "fail", "n/a"
PROBE_TOKENS = 16
MAX_REQUESTS = 11  # GET /models + up to ten chat probes (a third token probe only when both fields fail)
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")

OK_PROMPT = "Reply with the single word OK."
COUNT_PROMPT = "Count from 1 to 5, separated by spaces."
JSON_PROMPT = 'Reply with the JSON object {"ok": true} and nothing else.'
TOOL_PROMPT = "Call the ping tool."
PING_TOOL = {"type": "function", "function": {
    "name": "ping", "description": "Checks that tools work. Call it when asked to.",
    "parameters": {"type": "object", "properties": {"note": {"type": "string"}}}}}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {
    "name": "probe", "strict": True,
    "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
               "additionalProperties": False}}}


# ---- values -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One row of the doctor's table."""

    name: str
    status: str  # PASS, FAIL or NA
    detail: str
    advice: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one probe request produced. `error` is None on success."""

    error: HumanError | None = None
    response: ChatResponse | None = None
    seconds: float = 0.0
    first_token_s: float | None = None
    events: tuple[str, ...] = ()  # stream event types, in order
    fragments: tuple[Mapping[str, Any], ...] = ()  # raw streamed tool-call fragments
    models: tuple[str, ...] | None = None  # GET /models ids

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rejected(self) -> bool:
        """The server refused the request as malformed (400/422), not for its length."""
        return isinstance(self.error, BadRequestError) and not isinstance(self.error, ContextLengthError)

    @property
    def answered(self) -> bool:
        """An HTTP answer arrived (success or an error status): the server is there."""
        return self.error is None or isinstance(self.error, (APIStatusError, BadResponseError))


@dataclass
class Observations:
    """Everything the probes saw; `decide` and `learn` read only this."""

    config: Config | None = None
    config_error: ConfigError | None = None
    provider: str | None = None
    target: Target | None = None
    target_error: ConfigError | None = None
    model_source: str = ""  # "" = named (argument or config); else how it was picked
    unnamed: bool = False  # no model named, and GET /models offered none
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    found: list[Found] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LocalServer:
    """A local server's usual port: where `doctor` looks when no provider is named."""

    name: str
    port: int


# Default ports, from each server's documentation.
LOCAL_SERVERS: tuple[LocalServer, ...] = (
    LocalServer("Ollama", 11434),
    LocalServer("LM Studio", 1234),
    LocalServer("llama.cpp", 8080),
    LocalServer("vLLM", 8000),
    LocalServer("sglang", 30000),
    LocalServer("LiteLLM", 4000),
    LocalServer("mlx", 8741),
)


@dataclass(frozen=True, slots=True)
class Found:
    """A port that answered. `models` is None when no models route answered 200."""

    name: str
    base_url: str
    models: tuple[str, ...] | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    """What `diagnose` returns: the rows, the endpoint, and what was saved."""

    checks: list[Check]
    provider: str | None = None
    model: str | None = None
    url: str | None = None
    requests: int = 0
    profile: Profile | None = None
    saved_to: Path | None = None
    found: list[Found] = field(default_factory=list)
    scanned: bool = False

    @property
    def ok(self) -> bool:
        return all(check.status != FAIL for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "provider": self.provider,
            "model": self.model,
            "url": self.url,
            "requests": self.requests,
            "checks": [dataclasses.asdict(check) for check in self.checks],
            "profile": self.profile.to_json() if self.profile else None,
            "changes": ({"drop": sorted(self.profile.drop), "rename": self.profile.rename}
                        if self.profile else None),
            "profile_path": str(self.saved_to) if self.saved_to else None,
            "local_servers": ([{"name": f.name, "base_url": f.base_url,
                                "models": None if f.models is None else len(f.models),
                                "model_ids": list(f.models or ())[:20], "detail": f.detail} for f in self.found]
                              if self.scanned else None),
        }


# ---- the whole run ------------------------------------------------------------------------------


def diagnose(
    *,
    config: str | Path | Config | None = None,
    provider: str | None = None,
    model: str | None = None,
    save: bool = True,
    scan: bool | None = None,
    local_servers: Sequence[LocalServer] | None = None,
    timeout: float | None = None,
    announce: Callable[[str], None] = lambda message: None,
) -> Report:
    """Probe the endpoint, decide each row, save the profile (unless `save=False`).

        report = diagnose(provider="local", announce=print)
        print(report.ok, [(c.name, c.status) for c in report.checks])

    `scan` (default: when no provider is named) also looks for local servers on
    `local_servers` (default `LOCAL_SERVERS`).
    """
    obs = Observations()
    if scan is None:
        scan = provider is None
    if scan:
        obs.found = scan_local(LOCAL_SERVERS if local_servers is None else local_servers)
    try:
        obs.config = config if isinstance(config, Config) else load_config(config)
    except ConfigError as exc:
        obs.config_error = exc
    if obs.config is not None:
        obs.provider = provider or obs.config.default_provider
        if obs.provider:
            _probe_all(obs, obs.config, obs.provider, model, timeout, announce)
    profile = learn(obs)
    saved_to = save_profile(profile) if save and profile is not None else None
    target = obs.target
    return Report(
        checks=decide(obs),
        provider=obs.provider,
        model=target.model if target else None,
        url=target.url if target else None,
        requests=len(obs.outcomes),
        profile=profile,
        saved_to=saved_to,
        found=obs.found,
        scanned=scan,
    )


def _probe_all(obs: Observations, config: Config, provider: str, model: str | None, timeout: float | None,
               announce: Callable[[str], None]) -> None:
    named = model or config.default_model
    try:
        target = resolve(config, provider, named or "-")
    except ConfigError as exc:
        obs.target_error = exc
        return
    obs.target = target
    announce(f"doctor will send up to {MAX_REQUESTS} requests to {_root(target)} "
             f"(GET /models, then chat requests of at most {PROBE_TOKENS} tokens each)")
    with Client(config=_probe_config(config, provider), provider=provider, model=named or "-",
                profiles=False, retries=0, timeout=timeout) as client:
        listed = obs.outcomes["models"] = _list_models(client, provider)
        if not listed.answered or _auth_failed(listed):
            return
        if not named:
            if not listed.models:
                obs.unnamed = True
                return
            named = listed.models[0]
            obs.model_source = f"the first of {len(listed.models)} from GET /models; pass --model to pick another"
        target = obs.target = dataclasses.replace(target, model=named)
        _probe_chat(obs, client, provider, target, timeout)


def _probe_chat(obs: Observations, client: Client, provider: str, target: Target, timeout: float | None) -> None:
    out = obs.outcomes
    model = target.model
    own, other = _fields(target)

    def chat(name: str, messages: Any = OK_PROMPT, **options: Any) -> Outcome:
        extra = {**limit, **options.pop("extra_body", {})}
        out[name] = _chat(client, messages, provider=provider, model=model, extra_body=extra, **options)
        return out[name]

    limit = {own: PROBE_TOKENS}
    first = chat("token:" + own)
    if not first.answered or _auth_failed(first):
        return
    limit = {other: PROBE_TOKENS}
    second = chat("token:" + other)
    if not first.ok and not second.ok:
        if not (_rejects(first, own, False) and _rejects(second, other, False)):
            return  # chat itself fails: nothing more to learn
        limit = {}  # both fields named in 400s: does a request without a limit work?
        if not chat("token:none").ok:
            return
    elif first.ok:
        limit = {own: PROBE_TOKENS}

    stream = out["stream"] = _stream(client, COUNT_PROMPT, provider=provider, model=model, extra_body=limit)
    if stream.ok:
        out["stream usage"] = _stream(client, OK_PROMPT, provider=provider, model=model,
                                      extra_body={**limit, "stream_options": {"include_usage": True}})
    chat("content parts", extra_body={"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Reply with the single word"}, {"type": "text", "text": " OK."}]}]})
    tools = chat("tools", TOOL_PROMPT, tools=[PING_TOOL])
    if tools.ok and tools.response is not None and tools.response.tool_calls:
        out["tool stream"] = _raw_tool_stream(client, target, limit, timeout)
    chat("json_object", JSON_PROMPT, response_format="json_object")
    chat("json_schema", JSON_PROMPT, response_format=JSON_SCHEMA)


# ---- one probe each -----------------------------------------------------------------------------

def _list_models(client: Client, provider: str) -> Outcome:
    started = time.monotonic()
    try:
        items = client.models(provider)
    except HumanError as exc:
        return Outcome(error=_unwrap(exc), seconds=time.monotonic() - started)
    ids = tuple(str(item.get("id")) for item in items if item.get("id") is not None)
    return Outcome(seconds=time.monotonic() - started, models=ids)


def _chat(client: Client, messages: Any, **options: Any) -> Outcome:
    started = time.monotonic()
    try:
        response = client.chat(messages, **options)
    except HumanError as exc:
        return Outcome(error=_unwrap(exc), seconds=time.monotonic() - started)
    return Outcome(response=response, seconds=time.monotonic() - started)


def _stream(client: Client, messages: Any, **options: Any) -> Outcome:
    started = time.monotonic()
    first: float | None = None
    kinds: list[str] = []
    try:
        stream = client.stream(messages, **options)
        for event in stream:
            if first is None and event.type in ("content", "reasoning", "tool_call_start"):
                first = time.monotonic() - started
            kinds.append(event.type)
    except HumanError as exc:
        return Outcome(error=_unwrap(exc), seconds=time.monotonic() - started, events=tuple(kinds))
    return Outcome(response=stream.response, seconds=time.monotonic() - started, first_token_s=first,
                   events=tuple(kinds))


def _raw_tool_stream(client: Client, target: Target, limit: Mapping[str, int], timeout: float | None) -> Outcome:
    """A streamed tool call, read as raw SSE: the typed events hide whether the server
    sent `index` and `id` (the assembler fills them in, peers.md §3 item 19)."""
    from ._http import Deadlines, SyncTransport
    from .core.classify import classify
    from .core.sse import SSEDecoder
    from .core.stream import StreamAssembler
    from .core.wire import encode

    body = client.dry_run(TOOL_PROMPT, stream=True, provider=target.provider, model=target.model,
                          tools=[PING_TOOL], extra_body=dict(limit))["body"]
    limits = target.timeouts
    deadlines = Deadlines(limits.connect, limits.first_byte, limits.idle, limits.total if timeout is None else timeout)
    started = time.monotonic()
    transport = SyncTransport()
    fragments: list[Mapping[str, Any]] = []
    try:
        exchange = transport.send("POST", target.url, target.request_headers(stream=True), encode(body),
                                  deadlines, target.max_stream_bytes)
        if exchange.status >= 300:
            raise classify(exchange.status, exchange.headers, exchange.read(), provider=target.provider,
                           model=target.model, url=target.url, secrets=target.secrets())
        decoder, assembler = SSEDecoder(), StreamAssembler(provider=target.provider, model=target.model)
        for chunk in exchange.chunks():
            for sse in decoder.feed(chunk):
                fragments += _tool_fragments(sse.data)
                assembler.add(sse.data)
        for sse in decoder.close():
            fragments += _tool_fragments(sse.data)
            assembler.add(sse.data)
        assembler.close()
        response = assembler.finish()
    except HumanError as exc:
        return Outcome(error=exc, seconds=time.monotonic() - started, fragments=tuple(fragments))
    finally:
        transport.close()
    return Outcome(response=response, seconds=time.monotonic() - started, fragments=tuple(fragments))


def _tool_fragments(data: str) -> list[Mapping[str, Any]]:
    try:
        chunk = json.loads(data)
    except ValueError:
        return []
    found: list[Mapping[str, Any]] = []
    for choice in (chunk.get("choices") or []) if isinstance(chunk, dict) else []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        found += [call for call in calls or [] if isinstance(call, dict)]
    return found


def _unwrap(exc: HumanError) -> HumanError:
    attempts = getattr(exc, "attempts", None)
    return attempts[-1].error if attempts else exc


def _probe_config(config: Config, provider: str) -> Config:
    """The user's config, minus what would blur a probe: no fallbacks (another provider
    must not answer for this one), no circuit breaker (rejections are expected), no
    configured token limit (each probe sets its own field), and no stream_options unless
    a probe adds it."""
    data = dict(config.data)
    data.pop("max_tokens", None)
    data["reliability"] = {**data.get("reliability", {}), "fallback_providers": [], "model_fallbacks": {},
                           "circuit_breaker": {"threshold": 1 << 30, "recovery_s": 0}}
    entries = [dict(entry) for entry in data.get("providers", ())]
    name = _entry_name(config, provider)
    for entry in entries:
        if entry.get("name") == name:
            entry["stream_usage"] = False
            break
    else:
        entries.append({"name": name, "stream_usage": False})
    data["providers"] = entries
    return dataclasses.replace(config, data=data)


def _entry_name(config: Config, provider: str) -> str:
    """The providers[] entry the resolver uses for `provider` (a registry row's entry may
    be under one of its aliases)."""
    if config.provider_entry(provider):
        return provider
    from .config.registry import lookup

    row = lookup(provider)
    for alias in (row.name, *row.aliases) if row else ():
        if config.provider_entry(alias):
            return alias
    return provider


def _auth_failed(outcome: Outcome) -> bool:
    return isinstance(outcome.error, (AuthenticationError, PermissionDeniedError))


def _root(target: Target) -> str:
    return target.url.rsplit("/chat/completions", 1)[0]


# ---- deciding -----------------------------------------------------------------------------------


def decide(obs: Observations) -> list[Check]:
    """One `Check` per row (see the module docstring), from what the probes saw."""
    rows: list[Check] = [_check_config(obs)]
    target = obs.target
    if target is None:
        return rows + _check_unresolved(obs)
    out = obs.outcomes
    sent = list(out.values())
    rows += [_check_key(target), _check_endpoint(target, sent), _check_auth(target, sent)]
    if not any(outcome.answered for outcome in sent):
        return rows + [Check(name, NA, "the endpoint did not answer") for name in _CHAT_ROWS]
    if any(_auth_failed(outcome) for outcome in sent):
        return rows + [Check(name, NA, "authentication failed") for name in _CHAT_ROWS]
    rows.append(_check_model(obs))
    own, other = _fields(target)
    first, second = out.get("token:" + own), out.get("token:" + other)
    if first is None or second is None:
        why = "no model to ask" if obs.unnamed else "the endpoint did not answer"
        return rows + [Check(name, NA, why) for name in _CHAT_ROWS[1:]]
    unlimited = out.get("token:none")
    answer = next((o for o in (first, second, unlimited) if o is not None and o.ok), None)
    found = {"chat": _check_chat(target, first, second, unlimited, other),
             "token field": _check_token_field(first, second, own, other)}
    if answer is not None:
        stream = out["stream"]
        found.update({
            "stream": _capability("stream", stream, _stream_detail(stream),
                                  "this endpoint does not stream: use chat() or `human chat --no-stream`"),
            "stream usage": _check_stream_usage(target, stream, out.get("stream usage")),
            "content parts": _capability("content parts", out["content parts"], "an array of text parts is accepted",
                                         "human sends text-only messages as plain strings, so only images are "
                                         "affected: this endpoint will not take them"),
            "tools": _check_tools(out["tools"]),
            "tool stream": _check_tool_stream(out["tools"], out.get("tool stream")),
            "json_object": _check_json("json_object", out["json_object"], out["json_schema"]),
            "json_schema": _check_json("json_schema", out["json_schema"], out["json_object"]),
            "latency": _check_latency(stream, answer),
        })
    return rows + [found.get(name) or Check(name, NA, "plain chat failed") for name in _CHAT_ROWS[1:]]


_CHAT_ROWS = ("model", "chat", "stream", "stream usage", "token field", "content parts", "tools", "tool stream",
              "json_object", "json_schema", "latency")


def _fields(target: Target) -> tuple[str, str]:
    """(the token-limit field human sends to this target, the other one)."""
    own = target.token_field if target.token_field in TOKEN_FIELDS else TOKEN_FIELDS[0]
    return own, TOKEN_FIELDS[1] if own == TOKEN_FIELDS[0] else TOKEN_FIELDS[0]


def _check_config(obs: Observations) -> Check:
    if obs.config_error is not None:
        where = f" ({obs.config_error.path})" if obs.config_error.path else ""
        return Check("config", FAIL, f"does not load{where}", str(obs.config_error))
    assert obs.config is not None
    files = ", ".join(_home(path) for path in obs.config.files)
    detail = f"loaded from {files}" if files else "no config file: built-in defaults and the environment"
    if obs.config.warnings:
        detail += f" ({len(obs.config.warnings)} warning{'s' if len(obs.config.warnings) > 1 else ''})"
    return Check("config", PASS, detail)


def _check_unresolved(obs: Observations) -> list[Check]:
    if obs.config_error is not None:
        return [Check("endpoint", NA, "the config did not load")]
    if isinstance(obs.target_error, MissingCredentialError):
        return [Check("key", FAIL, "none found", str(obs.target_error)),
                Check("endpoint", NA, "no key to call it with")]
    if obs.target_error is not None:
        return [Check("endpoint", FAIL, f"provider {obs.provider!r} does not resolve", str(obs.target_error))]
    found = [f for f in obs.found if f.models is not None]
    advice = ("try: " + "; ".join(f"human doctor --provider custom:{f.base_url}" for f in found[:3]) if found
              else "run `human config init`, set HUMAN_PROVIDER, or pass --provider")
    return [Check("endpoint", FAIL, "no provider configured", advice)]


def _check_key(target: Target) -> Check:
    if target.key is not None:
        return Check("key", PASS, f"{mask(target.key.reveal())} from {target.key_source}")
    if target.local:
        return Check("key", PASS, "none: a local server, no Authorization header is sent")
    return Check("key", PASS, f"none sent {target.key_source.removeprefix('none ')}".rstrip())


def _check_endpoint(target: Target, sent: list[Outcome]) -> Check:
    answered = [outcome for outcome in sent if outcome.answered]
    if answered:
        return Check("endpoint", PASS, f"{_root(target)} answers")
    error = sent[0].error if sent else None
    if isinstance(error, APITimeoutError):
        advice = "the server accepted the connection but did not answer in time: is it loading a model?"
    elif target.local:
        advice = f"is the server running on {_root(target)}? start it, or fix base_url in the config"
    else:
        advice = "check base_url, your network and any proxy (HTTPS_PROXY)"
    return Check("endpoint", FAIL, _short(error) if error else "not reached", advice)


def _check_auth(target: Target, sent: list[Outcome]) -> Check:
    for outcome in sent:
        if isinstance(outcome.error, AuthenticationError):
            if target.key is not None:
                advice = f"the server refused the key from {target.key_source}: check or replace it"
            else:
                var = target.row.api_key_env if target.row and target.row.api_key_env else None
                advice = ("the server wants a key: " + (f"set {var}, or " if var else "")
                          + f"add \"api_key\" to the providers[] entry {target.provider!r}")
            return Check("auth", FAIL, _short(outcome.error), advice)
        if isinstance(outcome.error, PermissionDeniedError):
            return Check("auth", FAIL, _short(outcome.error),
                         "the key is valid but may not use this model or endpoint: check its permissions")
    if any(outcome.ok or (outcome.answered and not isinstance(outcome.error, NotFoundError)) for outcome in sent):
        return Check("auth", PASS, "key accepted" if target.key is not None else "no key needed")
    return Check("auth", NA, "no request got far enough to tell")


def _check_model(obs: Observations) -> Check:
    assert obs.target is not None
    model = obs.target.model
    listed = obs.outcomes.get("models")
    if obs.unnamed:
        return Check("model", FAIL, "none configured, and GET /models offers none to pick",
                     "pass --model, or set default_model in the config")
    chat_ok = any(o.ok for name, o in obs.outcomes.items() if name.startswith("token:"))
    if listed is None or isinstance(listed.error, NotFoundError) or (
            isinstance(listed.error, APIStatusError) and listed.error.status == 405):
        return Check("model", NA, f"{model}: the server has no GET /models route")
    if listed.error is not None or listed.models is None:
        return Check("model", NA, f"GET /models failed: {_short(listed.error)}")
    count = f"{len(listed.models)} model{'s' if len(listed.models) != 1 else ''}"
    if obs.model_source:
        return Check("model", PASS, f"{model} ({obs.model_source})")
    if model in listed.models:
        return Check("model", PASS, f"{model} is listed by GET /models ({count})")
    if chat_ok:
        return Check("model", PASS, f"{model} is not among the {count} GET /models lists, but it answers")
    close = difflib.get_close_matches(model, listed.models, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return Check("model", FAIL, f"{model} is not among the {count} GET /models lists",
                 f"{hint}`human models` lists them; pass --model or set default_model")


def _check_chat(target: Target, first: Outcome, second: Outcome, unlimited: Outcome | None, other: str) -> Check:
    if first.ok:
        return Check("chat", PASS, f"answered in {_seconds(first.seconds)}{_said(first.response)}")
    if second.ok:
        return Check("chat", PASS, f"answered in {_seconds(second.seconds)} with {other}{_said(second.response)}")
    if unlimited is not None and unlimited.ok:
        return Check("chat", PASS, f"answered in {_seconds(unlimited.seconds)} without a token limit"
                                   f"{_said(unlimited.response)}")
    failed = unlimited or first  # with both limits rejected, the request without one says most
    return Check("chat", FAIL, _short(failed.error), _advice(failed.error, target))


def _check_stream_usage(target: Target, stream: Outcome, usage: Outcome | None) -> Check:
    if not stream.ok or usage is None:
        return Check("stream usage", NA, "streaming failed")
    if usage.rejected:
        return Check("stream usage", FAIL, f"stream_options rejected: {_short(usage.error)}",
                     "human leaves stream_options out here (saved profile); streamed answers have usage None")
    if not usage.ok:
        return Check("stream usage", FAIL, _short(usage.error), _advice(usage.error, target))
    got = usage.response.usage if usage.response else None
    if got is None:
        return Check("stream usage", FAIL, "stream_options accepted, but no usage arrived",
                     "streamed answers will have usage None here; chat() without streaming reports usage")
    note = "" if target.stream_usage else '; to get it by default set "stream_usage": true'
    return Check("stream usage", PASS, f"usage arrived ({got.prompt_tokens} in, {got.completion_tokens} out){note}")


def _rejects(outcome: Outcome, name: str, other_ok: bool) -> bool:
    """The token-limit field `name` was rejected: a 400 while the other field worked, or
    a 400 that names it."""
    if not outcome.rejected:
        return False
    if other_ok:
        return True
    error = outcome.error
    return isinstance(error, APIStatusError) and (error.param == name or name in error.message)


def _check_token_field(first: Outcome, second: Outcome, own: str, other: str) -> Check:
    own_rejected, other_rejected = _rejects(first, own, second.ok), _rejects(second, other, first.ok)
    if first.ok and second.ok:
        return Check("token field", PASS, f"{own} and {other} both accepted")
    if first.ok:
        state = "rejected" if other_rejected else f"failed ({_short(second.error)})"
        return Check("token field", PASS, f"{own} accepted (human sends it); {other} {state}")
    if own_rejected and second.ok:
        return Check("token field", FAIL, f"{own} rejected; {other} accepted",
                     f"human renames {own} to {other} here (saved profile); to make it permanent set "
                     f'"token_field": "{other}" in the providers[] entry')
    if own_rejected and other_rejected:
        return Check("token field", FAIL, f"{own} and {other} both rejected",
                     "human sends no token limit here (saved profile)")
    return Check("token field", NA, "plain chat failed")


def _check_tools(tools: Outcome) -> Check:
    if tools.ok:
        calls = tools.response.tool_calls if tools.response else ()
        if calls:
            return Check("tools", PASS, f"the model called {calls[0].name}")
        return Check("tools", PASS, "accepted, but the model answered in text instead of calling the tool")
    if tools.rejected:
        return Check("tools", FAIL, f"rejected: {_short(tools.error)}",
                     "pick a model with tool support, or enable it on the server (llama.cpp --jinja; "
                     "vLLM --enable-auto-tool-choice --tool-call-parser …)")
    return Check("tools", FAIL, _short(tools.error), _advice(tools.error, None))


def _check_tool_stream(tools: Outcome, stream: Outcome | None) -> Check:
    if stream is None:
        return Check("tool stream", NA, "no tool call to stream" if tools.ok else "tools failed")
    if not stream.ok:
        return Check("tool stream", FAIL, _short(stream.error), _advice(stream.error, None))
    calls = stream.response.tool_calls if stream.response else ()
    if not calls:
        return Check("tool stream", NA, "the model did not call the tool when streaming")
    index, ident = _fragment_shape(stream.fragments)
    if index and ident:
        return Check("tool stream", PASS, f"fragments carry index and id ({len(stream.fragments)} fragments)")
    missing = " and ".join(name for name, has in (("index", index), ("id", ident)) if not has)
    return Check("tool stream", PASS, f"fragments lack {missing}; human assembles them anyway")


def _fragment_shape(fragments: Sequence[Mapping[str, Any]]) -> tuple[bool, bool]:
    """(every fragment has an int index, every call's first fragment has an id)."""
    index = bool(fragments) and all(isinstance(f.get("index"), int) for f in fragments)
    starts = [f for f in fragments if (f.get("function") or {}).get("name")] or list(fragments[:1])
    ident = bool(starts) and all(isinstance(f.get("id"), str) and f.get("id") for f in starts)
    return index, ident


def _check_json(name: str, outcome: Outcome, sibling: Outcome) -> Check:
    if outcome.ok:
        response = outcome.response
        text = (response.content or "") if response else ""
        try:
            json.loads(text)
            return Check(name, PASS, "accepted; the answer is JSON")
        except ValueError:
            pass
        if response is not None and response.tool_calls:
            return Check(name, PASS, "accepted (the model answered with a tool call, not text)")
        if response is None or response.finish_reason == "length":
            return Check(name, PASS, f"accepted (the answer was cut at {PROBE_TOKENS} tokens before it was JSON)")
        return Check(name, FAIL, f"accepted but not honoured; the answer is not JSON{_said(response)}",
                     "this endpoint ignores response_format: validate the answer yourself")
    if outcome.rejected:
        if sibling.rejected:
            advice = "human leaves response_format out here (saved profile); ask for JSON in the prompt"
        else:
            other = "json_schema" if name == "json_object" else "json_object"
            advice = f"use response_format {other!r} with this endpoint"
        return Check(name, FAIL, f"rejected: {_short(outcome.error)}", advice)
    return Check(name, FAIL, _short(outcome.error), _advice(outcome.error, None))


def _check_latency(stream: Outcome, chat: Outcome) -> Check:
    if stream.ok and stream.first_token_s is not None:
        return Check("latency", PASS, f"first token after {_seconds(stream.first_token_s)}, "
                                      f"whole streamed answer after {_seconds(stream.seconds)}")
    if chat.ok:
        return Check("latency", NA, f"no streamed token; a whole answer took {_seconds(chat.seconds)}")
    return Check("latency", NA, "streaming failed")


def _capability(name: str, outcome: Outcome, passed: str, rejected_advice: str = "") -> Check:
    if outcome.ok:
        return Check(name, PASS, passed)
    if outcome.rejected and rejected_advice:
        return Check(name, FAIL, f"rejected: {_short(outcome.error)}", rejected_advice)
    return Check(name, FAIL, _short(outcome.error), _advice(outcome.error, None))


def _stream_detail(stream: Outcome) -> str:
    pieces = stream.events.count("content")
    response = stream.response
    what = f"{pieces} content event{'s' if pieces != 1 else ''}"
    if response is not None and response.tool_calls and not pieces:
        what = f"a call to {response.tool_calls[0].name}"
    return f"{what}, finish_reason {response.finish_reason if response else None}"


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _advice(error: HumanError | None, target: Target | None) -> str:
    """One line on what to do about a failed probe."""
    if isinstance(error, NotFoundError):
        return "the model or the URL is wrong: `human models` lists the models; base_url usually ends in /v1"
    if isinstance(error, RateLimitError):
        return "rate limited: wait and run `human doctor` again"
    if isinstance(error, ServerError):
        return "the server failed: see its logs, then run `human doctor` again"
    if isinstance(error, APITimeoutError):
        return f"no answer within the {error.kind} timeout: raise it (timeouts in the config) or try again"
    if isinstance(error, APIConnectionError):
        return "the connection failed mid-way: check the server and run `human doctor` again"
    if isinstance(error, BadResponseError):
        return "the answer is not OpenAI-shaped: check that base_url points at the API (often …/v1)"
    if isinstance(error, BadRequestError):
        return "the server rejected a minimal request: its message above says why"
    return "see the message above"


def _short(error: HumanError | None, limit: int = 110) -> str:
    if error is None:
        return ""
    if isinstance(error, APIError):
        message = error.message.split(" — ")[0]  # the classifier's hint: the advice column says more
        text = (f"HTTP {error.status}: " if error.status else "") + " ".join(message.split())
    else:
        text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _said(response: ChatResponse | None) -> str:
    if response is None:
        return ""
    if response.content:
        text = " ".join(response.content.split())
        return f": {text[:30]!r}" + ("…" if len(text) > 30 else "")
    if response.tool_calls:
        return f": a call to {response.tool_calls[0].name}"
    return f" (no text; finish_reason {response.finish_reason})"


def _home(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


# ---- learning -----------------------------------------------------------------------------------


def learn(obs: Observations) -> Profile | None:
    """The profile the observations support, or None when no chat succeeded (nothing
    was learned, and an older profile must not be overwritten with unknowns)."""
    target, out = obs.target, obs.outcomes
    if target is None:
        return None
    own, other = _fields(target)
    first, second, unlimited = out.get("token:" + own), out.get("token:" + other), out.get("token:none")
    if first is None or second is None or not any(o is not None and o.ok for o in (first, second, unlimited)):
        return None
    accepts = {own: _accepts(first, _rejects(first, own, second.ok)),
               other: _accepts(second, _rejects(second, other, first.ok))}
    stream, usage = out.get("stream"), out.get("stream usage")
    tool_stream = out.get("tool stream")
    index = ident = None
    if tool_stream is not None and tool_stream.ok and tool_stream.fragments:
        index, ident = _fragment_shape(tool_stream.fragments)
    return Profile(
        provider=target.provider,
        base_url=target.base_url,
        model=target.model,
        probed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        accepts_max_tokens=accepts["max_tokens"],
        accepts_max_completion_tokens=accepts["max_completion_tokens"],
        accepts_stream_options=_accepts(usage, usage.rejected) if usage else None,
        streams_usage=(usage.response.usage is not None) if usage and usage.ok and usage.response else None,
        accepts_content_parts=_accepts(out.get("content parts")),
        supports_tools=_accepts(out.get("tools")),
        tool_deltas_have_index=index,
        tool_deltas_have_id=ident,
        supports_json_object=_accepts(out.get("json_object")),
        supports_json_schema=_accepts(out.get("json_schema")),
        first_token_s=round(stream.first_token_s, 3) if stream and stream.first_token_s is not None else None,
    )


def _accepts(outcome: Outcome | None, rejected: bool | None = None) -> bool | None:
    """True = accepted, False = rejected, None = unknown (not probed, or another failure)."""
    if outcome is None:
        return None
    if outcome.ok:
        return True
    return False if (outcome.rejected if rejected is None else rejected) else None


# ---- local servers ------------------------------------------------------------------------------


def scan_local(servers: Sequence[LocalServer] = LOCAL_SERVERS, *, host: str = "127.0.0.1",
               connect_timeout: float = 0.3, read_timeout: float = 2.0) -> list[Found]:
    """Which of `servers` answer on `host`: GET /v1/models, then /models. All ports are
    tried at once; a closed port costs nothing, a filtered one `connect_timeout`."""
    from concurrent.futures import ThreadPoolExecutor

    if not servers:
        return []
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        results = list(pool.map(lambda s: _knock(s, host, connect_timeout, read_timeout), servers))
    return [found for found in results if found is not None]


def _knock(server: LocalServer, host: str, connect_timeout: float, read_timeout: float) -> Found | None:
    import http.client

    root = f"http://{host}:{server.port}"
    statuses: list[str] = []
    for prefix in ("/v1", ""):
        conn = http.client.HTTPConnection(host, server.port, timeout=connect_timeout)
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(read_timeout)
            conn.request("GET", prefix + "/models", headers={"Accept": "application/json"})
            response = conn.getresponse()
            raw = response.read(1 << 20)
        except (OSError, http.client.HTTPException):
            if not statuses:
                return None  # nothing listens (or it does not speak HTTP)
            continue
        finally:
            conn.close()
        statuses.append(f"{prefix}/models: HTTP {response.status}")
        if response.status == 200:
            ids = _model_ids(raw)
            if ids is not None:
                return Found(server.name, root + prefix, ids)
    return Found(server.name, root, None, "answers, but not with an OpenAI-style model list (" +
                 ", ".join(statuses) + ")")


def _model_ids(raw: bytes) -> tuple[str, ...] | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return tuple(str(item.get("id")) for item in data if isinstance(item, dict) and item.get("id") is not None)
