"""The price of one exchange: prices in force at a moment, and usage times prices.
Pure: no I/O, no clock (the moment is an argument).

This follows genai-prices' calculation (0.2.3: `ModelInfo.get_prices`,
`ModelPrice.calc_price`, `decompose.compute_leaf_values`), with the same `Decimal`
operations in the same order, so its figures are reproduced exactly, not to a tolerance.
The rules that the peers got wrong (research wave2.md section D.2) all live here:

- **Counts nest; a token is billed once.** Each usage key is a unit with dimensions
  (`input_tokens` = {tokens, input}; `cache_read_tokens` = {tokens, input, cache_read}).
  A more specific unit is part of every less specific one, so among the units a model
  prices, each is billed for its count *minus* the counts of its priced descendants:
  OpenAI's `prompt_tokens` includes the cached tokens, and only the rest is billed at
  the input price (earendil-works/pi#2148, tembo/agent-studio#238 billed them twice);
  cache writes likewise (browser-use#5305); reasoning tokens are inside the output
  tokens and billed apart only where the model prices them apart (codeburn#1075).
  A descendant larger than its ancestor (cached > prompt) is inconsistent usage: an
  error, never a negative price.
- **Long-context tiers are cliffs**: when the prompt's input tokens exceed a tier's start,
  that tier's price applies to *all* tokens of the unit (genai-prices `TieredPrices`).
- **Prices change over time**: a list of conditional prices is tried last to first; the
  last whose start date (UTC) has passed, or whose daily window (DeepSeek's off-peak
  hours) contains the moment, wins; if none does, the first.
- **Request variants** (`service_tier`, batch): a variant whose `when` all match the
  context overrides the price keys it names, first variant first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Union

__all__ = ["PriceError", "Unit", "Units", "calculate", "prices_at", "units_from"]

UTC = dt.timezone.utc


class PriceError(ValueError):
    """The usage cannot be priced with these prices (a count larger than the count it is
    part of, or a price that needs a count the server did not report)."""


class Unit:
    """One countable thing a price is per (genai-prices `UnitDef`)."""

    __slots__ = ("usage_key", "price_key", "per", "dimensions", "direction", "_dims")

    def __init__(self, usage_key: str, price_key: str, per: int, dimensions: Mapping[str, str]) -> None:
        self.usage_key, self.price_key, self.per = usage_key, price_key, per
        self._dims = dict(dimensions)
        self.dimensions = frozenset(dimensions.items())
        self.direction = self._dims.get("direction")

    def is_part_of(self, ancestor: Unit) -> bool:
        """Whether this unit's count is included in `ancestor`'s (or is the same unit)."""
        return ancestor.dimensions <= self.dimensions

    def compatible(self, other: Unit) -> bool:
        theirs = other._dims
        return all(theirs.get(key, value) == value for key, value in self._dims.items())


Price = Union[Decimal, "tuple[Decimal, list[tuple[int, Decimal]]]"]  # flat, or (base, [(start, price)])
Plan = tuple[list[tuple[Unit, Price]], list[tuple[Unit, list[str]]], bool, bool]


class Units:
    """The unit registry: by price key (`input_mtok`) and by usage key (`input_tokens`).
    Remembers the work that depends only on which units are priced or reported, so
    pricing one answer is a few Decimal operations once warm."""

    __slots__ = ("by_price_key", "by_usage_key", "_plans", "_missing")

    def __init__(self, units: list[Unit]) -> None:
        self.by_price_key = {unit.price_key: unit for unit in units}
        self.by_usage_key = {unit.usage_key: unit for unit in units}
        self._plans: dict[int, tuple[Mapping[str, Any], Plan]] = {}
        self._missing: dict[tuple[str, frozenset[str]], str | None] = {}

    def plan(self, prices: Mapping[str, Any]) -> Plan:
        """What pricing with `prices` needs besides the counts, worked out once per price
        dict: [(unit, Decimal price)] in the data's order; the counted units, most
        specific first, each with its priced descendants (genai-prices
        `compute_leaf_values` order); whether a price is tiered; whether one is per request.
        Kept with a reference to the dict, so its id cannot be reused while cached."""
        cached = self._plans.get(id(prices))
        if cached is not None and cached[0] is prices:
            return cached[1]
        by_price_key = self.by_price_key
        resolved = [(by_price_key[key], _price(value)) for key, value in prices.items()
                    if value is not None and key in by_price_key]
        counted = sorted((unit for unit, _ in resolved if unit.usage_key != "requests"),
                         key=lambda unit: (-len(unit.dimensions), unit.usage_key))
        order = [(unit, [other.usage_key for other in counted if other is not unit and other.is_part_of(unit)])
                 for unit in counted]
        plan: Plan = (resolved, order, any(isinstance(price, tuple) for _, price in resolved),
                      any(unit.usage_key == "requests" for unit, _ in resolved))
        if len(self._plans) > 4096:  # dicts made per call (request variants): keep it bounded
            self._plans.clear()
        self._plans[id(prices)] = (prices, plan)
        return plan

    def missing(self, usage_key: str, reported: frozenset[str]) -> str | None:
        """Why an unreported count cannot be taken as 0, or None when it can."""
        key = (usage_key, reported)
        if key not in self._missing:
            self._missing[key] = _why_unknown(self.by_usage_key[usage_key],
                                              [self.by_usage_key[k] for k in reported if k in self.by_usage_key])
        return self._missing[key]


def units_from(raw: Mapping[str, Mapping[str, Any]]) -> Units:
    """The data file's `units`."""
    return Units([Unit(usage_key, spec.get("price_key", usage_key), spec["per"], spec.get("dimensions", {}))
                  for usage_key, spec in raw.items()])


def prices_at(model: Mapping[str, Any], when: dt.datetime, context: Mapping[str, str] | None = None,
              *, variants: bool = True) -> dict[str, Any]:
    """The model's prices in force at `when` (aware, or naive = UTC), with the request
    variants that match `context` applied. `variants=False` when the model was found
    through a fallback provider (genai-prices applies variants only to a provider's own
    models)."""
    prices = model["prices"]
    if isinstance(prices, dict):
        standard = prices
    else:
        standard = prices[0]["prices"]
        for conditional in reversed(prices):
            constraint = conditional.get("constraint")
            if constraint is None or _active(constraint, when):
                standard = conditional["prices"]
                break
    if not context or not variants:
        return standard  # the data's own dict: callers read it, never change it
    overrides: dict[str, Any] = {}
    for variant in model.get("price_variants") or ():
        constraint = variant.get("constraint")
        if constraint is not None and not _active(constraint, when):
            continue
        if all(context.get(key) == value for key, value in variant["when"].items()):
            for key, price in variant["prices"].items():
                overrides.setdefault(key, price)
    return {**standard, **overrides}


def calculate(prices: Mapping[str, Any], usage: Mapping[str, int], units: Units) -> tuple[Decimal, Decimal, Decimal]:
    """(input, output, total) in the prices' currency for one request.

    `usage` maps usage keys (`input_tokens`, `cache_read_tokens`, `output_tokens`, ...)
    to the counts the server reported; a key that was not reported is left out (not 0).
    Price keys unknown to the registry are ignored, as upstream does (with a warning there)."""
    resolved, order, tiered, per_request = units.plan(prices)
    counts: dict[str, int] = {}
    for unit, descendants in order:  # each count less its priced parts, most specific first
        leaf = _count(usage, unit.usage_key, units) - sum(counts[key] for key in descendants)
        if leaf < 0:
            raise PriceError(_negative(unit, [units.by_usage_key[k] for k in descendants], usage, units))
        counts[unit.usage_key] = leaf
    if per_request:
        counts["requests"] = 1
    total_input = _count(usage, "input_tokens", units) if tiered else 0
    input_price = output_price = total = Decimal(0)
    for unit, price in resolved:
        amount = _unit_price(price, counts[unit.usage_key], total_input, unit.per)
        total += amount
        if unit.direction == "input":
            input_price += amount
        elif unit.direction == "output":
            output_price += amount
    return input_price, output_price, total


# ---- helpers ------------------------------------------------------------------------------------


def _price(value: Any) -> Price:
    """A flat price, or (base, [(start, price), ...]) sorted by start."""
    if isinstance(value, dict):
        tiers = sorted(((int(start), Decimal(price)) for start, price in value["tiers"]), key=lambda t: t[0])
        return Decimal(value["base"]), tiers
    return Decimal(str(value))


def _unit_price(price: Price, count: int, total_input: int,
                per: int) -> Decimal:
    if isinstance(price, tuple):
        applicable, tiers = price
        for start, tier_price in reversed(tiers):
            if total_input > start:
                applicable = tier_price
                break
        return applicable * Decimal(count) / per
    return price * Decimal(count) / per


def _count(usage: Mapping[str, int], usage_key: str, units: Units) -> int:
    """A reported count, else 0 when nothing reported says otherwise (genai-prices
    `Usage._infer_missing_value`): an unreported count whose reported parts are not zero
    is unknown, not 0."""
    value = usage.get(usage_key)
    if value is not None:
        return value
    if usage_key not in units.by_usage_key:
        return 0
    problem = units.missing(usage_key, frozenset(key for key, count in usage.items() if count))
    if problem is not None:
        raise PriceError(problem)
    return 0


def _why_unknown(wanted: Unit, reported: list[Unit]) -> str | None:
    parts = sorted(unit.usage_key for unit in reported if unit is not wanted and unit.is_part_of(wanted))
    if parts:
        return (f"the price needs {wanted.usage_key}, which the server did not report "
                f"(it reported {', '.join(parts)}, which are part of it)")
    pair = _overlap(wanted, reported)
    if pair:
        return (f"the price needs {wanted.usage_key}, which the server did not report "
                f"(it reported {pair[0]} and {pair[1]}, which overlap in it)")
    return None


def _overlap(wanted: Unit, reported: Iterable[Unit]) -> tuple[str, str] | None:
    ordered = sorted(reported, key=lambda unit: unit.usage_key)
    for index, left in enumerate(ordered):
        for right in ordered[index + 1:]:
            if not left.compatible(right) or left.is_part_of(right) or right.is_part_of(left):
                continue
            if wanted.dimensions == left.dimensions | right.dimensions:
                return left.usage_key, right.usage_key
    return None


def _negative(unit: Unit, descendants: list[Unit], usage: Mapping[str, int], units: Units) -> str:
    total = _count(usage, unit.usage_key, units)
    for other in descendants:
        count = _count(usage, other.usage_key, units)
        if count > total:
            return f"inconsistent usage: {other.usage_key} ({count}) exceeds {unit.usage_key} ({total})"
    return f"inconsistent usage: the parts of {unit.usage_key} add up to more than its {total}"


def _active(constraint: Mapping[str, str], when: dt.datetime) -> bool:
    """A dated price from its start date (UTC day), or a daily UTC window [start, end)."""
    moment = when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)
    if "start_date" in constraint:
        return moment.date() >= dt.date.fromisoformat(constraint["start_date"])
    now = moment.time()
    start = dt.time.fromisoformat(constraint["start_time"])
    end = dt.time.fromisoformat(constraint["end_time"])
    if end < start:
        return now >= start or now < end
    return start <= now < end
