"""What an answer cost: usage times prices, from data shipped in the package.

    response = client.chat("hi")
    response.cost            # Cost(amount=Decimal('0.0000435'), currency='USD', source='genai-prices ...')
    response.no_cost_reason  # None, or why there is no cost (never a guessed 0)

Where a price comes from, first match wins:

    1. the config's "prices" list        per model, optionally per provider; for self-hosted
                                          and private models, or to correct the data
    2. a local server (registry "local")  0, stated as such
    3. the snapshot (prices.jsonl)        pydantic's genai-prices data, dated; the provider is
                                          found by its registry name, else by its base URL;
                                          the model by the name that served the answer, else
                                          the name that was asked for (an alias is priced as
                                          the model behind it: litellm#37923, #40100)

The data decision (issue 12). genai-prices is MIT and updated monthly, but the package
requires Python >= 3.11 (we support 3.10), pulls pydantic and httpx2, and importing it and
pricing one call took ~350 ms on the benchmark machine, against a budget of 20 ms for our
first price lookup. So `human` ships a dated snapshot of its data (refreshed by
`scripts/refresh_prices.py` from the PyPI wheel) and a small calculator (`calc.py`) that
reproduces the package's figures exactly; the package is only a test dependency, the
oracle that those figures are checked against. No network at import or call time:
LiteLLM fetches its price map at import (peers.md), which we do not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Target
    from ..types import ChatResponse, Cost, Usage

__all__ = ["Pricer", "usage_counts"]

LOCAL_SOURCE = "local server"  # free unless "prices" in the config says otherwise (kept short: one per log row)


def usage_counts(usage: Usage) -> dict[str, int]:
    """Our `Usage` in genai-prices' usage keys, as its OpenAI chat extractor maps them:
    prompt_tokens includes the cached tokens and the cache writes, completion_tokens
    includes the reasoning tokens. Counts the server did not report are left out."""
    counts = {
        "input_tokens": usage.prompt_tokens,
        "cache_read_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "output_tokens": usage.completion_tokens,
        "output_reasoning_tokens": usage.reasoning_tokens,
    }
    return {key: value for key, value in counts.items() if value is not None}


_ENGINE: tuple[Any, ...] | None = None


def _engine() -> tuple[Any, ...]:
    """(Cost, PriceError, calculate, prices_at, snapshot), imported on the first price:
    decimal and the data reader take ~25 ms to import, which `from human import Client`
    must not pay; and an import statement in `price` would cost ~10 µs on every call
    (three of them), on the log writer's thread, per row."""
    global _ENGINE
    if _ENGINE is None:
        from ..types import Cost
        from .calc import PriceError, calculate, prices_at
        from .snapshot import snapshot

        _ENGINE = (Cost, PriceError, calculate, prices_at, snapshot)
    return _ENGINE


class Pricer:
    """Prices answers for one configuration. Cheap to build: the data is read on the
    first lookup, once per process."""

    def __init__(self, overrides: Sequence[Mapping[str, Any]] = ()) -> None:
        self._overrides = tuple(overrides)
        self._zero: tuple[Cost | None, str | None] | None = None
        self._seen: set[tuple[str, str | None]] = set()  # (provider, model) priced once: the lookup is cached

    def warm(self, target: Target, model: str | None) -> bool:
        """Whether pricing an answer of `target` served by `model` reads and parses no data
        (a local server, or a pair priced before): then it may run on an event loop (the
        exchange log captures answers there, issue 12)."""
        return (target.local and not self._overrides) or (target.provider, model) in self._seen

    def _free(self) -> tuple[Cost | None, str | None]:
        if self._zero is None:
            from decimal import Decimal

            from ..types import Cost

            self._zero = (Cost(Decimal(0), "USD", LOCAL_SOURCE, Decimal(0), Decimal(0)), None)
        return self._zero

    def price_answer(self, response: ChatResponse, target: Target, when: float) -> tuple[Cost | None, str | None]:
        """Price an answer made for `target` at unix time `when` (what a client attaches
        to each response; `ChatResponse.cost` calls it on first access)."""
        if target.local and not self._overrides:
            return self._free()  # the common local case, without a lookup
        raw = response.raw
        tier = raw.get("service_tier") if raw.__class__ is dict else None
        self._seen.add((target.provider, response.model))
        return self.price(
            response.usage, provider=target.provider, model=response.model, requested=target.model,
            base_url=target.base_url, local=target.local, registry=target.row is not None, when=when,
            context={"service_tier": tier} if isinstance(tier, str) else None,
        )

    def price(self, usage: Usage | None, *, provider: str, model: str | None, requested: str | None = None,
              base_url: str | None = None, local: bool = False, registry: bool = True,
              when: dt.datetime | float | None = None, context: Mapping[str, str] | None = None,
              ) -> tuple[Cost | None, str | None]:
        """(cost, None) or (None, the reason there is none).

        `model` is the model that served the answer, `requested` the name asked for;
        `registry` says whether `provider` is a registry name (else only the base URL
        can identify it in the data); `when` is the moment of the request (default: now)."""
        names = [name for name in (model, requested) if name]
        entry = self._override(provider, names)
        if entry is None and local:  # free, however much was used (and whether it was reported)
            return self._free()
        Cost, PriceError, calculate, prices_at, snapshot = _engine()  # noqa: N806 - the names they are imported as
        if usage is None:
            return None, ("the server reported no token usage (for a stream, the provider must be asked for it: "
                          "`stream_usage` in the registry or your providers[] entry)")
        if usage.prompt_tokens is None or usage.completion_tokens is None:
            return None, "the server's usage lacks prompt_tokens or completion_tokens"
        data = snapshot()
        units = data.price_units
        counts = usage_counts(usage)
        if entry is not None:
            prices = {key: value for key, value in entry.items() if key not in ("provider", "model")}
            try:
                input_price, output_price, total = calculate(prices, counts, units)
            except PriceError as exc:
                return None, str(exc)
            where = f"{entry['provider']}/{entry['model']}" if entry.get("provider") else entry["model"]
            return Cost(total, "USD", f"config prices: {where}", input_price, output_price), None

        moment = _moment(when)
        found_provider = (data.provider_by_id(provider) if registry else None) or (
            data.provider_by_url(base_url) if base_url else None)
        if found_provider is None:
            return None, (f"no price data for provider {provider!r} ({data.label}); "
                          "add the model under \"prices\" in your config")
        for name in names:
            found = data.model(found_provider, name)
            if found is not None:
                break
        else:
            asked = f" (asked for as {requested!r})" if requested and requested != model else ""
            return None, (f"no price for model {(model or requested)!r}{asked} at {found_provider['id']} "
                          f"({data.label}); add it under \"prices\" in your config")
        owner, model_data = found
        prices = prices_at(model_data, moment, context, variants=owner is found_provider)
        try:
            input_price, output_price, total = calculate(prices, counts, units)
        except PriceError as exc:
            return None, str(exc)
        source = f"{data.label}: {found_provider['id']}/{model_data['id']}"
        if owner is not found_provider:
            source += f" ({owner['id']}'s price)"
        return Cost(total, "USD", source, input_price, output_price), None

    def _override(self, provider: str, names: Sequence[str]) -> Mapping[str, Any] | None:
        """The config entry for this provider and model: exact model before "*", a
        provider-specific entry before one for any provider."""
        best: tuple[int, Mapping[str, Any]] | None = None
        for entry in self._overrides:
            if entry.get("provider") not in (None, provider):
                continue
            wanted = entry.get("model")
            if wanted not in names and wanted != "*":
                continue
            rank = (2 if wanted != "*" else 0) + (1 if entry.get("provider") else 0)
            if best is None or rank > best[0]:
                best = (rank, entry)
        return None if best is None else best[1]


def _moment(when: dt.datetime | float | None) -> dt.datetime:
    if when is None:
        return dt.datetime.now(dt.timezone.utc)
    if isinstance(when, dt.datetime):
        return when
    return dt.datetime.fromtimestamp(when, dt.timezone.utc)
