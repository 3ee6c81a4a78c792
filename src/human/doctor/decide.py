"""Decides the rows of `human doctor`'s table from what the probes saw. Pure: reads
`Observations`, returns `Check`s; no I/O, so every row can be tested without a server.

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

A capability counts as missing only when the server *rejects* it (HTTP 400/422) while
the same request without it succeeds; any other failure leaves it unknown, so a flaky
server never teaches the client to drop a parameter.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config, Target
from ..core.secret import mask
from ..errors import (
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
from ..types import ChatResponse

if TYPE_CHECKING:
    from ..discover import Found

__all__ = ["FAIL", "NA", "PASS", "PROBE_TOKENS", "TOKEN_FIELDS", "Check", "Observations", "Outcome", "decide"]

PASS, FAIL, NA = "pass", "fail", "n/a"
PROBE_TOKENS = 16
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


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
    network = _network_note(target)
    if answered:
        return Check("endpoint", PASS, f"{_root(target)} answers{network}")
    error = sent[0].error if sent else None
    if isinstance(error, APITimeoutError):
        advice = "the server accepted the connection but did not answer in time: is it loading a model?"
    elif target.local:
        advice = f"is the server running on {_root(target)}? start it, or fix base_url in the config"
    else:
        advice = "check base_url, your network and any proxy (HTTPS_PROXY)"
    return Check("endpoint", FAIL, (_short(error) if error else "not reached") + network, advice)


def _network_note(target: Target) -> str:
    """Which proxy and which CA bundle the requests used, when either is not the default
    (issue 10: "doctor shows which proxy and CA are in use"). Proxy passwords are masked."""
    from urllib.parse import urlsplit

    network = target.network
    parts = urlsplit(target.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = network.proxy.choose(parts.scheme, parts.hostname or "", port)
    notes = []
    if proxy is not None:
        notes.append(f"via proxy {proxy.shown} ({network.proxy.source})")
    if parts.scheme == "https" and network.ca_bundle:
        notes.append(f"CA bundle {network.ca_bundle} ({network.ca_source})")
    return f" ({'; '.join(notes)})" if notes else ""


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
                     "this endpoint ignores response_format; response_format=<type> puts the schema in the prompt here")
    if outcome.rejected:
        if sibling.rejected:
            advice = ("human leaves response_format out here (saved profile); response_format=<type> puts the "
                      "schema in the prompt")
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



def _auth_failed(outcome: Outcome) -> bool:
    return isinstance(outcome.error, (AuthenticationError, PermissionDeniedError))


def _root(target: Target) -> str:
    return target.url.rsplit("/chat/completions", 1)[0]
