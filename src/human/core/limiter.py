"""Request and token rate limits, decided in pure code: two token buckets (requests per
minute, tokens per minute) that are reserved together and refunded after the fact.
No clock, no sleeping: callers pass `now` and wait as told. Used by the batch runner
(pacing its own requests) and the gateway (limiting its callers); the gateway's Redis
script implements exactly these rules, so one process and many agree.

    limiter = Limiter(rpm=600, tpm=100_000)
    wait = limiter.acquire(estimate, now)       # 0.0: go (both taken); > 0: retry after `wait`
    ...                                         # send; read the real usage
    limiter.refund(estimate, actual, now)       # give back what was reserved but not used

Why reserve-then-refund: a token limit checked only after the answer lets one large
request overshoot (Envoy's usage-based limits), and one checked against a worst case
alone cuts legitimate traffic early (litellm#24677). Reserving the estimate (prompt
estimate + max_tokens) and refunding the difference is exact on average and never
overshoots by more than one request's misestimate (wave2.md C.4).

Bucket rules (one dimension):
- a bucket holds up to `capacity` units and refills at `rate` units per second;
- taking `cost` needs `level >= min(cost, capacity)`: a request bigger than the whole
  bucket may still go when the bucket is full, and leaves it in debt (level < 0), so
  it is paid for before anyone else goes;
- a refund adds back, never above `capacity`; an under-estimate takes more (debt).

`capacity` decides burstiness. `Limiter.pacing(rpm=600)` starts the bucket at one request,
so 600 requests are spread over the minute (what a batch run wants: a provider counts
its window its own way); `Limiter(rpm=600)` lets 600 through at once and then one every
100 ms (what a gateway key limit means: "600 in any minute").

Pacing keeps a little slack (`PACING_SLACK_S` of refill above one request): a caller that
sleeps as told always wakes a little late (timer granularity, a busy event loop), and a
bucket capped at exactly one request throws that lateness away on every request, so the
rate drifts low (1 ms late per 100 ms interval is 1 % fewer requests). With the slack the
next wait is that much shorter and the long-run rate stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PACING_SLACK_S", "Bucket", "Limiter"]

PACING_SLACK_S = 0.1


@dataclass(slots=True)
class Bucket:
    """One dimension: `capacity` units, refilled at `rate` units per second. A new bucket
    starts full, or at `start` units when given."""

    rate: float
    capacity: float
    start: float | None = None
    level: float = 0.0
    stamp: float | None = None  # None: never used

    def __post_init__(self) -> None:
        self.level = self.capacity if self.start is None else min(self.start, self.capacity)

    def refill(self, now: float) -> None:
        if self.stamp is None:
            self.stamp = now
        elif now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds until `cost` can be taken (0.0 if now). Refills first."""
        self.refill(now)
        need = min(cost, self.capacity)
        if self.level >= need - 1e-9:  # refills are sums of float products: forgive the last bit
            return 0.0
        return (need - self.level) / self.rate

    def take(self, cost: float) -> None:
        self.level -= cost

    def give(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


class Limiter:
    """Requests-per-minute and tokens-per-minute limits, taken together or not at all.
    `None` for a dimension means unlimited. Not thread-safe: one event loop, or a lock."""

    __slots__ = ("requests", "tokens", "_paused_until")

    def __init__(self, *, rpm: float | None = None, tpm: float | None = None,
                 request_burst: float | None = None, token_burst: float | None = None) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm), ("request_burst", request_burst),
                            ("token_burst", token_burst)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        self.requests = None if rpm is None else Bucket(rpm / 60.0, request_burst or rpm)
        self.tokens = None if tpm is None else Bucket(tpm / 60.0, token_burst or tpm)
        self._paused_until = 0.0

    @classmethod
    def pacing(cls, *, rpm: float | None = None, tpm: float | None = None) -> Limiter:
        """Smooth limits: the first request goes at once, then N requests per minute are
        spread evenly over the minute (with `PACING_SLACK_S` to absorb late wake-ups);
        tokens may burst one second's worth."""
        limiter = cls(rpm=rpm, tpm=tpm, token_burst=None if tpm is None else max(tpm / 60.0, 1.0))
        if rpm is not None:
            rate = rpm / 60.0
            limiter.requests = Bucket(rate, 1.0 + rate * PACING_SLACK_S, start=1.0)
        return limiter

    @property
    def paused_until(self) -> float:
        """The moment a `pause` ends (0.0 if there never was one)."""
        return self._paused_until

    @property
    def unlimited(self) -> bool:
        return self.requests is None and self.tokens is None

    def acquire(self, tokens: float, now: float) -> float:
        """Take one request and `tokens` if both are available: returns 0.0. Otherwise
        takes nothing and returns the seconds to wait before asking again."""
        wait = self._paused_until - now
        if wait > 0:
            return wait
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.wait_for(1.0, now)
        if self.tokens is not None:
            wait = max(wait, self.tokens.wait_for(tokens, now))
        if wait > 0:
            return wait
        if self.requests is not None:
            self.requests.take(1.0)
        if self.tokens is not None:
            self.tokens.take(tokens)
        return 0.0

    def refund(self, reserved: float, used: float | None, now: float) -> None:
        """Settle a reservation once the real usage is known (`used` None: unknown, keep
        the reservation). A request that failed before reaching the server may be
        refunded whole with `used=0`."""
        if self.tokens is None or used is None:
            return
        self.tokens.refill(now)
        difference = reserved - used
        if difference >= 0:
            self.tokens.give(difference)
        else:
            self.tokens.take(-difference)

    def pause(self, seconds: float, now: float) -> None:
        """Nothing is granted for `seconds` (a 429's Retry-After: the server's word wins)."""
        self._paused_until = max(self._paused_until, now + seconds)
