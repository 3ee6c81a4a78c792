"""The I/O half of `human doctor`: a few tiny requests to one endpoint through the
public `Client` (profiles off, no retries, no fallbacks), each recorded as an `Outcome`,
then the rows decided (`decide.py`), the profile learned (`learn.py`) and saved.

The requests, in order: GET /models; a chat with the target's own token field, then one
with the other field (and, only when both are rejected by name, one with no limit);
then, with a field that worked: a stream, a stream with stream_options, content parts,
tools, a streamed tool call (read as raw SSE: the typed events do not show whether the
server sent `index` and `id`), json_object, json_schema. A failed step skips what
depends on it (no auth: nothing more; no chat: no capability probes). At most
`MAX_REQUESTS` requests are sent, each with a token limit of `PROBE_TOKENS`; the caller
is told before the first.

With no provider named, the local servers on their default ports are also looked for
(`scan.py`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..client import Client
from ..config import Config, Target, load_config, resolve
from ..discover import LOCAL_SERVERS, Found, LocalServer
from ..errors import ConfigError, HumanError
from ..profile import Profile, save_profile
from .decide import FAIL, PROBE_TOKENS, Check, Observations, Outcome, _auth_failed, _fields, _rejects, _root, decide
from .learn import learn
from .scan import scan_local

__all__ = ["MAX_REQUESTS", "Report", "diagnose"]

MAX_REQUESTS = 11  # GET /models + up to ten chat probes (a third token probe only when both fields fail)

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
    from ..core.classify import classify
    from ..core.sse import SSEDecoder
    from ..core.stream import StreamAssembler
    from ..core.wire import encode
    from ..transport import Deadlines
    from ..transport.sync import SyncTransport

    body = client.dry_run(TOOL_PROMPT, stream=True, provider=target.provider, model=target.model,
                          tools=[PING_TOOL], extra_body=dict(limit))["body"]
    limits = target.timeouts
    deadlines = Deadlines(limits.connect, limits.first_byte, limits.idle, limits.total if timeout is None else timeout)
    started = time.monotonic()
    transport = SyncTransport()
    fragments: list[Mapping[str, Any]] = []
    try:
        exchange = transport.send("POST", target.url, target.request_headers(stream=True), encode(body),
                                  deadlines, target.max_stream_bytes, target.network)
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
    from ..config.registry import lookup

    row = lookup(provider)
    for alias in (row.name, *row.aliases) if row else ():
        if config.provider_entry(alias):
            return alias
    return provider

