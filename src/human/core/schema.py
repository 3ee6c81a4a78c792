"""A validator for the part of JSON Schema that `human` needs: the config file's schema
(`config.schema.json`) and the schemas of structured output (`human.structured`).

Why not the `jsonschema` package: it would be a fourth runtime dependency and costs
~100 ms to import, for schemas we mostly write ourselves. The tests check the shipped
config schema, and the structured-output keywords, against the real `jsonschema`
package, so the two cannot drift apart unnoticed.

Supported keywords: type (one or a list), properties, required, additionalProperties,
patternProperties, items, prefixItems, minItems, maxItems, uniqueItems, enum, const,
anyOf, oneOf, allOf, minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength,
maxLength, pattern, $ref (a JSON pointer into the root: #/$defs/..., #/definitions/...).
Anything else (format, title, description, default, ...) is ignored, as JSON Schema
allows for annotations. Problems come back as (kind, pointer, message) triples; kind is
"error" or "unknown-key" (the caller decides whether an unknown key is a warning or, in
strict mode, an error).
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
    kind = _JSON_TYPES.get(wanted)
    return kind is not None and isinstance(value, kind)


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    target: Any = root
    for part in ref.removeprefix("#").lstrip("/").split("/") if ref not in ("#", "") else ():
        part = part.replace("~1", "/").replace("~0", "~")
        target = target[int(part)] if isinstance(target, list) else target[part]
    return target


def _check(value: Any, schema: Any, root: dict[str, Any], at: str, out: list[Problem]) -> None:
    if schema is True or not isinstance(schema, dict):
        return
    if "$ref" in schema:
        try:
            target = _resolve(schema["$ref"], root)
        except (KeyError, IndexError, ValueError, TypeError):
            out.append(("error", at or "/", f"the schema's $ref {schema['$ref']!r} points nowhere"))
            return
        _check(value, target, root, at, out)
        if len(schema) == 1:
            return
    wanted = schema.get("type")
    if wanted is not None:
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_matches_type(value, option) for option in options):
            expected = " or ".join(options)
            out.append(("error", at or "/", f"expected {expected}, found {type_name(value)} {_show(value)}"))
            return
    if "enum" in schema and not any(_same(value, choice) for choice in schema["enum"]):
        choices = ", ".join(repr(choice) for choice in schema["enum"])
        out.append(("error", at or "/", f"expected one of {choices}, found {_show(value)}"))
    if "const" in schema and not _same(value, schema["const"]):
        out.append(("error", at or "/", f"expected {schema['const']!r}, found {_show(value)}"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, at, out)
    if isinstance(value, str):
        _check_string(value, schema, at, out)
    if isinstance(value, list):
        _check_array(value, schema, root, at, out)
    if isinstance(value, dict):
        _check_object(value, schema, root, at, out)
    if "allOf" in schema:
        for sub in schema["allOf"]:
            _check(value, sub, root, at, out)
    if "anyOf" in schema:
        _check_alternatives(value, schema["anyOf"], root, at, out, exactly_one=False)
    if "oneOf" in schema:
        _check_alternatives(value, schema["oneOf"], root, at, out, exactly_one=True)


def _check_number(value: float, schema: dict[str, Any], at: str, out: list[Problem]) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        out.append(("error", at, f"must be at least {schema['minimum']}, found {value}"))
    if "maximum" in schema and value > schema["maximum"]:
        out.append(("error", at, f"must be at most {schema['maximum']}, found {value}"))
    low, high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(low, (int, float)) and not isinstance(low, bool) and value <= low:
        out.append(("error", at, f"must be more than {low}, found {value}"))
    if isinstance(high, (int, float)) and not isinstance(high, bool) and value >= high:
        out.append(("error", at, f"must be less than {high}, found {value}"))


def _check_string(value: str, schema: dict[str, Any], at: str, out: list[Problem]) -> None:
    shortest = schema.get("minLength", 0)
    if len(value) < shortest:
        out.append(("error", at, "must not be empty" if shortest == 1 else
                    f"must be at least {shortest} characters long, found {len(value)}"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append(("error", at, f"must be at most {schema['maxLength']} characters long, found {len(value)}"))
    if "pattern" in schema:
        try:
            matched = re.search(schema["pattern"], value) is not None
        except re.error:  # an ECMA-262 pattern Python cannot compile: not ours to judge
            matched = True
        if not matched:
            out.append(("error", at, f"must match the pattern {schema['pattern']!r}, found {_show(value)}"))


def _check_array(value: list[Any], schema: dict[str, Any], root: dict[str, Any], at: str,
                 out: list[Problem]) -> None:
    if len(value) < schema.get("minItems", 0):
        out.append(("error", at, f"needs at least {schema['minItems']} item(s)"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.append(("error", at, f"may have at most {schema['maxItems']} item(s), found {len(value)}"))
    if schema.get("uniqueItems") is True:
        for index, item in enumerate(value):
            if any(_same(item, earlier) for earlier in value[:index]):
                out.append(("error", f"{at}/{index}", f"repeats an earlier item: {_show(item)}"))
    prefix = schema.get("prefixItems", [])
    for index, item in enumerate(value[: len(prefix)]):
        _check(item, prefix[index], root, f"{at}/{index}", out)
    items = schema.get("items")
    if items is False and len(value) > len(prefix):
        out.append(("error", at, f"may have at most {len(prefix)} item(s), found {len(value)}"))
    elif items is not None:
        for index, item in enumerate(value[len(prefix):], len(prefix)):
            _check(item, items, root, f"{at}/{index}", out)


def _check_object(value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], at: str,
                  out: list[Problem]) -> None:
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


def _check_alternatives(value: Any, options: list[Any], root: dict[str, Any], at: str, out: list[Problem],
                        *, exactly_one: bool) -> None:
    reasons: list[str] = []
    fits = 0
    for option in options:
        found: list[Problem] = []
        _check(value, option, root, at, found)
        if found:
            reasons.append(found[0][2])
        else:
            fits += 1
    if fits == 0:
        shown = "; ".join(dict.fromkeys(reasons[:3]))
        out.append(("error", at or "/", f"fits none of the allowed schemas ({shown})"))
    elif exactly_one and fits > 1:
        out.append(("error", at or "/", f"fits {fits} of the oneOf schemas; it must fit exactly one"))


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0, and containers compare item by item."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b) and (isinstance(a, (int, float)) == isinstance(b, (int, float)))


def _closest(key: str, known: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"
