"""The two line formats of a batch, read and written. Pure: bytes in, values out.

Input, one JSON object a line, in either form:

    {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "gpt-4o-mini", "messages": [...], "max_tokens": 100}}   # OpenAI Batch
    {"custom_id": "q1", "messages": [...], "max_tokens": 100}                  # plain

Output, one line per finished request, in OpenAI's Batch output format
(`BatchRequestOutput` in OpenAI's OpenAPI description), plus a `human` object that
readers of that format ignore:

    {"id": "batch_req_…", "custom_id": "q1",
     "response": {"status_code": 200, "request_id": null, "body": {…the server's answer…}},
     "error": null,
     "human": {"line": 1, "request": "5d41402abc4b2a76", "provider": "openai",
               "attempt": 1, "ms": 812, "prompt_tokens": 12, "completion_tokens": 30,
               "cost": 0.0000213}}

A failure carries the error status and body when the server answered, and always
`error` = {"code", "message", "type"} where `type` is the `human` error class. A line is a
success exactly when `error` is null and `response.status_code` is 200; that is what a
resumed run skips. `human.request` is a fingerprint of the input line, so a rerun can
tell that a result belongs to a request that has since changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.tokens import TokenEstimate, estimate_request
from ..core.wire import normalize_messages
from ..errors import AllAttemptsFailedError, APIError, APIStatusError, HumanError

__all__ = ["Done", "Request", "fingerprint", "parse_input", "parse_output", "failure_line", "success_line"]

# What `AsyncClient.chat` takes by name; every other body field goes out as extra_body.
OPTIONS = frozenset({
    "temperature", "max_tokens", "tools", "tool_choice", "parallel_tool_calls", "response_format", "stop",
    "seed", "top_p", "reasoning_effort",
})
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
# ASCII escapes: the C encoder's faster path (a third less time a line than ensure_ascii=False),
# and bytes that no terminal or editor can mangle; every JSON reader turns them back.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


class LineError(ValueError):
    """One input line is unusable; the message says why (the caller adds the line number)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One input line, checked and ready to send."""

    custom_id: str
    line: int
    fingerprint: str
    model: str | None
    messages: list[dict[str, Any]]
    options: dict[str, Any]
    estimate: TokenEstimate | None  # None unless asked for (dry runs, --tpm)


@dataclass(frozen=True, slots=True)
class Done:
    """What an output line says about its request."""

    custom_id: str
    ok: bool
    fingerprint: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float | None


def fingerprint(raw: bytes) -> str:
    """A short fingerprint of an input line (its bytes, without surrounding whitespace)."""
    return hashlib.blake2b(raw.strip(), digest_size=8).hexdigest()


def parse_input(raw: bytes, line: int, *, check: bool = True, estimate: bool = True) -> Request:
    """One input line as a `Request`; `LineError` says what is wrong with it.

    The first pass checks every line (`check`); the second trusts the lines the first
    accepted and only takes them apart, so the hot path pays one `json.loads` a line.
    `estimate` adds the token estimate (for --dry-run and --tpm)."""
    try:
        data = json.loads(raw.decode("utf-8").lstrip("\ufeff"))  # a byte-order mark some editors write
    except UnicodeDecodeError as exc:
        raise LineError(f"is not UTF-8 (byte {exc.start + 1})") from None
    except json.JSONDecodeError as exc:
        raise LineError(f"is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise LineError(f"must be a JSON object, not {type(data).__name__}")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise LineError('needs "custom_id": a non-empty string' + ("" if custom_id is None
                        else f" (got {type(custom_id).__name__})"))
    if "body" in data or "url" in data or "method" in data:
        body = _batch_body(data)
    else:
        body = {name: value for name, value in data.items() if name != "custom_id"}
    if "messages" not in body:
        raise LineError('needs "messages"')
    model = body.get("model")
    messages = body["messages"]
    if check:
        messages = _checked(body, model)
    options: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in body.items():
        if name in _NOT_OPTIONS:
            continue
        if name == "max_completion_tokens":
            name = "max_tokens"
            if check and "max_tokens" in body:
                raise LineError("sets both max_tokens and max_completion_tokens")
        if name in OPTIONS:
            if check:
                _check_option(name, value)
            options[name] = value
        else:
            extra[name] = value
    if extra:
        options["extra_body"] = extra
    return Request(custom_id, line, fingerprint(raw), model, messages, options,
                   estimate_request(body) if estimate else None)


_NOT_OPTIONS = frozenset({"messages", "model", "stream", "stream_options"})


def _checked(body: dict[str, Any], model: Any) -> list[dict[str, Any]]:
    try:
        messages = normalize_messages(body["messages"])
    except (ValueError, AttributeError, TypeError) as exc:
        raise LineError(str(exc) if isinstance(exc, ValueError) else "messages must be a list of objects") from None
    if model is not None and (not isinstance(model, str) or not model):
        raise LineError('has a "model" that is not a non-empty string')
    if body.get("stream"):
        raise LineError('asks for "stream": true; a batch collects whole answers (drop it)')
    return messages


def _batch_body(data: dict[str, Any]) -> dict[str, Any]:
    method = data.get("method", "POST")
    if method != "POST":
        raise LineError(f'has "method": {method!r}; only POST is sent')
    url = data.get("url", CHAT_PATHS[0])
    if not isinstance(url, str) or url.split("?", 1)[0].rstrip("/") not in CHAT_PATHS:
        raise LineError(f'has "url": {url!r}; only /v1/chat/completions is supported')
    body = data.get("body")
    if not isinstance(body, dict):
        raise LineError('needs "body": the request object (model, messages, …)')
    return body


def _check_option(name: str, value: Any) -> None:
    """The options whose wrong type would only fail on the server, after paying for a slot."""
    if value is None:
        return
    if name == "temperature" and not (_number(value) and 0 <= value <= 2):
        raise LineError(f"has temperature {value!r}; expected a number from 0 to 2")
    if name == "max_tokens" and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        raise LineError(f"has max_tokens {value!r}; expected a positive integer")
    if name == "tools" and not (isinstance(value, list) and all(isinstance(tool, dict) for tool in value)):
        raise LineError("has tools that are not a list of objects")
    if name == "stop" and not (isinstance(value, str) or (isinstance(value, list)
                                                           and all(isinstance(s, str) for s in value))):
        raise LineError("has stop that is neither a string nor a list of strings")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---- output -------------------------------------------------------------------------------


def success_line(request_id: str, request: Request, body: Any, extra: Mapping[str, Any]) -> bytes:
    """The output line for an answered request (`body`: the server's JSON answer)."""
    return _line(request_id, request, {"status_code": 200, "request_id": None, "body": body}, None, extra)


def failure_line(request_id: str, request: Request, error: HumanError, extra: Mapping[str, Any]) -> bytes:
    """The output line for a request that failed for good, with its typed error."""
    last = error.last if isinstance(error, AllAttemptsFailedError) else error
    response = None
    if isinstance(last, APIStatusError) and last.status is not None:
        response = {"status_code": last.status, "request_id": last.request_id, "body": last.body}
    code = getattr(last, "code", None) or type(last).__name__
    detail: dict[str, Any] = {"code": code, "message": str(error), "type": type(error).__name__}
    if last is not error:
        detail["last"] = type(last).__name__
    if isinstance(last, APIError) and last.provider:
        detail["provider"] = last.provider
    return _line(request_id, request, response, detail, extra)


def _line(request_id: str, request: Request, response: Any, error: Any, extra: Mapping[str, Any]) -> bytes:
    human = {"line": request.line, "request": request.fingerprint, **extra}
    value = {"id": request_id, "custom_id": request.custom_id, "response": response, "error": error,
             "human": human}
    return _ENCODER.encode(value).encode("utf-8") + b"\n"


def parse_output(raw: bytes) -> Done:
    """What one complete output line says; `LineError` when it is not a batch output line."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LineError("is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("custom_id"), str):
        raise LineError('is not a batch output line (no "custom_id")')
    response = data.get("response")
    ok = data.get("error") is None and isinstance(response, dict) and response.get("status_code") == 200
    human = data.get("human")
    human = human if isinstance(human, dict) else {}
    print_ = human.get("request")
    cost = human.get("cost")
    return Done(
        data["custom_id"],
        ok,
        print_ if isinstance(print_, str) else None,
        _count(human.get("prompt_tokens")),
        _count(human.get("completion_tokens")),
        float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
