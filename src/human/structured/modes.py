"""How structured output is asked for on one endpoint: the mode ladder, the choice of a
mode, and the request each mode sends. Pure: no I/O.

The ladder, best first (wave2.md B.1, F.1):

    json_schema_strict  response_format json_schema with strict: true; the schema made
                        strict (every object closed, every field required, optional ones
                        nullable: OpenAI and Groq refuse anything else, wave2.md B.2 item 3)
    json_schema         response_format json_schema, not strict
    json_object         response_format json_object, and the schema in the system prompt
    prompt              no response_format: the schema in the system prompt, the JSON found
                        in the answer (bare or fenced, after any <think> block)
    tools               one forced tool call, `final_result`, whose arguments are the object
                        (for endpoints where tools work and JSON modes do not)

The mode is chosen per endpoint, first match wins:

    1. `mode=` on the call (or "auto", the default, to let the rest decide)
    2. what this client learned earlier: a 400 that named response_format, or an answer
       with no JSON in it although json_schema was asked for (the server ignores it)
    3. the capability profile `human doctor` saved (accepted *and* honoured)
    4. the provider's `structured_output` in the registry or the config
    5. json_schema (not strict), stepping down on a 400 that names response_format

Instructor's users measured why the order matters: on a local llama3.1:8b, json_object
validated 2/5 times where json_schema validated 5/5 (peers.md §2.6).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.wire import normalize_messages
from ..errors import BadRequestError, ContextLengthError, HumanError
from .spec import OutputSpec

__all__ = ["MODES", "TOOL_NAME", "choose", "instruction", "is_rejection", "request", "step_down"]

MODES = ("json_schema_strict", "json_schema", "json_object", "prompt", "tools")
TOOL_NAME = "final_result"
FORCED = "chosen with mode="
_FORMAT_MODES = ("json_schema_strict", "json_schema", "json_object")
_NEXT = {"json_schema_strict": "json_schema", "json_schema": "json_object", "json_object": "prompt",
         "tools": "prompt"}


def choose(forced: str | None, learned: str | None, profile: Any, hint: str | None,
           spec: OutputSpec) -> tuple[str, str]:
    """(mode, why) for one endpoint. `profile` is a `human.profile.Profile` or None,
    `hint` the provider's `structured_output` setting. A mode chosen with `mode=` is kept:
    it is not stepped down from (`forced()`)."""
    if forced not in (None, "auto"):
        if forced not in MODES:
            raise ValueError(f"mode must be 'auto' or one of {', '.join(MODES)}, not {forced!r}")
        return _fit(forced, spec), FORCED
    if learned is not None:
        return learned, "learned from an earlier answer of this endpoint"
    if profile is not None and (profile.supports_json_schema is not None or profile.supports_json_object is not None):
        if profile.supports_json_schema and profile.honours_json_schema is not False:
            # doctor probes json_schema with strict: true, so accepted means strict is accepted
            return _fit("json_schema_strict", spec), "from the capability profile (json_schema accepted)"
        if profile.supports_json_object and profile.honours_json_object is not False:
            return "json_object", "from the capability profile (json_schema rejected or ignored, json_object works)"
        if profile.supports_tools and profile.calls_tools:
            return "tools", "from the capability profile (response_format rejected or ignored; the model calls tools)"
        return "prompt", "from the capability profile (response_format rejected or ignored)"
    if hint is not None:
        return _fit(hint, spec), "from the provider's structured_output setting"
    return "json_schema", "the default (no capability profile; `human doctor` measures one)"


def step_down(mode: str) -> str | None:
    """The next rung after a rejection, or None at the bottom."""
    return _NEXT.get(mode)


def is_rejection(error: HumanError, mode: str) -> bool:
    """True when `error` is the server refusing the way this mode asked (a 400 naming
    response_format / the schema, or tool_choice in tools mode), not the request as a whole."""
    if not isinstance(error, BadRequestError) or isinstance(error, ContextLengthError):
        return False
    text = " ".join(str(part) for part in (error.message, error.param, error.code, error.body) if part).lower()
    if mode == "tools":
        return "tool" in text or "function" in text
    if mode in _FORMAT_MODES:
        return any(word in text for word in ("response_format", "json_schema", "json_object"))
    return False


def instruction(spec: OutputSpec) -> str:
    """The system-prompt text of the json_object and prompt modes."""
    schema = json.dumps(spec.schema, ensure_ascii=False, separators=(",", ":"))
    return ("Answer with one JSON object that matches this JSON Schema, and nothing else: no prose, "
            f"no code fences.\nJSON Schema: {schema}")


def request(mode: str, spec: OutputSpec, messages: Any, options: Mapping[str, Any]) -> tuple[
        list[dict[str, Any]], dict[str, Any]]:
    """(messages, options) for one `chat` call in `mode`; `options` are the caller's own."""
    out = dict(options)
    listed = normalize_messages(messages)
    if mode in ("json_schema_strict", "json_schema"):
        strict = mode == "json_schema_strict"
        body: dict[str, Any] = {"name": spec.name, "schema": spec.strict_schema if strict else spec.schema}
        if strict:
            body["strict"] = True
        out["response_format"] = {"type": "json_schema", "json_schema": body}
        return list(listed), out
    if mode == "tools":
        if out.get("tools") or out.get("tool_choice"):
            raise TypeError("mode='tools' asks for the answer as a forced tool call; it cannot be combined "
                            "with tools= or tool_choice= (use another mode, or human's agent loop)")
        out["tools"] = [{"type": "function", "function": {
            "name": TOOL_NAME, "description": "Give the final answer: its arguments are the answer.",
            "parameters": spec.schema}}]
        out["tool_choice"] = {"type": "function", "function": {"name": TOOL_NAME}}
        out.pop("response_format", None)
        return list(listed), out
    if mode == "json_object":
        out["response_format"] = {"type": "json_object"}
    else:
        out.pop("response_format", None)
    return with_system(listed, instruction(spec)), out


def with_system(messages: Sequence[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The messages with `text` added to the leading system message (or in a new one):
    some chat templates refuse a second system message, or one that is not first."""
    if messages and messages[0].get("role") in ("system", "developer") and isinstance(messages[0].get("content"), str):
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{text}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _fit(mode: str, spec: OutputSpec) -> str:
    """Strict mode cannot express a free-keyed object (`dict[str, T]`): send it not strict."""
    return "json_schema" if mode == "json_schema_strict" and not spec.strict_ok else mode
