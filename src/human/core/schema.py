"""A validator for the small part of JSON Schema that `config.schema.json` uses.

Why not the `jsonschema` package: it would be a fourth runtime dependency and costs
~100 ms to import, for a file we own. The tests check the shipped schema with the real
`jsonschema` package, so the two cannot drift apart unnoticed.

Supported keywords: type, properties, additionalProperties, patternProperties, items,
enum, minimum, maximum, minLength, minItems, required, $ref (to #/$defs/...). Problems come back
as (kind, pointer, message) triples; kind is "error" or "unknown-key" (the caller decides
whether an unknown key is a warning or, in strict mode, an error).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["Problem", "validate"]

Problem = tuple[str, str, str]

_JSON_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> list[Problem]:
    problems: list[Problem] = []
    _check(value, schema, root or schema, "", problems)
    return problems


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    names: dict[type, str] = {dict: "object", list: "array", str: "string"}
    return names.get(type(value), type(value).__name__)


def _matches_type(value: Any, wanted: str) -> bool:
    if wanted == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if wanted == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES[wanted])


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str, out: list[Problem]) -> None:
    if "$ref" in schema:
        ref = schema["$ref"]
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        _check(value, target, root, at, out)
        return
    wanted = schema.get("type")
    if wanted is not None:
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_matches_type(value, option) for option in options):
            expected = " or ".join(options)
            out.append(("error", at or "/", f"expected {expected}, found {type_name(value)} {_show(value)}"))
            return
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(choice) for choice in schema["enum"])
        out.append(("error", at or "/", f"expected one of {choices}, found {_show(value)}"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(("error", at, f"must be at least {schema['minimum']}, found {value}"))
        if "maximum" in schema and value > schema["maximum"]:
            out.append(("error", at, f"must be at most {schema['maximum']}, found {value}"))
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        out.append(("error", at, "must not be empty"))
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(("error", at, f"needs at least {schema['minItems']} item(s)"))
        if "items" in schema:
            for index, item in enumerate(value):
                _check(item, schema["items"], root, f"{at}/{index}", out)
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                out.append(("error", at or "/", f"missing required key {key!r}"))
        properties = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            pointer = f"{at}/{_escape(key)}"
            if key in properties:
                _check(item, properties[key], root, pointer, out)
                continue
            matched = [sub for pattern, sub in patterns.items() if re.search(pattern, key)]
            for sub in matched:
                _check(item, sub, root, pointer, out)
            if matched:
                continue
            if extra is False:
                hint = _closest(key, properties)
                out.append(("unknown-key", pointer, f"unknown key {key!r}{hint}"))
            elif isinstance(extra, dict):
                _check(item, extra, root, pointer, out)


def _closest(key: str, known: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"
