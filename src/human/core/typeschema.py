"""Python types as JSON Schema, and JSON values turned back into those types. Pure: no I/O.

Tools (a function's parameters) and structured output (the type of the answer) need the
same two things: a JSON Schema to send, and a checked conversion of what the model sent
back into real Python values. Both are written once here.

    shape = shape_of(list[Person])            # compiled once per type
    shape.schema                              # {"type": "array", "items": {...}}
    people = shape.convert(json.loads(text))  # list of Person, or Mismatch(errors)

Functions described as tools build on this in `core.functions`.

Supported: str, int, float, bool, None, Any, list / Sequence / set / frozenset / tuple,
dict[str, T] / Mapping, Literal, Enum, Optional / Union (also `X | Y`), Annotated (a string
in it is the description), TypedDict (total or not, Required / NotRequired), dataclasses,
datetime / date / time (ISO strings), and Pydantic models when pydantic is installed: a
class with `model_json_schema` / `model_validate` is asked for both, so pydantic is never
imported unless such a class is passed (peers import it on every call; it costs ~100 ms).

Conversion is strict where JSON is unambiguous (a bool is not an int, a string is not a
number) and lenient where models commonly deviate in harmless ways: an int is accepted for
a float, and a whole float (3.0) for an int. Every problem is reported with its path
(`$.items[2].name`), all at once, so a re-ask can tell the model everything to fix.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .strict import can_be_strict, is_map, strict_schema

__all__ = ["Mismatch", "Shape", "can_be_strict", "is_map", "object_shape", "shape_of", "strict_schema"]

_NONE = type(None)
_UNION_TYPES: tuple[Any, ...] = (typing.Union, types.UnionType)
_REQUIRED = {getattr(typing, "Required", None), getattr(typing, "NotRequired", None)} - {None}


class Mismatch(ValueError):
    """A value did not fit the type. `errors` lists every problem as "path: message"."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Shape:
    """One Python type, compiled: its JSON Schema and a converter from JSON values."""

    type: Any
    schema: dict[str, Any]
    _convert: Callable[[Any, str, list[str]], Any] = field(repr=False)

    def convert(self, value: Any) -> Any:
        """`value` (as `json.loads` gives it) as an instance of the type; raises `Mismatch`."""
        errors: list[str] = []
        result = self._convert(value, "$", errors)
        if errors:
            raise Mismatch(errors)
        return result


_CACHE: dict[Any, Shape] = {}


def shape_of(tp: Any) -> Shape:
    """The `Shape` of a type annotation (cached per type). Raises `TypeError` for a type
    that has no JSON form, naming it."""
    try:
        cached = _CACHE.get(tp)
    except TypeError:  # an unhashable annotation (rare): compile without caching
        cached = None
    if cached is not None:
        return cached
    schema, convert = _compile(tp, ())
    shape = Shape(tp, _hoist_defs(schema), convert)
    try:
        _CACHE[tp] = shape
    except TypeError:
        pass
    return shape


def object_shape(name: str, fields: Sequence[tuple[str, Any, bool, str | None]],
                 build: Callable[[dict[str, Any]], Any] = dict) -> Shape:
    """A closed object of named fields: (name, type, required, description) rows. Used for
    a function's parameters (`core.functions`)."""
    schema, convert = _object(name, None, fields, (), build)
    schema.pop("title", None)
    return Shape(name, _hoist_defs(schema), convert)


# ---- compiling a type ------------------------------------------------------------------

Converter = Callable[[Any, str, list[str]], Any]


def _compile(tp: Any, seen: tuple[Any, ...]) -> tuple[dict[str, Any], Converter]:
    if tp in seen:
        raise TypeError(f"{_name(tp)} refers to itself; recursive types are not supported here "
                        "(use a Pydantic model, or a JSON Schema dict)")
    if _is_pydantic(tp):
        return _pydantic(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        schema, convert = _compile(args[0], seen)
        notes = [a for a in args[1:] if isinstance(a, str)]
        if notes:
            schema = {**schema, "description": " ".join(notes)}
        return schema, convert
    if origin in _REQUIRED:
        return _compile(args[0], seen)
    if tp is Any or tp is object:
        return {}, _identity
    if tp is _NONE or tp is None:
        return {"type": "null"}, _expect_none
    if tp is bool:
        return {"type": "boolean"}, _expect_bool
    if tp is int:
        return {"type": "integer"}, _expect_int
    if tp is float:
        return {"type": "number"}, _expect_float
    if tp is str:
        return {"type": "string"}, _expect_str
    if tp in _TIME_TYPES:
        return _time(tp)
    if origin is typing.Literal:
        return _literal(args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(tp)
    if origin in _UNION_TYPES:
        return _union(args, seen)
    if origin in (list, set, frozenset, Sequence, typing.Sequence) or tp in (list, set, frozenset):
        item = args[0] if args else Any
        return _array(tp, origin or tp, item, seen)
    if origin is tuple or tp is tuple:
        return _tuple(tp, args, seen)
    if origin in (dict, Mapping, typing.Mapping) or tp is dict:
        key, value = args if args else (str, Any)
        if key is not str:
            raise TypeError(f"{_name(tp)}: JSON object keys are strings; use dict[str, ...]")
        return _mapping(value, seen)
    if _is_typeddict(tp):
        return _typeddict(tp, (*seen, tp))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(tp, (*seen, tp))
    raise TypeError(f"{_name(tp)} has no JSON Schema form; use str, int, float, bool, list, dict, Literal, Enum, "
                    "Optional, a TypedDict, a dataclass or a Pydantic model")


def _identity(value: Any, path: str, errors: list[str]) -> Any:
    return value


def _expect_none(value: Any, path: str, errors: list[str]) -> Any:
    if value is not None:
        errors.append(f"{path}: expected null, got {_json_type(value)}")
    return None


def _expect_bool(value: Any, path: str, errors: list[str]) -> Any:
    if value is not True and value is not False:
        errors.append(f"{path}: expected a boolean, got {_json_type(value)}")
    return value


def _expect_int(value: Any, path: str, errors: list[str]) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append(f"{path}: expected an integer, got {_json_type(value)}")
        return value
    if isinstance(value, float):
        if not value.is_integer():
            errors.append(f"{path}: expected an integer, got {value!r}")
            return value
        return int(value)
    return value


def _expect_float(value: Any, path: str, errors: list[str]) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append(f"{path}: expected a number, got {_json_type(value)}")
        return value
    return float(value)


def _expect_str(value: Any, path: str, errors: list[str]) -> Any:
    if not isinstance(value, str):
        errors.append(f"{path}: expected a string, got {_json_type(value)}")
    return value


_TIME_TYPES: dict[Any, str] = {_dt.datetime: "date-time", _dt.date: "date", _dt.time: "time"}


def _time(tp: Any) -> tuple[dict[str, Any], Converter]:
    def convert(value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, str):
            errors.append(f"{path}: expected an ISO {_TIME_TYPES[tp]} string, got {_json_type(value)}")
            return value
        text = value[:-1] + "+00:00" if value.endswith("Z") else value  # fromisoformat on 3.10
        try:
            return tp.fromisoformat(text)
        except ValueError:
            errors.append(f"{path}: {value!r} is not an ISO {_TIME_TYPES[tp]}")
            return value

    return {"type": "string", "format": _TIME_TYPES[tp]}, convert


def _literal(values: tuple[Any, ...]) -> tuple[dict[str, Any], Converter]:
    schema: dict[str, Any] = {"enum": list(values)}
    kinds = {_json_type(v) for v in values}
    if len(kinds) == 1:
        schema = {"type": _SCHEMA_TYPE.get(kinds.pop(), "string"), **schema}

    def convert(value: Any, path: str, errors: list[str]) -> Any:
        for allowed in values:
            if value == allowed and type(value) is type(allowed):
                return allowed
        errors.append(f"{path}: expected one of {list(values)!r}, got {value!r}")
        return value

    return schema, convert


def _enum(tp: type[enum.Enum]) -> tuple[dict[str, Any], Converter]:
    members = list(tp)
    schema, check = _literal(tuple(m.value for m in members))
    if tp.__doc__ and tp.__doc__ != enum.Enum.__doc__ and not tp.__doc__.startswith("An enumeration"):
        schema["description"] = inspect.cleandoc(tp.__doc__)

    def convert(value: Any, path: str, errors: list[str]) -> Any:
        before = len(errors)
        raw = check(value, path, errors)
        return raw if len(errors) > before else tp(raw)

    return schema, convert


def _union(args: tuple[Any, ...], seen: tuple[Any, ...]) -> tuple[dict[str, Any], Converter]:
    compiled = [_compile(arg, seen) for arg in args]
    schemas = [schema for schema, _ in compiled]
    simple = [s.get("type") for s in schemas]
    if all(isinstance(t, str) and len(s) == 1 for t, s in zip(simple, schemas)):
        schema: dict[str, Any] = {"type": simple}  # ["string", "null"]: what strict modes accept best
    else:
        schema = {"anyOf": schemas}
    converters = [convert for _, convert in compiled]

    def convert(value: Any, path: str, errors: list[str]) -> Any:
        # The first alternative that fits wins (None first when the value is null).
        problems: list[str] = []
        for attempt in converters:
            found: list[str] = []
            result = attempt(value, path, found)
            if not found:
                return result
            problems += found
        errors.append(f"{path}: fits none of the allowed types ({'; '.join(problems[:4])})")
        return value

    return schema, convert


def _array(tp: Any, container: Any, item: Any, seen: tuple[Any, ...]) -> tuple[dict[str, Any], Converter]:
    item_schema, convert_item = _compile(item, seen)
    schema: dict[str, Any] = {"type": "array", "items": item_schema}
    unique = container in (set, frozenset)
    if unique:
        schema["uniqueItems"] = True
    build: Callable[[list[Any]], Any] = set if container is set else frozenset if container is frozenset else list

    def convert(value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, list):
            errors.append(f"{path}: expected an array, got {_json_type(value)}")
            return value
        items = [convert_item(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
        try:
            return build(items)
        except TypeError:
            errors.append(f"{path}: items cannot be collected into a {container.__name__}")
            return items

    return schema, convert


def _tuple(tp: Any, args: tuple[Any, ...], seen: tuple[Any, ...]) -> tuple[dict[str, Any], Converter]:
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        item_schema, convert_item = _compile(args[0] if args else Any, seen)

        def convert_var(value: Any, path: str, errors: list[str]) -> Any:
            if not isinstance(value, list):
                errors.append(f"{path}: expected an array, got {_json_type(value)}")
                return value
            return tuple(convert_item(v, f"{path}[{i}]", errors) for i, v in enumerate(value))

        return {"type": "array", "items": item_schema}, convert_var
    compiled = [_compile(arg, seen) for arg in args]
    schema = {"type": "array", "prefixItems": [s for s, _ in compiled], "minItems": len(args),
              "maxItems": len(args)}

    def convert(value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, list) or len(value) != len(compiled):
            errors.append(f"{path}: expected an array of {len(compiled)} items, got {_describe(value)}")
            return value
        return tuple(c(v, f"{path}[{i}]", errors) for i, ((_, c), v) in enumerate(zip(compiled, value)))

    return schema, convert


def _mapping(value_type: Any, seen: tuple[Any, ...]) -> tuple[dict[str, Any], Converter]:
    value_schema, convert_value = _compile(value_type, seen)
    schema: dict[str, Any] = {"type": "object"}
    if value_schema:
        schema["additionalProperties"] = value_schema

    def convert(value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {_json_type(value)}")
            return value
        return {k: convert_value(v, _child(path, k), errors) for k, v in value.items()}

    return schema, convert


def _object(name: str, doc: str | None, fields: Sequence[tuple[str, Any, bool, str | None]],
            seen: tuple[Any, ...], build: Callable[[dict[str, Any]], Any]) -> tuple[dict[str, Any], Converter]:
    """An object type from (field name, type, required, description) rows."""
    properties: dict[str, Any] = {}
    converters: dict[str, Converter] = {}
    required: list[str] = []
    for field_name, field_type, is_required, description in fields:
        schema, convert_field = _compile(field_type, seen)
        if description and "description" not in schema:
            schema = {**schema, "description": description}
        properties[field_name] = schema
        converters[field_name] = convert_field
        if is_required:
            required.append(field_name)
    schema_out: dict[str, Any] = {"type": "object", "title": name, "properties": properties,
                                  "required": required, "additionalProperties": False}
    if doc:
        schema_out["description"] = doc

    def convert(value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {_json_type(value)}")
            return value
        before = len(errors)
        out: dict[str, Any] = {}
        for key in required:
            if key not in value:
                errors.append(f"{_child(path, key)}: required field is missing")
        for key, item in value.items():
            convert_field = converters.get(key)
            if convert_field is None:
                errors.append(f"{_child(path, key)}: unexpected field (allowed: {', '.join(properties) or 'none'})")
                continue
            out[key] = convert_field(item, _child(path, key), errors)
        if len(errors) > before:
            return value
        try:
            return build(out)
        except (TypeError, ValueError) as exc:  # a dataclass __post_init__ may refuse the values
            errors.append(f"{path}: {name} refused these values: {exc}")
            return value

    return schema_out, convert


def _dataclass(tp: type, seen: tuple[Any, ...]) -> tuple[dict[str, Any], Converter]:
    hints = type_hints(tp)
    rows = []
    for f in dataclasses.fields(tp):
        if not f.init:
            continue
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        description = f.metadata.get("description") if f.metadata else None
        rows.append((f.name, hints.get(f.name, Any), not has_default, description))
    return _object(tp.__name__, _doc(tp), rows, seen, lambda values: tp(**values))


def _typeddict(tp: Any, seen: tuple[Any, ...]) -> tuple[dict[str, Any], Converter]:
    hints = type_hints(tp)
    # Required/NotRequired read from the hints themselves: under `from __future__ import
    # annotations` the class's own __required_keys__ cannot see them (they are strings).
    total = getattr(tp, "__total__", True)
    declared = getattr(tp, "__required_keys__", frozenset(hints))
    rows: list[tuple[str, Any, bool, str | None]] = []
    for name, hint in hints.items():
        marker = typing.get_origin(hint)
        marker_name = str(getattr(marker, "_name", None) or getattr(marker, "__name__", ""))
        required = marker_name == "Required" or (marker_name != "NotRequired" and bool(total) and name in declared)
        rows.append((name, hint, required, None))
    return _object(tp.__name__, _doc(tp), rows, seen, dict)


def _pydantic(tp: Any) -> tuple[dict[str, Any], Converter]:
    schema = tp.model_json_schema()

    def convert(value: Any, path: str, errors: list[str]) -> Any:
        from pydantic import ValidationError  # only ever reached with a pydantic class in hand

        try:
            return tp.model_validate(value)
        except ValidationError as exc:
            for problem in exc.errors():
                where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem.get("loc", ()))
                errors.append(f"{path}{where}: {problem.get('msg', 'invalid')}")
            return value

    return schema, convert


def _hoist_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every nested `$defs` moved to the root. A Pydantic model's schema
    keeps its `$defs` beside its `$ref`s ("#/$defs/Address"), which resolve from the
    root only: inside `list[Model]` or a dataclass field they would point nowhere."""
    found: dict[str, Any] = {}

    def walk(node: Any, names: bool = False) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$defs" and not names and isinstance(value, dict):
                    for name, sub in value.items():
                        found.setdefault(name, walk(sub))
                else:  # the keys of "properties" are field names, not keywords
                    out[key] = walk(value, names=not names and key in ("properties", "patternProperties"))
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    if "$defs" not in repr(schema):  # the common case: nothing to move, no copy
        return schema
    hoisted: dict[str, Any] = walk(schema)
    if found:
        hoisted["$defs"] = found
    return hoisted


# ---- small helpers -------------------------------------------------------------------------

_SCHEMA_TYPE = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
                "null": "null"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _describe(value: Any) -> str:
    return f"an array of {len(value)}" if isinstance(value, list) else _json_type(value)


def _child(path: str, key: Any) -> str:
    # isidentifier() is what the old [A-Za-z_]\w* regex meant, at a tenth of the cost (it runs
    # for every field of every value converted)
    return f"{path}.{key}" if isinstance(key, str) and key.isidentifier() else f"{path}[{key!r}]"


def _name(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or getattr(tp, "__name__", None) or repr(tp)


def _doc(tp: Any) -> str | None:
    doc = inspect.getdoc(tp)
    if not doc or doc.startswith(f"{tp.__name__}("):  # a dataclass's generated signature
        return None
    if _is_typeddict(tp) and doc.startswith(("dict() ->", "dict(")):
        return None
    return " ".join(doc.split())


def type_hints(obj: Any) -> dict[str, Any]:
    """The resolved type hints of a class or function (extras such as Annotated kept)."""
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    try:
        return typing.get_type_hints(obj, globalns=vars(module) if module else None, include_extras=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means an annotation we cannot read
        raise TypeError(f"cannot read the type hints of {_name(obj)}: {exc}") from None


def _is_typeddict(tp: Any) -> bool:
    # typing_extensions.TypedDict classes (older Pythons) carry the same marks
    return typing.is_typeddict(tp) or (isinstance(tp, type) and issubclass(tp, dict)
                                       and hasattr(tp, "__required_keys__"))


def _is_pydantic(tp: Any) -> bool:
    return isinstance(tp, type) and callable(getattr(tp, "model_json_schema", None)) and callable(
        getattr(tp, "model_validate", None))
