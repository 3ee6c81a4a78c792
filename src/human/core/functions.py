"""Python functions described as tools: name, description and the JSON Schema of the
parameters from the signature, the type hints and the docstring; the model's arguments
checked and converted back into keyword arguments. Pure: no I/O.

    spec = function_spec(get_weather)           # name, description, parameters schema
    kwargs = spec.arguments({"city": "Oslo"})   # converted; raises Mismatch listing problems
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .typeschema import Shape, object_shape, type_hints

__all__ = ["FunctionSpec", "function_spec"]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A Python function described as a tool: its name, description, the JSON Schema of
    its parameters, and how to turn the model's arguments into keyword arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any] = field(repr=False)
    _params: Shape = field(repr=False)

    def arguments(self, values: Any) -> dict[str, Any]:
        """The model's arguments (a decoded JSON object) as checked keyword arguments;
        raises `Mismatch` listing every problem."""
        converted: dict[str, Any] = self._params.convert(values)
        return converted


def function_spec(function: Callable[..., Any], *, name: str | None = None,
                  description: str | None = None) -> FunctionSpec:
    """Describe `function` as a tool from its signature, type hints and docstring.

    Parameter descriptions come from `Annotated[T, "..."]` or from the docstring's
    Google (`Args:`), Sphinx (`:param x:`) or NumPy (`Parameters`) section. A parameter
    without a type hint accepts any JSON value; `*args` and `**kwargs` are refused.
    """
    target = inspect.unwrap(function)
    signature = inspect.signature(target)
    hints = type_hints(target)
    summary, param_docs = _parse_docstring(inspect.getdoc(target) or "")
    rows = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{_label(function)}: *{param.name} cannot be a tool parameter; "
                            "name each parameter the model may pass")
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"{_label(function)}: positional-only parameter {param.name!r} cannot be "
                            "passed by name; drop the '/'")
        if param.name in ("self", "cls") and param is next(iter(signature.parameters.values())):
            continue
        hint = hints.get(param.name, Any)
        rows.append((param.name, hint, param.default is inspect.Parameter.empty, param_docs.get(param.name)))
    tool_name = name or getattr(function, "__name__", None) or "tool"
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tool_name):
        raise TypeError(f"tool name {tool_name!r} must be 1-64 letters, digits, '_' or '-' "
                        "(OpenAI's rule); pass name=...")
    params = object_shape(tool_name, rows)
    return FunctionSpec(tool_name, description if description is not None else summary, params.schema, function,
                        params)


_PARAM_HEADS = ("Args", "Arguments", "Parameters", "Params", "Keyword Args", "Keyword Arguments")
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns?|Raises|"
                      r"Yields|Examples?|Notes?|See Also|Attributes)\s*:?\s*$")
_SPHINX_PARAM = re.compile(r":param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)")
_SPHINX_OTHER = re.compile(r":(returns?|raises?|rtype|type|yields?)\b")
_NUMPY_ENTRY = re.compile(r"\*{0,2}(\w+)\s+:\s*(.*)")  # "name : type", description below
_GOOGLE_ENTRY = re.compile(r"\*{0,2}(\w+)\s*(?:\([^)]*\))?:\s*(.*)")  # "name (type): description"


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(description, {parameter: description}) from a Google, Sphinx or NumPy docstring.
    The description is the text before the first section."""
    lines = doc.splitlines()
    described: list[str] = []
    params: dict[str, str] = {}
    mode = "text"
    current: str | None = None
    entry_indent: int | None = None
    for index, line in enumerate(lines):
        text = line.strip()
        sphinx = _SPHINX_PARAM.match(text)
        if sphinx:
            mode, current = "sphinx", sphinx.group(1)
            params[current] = sphinx.group(2)
            continue
        if _SPHINX_OTHER.match(text):
            mode, current = "other", None
            continue
        heading = _SECTION.match(text)
        if heading and (text.endswith(":") or _underlined(lines, index)):
            mode = "params" if heading.group(1) in _PARAM_HEADS else "other"
            current, entry_indent = None, None
            continue
        if text and set(text) == {"-"}:
            continue  # a NumPy underline
        if mode == "text":
            described.append(text)
        elif mode == "params" and text:
            indent = len(line) - len(line.lstrip())
            if entry_indent is None:
                entry_indent = indent
            entry = _NUMPY_ENTRY.fullmatch(text) or _GOOGLE_ENTRY.fullmatch(text) if indent <= entry_indent else None
            if entry is not None:
                current = entry.group(1)
                numpy = entry.re is _NUMPY_ENTRY
                params[current] = "" if numpy else entry.group(2)
            elif current is not None:
                params[current] = f"{params[current]} {text}"
        elif mode == "sphinx" and text and current is not None and line[:1] in (" ", "\t"):
            params[current] = f"{params[current]} {text}"
    return " ".join(" ".join(described).split()), {k: " ".join(v.split()) for k, v in params.items()}


def _underlined(lines: list[str], index: int) -> bool:
    return index + 1 < len(lines) and bool(lines[index + 1].strip()) and set(lines[index + 1].strip()) == {"-"}


def _label(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", None) or getattr(function, "__name__", None) or repr(function)
