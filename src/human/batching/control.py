"""What a batch run does when a request fails, and how hard it pushes. Pure: no I/O, no
clock of its own (callers pass `now`).

A request has already had the client's own retries, fallbacks and circuit breaker when
its error reaches `decide`. What is left is a question about the *line*:

    error                                           verdict    why
    quota or credit exhausted, a daily limit,       stop       every other line would fail the
      a 429 asking to wait longer than `max_pause`             same way; nothing is written, so
      the key refused (401), a config problem                  a rerun resumes (wave2.md E.2.4)
    429 (other), circuit open, every fallback       requeue    not the line's fault: all sends
      rate-limited                                             pause, the line goes again later
    anything else (400, context length, 404,        write      the line's own failure, written
      5xx or timeouts after the client's retries)              with its typed error (--retry-failed)

`Throttle` is the run's adaptive slow-down (additive increase, multiplicative decrease,
as TCP does it): each rate-limited round halves the number of requests in flight and
pauses every send for the server's `Retry-After` (else 1, 2, 4, … 60 s); each success
adds back one request per window's worth of successes, up to `--concurrency`. A round
is counted once however many in-flight requests come back 429 together (see `Throttle`),
so a storm of 256 answers is one halving, not 256. After `max_strikes` rounds without a single success
the run stops (resumable) rather than knocking forever at a door that stays shut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..errors import (
    AllAttemptsFailedError,
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    HumanError,
    RateLimitError,
)

__all__ = ["Decision", "Throttle", "decide"]

Verdict = Literal["write", "requeue", "stop"]

# Providers name daily limits in the message only: "... on requests per day (RPD)" (Groq),
# "tokens per day" (OpenAI), "daily limit" (several); they reset hours later.
_DAILY = re.compile(r"per[ -]day|\bdaily\b|\bRPD\b|\bTPD\b", re.IGNORECASE)
MAX_PAUSE_S = 600.0
MAX_BACKOFF_S = 60.0


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    retry_after: float | None = None  # the server's wait, when it gave one (requeue)
    reason: str = ""


def decide(error: HumanError, *, max_pause: float = MAX_PAUSE_S) -> Decision:
    """The verdict for a request that failed after the client's retries and fallbacks."""
    errors = [attempt.error for attempt in error.attempts] if isinstance(error, AllAttemptsFailedError) else [error]
    for each in errors:
        stop = _stops_the_run(each, max_pause)
        if stop:
            return Decision("stop", reason=stop)
    if all(isinstance(each, (RateLimitError, CircuitOpenError)) for each in errors):
        waits = [each.retry_after for each in errors if isinstance(each, RateLimitError)
                 and each.retry_after is not None]
        kind = "rate limited" if any(isinstance(each, RateLimitError) for each in errors) else "circuit open"
        return Decision("requeue", max(waits) if waits else None, kind)
    return Decision("write")


def _stops_the_run(error: HumanError, max_pause: float) -> str:
    if isinstance(error, RateLimitError):
        if error.quota_exhausted:
            return "the account is out of quota or credit"
        if _DAILY.search(error.message):
            return "a daily limit was reached"
        if error.retry_after is not None and error.retry_after > max_pause:
            return f"the server asks to wait {error.retry_after:.0f} s"
    if isinstance(error, AuthenticationError):
        return "the API key was refused"
    if isinstance(error, ConfigError):
        return "the configuration cannot serve this request"
    return ""


class Throttle:
    """How many requests may be in flight, and how long every send pauses after a 429.

    Rounds are told apart the way TCP tells congestion events apart: by when the refused
    request was *sent*. Each slow-down starts a new `epoch`; a 429 for a request sent in
    an earlier epoch belongs to the round already counted (it only extends the pause to
    its own Retry-After), one for a request sent since is a new round."""

    __slots__ = ("limit", "window", "strikes", "max_strikes", "epoch")

    def __init__(self, limit: int, *, max_strikes: int = 10) -> None:
        if limit < 1:
            raise ValueError(f"concurrency must be at least 1, not {limit}")
        self.limit = limit
        self.window = float(limit)
        self.strikes = 0  # rate-limited rounds since the last success
        self.max_strikes = max_strikes
        self.epoch = 0

    @property
    def allowed(self) -> int:
        return int(self.window)

    def success(self) -> None:
        self.strikes = 0
        if self.window < self.limit:
            self.window = min(float(self.limit), self.window + 1.0 / self.window)

    def refused(self, retry_after: float | None, sent_in: int) -> float:
        """A request sent in epoch `sent_in` came back rate-limited (or its circuit open).
        Returns how long every send should pause from now: the server's Retry-After, else
        1, 2, 4, … 60 s by the number of rounds in a row."""
        if sent_in >= self.epoch:  # sent after the last slow-down: a new round
            self.epoch += 1
            self.strikes += 1
            self.window = max(1.0, self.window / 2)
        if retry_after is not None:
            return retry_after
        return min(MAX_BACKOFF_S, 2.0 ** (max(self.strikes, 1) - 1))

    @property
    def exhausted(self) -> bool:
        """Refused `max_strikes` rounds in a row with no success between: time to stop."""
        return self.strikes >= self.max_strikes
