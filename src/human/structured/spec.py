"""What the caller asked for, compiled once: the schema to send and the check of what came
back. Pure: no I/O.

`response_format=T` accepts a Pydantic model, a dataclass, a TypedDict, `list[...]` of
those (anything `core.typeschema.shape_of` takes), or a JSON Schema dict. Either way the
result is an `OutputSpec`:

    spec = output_spec(list[Person])
    spec.schema            # {"type": "object", "properties": {"items": {...}}, ...}
    spec.convert(value)    # a list of Person, or raises Mismatch listing every problem

Servers want an object at the root (OpenAI's json_schema and json_object modes, and a tool
call's arguments, are objects), so any other root is wrapped in one: an array as
`{"items": [...]}`, anything else as `{"value": ...}`, and unwrapped on the way back (a bare
array answered for a wrapped list is accepted too).

A field the schema leaves optional may come back as `null` (strict mode turns optional
into required-and-nullable, and models send null for "no value" anyway); where the original
schema does not allow null there, the key is dropped before the check, so the default applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.schema import validate
from ..core.typeschema import Mismatch, can_be_strict, shape_of, strict_schema

__all__ = ["OutputSpec", "output_spec"]


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """One requested output type: its name, the schema sent, and the check of the answer."""

    name: str  # fits OpenAI's ^[a-zA-Z0-9_-]{1,64}$ (a json_schema name, a tool name)
    schema: dict[str, Any]  # object-rooted: what is sent (non-strict form)
    wrap: str | None  # "items" / "value" when the root was wrapped, else None
    strict_ok: bool  # strict mode can express the schema (no free-keyed objects)
    target: Any = field(repr=False)  # what the caller passed
    _check: Callable[[Any], Any] = field(repr=False)  # unwrapped JSON value -> result; raises Mismatch
    _inner: dict[str, Any] = field(repr=False)  # the schema before wrapping (for dropping nulls)

    @property
    def strict_schema(self) -> dict[str, Any]:
        return strict_schema(self.schema)

    @property
    def many(self) -> bool:
        return self.wrap == "items"

    def unwrap_partial(self, value: Any) -> Any:
        """A partial (streamed) value as the caller will see it: without the wrapper."""
        if self.wrap is None or not isinstance(value, dict):
            return value
        return value.get(self.wrap, [] if self.many else None)

    def convert(self, value: Any) -> Any:
        """The answer's JSON value as the requested result; raises `Mismatch` with every
        problem as "path: message", paths as the model saw the value (`$.items[2].age`)."""
        prefix = "$"
        if self.wrap is not None:
            if isinstance(value, dict) and self.wrap in value:
                extra = [key for key in value if key != self.wrap]
                if extra:
                    raise Mismatch([f"$.{extra[0]}: unexpected field (allowed: {self.wrap})"])
                value, prefix = value[self.wrap], f"$.{self.wrap}"
            elif not (self.many and isinstance(value, list)):
                raise Mismatch([f"$: expected an object with the single field {self.wrap!r}"])
        value = drop_disallowed_nulls(value, self._inner, self._inner)
        try:
            return self._check(value)
        except Mismatch as exc:
            if prefix == "$":
                raise
            raise Mismatch([prefix + error[1:] for error in exc.errors]) from None


_CACHE: dict[Any, OutputSpec] = {}


def output_spec(target: Any) -> OutputSpec:
    """The `OutputSpec` of a type or a JSON Schema dict (cached per type). Raises
    `TypeError` naming what cannot be described as JSON."""
    if isinstance(target, Mapping):
        return _from_schema(dict(target), target)
    try:
        cached = _CACHE.get(target)
    except TypeError:
        cached = None
    if cached is not None:
        return cached
    shape = shape_of(target)
    spec = _build(_name_of(target), shape.schema, shape.convert, target)
    try:
        _CACHE[target] = spec
    except TypeError:
        pass
    return spec


def _from_schema(schema: dict[str, Any], target: Any) -> OutputSpec:
    if not schema or not all(isinstance(key, str) for key in schema):
        raise TypeError("response_format: a JSON Schema dict needs at least a 'type' or 'properties'")
    root = schema

    def check(value: Any) -> Any:
        problems = validate(value, root)
        if problems:
            raise Mismatch([f"{_path(pointer)}: {message}" for _, pointer, message in problems])
        return value

    return _build(_clean_name(str(schema.get("title") or "response")), schema, check, target)


def _build(name: str, schema: dict[str, Any], check: Callable[[Any], Any], target: Any) -> OutputSpec:
    if schema.get("type") == "object" or ("properties" in schema and "type" not in schema):
        sent, wrap = schema, None
    else:
        wrap = "items" if schema.get("type") == "array" else "value"
        inner = {key: value for key, value in schema.items() if key != "$defs"}
        sent = {"type": "object", "properties": {wrap: inner}, "required": [wrap], "additionalProperties": False}
        if "$defs" in schema:  # `$ref`s resolve from the root, so the definitions move up with it
            sent["$defs"] = schema["$defs"]
    return OutputSpec(name, sent, wrap, can_be_strict(sent), target, check, schema)


def drop_disallowed_nulls(value: Any, schema: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """`value` without the `null`s the schema does not allow for optional object fields.
    Returns a new value only where something was dropped."""
    if depth > 64 or not isinstance(schema, Mapping):
        return value
    if "$ref" in schema:
        schema = _resolve(schema["$ref"], root)
        if schema is None:
            return value
    if isinstance(value, dict):
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return value
        required = set(schema.get("required", ()))
        out = {}
        for key, item in value.items():
            sub = properties.get(key)
            if item is None and key not in required and sub is not None and not _allows_null(sub, root):
                continue
            out[key] = drop_disallowed_nulls(item, sub, root, depth + 1) if sub is not None else item
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [drop_disallowed_nulls(item, schema["items"], root, depth + 1) for item in value]
    return value


def _allows_null(schema: Any, root: Mapping[str, Any]) -> bool:
    if not isinstance(schema, Mapping) or not schema:
        return True
    if "$ref" in schema:
        return _allows_null(_resolve(schema["$ref"], root), root)
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if None in schema.get("enum", (0,)) or ("const" in schema and schema["const"] is None):
        return True
    return any(_allows_null(sub, root) for sub in (*schema.get("anyOf", ()), *schema.get("oneOf", ())))


def _resolve(ref: Any, root: Mapping[str, Any]) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node


def _path(pointer: str) -> str:
    """A JSON pointer ("/items/0/name") as a path ("$.items[0].name")."""
    path = "$"
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if part.isdigit():
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_]\w*", part):
            path += f".{part}"
        else:
            path += f"[{part!r}]"
    return path


def _name_of(target: Any) -> str:
    import typing

    args = typing.get_args(target)
    inner = args[0] if args and typing.get_origin(target) in (list, tuple, set, frozenset) else None
    if inner is not None:
        return _clean_name(f"{getattr(inner, '__name__', 'item')}_list")
    return _clean_name(getattr(target, "__name__", None) or "response")


def _clean_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name).strip("_")[:64]
    return cleaned or "response"
