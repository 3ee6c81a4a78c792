"""The gateway's stream relay: upstream SSE bytes in, the bytes to forward out, and what
the gateway must know about the stream on the way. Pure: no I/O, no clock.

    relay = Relay(strip_usage=not caller_asked_for_usage)
    for chunk in upstream:
        out = relay.feed(chunk)         # complete events, ready to write ('' while holding)
        if out: write(out)
        if relay.done: break            # [DONE]: stop reading
    out = relay.end()                   # a last event that lacked its blank line
    relay.complete                      # after end(): [DONE] or a finish_reason came: the answer is whole

Why bytes and not parsed events: the gateway's budget is a few microseconds per chunk
(research wave2.md C.6: the whole pass-through costs ~260 µs of CPU per request), and
decoding every chunk's JSON to re-encode it would cost more than the rest of the relay.
So events are forwarded exactly as the upstream wrote them, cut only at event boundaries
(a blank line), and the JSON of an event is read only when a byte search says it may hold
something the gateway needs:

- **commit point**: events are held until the first one that carries output (content,
  reasoning, a tool call, a finish_reason, usage, [DONE]); a role-only opening chunk or
  a comment is not output. Until then the request may still fall back to another target
  without the caller seeing a byte (peers that commit on the first chunk: maximhq/
  bifrost#5395; the "pre-output failover guard" of EasyMetaAu/helm-api PR #381).
- **usage**: the gateway always asks upstream for `stream_options.include_usage` (streams
  billed $0 without it: litellm#37923, #40100, PR #35290); when the caller did not ask,
  the extra usage-only chunk (`"choices": []`) is cut out of what is forwarded.
- **end rules**, as the client's (`core/stream.py`): `[DONE]` or a finish_reason makes
  the answer whole; an upstream `error` event is forwarded and recorded; anything else
  that ends is a truncated answer, which the gateway must not let look complete
  (Portkey-AI/gateway#1797).

Events are cut at "\\n\\n" (or "\\r\\n\\r\\n"). A server that sends neither for
`_HOLD_LIMIT` bytes gets its bytes forwarded as they are (nothing is held without bound).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["Relay", "error_event", "sse_from_whole"]

_HOLD_LIMIT = 1 << 18
_FINISH = re.compile(rb'"finish_reason"\s*:\s*"')
# Byte searches, not regular expressions or counts: `find` runs in C and stops early, and
# a block of ordinary chunks costs three of them (measured: 88 µs for the bench's whole
# 50-chunk stream in one read, of which the three JSON events read are half; 2.6 µs a
# chunk fed one at a time). `"usage"` can only be a key of the JSON itself (in a string, a
# quote is escaped), so a match is worth a look; [DONE] and `error` (an `"error"` key and
# an `event: error` line alike) may be text, which costs a needless look at most.
# Servers that put usage in more than one chunk put it in the last one too, and the last
# one is what counts (hence rfind). A finish_reason is looked for once, at the end.
_USAGE_OBJECTS = (b'"usage":{', b'"usage": {')
_FINISH_VALUES = (b'"finish_reason":"', b'"finish_reason": "')
_OUTPUT_KEYS = ("content", "reasoning_content", "reasoning", "tool_calls", "function_call", "refusal")


class Relay:
    """One stream's relay (see the module docstring). What it learned: `done`, `finished`,
    `usage` (the last usage object, a dict), `model` (the model the upstream named), `error`
    (the data of an upstream error event), `output` (an event with output arrived: before
    it, an error is the attempt's failure and may fall back), `committed`."""

    __slots__ = ("strip_usage", "committed", "output", "done", "finished", "usage", "model", "error", "forwarded",
                 "_carry", "_carried", "_tail", "_held")

    def __init__(self, *, strip_usage: bool) -> None:
        self.strip_usage = strip_usage
        self.committed = False  # events are released to the caller (output or [DONE] arrived)
        self.output = False  # an event with output arrived (an error event is not output)
        self.done = False
        self.finished = False
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.error: Any = None
        self.forwarded: list[bytes] = []  # everything released, for the partial answer of a failure
        self._carry: list[bytes] = []  # the start of an event whose end has not come yet, as read
        self._carried = 0  # its size
        self._tail = b""  # its last three bytes
        self._held: list[bytes] = []

    @property
    def complete(self) -> bool:
        """The answer is whole: [DONE], or a finish_reason without an error after it."""
        return self.done or (self.finished and self.error is None)

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to write to the caller now: complete events, once committed."""
        if self.done or not chunk:
            return b""
        if self._carry:
            ready = self._join_carry(chunk)
            if not ready:
                return b""
        elif chunk[-2:] == b"\n\n":  # the usual read: whole events
            ready = chunk
        else:
            cut = _boundary(chunk)
            if cut == 0 and len(chunk) <= _HOLD_LIMIT:
                self._carry, self._carried, self._tail = [chunk], len(chunk), chunk[-3:]
                return b""
            ready = chunk[:cut] if cut else chunk  # nothing held without bound
            if 0 < cut < len(chunk):
                rest = chunk[cut:]
                self._carry, self._carried, self._tail = [rest], len(rest), rest[-3:]
        if b"\r" in ready:  # CRLF events go out as LF ones, whichever path they take
            ready = ready.replace(b"\r\n", b"\n")
        # The hot path, inlined (a function call costs as much as the searches): a block
        # of ordinary chunks once the start is known is forwarded as it is, unread.
        if self.committed and self.model is not None and _first_special(ready, 0) == len(ready):
            self.forwarded.append(ready)
            return ready
        return self._release(self._slow(ready))

    def end(self) -> bytes:
        """The body ended: a last event without its blank line is completed and released
        (a caller's SSE parser would drop it otherwise), and whatever is held too."""
        tail = b"".join(self._carry)
        self._carry, self._carried, self._tail = [], 0, b""
        out = b""
        if tail.strip() and not self.done:
            out = self._slow(tail.rstrip(b"\r\n") + b"\n\n")
        self.committed = self.committed or bool(self._held) or bool(out)
        out = self._release(out, force=True)
        if not self.finished:
            self.finished = _finish_in(self.forwarded)
        return out

    # ---- inside ---------------------------------------------------------------------------

    def _join_carry(self, chunk: bytes) -> bytes:
        """With an event begun in earlier reads: the complete events now ready (b"" while
        the event goes on). Only the new bytes are searched for its end (and the last three
        carried, where a "\r\n\r\n" may begin), and the pieces are joined once it comes:
        a server that sends an event a byte at a time costs linear time, not quadratic."""
        window = self._tail + chunk
        cut = _boundary(window)
        size = self._carried + len(chunk)
        if cut == 0 and size <= _HOLD_LIMIT:
            self._carry.append(chunk)
            self._carried, self._tail = size, window[-3:]
            return b""
        joined = b"".join([*self._carry, chunk])
        cut = size if cut == 0 else size - len(window) + cut  # nothing held without bound
        rest = joined[cut:]
        self._carry, self._carried, self._tail = ([rest] if rest else []), len(rest), rest[-3:]
        return joined[:cut]

    def _release(self, ready: bytes, force: bool = False) -> bytes:
        if not self.committed and not force:
            if ready:
                self._held.append(ready)
            return b""
        if self._held:
            ready = b"".join([*self._held, ready])
            self._held = []
        if ready:
            self.forwarded.append(ready)
        return ready

    def _slow(self, ready: bytes) -> bytes:
        """Event by event, reading an event's JSON only while the stream's model and commit
        point are unknown, or when it may hold usage, an error or [DONE]; the ordinary
        events between those are taken whole, unread."""
        if b"\r" in ready:
            ready = ready.replace(b"\r\n", b"\n")
        kept: list[bytes] = []
        changed = False
        pos, size = 0, len(ready)
        while pos < size:
            if self.model is not None and self.committed:  # the rest up to what must be read: as it is
                special = _first_special(ready, pos)
                start = ready.rfind(b"\n\n", pos, special) + 2 if special > pos else pos
                if start > pos + 1:
                    kept.append(ready[pos:start - 2])  # ordinary chunks, as they are
                    pos = start
                if special >= size:
                    break
            end = ready.find(b"\n\n", pos)
            end = size if end < 0 else end
            event, pos = ready[pos:end], end + 2
            if not event:
                continue
            name, data = _fields(event)
            keep = True
            if data == b"[DONE]":
                self.done = self.committed = True
                kept.append(event)
                changed = changed or pos < size  # whatever follows [DONE] is not part of the answer
                break
            if name == b"error":
                self.error = data.decode("utf-8", "replace") or "(an error event without data)"
            elif data[:1] == b"{":
                keep = self._read_json(data)
            elif data:
                self.output = self.committed = True  # not JSON: nothing to learn from it, and it is output
            if keep:
                kept.append(event)
            else:
                changed = True
        if not changed:
            return ready
        return b"".join(event + b"\n\n" for event in kept)

    def _read_json(self, data: bytes) -> bool:
        """Learn from one event's JSON; False when the event is the usage-only chunk to cut."""
        try:
            obj = _loads(data)
        except (ValueError, RecursionError, StopIteration):
            self.output = self.committed = True
            return True
        if obj.__class__ is not dict:
            self.output = self.committed = True
            return True
        model = obj.get("model")
        if model.__class__ is str and model:
            self.model = model
        elif self.model is None:
            self.model = ""  # the server names no model: stop looking for one on every chunk
        if obj.get("error") not in (None, False):
            self.error = obj["error"]
            return True
        choices = obj.get("choices")
        if choices.__class__ is list:
            for choice in choices:
                if choice.__class__ is not dict:
                    continue
                if choice.get("finish_reason") is not None:
                    self.finished = self.output = self.committed = True
                delta = choice.get("delta")
                if delta.__class__ is dict and any(delta.get(key) for key in _OUTPUT_KEYS):
                    self.output = self.committed = True
        usage = obj.get("usage")
        if usage.__class__ is dict and usage:
            self.usage = usage
            self.output = self.committed = True
            if self.strip_usage and not choices:
                return False
        return True


_scan: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, untyped


def _loads(data: bytes) -> Any:
    """json.loads for an event's data, less its encoding sniffing: ~40 % less per event on
    the gateway's hot path (an SSE stream is UTF-8 by definition). Raises ValueError (or
    StopIteration when no JSON value starts the text) for what is not one JSON value."""
    text = data.decode()
    obj, end = _scan(text, 0)
    if end != len(text) and text[end:].strip():
        raise ValueError("extra data after the JSON value")
    return obj


def _boundary(block: bytes) -> int:
    """Where the last complete event of `block` ends (0: none does)."""
    lf, crlf = block.rfind(b"\n\n"), block.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def _first_special(block: bytes, pos: int) -> int:
    """Where the first thing the relay must read begins, at or after `pos` (len(block)
    if nothing): [DONE], an error (an `"error"` key or an `event: error` line: one search
    finds both), the last usage object."""
    first = block.find(b"[DONE]", pos)
    if first < 0:
        first = len(block)
    found = block.find(b"error", pos, first)
    if found >= 0:
        first = found
    usage = block.rfind(b'"usage"', pos, first)
    if usage >= 0 and block.startswith(_USAGE_OBJECTS, usage):
        first = usage
    return first


def _finish_in(forwarded: list[bytes]) -> bool:
    """A finish_reason with a value in what was forwarded unread. Looked for once, when the
    body ends, from the last block back: the finish chunk is near the end of a stream, so
    this stops early, and no block is searched for it on the way."""
    for block in reversed(forwarded):
        for marker in _FINISH_VALUES:
            if block.rfind(marker) >= 0:
                return True
        if b'"finish_reason"' in block and _FINISH.search(block) is not None:
            return True
    return False


def _fields(event: bytes) -> tuple[bytes, bytes]:
    """(event name, data) of one event (data lines joined by "\\n"; comments skipped)."""
    if event.startswith(b"data:") and b"\n" not in event:
        data = event[5:]
        return b"", data[1:] if data[:1] == b" " else data
    name = b""
    lines = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value[:1] == b" " else value)
        elif line.startswith(b"event:"):
            name = line[6:].strip()
    return name, b"\n".join(lines)


def error_event(message: str, *, error_type: str = "upstream_error", code: str | None = None) -> bytes:
    """An OpenAI-style error event: what the official SDKs raise as an APIError mid-stream.
    No [DONE] follows it: the answer is not complete."""
    error = {"message": message, "type": error_type, "param": None, "code": code}
    return b"data: " + json.dumps({"error": error}, ensure_ascii=False).encode() + b"\n\n"


def sse_from_whole(body: dict[str, Any], *, include_usage: bool) -> bytes:
    """A whole `chat.completion` (a server that ignored stream=true) as the events of a
    stream: one chunk per choice with the message as its delta, then usage, then [DONE]."""
    base: dict[str, Any] = {key: body[key] for key in ("id", "created", "model", "system_fingerprint")
                            if key in body}
    base["object"] = "chat.completion.chunk"
    events: list[dict[str, Any]] = []
    choices = body.get("choices")
    for position, choice in enumerate(choices if isinstance(choices, list) else ()):
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        delta: dict[str, Any] = {key: value for key, value in message.items() if value is not None} if isinstance(
            message, dict) else {}
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            delta["tool_calls"] = [{**call, "index": i} if isinstance(call, dict) else call
                                   for i, call in enumerate(calls)]
        events.append({**base, "choices": [{"index": choice.get("index", position), "delta": delta,
                                            "finish_reason": choice.get("finish_reason") or "stop"}]})
    if include_usage and isinstance(body.get("usage"), dict):
        events.append({**base, "choices": [], "usage": body["usage"]})
    out = b"".join(b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n" for event in events)
    return out + b"data: [DONE]\n\n"
