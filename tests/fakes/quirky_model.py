"""A pretend model behind the fake server, for structured-output tests: it answers one
fixed object, and honours, ignores or rejects each way of asking for JSON the way real
servers do (wave2.md B.2):

    fake.respond(QuirkyModel(rejects={"json_object"})).as_default()   # LM Studio
    fake.respond(QuirkyModel(ignores={"json_schema", "json_object"})).as_default()  # aimock

What it answers, by what the request asked:

    rejected format         HTTP 400 naming response_format (LM Studio's words)
    strict json_schema      HTTP 400 unless every object is closed and lists every
                            property in `required` (OpenAI's and Groq's rule)
    forced tool call        a call of that tool with the object as its arguments
    honoured format         the object as bare JSON
    schema in the prompt    the object, dressed as `dress` says (fenced, after <think>, ...)
    anything else           prose without JSON
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.fakes.openai_server import Recorded

ADA = {"name": "Ada", "age": 36}
PROSE = "Ada Lovelace was 36 years old."


def completion(content: str | None, *, tool_calls: list[dict[str, Any]] | None = None, finish: str = "stop",
               usage: dict[str, int] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": "chatcmpl-quirky", "object": "chat.completion", "model": "quirky",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


def closed(schema: Any) -> bool:
    """Every object in the schema closed, with all its properties required (strict's rule)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            if schema.get("additionalProperties") is not False:
                return False
            if set(schema.get("required", ())) != set(schema["properties"]):
                return False
        return all(closed(value) for value in schema.values())
    if isinstance(schema, list):
        return all(closed(item) for item in schema)
    return True


class QuirkyModel:
    """Callable for `fake.respond`; counts what it saw in `seen`."""

    def __init__(self, *, answer: Any = None, rejects: set[str] = frozenset(), ignores: set[str] = frozenset(),
                 dress: Callable[[str], str] = lambda text: text, tools: bool = True) -> None:
        self.answer = ADA if answer is None else answer
        self.rejects, self.ignores, self.dress, self.tools = set(rejects), set(ignores), dress, tools
        self.seen: list[str] = []

    def __call__(self, request: Recorded) -> Any:
        body = request.json or {}
        kind = (body.get("response_format") or {}).get("type")
        if kind in self.rejects:
            self.seen.append(f"rejected {kind}")
            return 400, {"error": {"message": "'response_format.type' must be 'json_schema' or 'text'",
                                   "type": "invalid_request_error", "param": "response_format"}}
        if kind == "json_schema":
            spec = body["response_format"]["json_schema"]
            if spec.get("strict") and not closed(spec["schema"]):
                self.seen.append("rejected strict schema")
                return 400, {"error": {"message": "Invalid schema for response_format 'x': In context=(), "
                                                  "'additionalProperties' is required to be supplied and to be false",
                                       "type": "invalid_request_error", "param": "response_format"}}
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            if not self.tools:
                self.seen.append("rejected tools")
                return 400, {"error": {"message": "tool_choice is not supported", "param": "tool_choice"}}
            self.seen.append("tool call")
            name = choice["function"]["name"]
            call = {"id": "call_1", "type": "function",
                    "function": {"name": name, "arguments": json.dumps(self.answer)}}
            return completion(None, tool_calls=[call], finish="tool_calls")
        text = json.dumps(self.answer)
        if kind is not None and kind not in self.ignores:
            self.seen.append(f"honoured {kind}")
            return completion(text)
        if any("JSON Schema" in str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "system"):
            self.seen.append("prompted")
            return completion(self.dress(text))
        self.seen.append("prose")
        return completion(PROSE)
