"""Tool calling for endpoints that have none: the tools are described in the system
prompt, the model answers with a JSON tool call, and we read it back. Pure: no I/O.

The conversation itself stays in OpenAI's native shape (assistant `tool_calls`, `role:
"tool"` results), so it can be continued anywhere; `project()` renders it, at send time,
in the plain user/assistant/system shape such an endpoint accepts:

    assistant {tool_calls: [...]}       assistant "<its text>\n{"tool_calls": [...]}"
    tool {tool_call_id, content} ...    one user message: "Result of get_weather (call_1): ..."

What the model may answer with to call tools (`parse_calls`), alone or after some text,
bare or in a ```json fence: {"tool_calls": [{"name": ..., "arguments": {...}}, ...]}, one
such call on its own, or a list of them ("tool"/"function" for "name" and "args"/
"parameters" for "arguments" are read too: small models drift). A bare object counts only
when it names one of the tools, so a JSON answer is not mistaken for a call.

Where this is used is decided by the loop (agent/plan.py): the endpoint's config entry
says `native_tools: false`, its capability profile says tools were rejected, or it
answers 400 naming `tools` (llama.cpp without --jinja, vLLM without
--enable-auto-tool-choice, Ollama's "does not support tools"). Always reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..types import ToolCall

__all__ = ["ContentGate", "names_tools", "parse_calls", "project", "tools_prompt"]

_INSTRUCTIONS = """\
You can call tools. To call one or more, answer with only this JSON and nothing else:
{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments as the tool's schema says>}}]}
You will then get each tool's result in a message that starts with "Result of". When you \
have what you need, answer the user normally, without JSON. Do not invent results.

The tools:"""


def tools_prompt(tools: Sequence[dict[str, Any]]) -> str:
    """The system-prompt text that describes `tools` (OpenAI `tools[]` items)."""
    lines = [_INSTRUCTIONS]
    for item in tools:
        function = item.get("function", item)
        lines.append(json.dumps({"name": function.get("name"), "description": function.get("description", ""),
                                 "parameters": function.get("parameters", {})}, ensure_ascii=False))
    return "\n".join(lines)


def project(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as an endpoint without native tools can take it."""
    prompt = tools_prompt(tools)
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    pending: list[str] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            call_id = str(message.get("tool_call_id"))
            pending.append(f"Result of {names.get(call_id, 'the tool')} ({call_id}):\n{_text(message.get('content'))}")
            continue
        if pending:
            out.append({"role": "user", "content": "\n\n".join(pending)})
            pending = []
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for item in message["tool_calls"]:
                function = item.get("function", {})
                names[str(item.get("id"))] = function.get("name", "")
                calls.append({"name": function.get("name"), "arguments": _decoded(function.get("arguments"))})
            text = _text(message.get("content")).strip()
            rendered = json.dumps({"tool_calls": calls}, ensure_ascii=False)
            out.append({"role": "assistant", "content": f"{text}\n{rendered}" if text else rendered})
            continue
        out.append({key: value for key, value in message.items() if key not in ("tool_calls", "name")}
                   if role == "assistant" else message)
    if pending:
        out.append({"role": "user", "content": "\n\n".join(pending)})
    if out and out[0].get("role") == "system":
        out[0] = {**out[0], "content": f"{_text(out[0].get('content'))}\n\n{prompt}"}
    else:
        out.insert(0, {"role": "system", "content": prompt})
    return out


def parse_calls(text: str | None, names: Iterable[str], *, only: bool = False) -> tuple[list[ToolCall], str | None]:
    """(tool calls, the text before them) when `text` holds a tool call; else ([], text).

    `only=True` is for an answer from an endpoint with native tools that left a call in its
    text instead (a chat template the server could not parse: Hermes' `<tool_call>`,
    Mistral's `[TOOL_CALLS]`, Llama's `<|python_tag|>`): the text must be nothing but the
    call, in those wrappers or a fence, and every name a known tool."""
    if not text:
        return [], text
    known = frozenset(names)
    for start, end, value in _json_values(text):
        calls = _calls_in(value, known)
        if not calls:
            continue
        before = _unwrapped(text[:start])
        if only and (before or _unwrapped(text[end:]) or any(call.name not in known for call in calls)):
            return [], text
        return calls, before or None
    return [], text


# What servers and chat templates put around a call left in the text (and fences)
_WRAPPERS = re.compile(r"<tool_call>|</tool_call>|\[TOOL_CALLS\]|<\|python_tag\|>|<\|eom_id\|>|```(?:json)?",
                       re.IGNORECASE)


def _unwrapped(text: str) -> str:
    return _WRAPPERS.sub("", text).strip()


class ContentGate:
    """Holds back streamed text that may be an emulated tool call, so the JSON of a call is
    never shown as the answer. Text that starts like anything else flows through at once."""

    __slots__ = ("_held", "_open")

    def __init__(self) -> None:
        self._held: list[str] = []
        self._open = False

    def feed(self, text: str) -> str:
        """The part of `text` to show now."""
        if self._open:
            return text
        self._held.append(text)
        head = "".join(self._held).lstrip()
        if not head or head.startswith(("{", "[", "`", "<")):
            return ""
        self._open = True
        released, self._held = "".join(self._held), []
        return released

    def finish(self, is_call: bool) -> str:
        """What is still held: nothing when it was a tool call."""
        held, self._held = "".join(self._held), []
        return "" if is_call else held


_TOOLS_RE = re.compile(r"\btools\b|tool[ _]choice|tool[ _-]?call(?:ing)?\s+is\s+not|tool[ _]calling|"
                       r"function[ _]calling|does not support tool|tool[ _]use", re.IGNORECASE)


def names_tools(param: str | None, message: str) -> bool:
    """Whether a 400 says the endpoint cannot take tools: its `param` is tools/tool_choice,
    or its message names them. "tool_calls" and "tool_call_id" do not count: those are
    about the conversation, not about tool support."""
    if param in ("tools", "tool_choice", "functions", "parallel_tool_calls"):
        return True
    return bool(_TOOLS_RE.search(message))


# ---- reading JSON out of text ------------------------------------------------------------

_DECODER = json.JSONDecoder()


def _json_values(text: str) -> Iterable[tuple[int, int, Any]]:
    """(start, end, value) of each JSON object or array that starts somewhere in `text`."""
    tried = 0
    for match in re.finditer(r"[{\[]", text):
        start = match.start()
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            continue
        tried += 1
        yield start, end, value
        if tried >= 8:  # a long answer full of braces: it is prose, not a call
            return


def _calls_in(value: Any, known: frozenset[str]) -> list[ToolCall]:
    wrapped = isinstance(value, dict) and ("tool_calls" in value or "tool_call" in value)
    if wrapped:
        value = value.get("tool_calls", value.get("tool_call"))
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict):
            return []
        inner = item.get("function")
        function: dict[str, Any] = inner if isinstance(inner, dict) else item
        name = function.get("name", function.get("tool"))
        if not isinstance(name, str) or not name or (not wrapped and name not in known):
            return []
        arguments = function.get("arguments", function.get("args", function.get("parameters", {})))
        text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        calls.append(ToolCall(id=None, name=name, arguments=text))
    return calls


def _decoded(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments or "{}")
        except ValueError:
            return arguments
    return arguments


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)
