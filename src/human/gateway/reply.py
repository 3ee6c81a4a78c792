"""Every error the gateway answers, in OpenAI's error shape, with the status the official
SDKs map to the right exception class. Pure: no server code.

    {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": "model_not_found"}}

An upstream failure is never passed through as it came: its message is the client's
classified, scrubbed one (no upstream key, no upstream URL query), and its status says
what the *caller* should do. An upstream 401/403 means the gateway's own provider key is
wrong, which the caller cannot fix: it becomes 502, not the caller's 401.

`x-should-retry: false` (read by the official SDKs) is sent where retrying the same
request cannot help: a spent budget, a model the key may not use, a bad request.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..errors import (
    AllAttemptsFailedError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    HumanError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

__all__ = ["Failure", "failure_from", "refusal"]


@dataclass(frozen=True, slots=True)
class Failure:
    """One error answer: status, the error object's fields, extra headers."""

    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    retry_after: float | None = None
    retry: bool = True  # False: x-should-retry: false

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return json.dumps({"error": error}, ensure_ascii=False).encode()

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.retry_after is not None:
            seconds = max(self.retry_after, 0.001)
            headers["Retry-After"] = str(math.ceil(seconds))
            headers["retry-after-ms"] = str(math.ceil(seconds * 1000))
        if not self.retry:
            headers["x-should-retry"] = "false"
        return headers


def refusal(status: int, message: str, code: str, *, kind: str = "invalid_request_error",
            param: str | None = None, retry_after: float | None = None, retry: bool = False) -> Failure:
    """An error of the gateway's own (not upstream's)."""
    return Failure(status, message, kind, code, param, retry_after, retry)


def failure_from(exc: HumanError) -> Failure:
    """The answer for what the retry plan finally raised."""
    if isinstance(exc, AllAttemptsFailedError):
        last = failure_from(exc.last)
        return Failure(last.status, str(exc), last.type, last.code, last.param, last.retry_after, last.retry)
    message = str(exc)
    if isinstance(exc, APIStatusError):
        if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
            return Failure(502, f"the gateway's key for the upstream provider was refused: {message}", "api_error",
                           "upstream_auth", retry=False)
        if isinstance(exc, RateLimitError):
            return Failure(429, message, "requests", exc.code or "rate_limit_exceeded", None, exc.retry_after)
        if isinstance(exc, NotFoundError):
            return Failure(404, message, "invalid_request_error", exc.code or "model_not_found", exc.param,
                           retry=False)
        if isinstance(exc, BadRequestError):
            status = exc.status if exc.status in (400, 409, 413, 422) else 400
            return Failure(status, message, exc.error_type or "invalid_request_error", exc.code, exc.param,
                           retry=False)
        return Failure(502, message, "api_error", exc.code or "upstream_error", retry_after=exc.retry_after)
    if isinstance(exc, APITimeoutError):
        return Failure(504, message, "api_error", "upstream_timeout")
    if isinstance(exc, APIConnectionError):
        return Failure(502, message, "api_error", "upstream_unreachable")
    return Failure(502, message, "api_error", "upstream_error")
