"""The values `human` hands back and takes in: messages, tool calls, usage, responses,
and the typed events of a stream.

Everything here is a small frozen dataclass with no I/O. Messages are plain dicts in
OpenAI's shape (what the wire takes); the helpers below only build such dicts, so a
caller may use either.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union

from .errors import ToolArgumentsError

if TYPE_CHECKING:
    from decimal import Decimal

__all__ = [
    "ChatResponse",
    "Cost",
    "ContentDelta",
    "FinishEvent",
    "ParsedObject",
    "PartialObject",
    "ReasoningDelta",
    "ReaskEvent",
    "StreamEvent",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallDone",
    "ToolCallStart",
    "Usage",
    "UsageEvent",
    "assistant",
    "image_part",
    "system",
    "text_part",
    "tool_result",
    "user",
]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for.

    `arguments` is the raw string the server sent (an object sent instead of a string
    is re-serialised to a string); `parsed_arguments()` decodes it and raises
    `ToolArgumentsError` with the position of the fault when it is not a JSON object.
    `extra` keeps the fields of the call we do not model, verbatim, because some
    servers need them back on the next turn (Gemini's
    `extra_content.google.thought_signature`, peers.md §3 item 18; OpenMAIC#1556).
    """

    id: str | None
    name: str
    arguments: str
    type: str = "function"
    extra: Mapping[str, Any] | None = field(default=None, hash=False)

    def parsed_arguments(self) -> dict[str, Any]:
        text = self.arguments.strip() or "{}"
        problem = ""
        try:
            value = json.loads(text)
        except RecursionError:  # 100k-deep arrays: a typed error, not a crash (issue 10)
            value, problem = None, "nest JSON too deeply to read"
        except json.JSONDecodeError as exc:
            value, problem = None, f"are not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        if problem:
            raise ToolArgumentsError(
                f"tool call {self.name!r} (id {self.id}) has arguments that {problem}: {_preview(self.arguments)}",
                tool_call=self,
            )
        if not isinstance(value, dict):
            raise ToolArgumentsError(
                f"tool call {self.name!r} (id {self.id}) has arguments that are a JSON "
                f"{type(value).__name__}, not an object: {_preview(self.arguments)}",
                tool_call=self,
            )
        return value

    def to_message(self) -> dict[str, Any]:
        """The `tool_calls[]` item to send back in an assistant message."""
        item: dict[str, Any] = {
            "type": self.type,
            "function": {"name": self.name, "arguments": self.arguments},
        }
        if self.id is not None:
            item["id"] = self.id
        if self.extra:
            item.update((key, value) for key, value in self.extra.items() if key not in item)
        return item


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. A field is `None` when the server did not report it."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Cost:
    """What one answer cost. `amount` is exact (a `Decimal`, as the price data computes
    it); `source` says where the price came from (the dataset and the model it was
    priced as, the config's "prices", or a local server); `input` and `output` split it.

        f"{float(response.cost):.6f} {response.cost.currency}"
    """

    amount: Decimal
    currency: str = "USD"
    source: str = ""
    input: Decimal | None = None
    output: Decimal | None = None

    def __float__(self) -> float:
        return float(self.amount)

    def to_dict(self) -> dict[str, Any]:
        """Amounts as strings, so JSON keeps them exact."""
        return {
            "amount": str(self.amount),
            "currency": self.currency,
            "source": self.source,
            "input": None if self.input is None else str(self.input),
            "output": None if self.output is None else str(self.output),
        }


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """One assembled answer, whether it came whole or as a stream.

    `provider`, `model_requested` and `attempt` say who served it (after retries and
    fallbacks); `adjustments` lists every change made to the request before it was
    sent (a parameter renamed or dropped), so nothing is ever changed silently.
    `raw` is the server's body as parsed JSON (for a stream: the last chunk), kept
    because OpenAI-compatible servers add fields we do not model.

    `parsed` is the answer as an instance of the type asked for with
    `response_format=T` (`human.structured`), else None. For such an answer `usage` is
    the total of every request it took (re-asks included), and `adjustments` says which
    mode was used and why.
    `reasoning_replay` names the assistant-message field under which this provider
    wants its reasoning back on a tool-call turn (the registry row's flag, e.g.
    "reasoning_content" for DeepSeek); `to_message()` uses it.

    `cost` is what it cost, or None; then `no_cost_reason` says why (an unknown model,
    no usage reported...): never a guessed 0. It is worked out on first access, so an
    answer nobody prices costs nothing to make.
    """

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str | None = None
    provider: str | None = None
    reasoning: str | None = None
    id: str | None = None
    raw: Any = None
    model_requested: str | None = None
    attempt: int = 1
    adjustments: tuple[str, ...] = ()
    parsed: Any = None
    reasoning_replay: str | None = None
    # (pricer, target, unix time of the answer), set by the client that made it
    _pricing: Any = field(default=None, repr=False, compare=False)
    _priced: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def cost(self) -> Cost | None:
        """What this answer cost, or None (`no_cost_reason` says why)."""
        result: tuple[Cost | None, str | None] = self._priced or self._price()
        return result[0]

    @property
    def no_cost_reason(self) -> str | None:
        """Why `cost` is None; None when there is a cost."""
        result: tuple[Cost | None, str | None] = self._priced or self._price()
        return result[1]

    def _price(self) -> tuple[Cost | None, str | None]:
        if self._pricing is None:
            result: tuple[Cost | None, str | None] = (
                None, "not priced: this answer was not made by a human client")
        else:
            price_answer, target, when = self._pricing
            result = price_answer(self, target, when)
        object.__setattr__(self, "_priced", result)  # frozen: a cache, not a change of value
        return result

    @property
    def text(self) -> str:
        """The content, or an empty string when there was none."""
        return self.content or ""

    def to_message(self) -> dict[str, Any]:
        """This answer as an assistant message, ready to append to the conversation.

        It keeps what the provider needs on the next turn: each tool call's unknown
        fields verbatim (`ToolCall.extra`), and, on a tool-call turn of a provider whose
        registry row sets `reasoning_replay`, the reasoning under that field. DeepSeek's
        thinking mode and Kimi answer 400 "reasoning_content is missing" without it
        (DeepSeek-V3#1053, continuedev/continue#11600); other servers reject the
        unknown field, hence a flag rather than always. An empty string stands in when
        the turn had no reasoning: the check is for presence (obsidian-yolo PR #243)."""
        message = assistant(self.content, tool_calls=self.tool_calls)
        if self.reasoning_replay and self.tool_calls:
            message[self.reasoning_replay] = self.reasoning or ""
        return message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (what `human chat --json` prints)."""
        return {
            "id": self.id,
            "provider": self.provider,
            "model": self.model,
            "model_requested": self.model_requested,
            "attempt": self.attempt,
            "content": self.content,
            "reasoning": self.reasoning,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ],
            "finish_reason": self.finish_reason,
            "usage": None
            if self.usage is None
            else {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total_tokens,
                "cached_tokens": self.usage.cached_tokens,
                "reasoning_tokens": self.usage.reasoning_tokens,
                "cache_write_tokens": self.usage.cache_write_tokens,
            },
            "cost": None if self.cost is None else self.cost.to_dict(),
            "no_cost_reason": self.no_cost_reason,
            "adjustments": list(self.adjustments),
        }


# ---- stream events --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContentDelta:
    type: ClassVar[Literal["content"]] = "content"
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    type: ClassVar[Literal["reasoning"]] = "reasoning"
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    type: ClassVar[Literal["tool_call_start"]] = "tool_call_start"
    index: int
    id: str | None
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    type: ClassVar[Literal["tool_call_delta"]] = "tool_call_delta"
    index: int
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallDone:
    type: ClassVar[Literal["tool_call_done"]] = "tool_call_done"
    index: int
    tool_call: ToolCall


@dataclass(frozen=True, slots=True)
class UsageEvent:
    type: ClassVar[Literal["usage"]] = "usage"
    usage: Usage


@dataclass(frozen=True, slots=True)
class FinishEvent:
    type: ClassVar[Literal["finish"]] = "finish"
    finish_reason: str | None


@dataclass(frozen=True, slots=True)
class PartialObject:
    """Structured output so far (`stream(..., response_format=T)`): the JSON value with
    only its complete fields, as plain dicts and lists. Not yet validated. Parts that
    are complete are shared with later events: treat the value as read-only."""

    type: ClassVar[Literal["partial"]] = "partial"
    value: Any


@dataclass(frozen=True, slots=True)
class ParsedObject:
    """The last event of a structured stream: the validated instance of the type."""

    type: ClassVar[Literal["parsed"]] = "parsed"
    value: Any


@dataclass(frozen=True, slots=True)
class ReaskEvent:
    """The streamed answer did not fit the type and is asked for again: the partial
    objects start over. `errors` is what was wrong, `attempt` the number of the next try."""

    type: ClassVar[Literal["reask"]] = "reask"
    attempt: int
    errors: tuple[str, ...]


# A union discriminated by `type`: `if event.type == "content": event.text` type-checks.
StreamEvent = Union[
    ContentDelta, ReasoningDelta, ToolCallStart, ToolCallDelta, ToolCallDone, UsageEvent, FinishEvent,
    PartialObject, ParsedObject, ReaskEvent,
]


# ---- message helpers ------------------------------------------------------------


def system(content: str) -> dict[str, Any]:
    return {"role": "system", "content": content}


def user(content: str | list[dict[str, Any]], *images: str | Path) -> dict[str, Any]:
    """A user message. With images (URLs or local paths), content becomes parts."""
    if not images:
        return {"role": "user", "content": content}
    parts = [text_part(content)] if isinstance(content, str) else list(content)
    parts.extend(image_part(image) for image in images)
    return {"role": "user", "content": parts}


def assistant(
    content: str | None, *, tool_calls: tuple[ToolCall, ...] | list[ToolCall] = ()
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [call.to_message() for call in tool_calls]
    return message


def tool_result(tool_call_id: str, content: str | Any, name: str | None = None) -> dict[str, Any]:
    """The answer to one tool call. Non-string content is sent as JSON."""
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    message: dict[str, Any] = {"role": "tool", "tool_call_id": tool_call_id, "content": text}
    if name is not None:
        message["name"] = name
    return message


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def image_part(image: str | Path, *, detail: str | None = None) -> dict[str, Any]:
    """An image content part: a URL is sent as is, a local file as a data URI."""
    url = str(image)
    if not url.startswith(("http://", "https://", "data:")):
        path = Path(image)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        url = f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    image_url: dict[str, Any] = {"url": url}
    if detail is not None:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def _preview(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")

