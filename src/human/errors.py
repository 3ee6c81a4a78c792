"""Every error `human` raises, in one tree.

    HumanError                          root: `except HumanError` catches every failure
    ├── ConfigError                     bad config file, env value or argument (.path, .pointer)
    │   ├── UnknownProviderError        with "did you mean ..." from the registry
    │   ├── MissingCredentialError      names the env var and the config key to set
    │   └── BatchInputError             a batch file's bad lines, with line numbers (.problems)
    ├── APIError                        .provider .model .status .request_id .partial
    │   ├── APIConnectionError          refused, reset, DNS, a proxy that refused (.reason)
    │   │   ├── APITimeoutError         .kind: connect | first_byte | idle | total | call
    │   │   └── TLSError                certificate not trusted, not TLS on that port (not retried)
    │   ├── APIStatusError              .status .body .error_type .code .param
    │   │   ├── BadRequestError         400 / 422
    │   │   │   └── ContextLengthError  the prompt does not fit the model's window
    │   │   ├── AuthenticationError     401
    │   │   ├── PermissionDeniedError   403
    │   │   ├── NotFoundError           404 (says whether the model or the URL looks wrong)
    │   │   ├── RateLimitError          429 (.retry_after; .quota_exhausted)
    │   │   ├── ServerError             5xx, 408, 409, 425
    │   │   └── RedirectError           a redirect not followed (.location): POST 301/302/303,
    │   │                               https -> http, too many hops
    │   ├── CircuitOpenError            the provider failed repeatedly; skipped until recovery
    │   └── BadResponseError            HTML, truncated or invalid JSON, {"error"} in a 200,
    │       │                           an error event inside a stream
    │       └── ResponseTooLargeError   body or stream over the configured cap
    ├── ToolError                       a tool could not be described, called or run
    │   ├── ToolArgumentsError          a tool call's arguments are not a JSON object
    │   ├── ToolRunError                a tool raised and the run was told to stop (.call .result)
    │   └── MCPServerError              an MCP server did not start, list its tools or answer
    ├── MaxTurnsError                   a run reached max_turns (.result: the conversation to resume)
    ├── StructuredOutputError           no answer fitted the type, re-asks included (.attempts .usage)
    │   └── TruncatedOutputError        finish_reason "length" cut the JSON short; never re-asked
    ├── AllAttemptsFailedError          retries and fallbacks exhausted (.attempts)
    └── BatchStoppedError               a batch run ended early, resumable (.summary .cause)

Programmer mistakes (using a closed client) raise `ClientClosedError`, a `RuntimeError`,
so `except HumanError` never hides a bug.

Each class says whether it is worth retrying (`retryable`); the retry policy asks the
exception, so classification and policy cannot disagree. Every message is scrubbed of
the key that was in play before it is stored (see `_secret.scrub`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AllAttemptsFailedError",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "BatchInputError",
    "BatchStoppedError",
    "BadResponseError",
    "CircuitOpenError",
    "ClientClosedError",
    "ConfigError",
    "ContextLengthError",
    "HumanError",
    "MCPServerError",
    "MaxTurnsError",
    "MissingCredentialError",
    "NotFoundError",
    "OutputAttempt",
    "PermissionDeniedError",
    "RateLimitError",
    "RedirectError",
    "ResponseTooLargeError",
    "ServerError",
    "StructuredOutputError",
    "TLSError",
    "ToolArgumentsError",
    "ToolError",
    "ToolRunError",
    "TruncatedOutputError",
    "UnknownProviderError",
]


class HumanError(Exception):
    """Root of every error `human` raises on purpose."""

    #: The class's answer to "may the same request succeed if sent again?"
    retry_by_default: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        # From .message, not .args: the message may have been scrubbed after construction.
        return f"{type(self).__name__}({self.message!r})"

    @property
    def retryable(self) -> bool:
        """Whether sending the same request again may succeed (the retry plan asks this)."""
        return self.retry_by_default


# ---- configuration ----------------------------------------------------------------


class ConfigError(HumanError):
    """The config file, an environment variable or an argument is wrong.

    `path` is the file (when one is involved), `pointer` the JSON path to the bad field.
    """

    def __init__(self, message: str, *, path: str | None = None, pointer: str | None = None):
        super().__init__(message)
        self.path = path
        self.pointer = pointer


class UnknownProviderError(ConfigError):
    def __init__(self, message: str, *, name: str, suggestions: tuple[str, ...] = (), **kw: Any):
        super().__init__(message, **kw)
        self.name = name
        self.suggestions = suggestions


class MissingCredentialError(ConfigError):
    """A provider that needs a key has none (never raised for key-less local servers)."""


class BatchInputError(ConfigError):
    """A batch's input or output file cannot be used as it is: malformed lines, duplicate
    `custom_id`s, results in the output that belong to other requests. Raised before any
    request is sent. `problems` lists `(line number, what is wrong)`; `path` is the file."""

    def __init__(self, message: str, *, problems: tuple[tuple[int, str], ...] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.problems = problems


# ---- talking to a server ----------------------------------------------------------


class APIError(HumanError):
    """A request to a provider failed. Carries who, what and (when known) the server's id.

    `partial` is what had been received before a stream failed (a `ChatResponse` with the
    content so far), else None. (Typed loosely so this module, the bottom of the package,
    imports nothing of `human`.)
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        partial: Any = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status = status
        self.request_id = request_id
        self.partial = partial

    def __str__(self) -> str:
        where = self.provider or "?"
        if self.model:
            where += f"/{self.model}"
        parts = [f"[{where}]"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}:")
        parts.append(self.message)
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke.

    `reason` says how, when the transport knows: "dns" (the host name does not resolve),
    "tls" (the handshake or the certificate failed), "refused", "reset", "closed",
    "proxy", or "". A name that does not resolve and a certificate that does not verify
    will not fix themselves within the seconds a retry waits, so those two are not
    retried (another provider may still be tried); a refused, reset or closed connection
    often is a restart or a load balancer's hiccup, so those are. An instance may also
    say so itself (`retryable=`: a proxy that wants credentials will not change its mind).
    """

    retry_by_default = True
    _PERMANENT: ClassVar[frozenset[str]] = frozenset({"dns", "tls"})

    def __init__(self, message: str, *, reason: str = "", retryable: bool | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reason = reason
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        if self._retryable is not None:
            return self._retryable
        return self.retry_by_default and self.reason not in self._PERMANENT


class APITimeoutError(APIConnectionError):
    """A deadline passed. `kind` is connect, first_byte, idle, total (one exchange), or
    call (the whole call's `timeout=`, every attempt and wait included: not retried);
    `seconds` is the configured limit that passed (not the time that was left)."""

    def __init__(self, message: str, *, kind: str, seconds: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.kind = kind
        self.seconds = seconds

    @property
    def retryable(self) -> bool:
        return self.kind != "call"


class TLSError(APIConnectionError):
    """TLS failed: an untrusted certificate (set "ca_bundle" or SSL_CERT_FILE), a name
    mismatch, or a port that does not speak TLS. Sending again will not help."""

    retry_by_default = False

    def __init__(self, message: str, *, reason: str = "tls", **kw: Any) -> None:
        super().__init__(message, reason=reason, **kw)


class APIStatusError(APIError):
    """The server answered with an error status. `body` is the parsed body, if JSON."""

    def __init__(
        self,
        message: str,
        *,
        body: Any = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.body = body
        self.error_type = error_type
        self.code = code
        self.param = param
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400 / 422: the request itself is wrong; sending it again will not help."""


class ContextLengthError(BadRequestError):
    """The prompt (plus max_tokens) does not fit the model's context window."""


class AuthenticationError(APIStatusError):
    """401: the key is missing, wrong or expired."""


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but may not use this model or endpoint."""


class NotFoundError(APIStatusError):
    """404: the model or the URL does not exist."""


class RateLimitError(APIStatusError):
    """429. `retry_after` is the server's requested wait in seconds (if it gave one).

    `quota_exhausted` is true when the body says the account is out of credit rather
    than momentarily over a limit; such an error is not retried.
    """

    def __init__(self, message: str, *, quota_exhausted: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.quota_exhausted = quota_exhausted

    @property
    def retryable(self) -> bool:
        return not self.quota_exhausted


class ServerError(APIStatusError):
    """5xx: the server failed; often worth another try."""

    retry_by_default = True


class RedirectError(APIStatusError):
    """A redirect that was not followed; `location` is where it pointed (None if absent)."""

    def __init__(self, message: str, *, location: str | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.location = location


class CircuitOpenError(APIError):
    """The circuit breaker for this provider is open: it failed `threshold` times in a
    row, so it is skipped until `recovery_s` have passed (then tried again once)."""


class BadResponseError(APIError):
    """The server answered, but not with something usable (HTML, truncated JSON, an
    error object inside a 200, an error event in a stream). `retryable` is decided per
    instance: a truncated body is worth retrying, an HTML page is not."""

    def __init__(self, message: str, *, retryable: bool = False, body_preview: str = "", **kw: Any):
        super().__init__(message, **kw)
        self._retryable = retryable
        self.body_preview = body_preview

    @property
    def retryable(self) -> bool:
        return self._retryable


class ResponseTooLargeError(BadResponseError):
    """The body or the stream passed the configured size cap."""


# ---- tools ------------------------------------------------------------------------


class ToolError(HumanError):
    """A problem with a tool call."""


class ToolArgumentsError(ToolError):
    def __init__(self, message: str, *, tool_call: Any) -> None:
        """`tool_call` is the `human.ToolCall` whose arguments are at fault."""
        super().__init__(message)
        self.tool_call = tool_call


class ToolRunError(ToolError):
    """A tool raised during `run(..., on_tool_error="raise")`. The tool's own exception is
    the `__cause__`; `result` is the run so far (`result.messages` answers every call, the
    failed one with its error text, so the conversation can be resumed as it is)."""

    def __init__(self, message: str, *, call: Any, result: Any) -> None:
        super().__init__(message)
        self.call = call
        self.result = result

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.result.messages
        return messages


class MCPServerError(ToolError):
    """An MCP server could not be started, listed or called (`.server` names it)."""

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.server = server


# ---- the agent loop -------------------------------------------------------------------


class MaxTurnsError(HumanError):
    """A run asked the model `max_turns` times and it still wanted tools. `result` is the
    run so far: its `messages` end with that last request answered by "not run" results,
    so `client.run(error.messages, ...)` continues where it stopped."""

    def __init__(self, message: str, *, result: Any) -> None:
        super().__init__(message)
        self.result = result

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.result.messages
        return messages


# ---- structured output ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputAttempt:
    """One answer asked for as structured output: what came back and what was wrong.

    `raw` is the answer's text (for the tool-call mode: the call's arguments), `errors`
    every problem found, each as "path: message" (`$.age: expected an integer`), `usage`
    the attempt's `human.Usage` (None when the server sent none), `mode` how it was asked
    for ("json_schema", "json_object", "prompt", "tools").
    """

    raw: str | None
    errors: tuple[str, ...]
    usage: Any
    mode: str
    finish_reason: str | None = None


class StructuredOutputError(HumanError):
    """No answer parsed and validated against the requested type, after every re-ask
    (`max_retries`) or once the token budget was spent.

    `attempts` lists every `OutputAttempt` in order (raw answer, errors, usage); `usage`
    is the total of all attempts, so the cost of failing is never hidden
    (567-labs/instructor#341). `response` is the last `ChatResponse`.
    """

    def __init__(self, message: str, *, attempts: list[OutputAttempt], usage: Any = None,
                 response: Any = None, advice: str = "") -> None:
        super().__init__(f"{message}; {advice}" if advice else message)
        self.attempts = attempts
        self.usage = usage
        self.response = response
        #: What a library caller can change (the CLI words its own); also in the message.
        self.advice = advice


class TruncatedOutputError(StructuredOutputError):
    """The answer stopped at the token limit (`finish_reason: "length"`) before its JSON
    was complete. Not re-asked: the same limit would cut the next answer too (openai-python
    raises `LengthFinishReasonError` for the same reason); raise `max_tokens`."""


# ---- retries and fallbacks ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try in a chain of retries and fallbacks."""

    provider: str
    model: str
    error: HumanError


class AllAttemptsFailedError(HumanError):
    """Every retry and every fallback failed. `attempts` lists them in order."""

    def __init__(self, attempts: list[Attempt]) -> None:
        lines = [f"all {len(attempts)} attempts failed:"]
        for number, attempt in enumerate(attempts, 1):
            lines.append(f"  {number}. {attempt.provider}/{attempt.model}: {attempt.error}")
        super().__init__("\n".join(lines))
        self.attempts = attempts

    @property
    def last(self) -> HumanError:
        return self.attempts[-1].error


class BatchStoppedError(HumanError):
    """A batch run stopped before every line was done: the account is out of quota, the
    key was refused, the provider kept refusing, or the run was interrupted. Every
    result already written stays; rerunning the same command resumes. `summary` is the
    run's `human.BatchSummary`, `cause` the error that stopped it (None if interrupted)."""

    def __init__(self, message: str, *, summary: Any, cause: HumanError | None = None) -> None:
        super().__init__(message)
        self.summary = summary
        self.cause = cause


# ---- programmer errors ----------------------------------------------------------------


class ClientClosedError(RuntimeError):
    """The client was used after `close()`."""
