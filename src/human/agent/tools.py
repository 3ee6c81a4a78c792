"""Tools: what a model may call in `run()`, described once and run the same way by both
drivers.

    @human.tool
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        \"\"\"The current weather in a city.

        Args:
            city: The city's name.
        \"\"\"
        ...

    get_weather.schema()       # {"type": "function", "function": {"name": "get_weather", ...}}
    get_weather("Oslo")        # still the plain function

What `as_tools()` accepts:

    a Python function, sync or async   schema from its signature and docstring (core.functions)
    human.tool(fn, name=, description=, strict=, timeout=)       the same, with overrides
    human.tool(fn, parameters={...})   your own JSON Schema; arguments checked against it
    a Tool                             as it is (MCP servers' tools are Tools: agent/mcp.py)

A dict alone is refused: the loop could send it, but could not run what the model asks.
Arguments are checked and converted before the call (a `Mismatch` lists every problem,
and the loop sends that list back to the model); the return value is sent back as text:
a str as it is, anything else as JSON (dataclasses, Pydantic models, enums and datetimes
included).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import inspect
import json
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.functions import function_spec
from ..core.schema import validate
from ..core.typeschema import Mismatch, strict_schema

__all__ = ["Tool", "as_tools", "render_output", "tool"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Tool:
    """One callable tool: the schema the model sees, and how to run a call.

    `function` is the Python function (sync or async) or None for a tool that runs
    elsewhere (an MCP server's); `timeout` (seconds) bounds one call; `strict` asks the
    server for OpenAI's strict mode (the schema is closed and every field required,
    optional ones nullable: `core.typeschema.strict_schema`).
    """

    __slots__ = ("name", "description", "parameters", "function", "strict", "timeout", "is_async", "source",
                 "_convert", "_optional", "_schema")

    def __init__(self, name: str, description: str, parameters: Mapping[str, Any],
                 function: Callable[..., Any] | None, *, convert: Callable[[Any], dict[str, Any]] | None = None,
                 strict: bool = False, timeout: float | None = None, source: str = "python") -> None:
        if not _NAME.fullmatch(name):
            raise TypeError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-' (OpenAI's rule); "
                            "pass name=...")
        self.name = name
        self.description = description
        self.parameters = dict(parameters)
        self.function = function
        self.strict = strict
        self.timeout = timeout
        self.is_async = function is not None and inspect.iscoroutinefunction(inspect.unwrap(function))
        self.source = source
        self._convert = convert or _schema_checker(self.parameters)
        required = self.parameters.get("required", ())
        self._optional = frozenset(self.parameters.get("properties", {})) - frozenset(required)
        self._schema: dict[str, Any] | None = None

    @classmethod
    def from_function(cls, function: Callable[..., Any], *, name: str | None = None,
                      description: str | None = None, strict: bool = False,
                      timeout: float | None = None) -> Tool:
        """A tool from a function's signature, type hints and docstring."""
        spec = function_spec(function, name=name, description=description)
        return cls(spec.name, spec.description, spec.parameters, function, convert=spec.arguments, strict=strict,
                   timeout=timeout)

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any], function: Callable[..., Any], *,
                    timeout: float | None = None) -> Tool:
        """A tool from an OpenAI tool dict (`{"type": "function", "function": {...}}` or the
        inner `{"name", "description", "parameters"}`) and the function that runs it; the
        arguments are checked against `parameters` and passed as keyword arguments."""
        inner = schema.get("function", schema) if schema.get("type") == "function" else schema
        if not isinstance(inner, Mapping) or not isinstance(inner.get("name"), str):
            raise TypeError("a tool schema needs {'name': ..., 'parameters': {...}}")
        return cls(inner["name"], str(inner.get("description") or ""),
                   inner.get("parameters") or {"type": "object", "properties": {}}, function,
                   strict=bool(inner.get("strict")), timeout=timeout, source="schema")

    def schema(self) -> dict[str, Any]:
        """The `tools[]` item sent to the model (made once; a Tool is not meant to change)."""
        if self._schema is None:
            parameters = strict_schema(self.parameters) if self.strict else self.parameters
            function: dict[str, Any] = {"name": self.name, "description": self.description, "parameters": parameters}
            if self.strict:
                function["strict"] = True
            self._schema = {"type": "function", "function": function}
        return self._schema

    def arguments(self, values: Any) -> dict[str, Any]:
        """The model's decoded arguments as checked keyword arguments; raises `Mismatch`.
        In strict mode a model sends null for a parameter it leaves out: the default applies."""
        if self.strict and isinstance(values, dict) and self._optional:
            values = {k: v for k, v in values.items() if not (v is None and k in self._optional)}
        return self._convert(values)

    def invoke(self, arguments: Mapping[str, Any]) -> Any:
        """Run one call in the calling thread (the sync driver runs an async tool in a worker
        thread, where `asyncio.run` has no loop to collide with)."""
        if self.function is None:
            raise TypeError(f"tool {self.name!r} has no function to run")
        if self.is_async:
            import asyncio

            return asyncio.run(self.function(**arguments))
        return self.function(**arguments)

    async def ainvoke(self, arguments: Mapping[str, Any]) -> Any:
        """Run one call from async code: a sync function goes to a worker thread, so a slow
        tool never blocks the event loop."""
        if self.function is None:
            raise TypeError(f"tool {self.name!r} has no function to run")
        if self.is_async:
            return await self.function(**arguments)
        import asyncio
        import functools

        return await asyncio.to_thread(functools.partial(self.function, **arguments))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly, as if it were not decorated."""
        if self.function is None:
            raise TypeError(f"tool {self.name!r} has no Python function to call")
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, source={self.source!r})"


def tool(function: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None,
         parameters: Mapping[str, Any] | None = None, strict: bool = False,
         timeout: float | None = None) -> Any:
    """Make a function a tool; usable bare (`@human.tool`) or with settings
    (`@human.tool(name="weather", timeout=10)`). A plain function works as a tool without
    it; the decorator is for a name, a description, strictness, a timeout or your own
    JSON Schema (`parameters=`). The result is still callable as the function."""

    def wrap(fn: Callable[..., Any]) -> Tool:
        if parameters is not None:
            schema = {"name": name or getattr(fn, "__name__", "tool"),
                      "description": description if description is not None else _summary(fn),
                      "parameters": parameters, "strict": strict}
            return Tool.from_schema(schema, fn, timeout=timeout)
        return Tool.from_function(fn, name=name, description=description, strict=strict, timeout=timeout)

    return wrap(function) if function is not None else wrap


def as_tools(items: Iterable[Any]) -> list[Tool]:
    """Every item as a `Tool`; raises `TypeError` naming the first that cannot be one, or a
    name used twice (the model could not say which it meant)."""
    out: list[Tool] = []
    seen: dict[str, Tool] = {}
    for index, item in enumerate(items):
        if isinstance(item, Tool):
            made = item
        elif isinstance(item, Mapping):
            label = item.get("function", item).get("name") if isinstance(item.get("function", item), Mapping) else None
            raise TypeError(f"tools[{index}] ({label or 'a dict'}) has no function to run; pass the function "
                            "itself, or human.tool(fn, parameters=<its JSON Schema>)")
        elif callable(item):
            made = _described(item)
        else:
            raise TypeError(f"tools[{index}] is a {type(item).__name__}; a tool is a function, a human.Tool, "
                            "or a tool an MCP server lists")
        if made.name in seen:
            raise TypeError(f"two tools are named {made.name!r} ({seen[made.name]!r} and {made!r}); "
                            "rename one: human.tool(fn, name=...), or give an MCP server a prefix")
        seen[made.name] = made
        out.append(made)
    return out


# A plain function passed to many runs is described once: reading a signature, its type
# hints and its docstring costs ~0.5 ms, ten times a whole turn of the loop. Weak keys: a
# function that goes away takes its description with it.
_DESCRIBED: weakref.WeakKeyDictionary[Callable[..., Any], Tool] = weakref.WeakKeyDictionary()


def _described(function: Callable[..., Any]) -> Tool:
    try:
        made = _DESCRIBED.get(function)
    except TypeError:  # not weakly referenceable (a builtin): describe it every time
        return Tool.from_function(function)
    if made is None:
        made = _DESCRIBED[function] = Tool.from_function(function)
    return made


def render_output(value: Any) -> str:
    """A tool's return value as the text the model reads: a str as it is, else JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)  # a Pydantic model, without importing pydantic
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _schema_checker(parameters: Mapping[str, Any]) -> Callable[[Any], dict[str, Any]]:
    """Arguments checked against a JSON Schema we were given (the subset `core.schema`
    knows; other keywords are the server's business) and passed on unchanged."""
    schema = dict(parameters)

    def check(values: Any) -> dict[str, Any]:
        if not isinstance(values, dict):
            raise Mismatch([f"$: expected an object, got {type(values).__name__}"])
        # an "unknown-key" is an error here too: the schema closed the object
        problems = [f"${pointer.rstrip('/').replace('/', '.')}: {message}"
                    for _kind, pointer, message in validate(values, schema)]
        if problems:
            raise Mismatch(problems)
        return values

    return check


def _summary(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())
