"""Structured output: a type in, a validated object out, on whatever the endpoint supports.

    person = client.parse("Ada Lovelace, 36", Person)            # a Person
    answer = client.chat(messages, response_format=list[Person])  # answer.parsed: list[Person]
    for event in client.stream(messages, response_format=Person):
        if event.type == "partial": print(event.value)            # {"name": "Ada"} ...

The parts, each one idea:

    spec.py     the type (Pydantic model, dataclass, TypedDict, list[...], JSON Schema dict)
                as the schema to send and the check of the answer (pure)
    modes.py    the mode ladder, the choice of a mode per endpoint, each mode's request (pure)
    session.py  one call as a state machine: judge an answer, re-ask, step down, totals (pure)
    drive.py    the sync and async drivers, through the client's own chat() and stream()

The client imports this package only when `response_format` is a type or a schema, so
`import human` and plain chat calls never load it.
"""

from __future__ import annotations

from .modes import MODES, TOOL_NAME
from .spec import OutputSpec, output_spec

__all__ = ["MODES", "TOOL_NAME", "OutputSpec", "output_spec"]
