"""Turns an HTTP error answer into the right error class. Pure: no I/O.

Order of evidence: the status code first, then the body's structured fields
(`error.type`, `error.code`), and the message text only last, for the two cases where
servers put nothing structured (context length, quota). The reference C client
classified by message text alone, which is how it came to retry 401s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from .secret import scrub

__all__ = ["Headers", "classify", "parse_retry_after", "request_id"]



class Headers(Protocol):
    """Response headers as both transports hand them over: a case-insensitive `.get`."""

    def get(self, name: str, /) -> str | None: ...


_CONTEXT_CODES = {"context_length_exceeded", "context_window_exceeded", "string_above_max_length"}
_CONTEXT_TEXT = re.compile(
    r"context.{0,20}(length|window)|maximum context|too many tokens|prompt is too long"
    r"|exceeds? the (model'?s? )?(max|context)|ContextWindowExceeded",
    re.IGNORECASE,
)
_QUOTA_CODES = {"insufficient_quota", "quota_exceeded", "billing_hard_limit_reached", "insufficient_balance"}
_QUOTA_TEXT = re.compile(r"exceeded your current quota|insufficient (quota|balance|credits)|out of credits", re.I)
_REQUEST_ID_HEADERS = (
    "x-request-id", "request-id", "x-litellm-call-id", "x-amzn-requestid", "apim-request-id", "cf-ray",
)


def request_id(headers: Headers) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def parse_retry_after(headers: Headers, now: Callable[[], float] | None = None) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, then `retry-after` as
    seconds or as an HTTP date. None when absent or unreadable; never negative."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # imports socket: only when a date is given

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    import time

    current = now() if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def _fields(body: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, type, code, param) from the usual error shapes."""
    if not isinstance(body, Mapping):
        return None, None, None, None
    error = body.get("error", body)
    if isinstance(error, str):
        return error, None, None, None
    if not isinstance(error, Mapping):
        return None, None, None, None
    message = error.get("message") or body.get("detail") or body.get("message")
    if isinstance(message, (list, dict)):
        message = json.dumps(message)[:300]

    def text(value: Any) -> str | None:
        return None if value in (None, "", "None") else str(value)

    return text(message), text(error.get("type")), text(error.get("code")), text(error.get("param"))


def classify(
    status: int,
    headers: Headers,
    raw: bytes,
    *,
    provider: str | None = None,
    model: str | None = None,
    url: str = "",
    secrets: tuple[str, ...] = (),
    now: Callable[[], float] | None = None,
) -> APIStatusError:
    """The error for a non-2xx answer."""
    # Scrubbed before parsing, so neither the message nor the kept body can hold a key
    # that the server echoed back.
    text = scrub(raw[:65536].decode("utf-8", "replace"), *secrets)
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    message, error_type, code, param = _fields(body)
    if message is None:
        stripped = text.strip()
        if stripped.startswith("<"):
            message = "the server answered with an HTML page, not a JSON error (is base_url right?)"
        else:
            message = stripped[:300] or "(empty body)"
    if len(message) > 500:
        message = message[:500] + "…"
    common: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "status": status,
        "request_id": request_id(headers),
        "body": body,
        "error_type": error_type,
        "code": code,
        "param": param,
        "retry_after": parse_retry_after(headers, now),
    }
    fields = {str(error_type).lower(), str(code).lower()}
    if status == 401:
        return AuthenticationError(message + " — check the API key (its source: `human providers show`)", **common)
    if status == 403:
        return PermissionDeniedError(message + " — the key may not use this model or endpoint", **common)
    if status == 404:
        return NotFoundError(_not_found_hint(message, model, url, error_type, code), **common)
    if status == 429:
        quota = bool(fields & _QUOTA_CODES) or bool(_QUOTA_TEXT.search(message))
        hint = " — the account is out of quota/credit; retrying will not help" if quota else ""
        return RateLimitError(message + hint, quota_exhausted=quota, **common)
    if fields & _CONTEXT_CODES or (400 <= status < 500 and _CONTEXT_TEXT.search(message)):
        return ContextLengthError(
            message + " — shorten the conversation, lower max_tokens, or configure a model fallback",
            **common,
        )
    if status >= 500 or status in (408, 409, 425):
        return ServerError(message, **common)
    if param:
        message += f" (parameter: {param})"
    return BadRequestError(message, **common)


def _not_found_hint(message: str, model: str | None, url: str, error_type: str | None, code: str | None) -> str:
    mentions_model = (model and model in message) or "model" in f"{message} {error_type} {code}".lower()
    if mentions_model:
        return f"{message} — the model {model!r} does not exist there (`human models` lists them)"
    path = url.split("?", 1)[0]
    if not re.search(r"/v\d+(beta)?(/|$)", path):
        return f"{message} — nothing at {path}; the base_url probably lacks /v1"
    return f"{message} — nothing at {path}; check base_url"
