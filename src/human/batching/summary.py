"""The numbers of a batch run: the live snapshot handed to a progress callback, and the
summary returned at the end. Pure values and arithmetic; the CLI draws them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["BatchProgress", "BatchSummary", "Meter"]

RATE_WINDOW_S = 5.0  # the request rate (and so the ETA) follows roughly the last 5 seconds


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Where the run is. Counts are of this run; `total` is what it set out to send."""

    total: int
    done: int
    succeeded: int
    failed: int
    in_flight: int
    waiting: int  # rate-limited requests queued to go again
    prompt_tokens: int
    completion_tokens: int
    cost: float
    unpriced: int  # answers whose price is not known (their cost is not in `cost`)
    elapsed: float
    rate: float  # requests finished per second, recently
    eta: float | None  # seconds to go at that rate; None until there is a rate
    paused: float  # seconds until sends resume after a 429 (0.0 when not paused)


@dataclass(frozen=True)
class BatchSummary:
    """What a run did (`sent`, `succeeded`, … are this run's) and what the output file
    holds now (`output_*`, over every run that wrote to it)."""

    input: str
    output: str
    lines: int  # non-blank input lines
    invalid: int  # lines skipped as invalid (--skip-invalid)
    already_done: int  # lines with a result in the output before this run
    sent: int
    succeeded: int
    failed: int
    pending: int  # valid lines still without a result (a stopped run; 0 when complete)
    prompt_tokens: int
    completion_tokens: int
    cost: float
    unpriced: int
    rate_limited: int  # 429 answers (and circuit-open refusals) seen: each paused every send
    elapsed: float
    output_succeeded: int
    output_failed: int
    output_prompt_tokens: int
    output_completion_tokens: int
    output_cost: float
    output_unpriced: int
    repaired_bytes: int = 0  # a torn last line cut from the output before the run
    retried_failures: int = 0  # failure lines dropped for --retry-failed
    stopped: str | None = None  # why the run ended early, if it did
    dry_run: bool = False
    estimate: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every valid line has a result line (success or failure)."""
        return self.pending == 0 and self.stopped is None

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (what `human batch --json` prints)."""
        data = asdict(self)
        data["complete"] = self.complete
        data["cost"] = round(self.cost, 10)
        data["output_cost"] = round(self.output_cost, 10)
        data["elapsed"] = round(self.elapsed, 3)
        return data


class Meter:
    """The recent rate of finished requests, smoothed over about `RATE_WINDOW_S`."""

    __slots__ = ("rate", "_count", "_at")

    def __init__(self, now: float) -> None:
        self.rate = 0.0
        self._count = 0
        self._at = now

    def update(self, count: int, now: float) -> float:
        elapsed = now - self._at
        if elapsed <= 0:
            return self.rate
        instant = (count - self._count) / elapsed
        weight = 1.0 - math.exp(-elapsed / RATE_WINDOW_S)
        self.rate = instant if self.rate == 0.0 else self.rate + weight * (instant - self.rate)
        self._count, self._at = count, now
        return self.rate

    def eta(self, remaining: int) -> float | None:
        if remaining <= 0:
            return 0.0
        return remaining / self.rate if self.rate > 0 else None
