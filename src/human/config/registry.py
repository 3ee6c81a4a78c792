"""Owns the built-in provider registry: loading `providers.json`, validating its rows,
looking names up, and suggesting names for typos.

A row says where a vendor's OpenAI-compatible endpoint is and what it needs (key variable,
auth header style, extra headers and query parameters, which output-token field it takes,
whether it accepts `stream_options.include_usage`, how structured output is best asked
for), plus how that was verified.

    providers.json  {"version": 1, "providers": [row, ...]}
        └── row_from_mapping()   strict: every field present, no unknown field, exact types
              └── ProviderRow    frozen; headers/query are read-only mappings

The file is parsed on the first call to `builtin_rows()` / `lookup()` / `suggest()`, never at
import (importing `json` is deferred too), and read as a plain file beside this module, as
pricing/snapshot.py reads its data: `importlib.resources` alone costs ~7 ms to import. This
module does no network I/O and imports only the standard library and `human.errors`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError

__all__ = ["OPTIONAL_ROW_FIELDS", "ROW_FIELDS", "STRUCTURED_MODES", "ProviderRow", "builtin_rows", "lookup",
           "row_from_mapping", "suggest"]

ROW_FIELDS: tuple[str, ...] = (
    "name",
    "aliases",
    "base_url",
    "api_key_env",
    "requires_key",
    "local",
    "auth",
    "headers",
    "query",
    "token_field",
    "stream_usage",
    "structured_output",
    "docs_url",
    "source",
    "reference_base_url",
    "notes",
    "default_model",
    "default_model_source",
)

# Fields a row may leave out; the value is what a row without it means. Only rows that
# need a non-default value carry the field (issue 13: set where a provider needs it).
#   reasoning_replay   the assistant-message field under which the provider wants its
#                      reasoning back on tool-call turns, or null: never sent back. Set to
#                      "reasoning_content" on deepseek (thinking mode: 400 "Missing
#                      reasoning_content field in the assistant message",
#                      deepseek-ai/DeepSeek-V3#1053, langgenius/dify#32222) and the Kimi
#                      rows moonshot, moonshot-intl, kimi-code (400 "thinking is enabled but
#                      reasoning_content is missing in assistant tool call message",
#                      continuedev/continue#11600 and PR #11806). Not on by default: Groq and
#                      others reject an unknown field in a message.
OPTIONAL_ROW_FIELDS: dict[str, Any] = {
    "reasoning_replay": None,
}
REASONING_FIELDS = ("reasoning_content", "reasoning")

AUTH_STYLES = ("bearer", "api-key", "none")
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")
# How structured output is best asked for (human/structured): null = not known, let the
# capability profile or the default ladder decide. Set only from the vendor's own docs or a
# reproduced report, and say which in "source" / "notes".
STRUCTURED_MODES = ("json_schema_strict", "json_schema", "json_object", "prompt", "tools")
REGISTRY_VERSION = 1

_PLACEHOLDER = re.compile(r"\{[^{}/]+\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ProviderRow:
    """One provider endpoint. Field meanings: docs/providers.md and `providers.json`."""

    name: str
    aliases: tuple[str, ...]
    base_url: str
    api_key_env: str | None
    requires_key: bool
    local: bool
    auth: str
    # Read-only views; left out of the hash (a mapping is not hashable) but compared.
    headers: Mapping[str, str] = field(hash=False)
    query: Mapping[str, str] = field(hash=False)
    token_field: str
    stream_usage: bool
    structured_output: str | None
    docs_url: str
    source: str
    reference_base_url: str | None
    notes: str
    # A model id the vendor's own docs use as their example or default (None where they
    # document none); offered by `human config init`, never sent unless chosen.
    default_model: str | None = None
    default_model_source: str = ""
    reasoning_replay: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical name followed by the aliases."""
        return (self.name, *self.aliases)

    @property
    def needs_base_url(self) -> bool:
        """True if `base_url` still holds a `{placeholder}` the user must fill in (Azure, Cloudflare)."""
        return _PLACEHOLDER.search(self.base_url) is not None


def row_from_mapping(data: Mapping[str, Any], *, where: str) -> ProviderRow:
    """Validate one registry row and build it; raise `ConfigError(f"{where}: ...")` otherwise.

    Strict on purpose: every field of `ROW_FIELDS` must be present, unknown fields are
    rejected (a typo must not silently do nothing), and types are exact (`1` is not a bool).

        row_from_mapping(json.loads(text), where="providers.json providers[3]")
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected an object with the fields {', '.join(ROW_FIELDS)}, found {_kind(data)}")
    unknown = [key for key in data if key not in ROW_FIELDS and key not in OPTIONAL_ROW_FIELDS]
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {unknown[0]!r}"
            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
            + f"; expected only: {', '.join((*ROW_FIELDS, *OPTIONAL_ROW_FIELDS))}"
        )
    missing = [key for key in ROW_FIELDS if key not in data]
    if missing:
        raise ConfigError(f"{where}: missing field {missing[0]!r} (a row needs all of: {', '.join(ROW_FIELDS)})")

    name = _text(data, "name", where)
    row_where = f"{where} ({name!r})"
    aliases = _aliases(data, row_where)
    base_url = _text(data, "base_url", row_where)
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{row_where}: field 'base_url': expected an http:// or https:// URL, found {base_url!r}")
    api_key_env = _optional_text(data, "api_key_env", row_where)
    if api_key_env is not None and not _ENV_NAME.match(api_key_env):
        raise ConfigError(
            f"{row_where}: field 'api_key_env': expected an environment variable name such as EXAMPLE_API_KEY, "
            f"found {api_key_env!r}"
        )
    auth = _choice(data, "auth", AUTH_STYLES, row_where)
    default_model = _optional_text(data, "default_model", row_where)
    model_source = _text(data, "default_model_source", row_where, allow_empty=True)
    if default_model is not None and not model_source.strip():
        raise ConfigError(f"{row_where}: field 'default_model_source': a default_model needs the vendor page "
                          "that documents it")
    token_field = _choice(data, "token_field", TOKEN_FIELDS, row_where)
    return ProviderRow(
        name=name,
        aliases=aliases,
        base_url=base_url,
        api_key_env=api_key_env,
        requires_key=_flag(data, "requires_key", row_where),
        local=_flag(data, "local", row_where),
        auth=auth,
        headers=_string_map(data, "headers", row_where),
        query=_string_map(data, "query", row_where),
        token_field=token_field,
        stream_usage=_flag(data, "stream_usage", row_where),
        structured_output=None if data["structured_output"] is None
        else _choice(data, "structured_output", STRUCTURED_MODES, row_where),
        docs_url=_text(data, "docs_url", row_where, allow_empty=True),
        source=_text(data, "source", row_where, allow_empty=True),
        reference_base_url=_optional_text(data, "reference_base_url", row_where),
        notes=_text(data, "notes", row_where, allow_empty=True),
        default_model=default_model,
        default_model_source=model_source,
        reasoning_replay=_reasoning_replay(data, row_where),
    )


@functools.cache
def builtin_rows() -> tuple[ProviderRow, ...]:
    """The rows of the shipped `providers.json`, in file order. Parsed once, then cached."""
    import json
    import os

    where = "providers.json"
    try:
        with open(os.path.join(os.path.dirname(__file__), where), encoding="utf-8") as file:
            document = json.load(file)
    except (OSError, ValueError) as exc:  # a packaging mistake: say which file and why
        raise ConfigError(f"{where}: cannot load the built-in registry: {exc}", path=where) from exc
    if not isinstance(document, dict) or set(document) != {"version", "providers"}:
        raise ConfigError(f'{where}: expected {{"version": {REGISTRY_VERSION}, "providers": [...]}}', path=where)
    if document["version"] != REGISTRY_VERSION:
        raise ConfigError(f"{where}: field 'version': expected {REGISTRY_VERSION}, found {document['version']!r}")
    if not isinstance(document["providers"], list):
        raise ConfigError(f"{where}: field 'providers': expected a list, found {_kind(document['providers'])}")
    rows = tuple(
        row_from_mapping(raw, where=f"{where} providers[{i}]") for i, raw in enumerate(document["providers"])
    )
    _check_unique(rows, where)
    return rows


def lookup(name: str) -> ProviderRow | None:
    """The built-in row whose name or alias is exactly `name` (case-sensitive), else None.

        lookup("grok").name == "xai"
    """
    return _index().get(name)


def suggest(name: str, limit: int = 3) -> tuple[str, ...]:
    """Registry names (canonical or alias) that look like `name`, best first, for "did you mean".

    Case-insensitive: `suggest("Groq")` offers "groq" first.
    """
    import difflib

    by_folded: dict[str, str] = {}
    for candidate in _index():
        by_folded.setdefault(candidate.casefold(), candidate)
    matches = difflib.get_close_matches(name.casefold(), list(by_folded), n=limit, cutoff=0.6)
    return tuple(by_folded[match] for match in matches)


# ---- private helpers ---------------------------------------------------------------------


@functools.cache
def _index() -> dict[str, ProviderRow]:
    return {alias: row for row in builtin_rows() for alias in row.names}


def _check_unique(rows: tuple[ProviderRow, ...], where: str) -> None:
    seen: dict[str, str] = {}
    for row in rows:
        for alias in row.names:
            if alias in seen:
                raise ConfigError(f"{where}: name {alias!r} is used by both {seen[alias]!r} and {row.name!r}")
            seen[alias] = row.name


def _kind(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"


def _text(data: Mapping[str, Any], key: str, where: str, *, allow_empty: bool = False) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ConfigError(f"{where}: field {key!r}: expected a string, found {_kind(value)}")
    if not allow_empty and not value.strip():
        raise ConfigError(f"{where}: field {key!r}: expected a non-empty string, found {value!r}")
    return value


def _optional_text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data[key]
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: field {key!r}: expected a non-empty string or null, found {_kind(value)}")
    return value


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data[key]
    if type(value) is not bool:  # isinstance(1, bool) is False, but isinstance(True, int) is True
        raise ConfigError(f"{where}: field {key!r}: expected true or false, found {_kind(value)}")
    return value


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str:
    value = data[key]
    if value not in allowed or not isinstance(value, str):
        raise ConfigError(
            f"{where}: field {key!r}: expected one of {', '.join(map(repr, allowed))}, found {_kind(value)}"
        )
    return value


def _reasoning_replay(data: Mapping[str, Any], where: str) -> str | None:
    value = data.get("reasoning_replay")
    if value is None:
        return None
    return _choice(data, "reasoning_replay", REASONING_FIELDS, where)


def _aliases(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = data["aliases"]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: field 'aliases': expected a list of strings, found {_kind(value)}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{where}: field 'aliases': expected non-empty strings, found {_kind(item)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: field 'aliases': expected distinct names, found {list(value)!r}")
    return tuple(value)


def _string_map(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, str]:
    value = data[key]
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: field {key!r}: expected an object of strings, found {_kind(value)}")
    for item_key, item_value in value.items():
        if not isinstance(item_key, str) or not isinstance(item_value, str):
            raise ConfigError(
                f"{where}: field {key!r}: expected string keys and values, found {item_key!r}: {_kind(item_value)}"
            )
    return MappingProxyType(dict(value)) if value else _EMPTY
