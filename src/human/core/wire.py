"""Builds the JSON body of a chat request for one target. Pure: no I/O.

What goes out is exactly what was asked for: the model string untouched, temperature 0
sent as 0, the token limit under the field the provider takes, `stream_options` only
where the provider accepts it. Every change made on the caller's behalf is returned as
an adjustment, never made silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["NOT_GIVEN", "NotGiven", "build_body", "encode", "normalize_messages"]


class NotGiven:
    """Sentinel: "not passed, use the configured default" (None means "send nothing")."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN = NotGiven()

class BodyTarget(Protocol):
    """What the body builder reads from a resolved target (`human.config.Target`); a
    Protocol, so this pure module knows nothing of configuration."""

    @property
    def model(self) -> str: ...
    @property
    def temperature(self) -> float | None: ...
    @property
    def max_tokens(self) -> int | None: ...
    @property
    def token_field(self) -> str: ...
    @property
    def stream_usage(self) -> bool: ...


_ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})


def normalize_messages(messages: Any) -> list[dict[str, Any]]:
    """Check the messages' shape and turn text-only part lists into plain strings
    (string-only servers reject arrays; peers.md item 17). A list that needs no change
    is returned as it is: every object made here is paid for per request, in garbage
    collection too."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if not isinstance(messages, Sequence) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    out: list[dict[str, Any]] | None = None
    for index, message in enumerate(messages):
        if message.__class__ is not dict:
            if not isinstance(message, Mapping):
                raise ValueError(f"messages[{index}] must be a dict, not {type(message).__name__}")
            message = dict(message)
            out = out if out is not None else list(messages[:index])
        role = message.get("role")
        if role not in _ROLES:
            raise ValueError(f"messages[{index}] has role {role!r}; expected one of {sorted(_ROLES)}")
        if role == "tool" and not message.get("tool_call_id"):
            raise ValueError(f"messages[{index}] is a tool result without 'tool_call_id'")
        content = message.get("content")
        if content.__class__ is list and content and all(
            isinstance(part, Mapping) and part.get("type") == "text" for part in content
        ):
            message = {**message, "content": "".join(str(part.get("text", "")) for part in content)}
            out = out if out is not None else list(messages[:index])
        if out is not None:
            out.append(message)
    return out if out is not None else list(messages) if messages.__class__ is not list else messages


def _tools(tools: Sequence[Any]) -> list[Any]:
    """Tools in OpenAI's shape; the short form {"name", "description", "parameters"} is
    wrapped. A list already in shape is sent as it is."""
    out: list[Any] | None = None
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise ValueError(f"tools[{index}] must be a dict in OpenAI's tool shape")
        if tool.get("type") == "function" and "function" in tool:
            if out is not None:
                out.append(tool)
        elif "name" in tool:
            out = out if out is not None else list(tools[:index])
            out.append({"type": "function", "function": dict(tool)})
        else:
            raise ValueError(f"tools[{index}] needs {{'type': 'function', 'function': {{'name': ...}}}}")
    return out if out is not None else list(tools) if tools.__class__ is not list else tools


def _response_format(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"type": value}
    if isinstance(value, Mapping):
        if "type" in value and value["type"] in ("json_object", "json_schema", "text"):
            return dict(value)
        # a bare JSON Schema: wrap it the way OpenAI's json_schema format wants
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": dict(value)}}
    raise ValueError("response_format must be 'json_object', a {'type': ...} dict, or a JSON Schema dict")


def build_body(
    target: BodyTarget,
    messages: Any,
    *,
    stream: bool = False,
    temperature: float | None | NotGiven = NOT_GIVEN,
    max_tokens: int | None | NotGiven = NOT_GIVEN,
    tools: Sequence[Any] | None = None,
    tool_choice: Any = None,
    parallel_tool_calls: bool | None = None,
    response_format: Any = None,
    stop: str | Sequence[str] | None = None,
    seed: int | None = None,
    top_p: float | None = None,
    reasoning_effort: str | None = None,
    extra_body: Mapping[str, Any] | None = None,
    drop: frozenset[str] = frozenset(),
    rename: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The request body for `target`, and the list of adjustments made to it.

    `drop` and `rename` come from the endpoint's capability profile (parameters the
    server is known to reject); each use is reported as an adjustment.
    """
    body: dict[str, Any] = {"model": target.model, "messages": normalize_messages(messages)}
    adjustments: list[str] = []
    temp = target.temperature if isinstance(temperature, NotGiven) else temperature
    if temp is not None:
        if not 0 <= temp <= 2:
            raise ValueError(f"temperature must be between 0 and 2, not {temp}")
        body["temperature"] = temp
    limit = target.max_tokens if isinstance(max_tokens, NotGiven) else max_tokens
    if limit is not None:
        body[target.token_field] = limit
    if tools:
        body["tools"] = _tools(tools)
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if parallel_tool_calls is not None:
        body["parallel_tool_calls"] = parallel_tool_calls
    if response_format is not None:
        body["response_format"] = _response_format(response_format)
    if stop is not None:
        body["stop"] = stop
    if seed is not None:
        body["seed"] = seed
    if top_p is not None:
        body["top_p"] = top_p
    if reasoning_effort is not None:
        body["reasoning_effort"] = reasoning_effort
    if stream:
        body["stream"] = True
        if target.stream_usage:
            body["stream_options"] = {"include_usage": True}
    if extra_body:
        body.update(extra_body)
    for old, new in (rename or {}).items():
        if old in body and new not in body:
            body[new] = body.pop(old)
            adjustments.append(f"renamed {old} to {new} (the endpoint rejects {old})")
    for name in sorted(drop):
        if name in body:
            del body[name]
            adjustments.append(f"dropped {name} (the endpoint rejects it)")
    return body, adjustments


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once, not per call


def encode(body: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(body).encode("utf-8")
