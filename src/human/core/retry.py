"""Decides when and where to retry a chat request. Performs no I/O: the clients drive it
with the generator protocol below, so the policy is written once for sync and async.

    plan = Plan(...).run()
    action = next(plan)                     # Send(target, attempt) or Sleep(seconds)
    while True:
        outcome = perform(action)           # a response, or the HumanError it raised
        action = plan.send(outcome)         # StopIteration(value=(response, send)) on success

The chain is every model (the requested one, then its `model_fallbacks`) crossed with
every provider (the primary, then `fallback_providers`), in that order. Per target:
up to `retries + 1` tries, waiting between them for the server's Retry-After (seconds,
HTTP date or retry-after-ms) when it gave one, else exponential backoff with jitter.
With a `deadline` (the call's `timeout=`), no try starts after it and no wait is begun
that would end after it.

    error                               same target     next provider     next model
    retryable (429, 5xx, timeouts,      yes             after its tries   after all providers
      connection, truncated body)
    429 asking to wait > the cap        no              yes               -
    429 with quota exhausted            no              yes               -
    context length                      no              no                yes
    anything else (400/401/403/404...)  no              no                no: raised at once

A circuit breaker per provider skips one that failed `threshold` call sequences in a
row until `recovery_s` have passed; then one call is let through (half-open). Rate
limits (429) neither open nor close it: the provider is up, and says when to return.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    AllAttemptsFailedError,
    Attempt,
    CircuitOpenError,
    ContextLengthError,
    HumanError,
    RateLimitError,
)

__all__ = ["CircuitBreaker", "Plan", "RetryPolicy", "Send", "Sleep"]


@dataclass(frozen=True, slots=True)
class Send:
    target: Any  # resolve.Target (kept untyped so this module imports nothing heavy)
    attempt: int


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait before the next try of the same target. `error` is what the last try raised,
    `attempt` the number of the try that follows and `tries` how many the target gets
    (so a caller can say "retrying in 2.0 s (attempt 2/3)")."""

    seconds: float
    reason: str
    error: HumanError | None = None
    attempt: int = 0
    tries: int = 0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 2
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 60.0
    budget_s: float | None = None


@dataclass
class CircuitBreaker:
    threshold: int = 5
    recovery_s: float = 60.0
    _failures: dict[str, int] = field(default_factory=dict)
    _open_until: dict[str, float] = field(default_factory=dict)

    def allow(self, provider: str, now: float) -> bool:
        until = self._open_until.get(provider)
        return until is None or now >= until

    def record(self, provider: str, ok: bool, now: float) -> None:
        if ok:
            self._failures.pop(provider, None)
            self._open_until.pop(provider, None)
            return
        count = self._failures.get(provider, 0) + 1
        self._failures[provider] = count
        if count >= self.threshold:
            self._open_until[provider] = now + self.recovery_s


@dataclass
class Plan:
    providers: Sequence[str]
    models: Sequence[str]
    resolve: Callable[[str, str], Any]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    now: Callable[[], float] = lambda: 0.0
    random: Callable[[], float] = lambda: 0.5
    first_target: Any = None  # already resolved by the caller (its errors raise directly)
    # When the whole call must end (on the `now` clock), or None. Past it no try starts
    # and no wait begins that would end after it: the call's timeout covers retries too.
    deadline: float | None = None

    def run(self) -> Generator[Send | Sleep, Any, tuple[Any, Send]]:
        attempts: list[Attempt] = []
        slept = 0.0
        for model in self.models:
            for provider in self.providers:
                target = self._target(provider, model, attempts)
                if target is None:
                    continue
                if not self.breaker.allow(provider, self.now()):
                    attempts.append(Attempt(provider, model, CircuitOpenError(
                        f"skipped: {provider} failed {self.breaker.threshold} times in a row; "
                        f"retried after {self.breaker.recovery_s:g}s", provider=provider, model=model)))
                    continue
                error: HumanError | None = None
                for try_number in range(self.policy.retries + 1):
                    if attempts and self.deadline is not None and self.now() >= self.deadline:
                        raise _final(attempts)
                    send = Send(target, len(attempts) + 1)
                    outcome = yield send
                    if not isinstance(outcome, BaseException):
                        self.breaker.record(provider, True, self.now())
                        return outcome, send
                    error = outcome if isinstance(outcome, HumanError) else _unexpected(outcome)
                    attempts.append(Attempt(provider, model, error))
                    if isinstance(error, ContextLengthError) or not _worth_another(error):
                        break
                    if try_number == self.policy.retries:
                        break
                    wait = self._wait(error, try_number)
                    if wait is None:
                        break
                    if self.policy.budget_s is not None and slept + wait > self.policy.budget_s:
                        raise _final(attempts)
                    if self.deadline is not None and self.now() + wait >= self.deadline:
                        raise _final(attempts)  # the wait alone would outlast the call's timeout
                    yield Sleep(wait, f"{type(error).__name__} from {provider}", error, try_number + 2,
                                self.policy.retries + 1)
                    slept += wait
                # Only failures of the provider count against it; a 400 or a 401 shows
                # that it is up and answering. A 429 counts neither way: the server answered
                # and said when to come back, and requests in flight together (a batch) get
                # their 429s together, which must not shut the provider out for recovery_s.
                if not isinstance(error, RateLimitError):
                    down = error is not None and error.retryable
                    self.breaker.record(provider, not down, self.now())
                if isinstance(error, ContextLengthError):
                    break  # the next model may have a larger window; other providers won't help
                if error is not None and not _worth_another(error) and not _other_provider_may_help(error):
                    raise _final(attempts)
        raise _final(attempts)

    def _target(self, provider: str, model: str, attempts: list[Attempt]) -> Any:
        if self.first_target is not None and (provider, model) == (self.providers[0], self.models[0]):
            return self.first_target
        try:
            return self.resolve(provider, model)
        except HumanError as exc:  # a fallback that cannot be used: say so, go on
            attempts.append(Attempt(provider, model, exc))
            return None

    def _wait(self, error: HumanError, try_number: int) -> float | None:
        retry_after: float | None = getattr(error, "retry_after", None)
        if retry_after is not None:
            if retry_after > self.policy.max_retry_after_s:
                return None  # the server wants longer than we may wait: move on
            return retry_after
        backoff: float = min(self.policy.max_backoff_s, self.policy.backoff_s * (2**try_number))
        jitter: float = self.random()
        return backoff / 2 + jitter * backoff / 2  # "equal jitter"


def _unexpected(outcome: BaseException) -> HumanError:
    """Drivers send HumanErrors only; anything else is a bug in a driver: raise it."""
    raise outcome


def _worth_another(error: HumanError) -> bool:
    return bool(error.retryable)


def _other_provider_may_help(error: HumanError) -> bool:
    return isinstance(error, RateLimitError)


def _final(attempts: list[Attempt]) -> HumanError:
    if len(attempts) == 1:
        return attempts[0].error
    return AllAttemptsFailedError(attempts)
