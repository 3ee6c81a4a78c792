"""Assembles the chunks of a streamed chat completion into typed events and one
`ChatResponse`. Pure: no I/O; the caller hands in each SSE event's `data`.

Tolerates what real servers send (shared/research/peers.md §3, items 17–24):
- tool-call fragments with a missing or null `index` (ollama#7881, openai-python#2806),
  or reusing an index for a second call (DeepSeek, agno PR #8880): a fragment goes
  to the call with its `index` when that is consistent, else to the call with its
  `id`, else (no index, no id) to the call that is being streamed;
- `function.arguments` as a JSON object (llama.cpp#20198), re-serialised to a string;
- chunks with empty `choices` (usage-only, Azure prompt filter), no `delta`,
  `role: null`, a new `id` in every chunk (mockllm);
- usage on any chunk, including LiteLLM's final `choices:[{"index":0,"delta":{}}]`;
- reasoning as `reasoning_content`, `reasoning`, `thinking` parts or a leading
  `<think>` block split across chunks;
- `finish_reason` "stop" (or none) although tool calls were sent (vllm PR #25054):
  assembled tool calls win;
- an `{"error": …}` event mid-stream (llm-d-inference-sim#596), or any SSE event named
  `error` whatever its data (`error_event`): `BadResponseError` carrying what had
  arrived as `.partial`;
- tool calls without an `id`: each gets a stable one made from its position and
  content (`synthetic_call_id`, shared with `parse.py`), so a tool result can name it;
- an answer whose only choice has `index: 1` (or another index): read, not dropped.

End rules (issue 10), written here once for both drivers:
- `[DONE]` ends the stream: `done` turns true and the driver stops reading (bytes after
  it are never part of the answer; the transport does not reuse that connection);
- a body that ends with neither `[DONE]` nor a `finish_reason` was cut off: `end_error()`
  is an `APIConnectionError` with `.partial` (nothing at all: a retryable
  `BadResponseError`); a `finish_reason` without `[DONE]` is a complete answer.

Lifecycle: `add(data)` per event, `close()` at end of stream for the last events
(held-back text, one `ToolCallDone` per call), `end_error()`, `finish()` for the response.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import APIConnectionError, BadResponseError, HumanError
from ..types import (
    ChatResponse,
    ContentDelta,
    FinishEvent,
    ReasoningDelta,
    StreamEvent,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
    Usage,
    UsageEvent,
)
from .shapes import (
    KEEP_FINISH_REASONS,
    ThinkSplitter,
    compact_json,
    describe_error,
    flatten_parts,
    preview,
    synthetic_call_id,
    usage_from,
)

__all__ = ["StreamAssembler"]

_loads = json.loads

# One tool call being assembled: [id, name, argument fragments, type, extra fields or None].
_ID, _NAME, _ARGS, _TYPE, _EXTRA = 0, 1, 2, 3, 4
# The fragment fields read above; any other (Gemini's extra_content) is kept verbatim.
_MODELLED = frozenset({"id", "type", "function", "index", "name", "arguments"})


class StreamAssembler:
    """Chunk payloads in, typed events out; `finish()` gives the assembled answer.

        >>> a = StreamAssembler()
        >>> a.add('{"choices":[{"index":0,"delta":{"content":"Hi"}}]}')
        [ContentDelta(text='Hi')]
        >>> a.add("[DONE]"), a.finish().content
        ([], 'Hi')

    `done` is true once `[DONE]` arrived. (Whether a failed stream may be retried is the
    driver's call: only before the first event reached the caller.)
    """

    __slots__ = (
        "provider",
        "model",
        "done",
        "_content",
        "_reasoning",
        "_think",
        "_plain",
        "_calls",
        "_by_index",
        "_by_id",
        "_current",
        "_usage",
        "_finish",
        "_id",
        "_model",
        "_raw",
        "_closed", "_high", "_index", "_seen",
    )

    def __init__(self, *, provider: str | None = None, model: str | None = None) -> None:
        self.provider = provider
        self.model = model
        self.done = False
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._think = ThinkSplitter()
        self._plain = False  # past the point where a <think> block could start
        self._calls: list[list[Any]] = []
        self._by_index: dict[int, int] = {}
        self._by_id: dict[str, int] = {}
        self._current = -1
        self._usage: Usage | None = None
        self._finish: str | None = None
        self._id: str | None = None
        self._model: str | None = None
        self._raw: Any = None
        self._closed = False
        self._high = ""  # the first half of a surrogate pair that ended the last content delta
        self._index = 0  # the choice being assembled: 0, or the first one seen (see _choice)
        self._seen = False

    def add(self, data: str) -> list[StreamEvent]:
        """One SSE event's data payload; returns the events it produced."""
        if data[:1] != "{":
            return self._unusual(data)
        try:
            chunk = _loads(data)
        except (ValueError, RecursionError):
            raise self._not_json(data) from None
        err = chunk.get("error")
        if err is not None and err is not False:
            raise self._server_error(err)
        self._raw = chunk  # after the error check: an error chunk may echo a key back
        if self._id is None:
            cid = chunk.get("id")
            if cid.__class__ is str and cid:
                self._id = cid
        model = chunk.get("model")
        if model.__class__ is str and model:
            self._model = model
        events: list[StreamEvent] = []
        choices = chunk.get("choices")
        if choices and choices.__class__ is list:
            choice = choices[0]
            if choice.__class__ is not dict or choice.get("index", 0) not in (self._index, None):
                choice = self._choice(choices)
            if choice is not None:
                self._seen = True
                delta = choice.get("delta")
                if delta and delta.__class__ is dict:
                    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                    if reasoning:
                        self._add_reasoning(reasoning, events)
                    content = delta.get("content")
                    if content.__class__ is str and (self._high or "\ud800" <= content[-1:] <= "\udbff"):
                        content = self._unsplit(content)
                    if content:
                        if self._plain and content.__class__ is str:
                            self._content.append(content)
                            events.append(ContentDelta(content))
                        else:
                            self._add_content(content, events)
                    calls = delta.get("tool_calls")
                    if calls:
                        self._add_tool_calls(calls, events)
                reason = choice.get("finish_reason")
                if reason and reason.__class__ is str:
                    self._finish = reason
                    events.append(FinishEvent(self._final_reason(reason)))
        usage = chunk.get("usage")
        if usage is None and "x_groq" in chunk:
            extra = chunk["x_groq"]  # Groq puts stream usage under x_groq
            usage = extra.get("usage") if extra.__class__ is dict else None
        if usage and usage.__class__ is dict:
            parsed = usage_from(usage)
            if parsed is not None:
                self._usage = parsed
                events.append(UsageEvent(parsed))
        return events

    def close(self) -> list[StreamEvent]:
        """End of stream: release held-back text, then one `ToolCallDone` per call, in order."""
        if self._closed:
            return []
        self._closed = True
        events: list[StreamEvent] = []
        if self._high:  # a half pair that never got its second half
            self._high = ""
            self._add_content("\ufffd", events)
        self._emit(*self._think.end(), events)
        self._plain = True
        for position, call in enumerate(self._calls):
            events.append(ToolCallDone(position, _tool_call(call, position)))
        return events

    def finish(self) -> ChatResponse:
        """The assembled answer (whether or not `[DONE]` arrived)."""
        return self._snapshot()

    def partial(self) -> ChatResponse:
        """What has arrived so far (for an error raised mid-stream)."""
        return self._snapshot()

    def error_event(self, data: str) -> BadResponseError:
        """An SSE event named `error`: always a failure, whatever its data holds
        (JSON with or without an "error" key, plain text, nothing)."""
        text = data.strip()
        err: Any = text
        if text[:1] in ("{", "["):
            try:
                err = _loads(text)
            except (ValueError, RecursionError):
                err = text
            if err.__class__ is dict and err.get("error") not in (None, False):
                err = err["error"]
        return self._server_error(err or "(the error event had no data)")

    def end_error(self) -> HumanError | None:
        """At the end of the body: None if the answer is complete, else the error."""
        if self.done or self._finish is not None:
            return None
        if not (self._content or self._reasoning or self._calls or self._think.pending() != ("", "")):
            return BadResponseError("the stream ended before any data arrived", retryable=True,
                                    provider=self.provider, model=self.model)
        received = sum(map(len, self._content))
        return APIConnectionError(
            f"the stream ended without a finish_reason or [DONE], after {received} characters of content: the "
            "answer is incomplete (what arrived is in .partial)",
            provider=self.provider, model=self.model, partial=self.partial())

    # ---- pieces of a delta ------------------------------------------------------------

    def _unsplit(self, text: str) -> str:
        """Servers that slice text by UTF-16 units (aimock) can end a delta on the first
        half of a surrogate pair: hold it back and join it to the start of the next one."""
        if self._high:
            text = (self._high + text).encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            self._high = ""
        if "\ud800" <= text[-1:] <= "\udbff":
            self._high, text = text[-1], text[:-1]
        return text

    def _add_reasoning(self, value: Any, events: list[StreamEvent]) -> None:
        if value.__class__ is not str:
            value = flatten_parts(value)[0] if value.__class__ is list else ""
            if not value:
                return
        self._reasoning.append(value)
        events.append(ReasoningDelta(value))

    def _add_content(self, content: Any, events: list[StreamEvent]) -> None:
        if content.__class__ is list:
            content, reasoning = flatten_parts(content)
            if reasoning:
                self._reasoning.append(reasoning)
                events.append(ReasoningDelta(reasoning))
        elif content.__class__ is not str:
            return
        if not content:
            return
        if self._plain:
            self._content.append(content)
            events.append(ContentDelta(content))
            return
        self._emit(*self._think.feed(content), events)
        self._plain = self._think.state == ThinkSplitter.PLAIN

    def _emit(self, reasoning: str, content: str, events: list[StreamEvent]) -> None:
        """Record and hand out what the <think> splitter released."""
        if reasoning:
            self._reasoning.append(reasoning)
            events.append(ReasoningDelta(reasoning))
        if content:
            self._content.append(content)
            events.append(ContentDelta(content))

    def _add_tool_calls(self, fragments: Any, events: list[StreamEvent]) -> None:
        if fragments.__class__ is dict:
            fragments = [fragments]
        elif fragments.__class__ is not list:
            return
        for fragment in fragments:
            if fragment.__class__ is not dict:
                continue
            call_id = fragment.get("id")
            if call_id.__class__ is int:
                call_id = str(call_id)
            elif call_id.__class__ is not str or not call_id:
                call_id = None
            function = fragment.get("function")
            if function.__class__ is not dict:
                function = fragment  # name/arguments at the top level
            position, new = self._locate(fragment.get("index"), call_id)
            call = self._calls[position]
            name = function.get("name")
            if name and name.__class__ is str and not call[_NAME]:
                call[_NAME] = name  # the first name wins; a repeated full name is not appended
            kind = fragment.get("type")
            if kind and kind.__class__ is str:
                call[_TYPE] = kind
            if not _MODELLED.issuperset(fragment):
                call[_EXTRA] = {**(call[_EXTRA] or {}),
                                **{key: value for key, value in fragment.items() if key not in _MODELLED}}
            if new:
                events.append(ToolCallStart(position, call[_ID], call[_NAME]))
            arguments = function.get("arguments")
            if arguments is not None:
                if arguments.__class__ is not str:
                    arguments = compact_json(arguments)
                if arguments:
                    call[_ARGS].append(arguments)
                    events.append(ToolCallDelta(position, arguments))
            self._current = position

    def _locate(self, index: Any, call_id: str | None) -> tuple[int, bool]:
        """(position of the call this fragment belongs to, whether it is new)."""
        by_index, by_id = self._by_index, self._by_id
        if index.__class__ is int:
            position = by_index.get(index)
            if position is not None:
                known = self._calls[position][_ID]
                if call_id is None or known is None or call_id == known:
                    if call_id is not None and known is None:
                        self._calls[position][_ID] = call_id
                        by_id[call_id] = position
                    return position, False
                # A different id at a used index: a new call (DeepSeek reuses index 0).
                other = by_id.get(call_id)
                if other is not None:
                    by_index[index] = other
                    return other, False
                position = self._new(call_id)
                by_index[index] = position
                return position, True
            if call_id is not None and call_id in by_id:
                by_index[index] = by_id[call_id]
                return by_id[call_id], False
            position = self._new(call_id)
            by_index[index] = position
            return position, True
        if call_id is not None:
            position = by_id.get(call_id)
            if position is not None:
                return position, False
            return self._new(call_id), True
        if self._current >= 0:
            return self._current, False  # no index, no id: continues the call being streamed
        return self._new(None), True

    def _new(self, call_id: str | None) -> int:
        position = len(self._calls)
        self._calls.append([call_id, "", [], "function", None])
        if call_id is not None:
            self._by_id[call_id] = position
        return position

    # ---- the rest -------------------------------------------------------------------

    def _choice(self, choices: list[Any]) -> dict[str, Any] | None:
        """One choice is assembled (n > 1 is not streamed apart): index 0, or, when the
        first choice the stream carries has another index (a server that numbers its
        only choice 1, issue 10), that one from then on."""
        first = None
        for choice in choices:
            if choice.__class__ is dict:
                if choice.get("index", 0) in (self._index, None):
                    return choice
                first = first or choice
        if first is not None and not self._seen and first.get("index").__class__ is int:
            self._index = first["index"]
            return first
        return None

    def _final_reason(self, reason: str | None) -> str | None:
        if self._calls and reason not in KEEP_FINISH_REASONS:
            return "tool_calls"
        return reason

    def _snapshot(self) -> ChatResponse:
        held_reasoning, held_content = self._think.pending()
        content = "".join(self._content) + held_content
        reasoning = "".join(self._reasoning) + held_reasoning
        return ChatResponse(
            content=content or None,
            tool_calls=tuple(_tool_call(call, position) for position, call in enumerate(self._calls)),
            usage=self._usage,
            finish_reason=self._final_reason(self._finish),
            model=self._model,
            provider=self.provider,
            reasoning=reasoning or None,
            id=self._id,
            raw=self._raw,
        )

    def _unusual(self, data: str) -> list[StreamEvent]:
        text = data.strip()
        if not text:
            return []
        if text == "[DONE]":
            self.done = True
            return []
        if text[0] == "{":
            return self.add(text)
        try:
            value = _loads(text)
        except (ValueError, RecursionError):
            raise self._not_json(data) from None
        raise self._bad(f"a stream event is a JSON {type(value).__name__}, not a chunk object: {preview(text)}", data)

    def _not_json(self, data: str) -> BadResponseError:
        return self._bad(f"a stream event is not JSON: {preview(data)}", data)

    def _bad(self, message: str, data: str) -> BadResponseError:
        return BadResponseError(
            message,
            body_preview=data[:200],
            provider=self.provider,
            model=self.model,
            partial=self.partial(),
        )

    def _server_error(self, err: Any) -> BadResponseError:
        text, status, retryable = describe_error(err)
        received = sum(map(len, self._content))
        where = f"after {received} characters of content" if received else "before any content"
        return BadResponseError(
            f"the server sent an error inside the stream, {where}: {text}",
            retryable=retryable,
            body_preview=compact_json(err)[:200],
            provider=self.provider,
            model=self.model,
            status=status,
            partial=self.partial(),
        )





def _tool_call(call: list[Any], position: int) -> ToolCall:
    arguments = "".join(call[_ARGS])
    call_id = call[_ID] or synthetic_call_id(position, call[_NAME], arguments)
    return ToolCall(id=call_id, name=call[_NAME], arguments=arguments, type=call[_TYPE], extra=call[_EXTRA])
