"""A usage row for every request the gateway sent upstream, attributed to its key, in the
log store of issue 12 (`human.store`): SQLite by default, PostgreSQL with `database_url`.

The request path pays for one small object and a deque append (`Logbook.add`); the row
(prices, ids) is made on the log's writer thread (`Usage.row`), and rows are written in
batches, append-only: totals are sums at read time, never per-request counter UPDATEs
(LiteLLM's deadlocks under spend writes: litellm#6895, #27989, PR #9608).

A row holds no prompt and no answer: these are usage rows (LiteLLM's spend rows average
6.3 KB, 65 % of it a copy of static data: litellm#41499). A stream without usage from
upstream, or cut off before its usage chunk, is metered from estimates (the prompt
estimate the limits reserved, the text that reached the caller) and the row says so:
never a silent $0 (litellm#37923, #40100).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.shapes import usage_from
from ..store import Exchange
from ..store.record import new_id
from ..types import Usage

if TYPE_CHECKING:
    from ..config import Target
    from ..pricing import Pricer
    from ..types import Cost

__all__ = ["UsageRecord", "price"]


def price(pricer: Pricer, target: Target, served: str | None, usage: Usage | None,
          when: float) -> tuple[Cost | None, str | None]:
    """What an answer of `target` cost (the model that served it first, else the one asked
    for: an alias is priced as the model behind it, litellm#42161)."""
    return pricer.price(usage, provider=target.provider, model=served or target.model, requested=target.model,
                        base_url=target.base_url, local=target.local, registry=target.row is not None, when=when)


class UsageRecord:
    """One request, as the handler knows it when the answer is over. `row()` runs on the
    log's thread."""

    __slots__ = ("started", "key_id", "route", "target", "served", "stream", "usage", "estimated", "finish",
                 "attempts", "ttft_ms", "total_ms", "error_type", "error", "cost", "pricer")

    def __init__(self, started: float, key_id: str | None, route: str, target: Target, pricer: Pricer,
                 stream: bool) -> None:
        self.started = started
        self.key_id = key_id
        self.route = route
        self.target = target
        self.pricer = pricer
        self.stream = stream
        self.served: str | None = None
        self.usage: dict[str, Any] | Usage | None = None
        self.estimated = False  # usage made from estimates, not reported by upstream
        self.finish: str | None = None
        self.attempts = 1
        self.ttft_ms: float | None = None
        self.total_ms: float | None = None
        self.error_type: str | None = None
        self.error: str | None = None
        self.cost: tuple[Cost | None, str | None] | None = None  # priced already (for a budget)

    def metered(self) -> Usage | None:
        usage = self.usage
        return usage_from(usage) if usage.__class__ is dict else usage  # type: ignore[return-value]

    def row(self) -> Exchange | None:
        usage = self.metered()
        cost, note = self.cost if self.cost is not None else price(self.pricer, self.target, self.served, usage,
                                                                    self.started)
        if cost is not None:
            note = cost.source
        if self.estimated:
            note = "estimated (the upstream reported no usage)" + (f"; {note}" if note else "")
        started_ms = int(self.started * 1000)
        row_id = new_id(started_ms)
        tokens = (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.cache_write_tokens,
                  usage.reasoning_tokens, usage.total_tokens) if usage is not None else (None,) * 6
        return Exchange(row_id, row_id, None, started_ms, self.target.provider, self.route, self.served,
                        self.stream, None, None, None, None, None, None, self.finish, *tokens,
                        None if cost is None else str(cost.amount), note,
                        self.attempts, self.ttft_ms, self.total_ms, self.error_type, self.error, None, self.key_id)
