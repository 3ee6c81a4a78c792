"""A scripted model for the agent-loop tests, served by the fake server (`fake.respond`).

It answers in order from a script, and checks every request the way strict servers do, so
a test fails loudly (a 400 the client raises) if the loop ever sends a conversation a
real server would refuse:

- pairing (OpenAI, and most servers: QwenLM/qwen-code#606, BerriAI/litellm#28995): each
  assistant message with tool_calls is followed by exactly one tool message per call id,
  before any other message; no tool message answers an id that was not asked;
- `require_reasoning`: DeepSeek's thinking mode, 400 "Missing reasoning_content field"
  when an assistant tool-call message lacks it (deepseek-ai/DeepSeek-V3#1053);
- `reject_tools`: llama.cpp without --jinja, 400 when the body has `tools`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Model", "answer", "call", "pairing_problems"]


def call(name: str, arguments: Any = None, id: str | None = "auto", **extra: Any) -> dict[str, Any]:  # noqa: A002
    """One `tool_calls[]` item; id "auto" becomes call_<name>_<n>, None leaves it out."""
    item: dict[str, Any] = {"type": "function", "function": {
        "name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments or {})}}
    if id is not None:
        item["id"] = id
    item.update(extra)
    return item


def answer(content: str | None = None, calls: Sequence[dict[str, Any]] = (), *, reasoning: str | None = None,
           usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A chat.completion body."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = list(calls)
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    body: dict[str, Any] = {"id": "chatcmpl-agent", "object": "chat.completion", "model": "fake-model",
                            "choices": [{"index": 0, "message": message,
                                         "finish_reason": "tool_calls" if calls else "stop"}]}
    if usage is not None:
        body["usage"] = usage
    return body


def pairing_problems(messages: Sequence[dict[str, Any]]) -> list[str]:
    """What a strict server would refuse in `messages` (empty: nothing)."""
    problems = []
    index = 0
    while index < len(messages):
        message = messages[index]
        if message.get("role") == "tool":
            problems.append(f"messages[{index}]: a tool message that answers no preceding tool call")
            index += 1
            continue
        ids = [item.get("id") for item in message.get("tool_calls") or ()] if message.get("role") == "assistant" else []
        index += 1
        if not ids:
            continue
        answered = []
        while index < len(messages) and messages[index].get("role") == "tool":
            answered.append(messages[index].get("tool_call_id"))
            index += 1
        if sorted(map(str, answered)) != sorted(map(str, ids)) or len(set(ids)) != len(ids):
            problems.append(f"an assistant message with 'tool_calls' must be followed by tool messages responding "
                            f"to each 'tool_call_id' (asked {ids}, answered {answered})")
    return problems


class Model:
    """Answers from `script` (bodies, or functions of the request body returning one), then
    `then` (a body or function) for every later request."""

    def __init__(self, *script: Any, then: Any = None, require_reasoning: bool = False,
                 reject_tools: bool = False) -> None:
        self.script = list(script)
        self.then = then
        self.require_reasoning = require_reasoning
        self.reject_tools = reject_tools
        self.bodies: list[dict[str, Any]] = []
        self.refusals: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, request: Any) -> Any:
        body = request.json
        with self._lock:
            self.bodies.append(body)
            refusal = self._refuse(body)
            if refusal is not None:
                self.refusals.append(refusal)
                return 400, {"error": {"message": refusal, "type": "invalid_request_error", "param": None,
                                       "code": None}}
            step = self.script.pop(0) if self.script else self.then
        if step is None:
            return 599, {"error": {"message": "the scripted model has no more answers"}}
        return step(body) if isinstance(step, Callable) else step  # type: ignore[arg-type]

    def _refuse(self, body: dict[str, Any]) -> str | None:
        if self.reject_tools and "tools" in body:
            return "tools param requires --jinja flag"
        problems = pairing_problems(body.get("messages", []))
        if problems:
            return problems[0]
        if self.require_reasoning:
            for index, message in enumerate(body.get("messages", [])):
                if message.get("role") == "assistant" and message.get("tool_calls") and (
                        "reasoning_content" not in message):
                    return f"Missing `reasoning_content` field in the assistant message at message index {index}"
        return None

    @property
    def last(self) -> dict[str, Any]:
        return self.bodies[-1]
