"""Reads one JSON value as its text arrives, and shows what is complete so far. Pure.

Streaming structured output (`stream(..., response_format=T)`) shows an object while the
model is still writing it. Showing a half-written string or number would show values the
model never meant ("Ad" for "Ada", 3 for 36), so only *structurally complete* values
appear (Instructor v1.14.3 made the same choice, peers.md §2.6):

    reader = PartialJSON()
    reader.feed('{"name": "Ada", "age": 3')   # True: {"name": "Ada"}
    reader.feed('6, "tags": ["x"')            # True: {"name": "Ada", "age": 36, "tags": ["x"]}
    reader.feed(']}')                          # True: done

A scalar appears once it ends (a string at its closing quote, a number at the character
after it); an object or array appears with its first complete member and grows. Text
before the first `{` / `[` (a preamble, an opening code fence) is skipped, and so is
everything after the value ends. The result does not depend on how the text was split
into pieces: a test feeds it split at every character.

Malformed input stops the reader (`failed` says why); the answer is still judged whole,
by `core.extract`, once it has arrived.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["PartialJSON"]

_WHITESPACE = frozenset(" \t\r\n")
_STRING_STOP = re.compile(r'["\\]')
_NUMBER = frozenset("+-0123456789.eE")
_LITERALS = {"t": ("true", True), "f": ("false", False), "n": ("null", None)}
_loads = json.JSONDecoder(strict=False).decode  # a raw newline inside a string is common; accept it

# What a container frame expects next.
_KEY_OR_END, _KEY, _COLON, _VALUE, _COMMA_OR_END, _VALUE_OR_END = range(6)


class _Frame:
    __slots__ = ("container", "expect", "key", "attached")

    def __init__(self, container: dict[str, Any] | list[Any]) -> None:
        self.container = container
        self.expect = _KEY_OR_END if isinstance(container, dict) else _VALUE_OR_END
        self.key: str | None = None
        self.attached = False


class PartialJSON:
    """Feed text with `feed()`; `snapshot()` is a copy of what is complete so far.

    `start` lists the characters that may open the value ("{" for an object only).
    """

    def __init__(self, start: str = "{[") -> None:
        self._start = start
        self._stack: list[_Frame] = []
        self._root: Any = None
        self._has_root = False
        self._token: list[str] | None = None  # the scalar being read, if any
        self._token_kind = ""  # "string", "number" or "literal"
        self._escaped = False
        self._is_key = False
        self.started = False
        self.done = False
        self.failed: str | None = None

    @property
    def has_value(self) -> bool:
        """True once something complete is there to show."""
        return self._has_root

    def snapshot(self) -> Any:
        """The complete part (None before anything is complete), as a new object whose
        still-growing containers are copies: a later `feed` never changes a snapshot.
        Containers that are already closed are shared between snapshots (they cannot
        change any more), so a snapshot costs the size of the open containers, not of
        the whole value; treat snapshots as read-only."""
        open_frames = [frame for frame in self._stack if frame.attached]  # a prefix of the stack
        if not open_frames:
            return self._root
        top = _shallow(open_frames[0].container)
        current = top
        for parent, child in zip(open_frames, open_frames[1:]):
            copy = _shallow(child.container)
            if isinstance(current, dict):
                assert parent.key is not None
                current[parent.key] = copy
            else:
                current[-1] = copy
            current = copy
        return top

    def feed(self, text: str) -> bool:
        """Read more text. True when the complete part grew."""
        changed = False
        index, end = 0, len(text)
        while index < end and not self.done and self.failed is None:
            token = self._token
            if token is not None and self._token_kind == "string" and not self._escaped:
                # the inside of a string, up to its next quote or backslash, in one step
                stop = _STRING_STOP.search(text, index)
                if stop is None:
                    token.append(text[index:])
                    break
                if stop.start() > index:
                    token.append(text[index:stop.start()])
                    index = stop.start()
            elif not self.started:
                found = [at for at in (text.find(char, index) for char in self._start) if at >= 0]
                if not found:
                    break
                index = min(found)
            changed = self._step(text[index]) or changed
            index += 1
        return changed

    def close(self) -> bool:
        """The text ended: a top-level number still being read is complete now."""
        if self._token is not None and self._token_kind == "number" and not self._stack and not self.failed:
            return self._end_number()
        return False

    # ---- the state machine -------------------------------------------------------------------

    def _step(self, char: str) -> bool:
        token = self._token
        if token is not None:
            kind = self._token_kind
            if kind == "string":
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    return self._end_string()
                token.append(char)
                return False
            if kind == "number":
                if char in _NUMBER:
                    token.append(char)
                    return False
                changed = self._end_number()
                if self.failed is not None or self.done:
                    return changed
                return self._step(char) or changed
            return self._literal(char)
        if not self.started:
            if char in self._start:
                self.started = True
                return self._value(char)
            return False
        if char in _WHITESPACE:
            return False
        frame = self._stack[-1]
        expect = frame.expect
        if expect in (_KEY_OR_END, _KEY):
            if char == '"':
                self._begin("string", is_key=True)
                return False
            if char == "}" and expect == _KEY_OR_END:
                return self._close()
            return self._fail(f"expected a key, found {char!r}")
        if expect == _COLON:
            if char == ":":
                frame.expect = _VALUE
                return False
            return self._fail(f"expected ':', found {char!r}")
        if expect == _COMMA_OR_END:
            if char == ",":
                frame.expect = _KEY if isinstance(frame.container, dict) else _VALUE
                return False
            if char == ("}" if isinstance(frame.container, dict) else "]"):
                return self._close()
            return self._fail(f"expected ',' or the end of the container, found {char!r}")
        # a value is expected (_VALUE, or _VALUE_OR_END in an array)
        if char == "]" and expect == _VALUE_OR_END:
            return self._close()
        return self._value(char)

    def _value(self, char: str) -> bool:
        """`char` starts a value."""
        if char == "{":
            self._open({})
        elif char == "[":
            self._open([])
        elif char == '"':
            self._begin("string")
        elif char in _NUMBER:
            self._begin("number")
            assert self._token is not None
            self._token.append(char)
        elif char in _LITERALS:
            self._begin("literal")
            assert self._token is not None
            self._token.append(char)
        else:
            return self._fail(f"unexpected {char!r}")
        return False

    def _begin(self, kind: str, *, is_key: bool = False) -> None:
        self._token, self._token_kind, self._is_key, self._escaped = [], kind, is_key, False

    def _open(self, container: dict[str, Any] | list[Any]) -> None:
        self._stack.append(_Frame(container))

    def _end_string(self) -> bool:
        raw = "".join(self._token or ())
        self._token = None
        try:
            text = _loads(f'"{raw}"')
        except ValueError:
            return self._fail("a string with a malformed escape")
        if self._is_key:
            frame = self._stack[-1]
            frame.key, frame.expect = text, _COLON
            return False
        return self._complete(text)

    def _end_number(self) -> bool:
        raw = "".join(self._token or ())
        self._token = None
        try:
            value = json.loads(raw)
        except ValueError:
            return self._fail(f"a malformed number {raw!r}")
        return self._complete(value)

    def _literal(self, char: str) -> bool:
        token = self._token
        assert token is not None
        word, value = _LITERALS[token[0]]
        if char != word[len(token)]:
            return self._fail(f"a malformed literal {''.join(token) + char!r}")
        token.append(char)
        if len(token) < len(word):
            return False
        self._token = None
        return self._complete(value)

    def _complete(self, value: Any) -> bool:
        """A scalar ended: put it in its container."""
        if not self._stack:  # a top-level scalar (only when `start` allows one)
            self._root, self._has_root, self.done = value, True, True
            return True
        frame = self._stack[-1]
        self._attach(frame)
        container = frame.container
        if isinstance(container, dict):
            assert frame.key is not None
            container[frame.key] = value
        else:
            container.append(value)
        frame.expect = _COMMA_OR_END
        return True

    def _close(self) -> bool:
        frame = self._stack.pop()
        newly = not frame.attached  # an empty container becomes visible only now
        self._attach(frame)
        if not self._stack:
            self.done = True
        else:
            self._stack[-1].expect = _COMMA_OR_END
        return newly

    def _attach(self, frame: _Frame) -> None:
        """Make a container visible: in its parent (attached first), or as the root."""
        if frame.attached:
            return
        frame.attached = True
        depth = self._stack.index(frame) if frame in self._stack else len(self._stack)
        if depth == 0:
            self._root, self._has_root = frame.container, True
            return
        parent = self._stack[depth - 1]
        self._attach(parent)
        if isinstance(parent.container, dict):
            assert parent.key is not None
            parent.container[parent.key] = frame.container
        else:
            parent.container.append(frame.container)

    def _fail(self, reason: str) -> bool:
        self.failed = reason
        return False


def _shallow(container: dict[str, Any] | list[Any]) -> dict[str, Any] | list[Any]:
    return dict(container) if isinstance(container, dict) else list(container)
