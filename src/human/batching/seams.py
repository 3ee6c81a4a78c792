"""Where the batch runner meets prices and the log store (issue 12): the one place that
prices an answer or an estimate, and the one place that records a request. Everything
else in the runner goes through these functions and knows nothing of either.
"""

from __future__ import annotations

from typing import Any

__all__ = ["estimate_cost", "response_cost"]


def response_cost(response: Any) -> float | None:
    """The answer's cost in USD, or None when its price is not known."""
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


def estimate_cost(provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """The price of this many tokens for this provider and model in USD, or None when not
    known. TODO(#12): the price data."""
    return None
