"""The price data shipped in the package (`prices.jsonl`), read lazily, and the lookup of a
provider and a model in it, following genai-prices' own rules.

The file is a dated snapshot of pydantic's genai-prices data (MIT), converted by
`scripts/refresh_prices.py`; its layout (see there) lets a lookup parse only the lines it
needs: the header and index (~20 KB), the match rules of one provider, then one model.
Parsing the whole file would take ~30 ms; a first lookup this way takes a few.

Lookup rules, as in genai-prices' `DataSnapshot.find_provider_model` and
`Provider.find_model` (0.2.3):
- a provider by id, else by its `provider_match` rule on the id; or by `api_pattern`
  (a regex matched at the start of the base URL);
- a model: the first of the provider's models whose `match` rule accepts the lower-cased
  name; else the same in each `fallback_model_providers` (one step, e.g. Azure -> OpenAI);
  else again with a compact date suffix rewritten (`-20251211` -> `-2025-12-11`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from .calc import Units, units_from

__all__ = ["Model", "Provider", "Snapshot", "matches", "snapshot"]

Model = Mapping[str, Any]  # {"id", "prices", "price_variants"?}, as in the file
Provider = Mapping[str, Any]  # an index entry: {"id", "api_pattern", "provider_match", ..., "line", "models"}


class Snapshot:
    """The data file, parsed piece by piece on demand. Thread-safe in practice: every
    cache fill computes the same value, so a race only parses a line twice."""

    def __init__(self, text: bytes) -> None:
        head, _, rest = text.partition(b"\n")
        header = json.loads(head)
        self.source: Mapping[str, str] = header["source"]
        self.units: Mapping[str, Mapping[str, Any]] = header["units"]
        self.price_units: Units = units_from(self.units)
        self.providers: Sequence[Provider] = header["providers"]
        self._lines = rest.split(b"\n")  # line N of the file is self._lines[N - 2]
        self._by_id: dict[str, Provider] = {p["id"]: p for p in self.providers}
        self._rules: dict[str, list[Any]] = {}
        self._models: dict[tuple[str, int], Model] = {}
        self._found: dict[tuple[str, str], tuple[Provider, Model] | None] = {}

    @property
    def label(self) -> str:
        """E.g. "genai-prices 0.2.3, snapshot 2026-12-04"."""
        return f"{self.source['package']} {self.source['version']}, snapshot {self.source['snapshot_date']}"

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.source["snapshot_date"])

    def provider_by_id(self, provider_id: str) -> Provider | None:
        """genai-prices' `find_provider_by_id`: the exact id, else a `provider_match` rule."""
        wanted = provider_id.lower().strip()
        found = self._by_id.get(wanted)
        if found is not None:
            return found
        for provider in self.providers:
            rule = provider.get("provider_match")
            if rule is not None and matches(rule, wanted):
                return provider
        return None

    def provider_by_url(self, base_url: str) -> Provider | None:
        """The first provider whose `api_pattern` matches the start of the URL."""
        for provider in self.providers:
            if _regex(provider["api_pattern"]).match(base_url):
                return provider
        return None

    def model(self, provider: Provider, model_ref: str) -> tuple[Provider, Model] | None:
        """(the provider whose list held it, the model), or None."""
        key = (provider["id"], model_ref)
        if key in self._found:
            return self._found[key]
        ref = model_ref.lower()
        found = self._match(provider, ref, fallback=True)
        if found is None:
            compact = _normalize_compact_date(ref)
            if compact != ref:
                found = self._match(provider, compact, fallback=True)
        self._found[key] = found
        return found

    def _match(self, provider: Provider, ref: str, *, fallback: bool) -> tuple[Provider, Model] | None:
        for index, rule in enumerate(self._rules_of(provider)):
            if matches(rule, ref):
                return provider, self._model_at(provider, index)
        if fallback:
            for other_id in provider.get("fallback_model_providers") or ():
                other = self._by_id.get(other_id)
                if other is not None:
                    found = self._match(other, ref, fallback=False)  # one step only, as upstream
                    if found is not None:
                        return found
        return None

    def _rules_of(self, provider: Provider) -> list[Any]:
        rules = self._rules.get(provider["id"])
        if rules is None:
            rules = self._rules[provider["id"]] = json.loads(self._lines[provider["line"] - 2])
        return rules

    def _model_at(self, provider: Provider, index: int) -> Model:
        key = (provider["id"], index)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = json.loads(self._lines[provider["line"] - 1 + index])
        return model


def matches(rule: Mapping[str, Any], text: str) -> bool:
    """genai-prices' match clauses: case-insensitive except `regex` (searched as written)."""
    if "equals" in rule:
        return text.lower() == str(rule["equals"]).lower()
    if "starts_with" in rule:
        return text.lower().startswith(str(rule["starts_with"]).lower())
    if "contains" in rule:
        return str(rule["contains"]).lower() in text.lower()
    if "ends_with" in rule:
        return text.lower().endswith(str(rule["ends_with"]).lower())
    if "regex" in rule:
        return _regex(rule["regex"]).search(text) is not None
    if "or" in rule:
        return any(matches(item, text) for item in rule["or"])
    if "and" in rule:
        return all(matches(item, text) for item in rule["and"])
    raise ValueError(f"unknown match rule {rule!r} in the price data")


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_COMPACT_DATE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")


def _normalize_compact_date(ref: str) -> str:
    """`gpt-5.2-20251211` -> `gpt-5.2-2025-12-11` (LiteLLM and OpenRouter send the former)."""

    def replace(match: re.Match[str]) -> str:
        year, month, day = (int(match.group(i)) for i in range(2, 5))
        try:
            dt.date(year, month, day)
        except ValueError:
            return match.group(0)
        return f"-{year:04d}-{month:02d}-{day:02d}"

    return _COMPACT_DATE.sub(replace, ref)


@cache
def snapshot() -> Snapshot:
    """The shipped snapshot, read on first use (never at import, never from the network)."""
    # A plain file read: importlib.resources alone costs ~18 ms to import.
    with open(os.path.join(os.path.dirname(__file__), "prices.jsonl"), "rb") as file:
        return Snapshot(file.read())
