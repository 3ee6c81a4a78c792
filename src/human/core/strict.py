"""JSON Schemas as OpenAI's strict mode (and Groq's) requires them. Pure: no I/O.

Strict structured output refuses any schema with an open object or an optional field:
every object must say `additionalProperties: false` and list every property in
`required` (openai/openai-python PR #2743; Groq rejects the whole request otherwise,
wave2.md B.2 item 3). `strict_schema` rewrites a schema that way, turning an optional
field into a required, nullable one; `can_be_strict` says whether that keeps its meaning
(a free-keyed `dict[str, T]` cannot be expressed). Re-exported by `core.typeschema`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["can_be_strict", "is_map", "strict_schema"]



def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema as OpenAI's strict mode (and Groq's) requires it: every object closed
    (`additionalProperties: false`) with every property listed in `required`; a property
    that was optional becomes nullable instead. (openai-python PR #2743; Groq rejects the
    whole request otherwise: wave2.md B.2 item 3.)"""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, Mapping):
            out[key] = {name: strict_schema(sub) if isinstance(sub, Mapping) else sub for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            out[key] = strict_schema(value)
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            out[key] = [strict_schema(sub) if isinstance(sub, Mapping) else sub for sub in value]
        else:
            out[key] = value
    if is_map(out):
        return out  # a dict[str, T]: strict mode cannot express it (see `can_be_strict`); left open
    if out.get("type") == "object" or "properties" in out:
        properties = out.get("properties", {})
        required = set(out.get("required", ()))
        for name in properties:
            if name not in required:
                properties[name] = _nullable(properties[name])
        out["required"] = list(properties)
        out["additionalProperties"] = False
    if "default" in out and out["default"] is None:
        del out["default"]  # strict mode refuses `default: null` (what openai-python drops too)
    return out


def is_map(schema: Mapping[str, Any]) -> bool:
    """True for an object schema whose keys are free (`dict[str, T]`): no `properties`,
    and `additionalProperties` a schema rather than false."""
    extra = schema.get("additionalProperties")
    return (schema.get("type") == "object" and not schema.get("properties")
            and (extra is True or isinstance(extra, Mapping)))


def can_be_strict(schema: Mapping[str, Any]) -> bool:
    """Whether `strict_schema(schema)` keeps the schema's meaning. OpenAI's strict mode
    closes every object, so a free-keyed object (`dict[str, T]`) anywhere in it cannot be
    sent strictly; send such a schema without `strict` instead."""
    if is_map(schema):
        return False
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, Mapping):
            if not all(can_be_strict(sub) for sub in value.values() if isinstance(sub, Mapping)):
                return False
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            if not can_be_strict(value):
                return False
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            if not all(can_be_strict(sub) for sub in value if isinstance(sub, Mapping)):
                return False
    return True


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return schema
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return {**schema, "type": [*kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}
