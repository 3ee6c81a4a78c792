"""A schema written the short way, for `human chat --schema`. Pure: no I/O.

The syntax of simonw/llm's concise schemas (peers.md §2.5), so users of both need not
learn two: fields separated by commas or new lines, each `name [type][: description]`,
the type one of str (the default), int, float, bool:

    concise_schema("name, age int, bio: a one-line biography")
    # {"type": "object",
    #  "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
    #                 "bio": {"type": "string", "description": "a one-line biography"}},
    #  "required": ["name", "age", "bio"], "additionalProperties": false}

Every field is required and the object is closed, so the same schema works in strict
mode. A description may hold commas only when fields are given one per line.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["concise_schema"]

_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer", "float": "number",
          "number": "number", "bool": "boolean", "boolean": "boolean"}
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\s+([A-Za-z]+))?\s*(?::\s*(.*))?$", re.DOTALL)


def concise_schema(text: str) -> dict[str, Any]:
    """The JSON Schema of a concise field list; raises `ValueError` naming the bad part."""
    separator = "\n" if "\n" in text.strip() else ","
    properties: dict[str, Any] = {}
    for part in (piece.strip() for piece in text.strip().split(separator)):
        if not part:
            continue
        match = _FIELD.match(part.rstrip(","))
        if match is None:
            raise ValueError(f"--schema: cannot read {part!r}; write fields as 'name type: description', "
                             "e.g. 'name str, age int' (types: str, int, float, bool)")
        name, kind, description = match.groups()
        if kind is not None and kind.lower() not in _TYPES:
            raise ValueError(f"--schema: field {name!r} has the unknown type {kind!r}; use str, int, float or bool")
        if name in properties:
            raise ValueError(f"--schema: field {name!r} appears twice")
        field: dict[str, Any] = {"type": _TYPES[(kind or "str").lower()]}
        if description and description.strip():
            field["description"] = description.strip()
        properties[name] = field
    if not properties:
        raise ValueError("--schema: no fields given; e.g. --schema 'name str, age int'")
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
