"""Per-key limits and budgets, held in this process (the default; `redis.py` shares them
between processes). The rules are `core/limiter.py`'s: requests per minute and tokens per
minute as two buckets taken together, a token reservation (prompt estimate + max_tokens)
refunded by the difference once the real usage is known, 429 with Retry-After.

In-process limits are per process: with N gateway processes and no `redis_url`, a key
allows N times its limits (docs.litellm.ai "What Needs Redis" describes the same for
LiteLLM). The gateway says so in its start-up line; the README says it too.

Budgets are in USD per period ("total", "day" or "month", UTC). A request is refused when
the key's spend in the current period has reached its budget; spend is added after each
answer, so one request may overshoot by its own cost (the price is known only after).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..core.limiter import Limiter
from .keys import GatewayKey

__all__ = ["Limits", "LocalLimits", "Refusal", "period"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request may not go now: "rate" (wait `retry_after`), "budget" (spent for the
    period; `retry_after` is when it renews, None for a total budget), "unavailable"
    (the shared store is down and the gateway fails closed)."""

    reason: str
    message: str
    retry_after: float | None = None


class Limits(Protocol):
    shared: bool

    async def acquire(self, key: GatewayKey, tokens: int) -> Refusal | None:
        """Take one request and `tokens` for `key`, or say why not (nothing taken)."""

    def settle(self, key: GatewayKey, reserved: int, used: int | None, cost: float | None) -> None:
        """After the answer: refund the unused part of the reservation (`used` None: unknown,
        keep it) and add `cost` to the budget's spend. Never blocks, never raises."""

    async def close(self) -> None: ...


def period(kind: str, now: float) -> tuple[str, float | None]:
    """(label of the budget period containing `now`, seconds until it ends or None)."""
    if kind == "total":
        return "total", None
    moment = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    if kind == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + dt.timedelta(days=1)
        return start.strftime("%Y-%m-%d"), (end - moment).total_seconds()
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start.strftime("%Y-%m"), (end - moment).total_seconds()


def budget_refusal(key: GatewayKey, spent: float, now: float) -> Refusal | None:
    if key.budget is None or spent < key.budget:
        return None
    label, left = period(key.budget_period, now)
    within = "" if key.budget_period == "total" else f" for {label}"
    return Refusal("budget", f"the budget of key {key.name!r} (${key.budget:g}{within}) is spent "
                             f"(${spent:.6g})", left)


def rate_refusal(key: GatewayKey, wait: float) -> Refusal:
    limits = ", ".join(f"{value} {unit}" for value, unit in ((key.rpm, "requests"), (key.tpm, "tokens"))
                       if value is not None)
    return Refusal("rate", f"key {key.name!r} is over its limit ({limits} per minute); retry in {wait:.3g} s", wait)


class LocalLimits:
    """Limits and budgets in this process's memory (see the module docstring)."""

    shared = False

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._clock, self._wall = clock, wall
        self._limiters: dict[str, tuple[int | None, int | None, Limiter]] = {}
        self.spent: dict[tuple[str, str], float] = {}

    async def acquire(self, key: GatewayKey, tokens: int) -> Refusal | None:
        return self.take(key, tokens)

    def take(self, key: GatewayKey, tokens: int) -> Refusal | None:
        if key.budget is not None:
            refused = budget_refusal(key, self.spent.get((key.id, period(key.budget_period, self._wall())[0]), 0.0),
                                     self._wall())
            if refused is not None:
                return refused
        limiter = self._limiter(key)
        if limiter is None:
            return None
        wait = limiter.acquire(tokens, self._clock())
        return None if wait <= 0 else rate_refusal(key, wait)

    def settle(self, key: GatewayKey, reserved: int, used: int | None, cost: float | None) -> None:
        limiter = self._limiter(key)
        if limiter is not None:
            limiter.refund(reserved, used, self._clock())
        if cost and key.budget is not None:
            label = period(key.budget_period, self._wall())[0]
            self.spent[(key.id, label)] = self.spent.get((key.id, label), 0.0) + cost

    def _limiter(self, key: GatewayKey) -> Limiter | None:
        if key.rpm is None and key.tpm is None:
            return None
        found = self._limiters.get(key.id)
        if found is None or found[0] != key.rpm or found[1] != key.tpm:  # new, or its limits were changed
            found = self._limiters[key.id] = (key.rpm, key.tpm, Limiter(rpm=key.rpm, tpm=key.tpm))
        return found[2]

    async def close(self) -> None:
        return None
