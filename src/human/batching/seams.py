"""Where the batch runner meets prices (issue 12): the one place that prices an answer
or an estimate. The log store needs no seam here: every request goes through
`AsyncClient.chat`, which logs it when the client was made with `log=` on (the CLI does
that unless `--no-log` or `human logs off`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config, Target

__all__ = ["estimate_cost", "response_cost"]


def response_cost(response: Any) -> float | None:
    """The answer's cost in USD (`ChatResponse.cost`), or None when its price is not known."""
    cost = getattr(response, "cost", None)
    if cost is None:
        return None
    amount = getattr(cost, "amount", cost)  # a Cost (an exact Decimal amount) or a plain number
    if isinstance(amount, bool):
        return None
    try:
        return float(amount)
    except (TypeError, ValueError):
        return None


def estimate_cost(config: Config, target: Target, prompt_tokens: int, completion_tokens: int) -> float | None:
    """What this many tokens would cost at `target` in USD, priced as an answer is (the
    config's "prices", then the shipped data; 0 for a local server); None when unknown."""
    from ..pricing import Pricer
    from ..types import Usage

    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                  total_tokens=prompt_tokens + completion_tokens)
    cost, _ = Pricer(config.prices).price(usage, provider=target.provider, model=target.model,
                                          base_url=target.base_url, local=target.local,
                                          registry=target.row is not None)
    return None if cost is None else float(cost.amount)
