"""Turns the bytes of a `text/event-stream` body into events, as they arrive. Pure: no
I/O; the caller feeds whatever chunks the transport produced, split at any byte.

Follows WHATWG HTML, "Interpreting an event stream": lines end in CRLF, LF or CR; a
blank line dispatches the event; `:` starts a comment; `data:` lines are joined with
"\\n"; one space after the colon is dropped; a leading UTF-8 BOM is skipped; invalid
UTF-8 becomes U+FFFD. One deliberate difference: at end of stream, `close()` dispatches
an event that lacked its final blank line (the spec drops it), because servers that
end without one are common and the data is the answer. And an `event: error` without
any data line is still dispatched (with empty data): it must fail the stream (issue 10).

Speed: line ends are normalised to LF as bytes come in (so a CRLF split across two
chunks costs one flag), events are cut at b"\\n\\n" in a bytearray, and the usual
event, a single `data: {...}` line, is sliced out without a per-line loop. Anything
else goes through the general line parser.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ResponseTooLargeError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEDecoder", "SSEEvent"]

DEFAULT_MAX_EVENT_BYTES = 16 << 20
_BOM = b"\xef\xbb\xbf"
# Past this much buffered without an event boundary, complete lines are parsed into
# the pending event so the buffer (and the boundary search) stays small.
_EAGER_BYTES = 1 << 16


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. `id` is the last event id seen in the stream, if any."""

    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """`feed(bytes) -> events` as chunks arrive, then `close() -> events` at end of stream.

        >>> d = SSEDecoder(); d.feed(b'data: {"a"'), d.feed(b': 1}\\n\\n')
        ([], [SSEEvent(data='{"a": 1}', event='message', id=None)])

    `max_event_bytes` caps one pending event; past it `ResponseTooLargeError` is raised
    (a server that never sends a blank line must not fill memory).
    """

    __slots__ = (
        "_buf",
        "_scan",
        "_flat",
        "_max",
        "_head",
        "_bom",
        "_skip_lf",
        "_edge",
        "_data",
        "_size",
        "_event",
        "_last_id",
    )

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._buf = bytearray()
        self._scan = 0  # bytes at the start of _buf already searched for the end of an event
        self._flat = 0  # bytes at the start of _buf known to hold no line end (large events)
        self._max = max_event_bytes
        self._head = b""  # the first bytes, while they could still be a BOM
        self._bom = True  # still at the start of the stream
        self._skip_lf = False  # the last chunk ended in CR: a LF first in the next one belongs to it
        self._edge = True  # either of the two above: the next chunk needs `_edges`
        self._data: list[bytes] = []  # data lines of the pending event (general parser)
        self._size = 0
        self._event = ""
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; return every event completed by them."""
        if self._edge:
            chunk = self._edges(chunk)
        if chunk.find(b"\r") >= 0:
            # SSE: CRLF, LF and CR all end a line; from here on only LF is seen.
            self._skip_lf = self._edge = chunk[-1] == 13
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf
        buf += chunk
        events: list[SSEEvent] = []
        size = len(buf)
        start = 0
        clean = not self._data and not self._event
        if self._scan:
            # A pending event was already searched up to _scan: a boundary can only
            # involve the new bytes, so resume there (keeps a huge event linear).
            end = buf.find(b"\n\n", self._scan - 1)
            if end < 0:
                start = -1
            else:
                self._take(0, end, clean, events)
                clean = True
                start = end + 2
        while start >= 0:
            line_end = buf.find(b"\n", start)
            if line_end < 0 or line_end + 1 == size:
                break  # the next line (or whether a blank line follows it) is still to come
            if clean and buf[line_end + 1] == 10 and buf.startswith(b"data:", start):
                # The usual event: one `data:` line, then the blank line.
                begin = start + 6 if buf[start + 5] == 32 else start + 5
                events.append(SSEEvent(buf[begin:line_end].decode("utf-8", "replace"), "message", self._last_id))
                start = line_end + 2
                continue
            end = buf.find(b"\n\n", line_end)
            if end < 0:
                break
            self._take(start, end, clean, events)
            clean = True
            start = end + 2
        if start == size:
            buf.clear()
            self._flat = 0
        elif start > 0:
            del buf[:start]
            self._flat = 0
        if len(buf) > _EAGER_BYTES:
            self._parse_complete_lines(events)
        self._scan = len(buf)
        if self._size + self._scan > self._max:
            self._too_large()
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: parse what is left and dispatch a pending event."""
        events: list[SSEEvent] = []
        if self._bom:
            self._bom = False
            self._buf += self._head
            self._head = b""
        if self._buf:
            lines = bytes(self._buf).split(b"\n")
            self._buf.clear()
            self._scan = self._flat = 0
            if not lines[-1]:
                lines.pop()
            for line in lines:
                self._line(line, events)
        self._dispatch(events)
        return events

    # ---- general parser ------------------------------------------------------------

    def _take(self, start: int, end: int, clean: bool, events: list[SSEEvent]) -> None:
        """The event in `_buf[start:end]`, whose blank line follows at `end`."""
        buf = self._buf
        if clean and buf.startswith(b"data:", start) and buf.find(b"\n", start, end) < 0:
            begin = start + 6 if buf[start + 5 : start + 6] == b" " else start + 5
            events.append(SSEEvent(buf[begin:end].decode("utf-8", "replace"), "message", self._last_id))
            return
        if end - start > self._max:
            self._too_large()
        # SSE: a blank line ends the event (WHATWG HTML, "Interpreting an event stream")
        for line in buf[start:end].split(b"\n"):
            self._line(line, events)
        self._dispatch(events)

    def _line(self, line: bytes | bytearray, events: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == 58:  # ":" starts a comment (servers send ": keep-alive")
            return
        colon = line.find(b":")
        value: bytes | bytearray
        if colon < 0:
            name, value = line, b""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            self._data.append(bytes(value))
            self._size += len(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", "replace")
        # "retry" and unknown fields are ignored: there is no reconnection here.

    def _dispatch(self, events: list[SSEEvent]) -> None:
        # Deviation: an `error` event is dispatched even without data (the spec drops
        # data-less events), because a server that says "error" must never be ignored.
        if self._data or self._event == "error":
            data = b"\n".join(self._data).decode("utf-8", "replace")
            events.append(SSEEvent(data, self._event or "message", self._last_id))
            self._data = []
            self._size = 0
        self._event = ""

    def _parse_complete_lines(self, events: list[SSEEvent]) -> None:
        buf = self._buf
        cut = buf.rfind(b"\n", self._flat)
        if cut >= 0:
            for line in buf[:cut].split(b"\n"):
                self._line(line, events)
            del buf[: cut + 1]
        self._flat = len(buf)  # no line end left in _buf: the next search starts after it

    def _edges(self, chunk: bytes) -> bytes:
        """A possible BOM at the start of the stream; the LF of a CRLF split across chunks."""
        if self._bom:
            head = self._head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head
                return b""
            self._bom = False
            self._head = b""
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 10:
                chunk = chunk[1:]
        self._edge = self._bom or self._skip_lf
        return chunk

    def _too_large(self) -> None:
        raise ResponseTooLargeError(
            f"one stream event passed {self._max} bytes without ending; the server may not be "
            "sending server-sent events (raise max_event_bytes if such events are expected)",
            retryable=False,
            body_preview=bytes(self._buf[:200]).decode("utf-8", "replace"),
        )
