"""The shapes servers use for the parts of an answer, read the same way whether the
answer came whole (`_parse`) or as a stream (`_stream`). Pure: no I/O.

- `usage_from`: the `usage` object, including cached and reasoning token details.
- `flatten_parts`: `content` sent as an array of parts (text, and Mistral's
  `thinking` parts) rather than a string.
- `ThinkSplitter`: `<think>…</think>` at the start of the content (Qwen, DeepSeek-R1
  distills on servers without a reasoning parser), fed in pieces.
- `describe_error`: the `{"error": …}` object some servers send with HTTP 200.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..types import Usage

__all__ = [
    "KEEP_FINISH_REASONS",
    "ThinkSplitter",
    "compact_json",
    "describe_error",
    "flatten_parts",
    "preview",
    "to_int",
    "usage_from",
]

# A server's finish_reason is overridden by "tool_calls" when tool calls were
# assembled (vllm PR #25054, python-genai#2868, litellm#12481), except for these two,
# which carry news the caller needs: the arguments may be cut off, or were filtered.
KEEP_FINISH_REASONS = frozenset({"tool_calls", "length", "content_filter"})

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


def to_int(value: Any) -> int | None:
    """A token count, or None when it is absent or not a number (never a made-up 0)."""
    if value.__class__ is int:
        return value
    if value.__class__ is float and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def usage_from(obj: Any) -> Usage | None:
    """Map a `usage` object; None when there is none (or it is empty).

    Cached tokens: `prompt_tokens_details.cached_tokens` (OpenAI), else DeepSeek's
    `prompt_cache_hit_tokens`. Cache writes: `prompt_tokens_details.cache_write_tokens`
    (OpenRouter, and genai-prices' OpenAI chat extractor). Reasoning:
    `completion_tokens_details.reasoning_tokens`. All of them are parts of
    prompt_tokens / completion_tokens, not additions. `total_tokens` is taken as sent,
    never recomputed.
    """
    if obj.__class__ is not dict or not obj:
        return None  # an empty object (sent by some servers on every chunk) says nothing
    details = obj.get("prompt_tokens_details")
    cached = written = None
    if details.__class__ is dict:
        cached = to_int(details.get("cached_tokens"))
        written = to_int(details.get("cache_write_tokens"))
    if cached is None:
        cached = to_int(obj.get("prompt_cache_hit_tokens"))
    details = obj.get("completion_tokens_details")
    reasoning = to_int(details.get("reasoning_tokens")) if details.__class__ is dict else None
    return Usage(
        prompt_tokens=to_int(obj.get("prompt_tokens")),
        completion_tokens=to_int(obj.get("completion_tokens")),
        total_tokens=to_int(obj.get("total_tokens")),
        cached_tokens=cached,
        reasoning_tokens=reasoning,
        cache_write_tokens=written,
    )


def flatten_parts(parts: list[Any]) -> tuple[str, str]:
    """(text, reasoning) of a content array.

    Text parts (`{"type": "text", "text": …}`, also `output_text` or no type) become
    content; `thinking` / `reasoning` parts become reasoning. Mistral's thinking part
    holds a nested array of text parts (vercel/ai#13703, litellm#16272). Other parts
    (images, audio) carry no text and are left in `raw`.
    """
    text: list[str] = []
    reasoning: list[str] = []
    for part in parts:
        if part.__class__ is str:
            text.append(part)
            continue
        if part.__class__ is not dict:
            continue
        kind = part.get("type")
        if kind in ("thinking", "reasoning"):
            for key in (kind, "text", "content", "summary"):
                value = part.get(key)
                if value:
                    reasoning.append(_all_text(value))
                    break
        elif kind in (None, "text", "output_text"):
            value = part.get("text")
            if value.__class__ is str:
                text.append(value)
    return "".join(text), "".join(reasoning)


def _all_text(value: Any) -> str:
    if value.__class__ is str:
        return value
    if value.__class__ is list:
        return "".join(_all_text(item) for item in value)
    if value.__class__ is dict:
        inner = value.get("text")
        return inner if inner.__class__ is str else ""
    return ""


class ThinkSplitter:
    """Separates a leading `<think>…</think>` block from the content, fed piece by piece.

    The tags may arrive split across pieces (`<thi` + `nk>`); text that could still be
    the start of a tag is held back, never shown as content. Only a block at the very
    start counts (after whitespace): a `<think>` later in an answer is the model talking
    about tags. Whitespace right after `</think>` is dropped. Without a closing tag,
    everything after `<think>` is reasoning.

        >>> s = ThinkSplitter(); s.feed("<think>hm</th"), s.feed("ink>\\n\\nHi"), s.end()
        (('hm', ''), ('', 'Hi'), ('', ''))
    """

    __slots__ = ("state", "held")

    UNDECIDED, THINKING, AFTER, PLAIN = 0, 1, 2, 3

    def __init__(self) -> None:
        self.state = 0
        self.held = ""

    def feed(self, text: str) -> tuple[str, str]:
        """(reasoning, content) that can be released now."""
        state = self.state
        if state == 3:
            return "", text
        text = self.held + text
        self.held = ""
        reasoning = ""
        if state == 0:
            stripped = text.lstrip()
            if stripped.startswith(OPEN_TAG):
                text = stripped[len(OPEN_TAG) :]
                state = 1
            elif OPEN_TAG.startswith(stripped):
                self.held = text
                return "", ""
            else:
                self.state = 3
                return "", text
        if state == 1:
            end = text.find(CLOSE_TAG)
            if end < 0:
                # Hold back a trailing "</thi" that may complete in the next piece.
                cut = text.rfind("<", max(0, len(text) - len(CLOSE_TAG) + 1))
                if cut >= 0 and CLOSE_TAG.startswith(text[cut:]):
                    self.held = text[cut:]
                    text = text[:cut]
                self.state = 1
                return text, ""
            reasoning = text[:end]
            text = text[end + len(CLOSE_TAG) :]
        text = text.lstrip()
        self.state = 3 if text else 2
        return reasoning, text

    def pending(self) -> tuple[str, str]:
        """(reasoning, content) still held back, as `end()` would release it."""
        if self.state == 0:
            return "", self.held
        if self.state == 1:
            return self.held, ""
        return "", ""

    def end(self) -> tuple[str, str]:
        """Release what is held: an unfinished tag is text, an unclosed block is reasoning."""
        out = self.pending()
        self.held = ""
        self.state = 3 if self.state == 0 else self.state
        return out

    @classmethod
    def split(cls, text: str) -> tuple[str, str]:
        """(reasoning, content) of a whole text."""
        splitter = cls()
        reasoning, content = splitter.feed(text)
        more_reasoning, more_content = splitter.end()
        return reasoning + more_reasoning, content + more_content


def http_status(value: Any) -> int | None:
    """An HTTP status hidden in `error.code` (an int, or a string like LiteLLM's "429")."""
    if value.__class__ is str and len(value) == 3 and value.isdigit():
        value = int(value)
    if value.__class__ is int and 100 <= value <= 599:
        return value
    return None


_RETRYABLE_CODES = frozenset(
    {
        "server_error",
        "internal_server_error",
        "internal_error",
        "overloaded",
        "overloaded_error",
        "service_unavailable",
        "rate_limit_exceeded",
        "rate_limit_error",
        "timeout",
    }
)


def describe_error(err: Any) -> tuple[str, int | None, bool]:
    """(text, status, retryable) for a server's `error` value.

    The text names the server's message, type and code; the status is taken from
    `code` when it is an HTTP status. Worth retrying: 408, 429, 5xx, or a type/code
    that says the server (not the request) failed.
    """
    status: int | None = None
    retryable = False
    if err.__class__ is dict:
        message = err.get("message")
        if message.__class__ is not str or not message:
            message = next(
                (err[key] for key in ("detail", "msg", "error") if err.get(key).__class__ is str and err[key]),
                None,
            )
        if message is None:
            message = compact_json(err)
        bits = []
        for key in ("type", "code", "param"):
            value = err.get(key)
            if value is not None and value != "" and value != "None":
                bits.append(f"{key} {value}")
                if str(value).lower() in _RETRYABLE_CODES:
                    retryable = True
        status = http_status(err.get("code"))
        if status is None:
            status = http_status(err.get("status"))
        text = preview(message, 500, quote=False)
        if bits:
            text += f" ({', '.join(bits)})"
    elif err.__class__ is str:
        text = preview(err, 500, quote=False) if err else "(no message)"
    else:
        text = preview(compact_json(err), 500, quote=False)
    if status is not None:
        retryable = status in (408, 429) or status >= 500
    return text, status, retryable


def synthetic_call_id(position: int, name: str, arguments: str) -> str:
    """An id for a tool call the server sent without one: the same call in the same
    place always gets the same id, streamed or not (`call_<position>_<8 hex>`)."""
    import hashlib

    digest = hashlib.sha256(f"{position}\0{name}\0{arguments}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"call_{position}_{digest[:8]}"


def compact_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def preview(text: str, limit: int = 120, *, quote: bool = True) -> str:
    """A short, single-line view of text for an error message."""
    short = text if len(text) <= limit else text[:limit] + "…"
    return repr(short) if quote else short
