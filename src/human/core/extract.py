"""Finds the JSON value in a model's answer. Pure: no I/O.

A server that ignores `response_format`, or a model prompted to answer in JSON, rarely
answers with JSON alone (wave2.md B.2 items 1 and 4):

    <think>The user wants {name, age}…</think>{"name": "Ada", "age": 36}
    Sure! Here it is:\n```json\n{"name": "Ada", "age": 36}\n```\nAnything else?
    The person is {"name": "Ada", "age": 36}.

`find_json(text)` looks, in this order, at: the whole answer; each fenced block (```json
first); then each `{` or `[` from the left, decoding one value from there. Reasoning
blocks (`<think>`, `<thinking>`, `<reasoning>`) are cut out first, closed or not, so the
braces inside them are never taken for the answer (HKUDS/DeepTutor PR #675,
langchain-ai/langchain PR #35530). `want` ("object" or "array") prefers a value of that
kind, so a stray `[1]` in prose does not beat the object that follows it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Found", "NoJSON", "find_json", "strip_reasoning"]

_REASONING = re.compile(r"<(think|thinking|reasoning)>.*?(?:</\1>|\Z)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
# strict=False: a raw newline or tab inside a string is invalid JSON, but local models write
# them often and the meaning is plain; refusing would only cost a re-ask.
_decoder = json.JSONDecoder(strict=False)


class NoJSON(ValueError):
    """No JSON value was found. `reason` says what was seen, in words a re-ask can use."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Found:
    """A JSON value found in an answer, and where: "whole", "fenced" or "embedded"."""

    value: Any
    where: str


def strip_reasoning(text: str) -> str:
    """The text without reasoning blocks; an unclosed block runs to the end."""
    if "<" not in text:
        return text
    return _REASONING.sub("", text)


def find_json(text: str | None, want: str | None = None) -> Found:
    """The JSON value in `text`; raises `NoJSON` when there is none.

        find_json('Sure:\\n```json\\n{"a": 1}\\n```').value   # {'a': 1}
    """
    if not text or not text.strip():
        raise NoJSON("the answer was empty")
    body = strip_reasoning(text).strip()
    if not body:
        raise NoJSON("the answer held only reasoning, no JSON after it")
    candidates: list[Found] = []
    whole = _loads(body)
    if whole is not _NOTHING:
        candidates.append(Found(whole, "whole"))
    if not _fits(candidates, want):
        fences = sorted(_FENCE.finditer(body), key=lambda m: m.group(1).lower() != "json")
        for match in fences:
            value = _loads(match.group(2).strip())
            if value is not _NOTHING:
                candidates.append(Found(value, "fenced"))
                if _kind(value) == want or want is None:
                    break
    if not _fits(candidates, want):
        candidates += _embedded(body, want)
    for found in candidates:
        if want is None or _kind(found.value) == want:
            return found
    containers = [found for found in candidates if _kind(found.value) in ("object", "array")]
    if containers:
        return containers[0]
    if candidates:
        return candidates[0]
    raise NoJSON(f"no JSON {want or 'value'} was found in the answer: {_preview(body)}")


_NOTHING = object()


def _loads(text: str) -> Any:
    try:
        return _decoder.decode(text)
    except ValueError:
        return _NOTHING


def _fits(candidates: list[Found], want: str | None) -> bool:
    return any(want is None or _kind(found.value) == want for found in candidates)


def _embedded(text: str, want: str | None) -> list[Found]:
    """Values decoded from each `{` / `[`, left to right; stops at the first of the wanted
    kind. A position inside a value already decoded is skipped."""
    found: list[Found] = []
    starts = "{" if want == "object" else "[" if want == "array" else "{["
    index, end = 0, len(text)
    while index < end:
        index = min((p for p in (text.find(c, index) for c in starts) if p >= 0), default=-1)
        if index < 0:
            break
        try:
            value, stop = _decoder.raw_decode(text, index)
        except ValueError:
            index += 1
            continue
        found.append(Found(value, "embedded"))
        if want is None or _kind(value) == want:
            break
        index = stop
    return found


def _kind(value: Any) -> str:
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "scalar"


def _preview(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")
