"""Reads one HTTP/1.1 response from bytes as they arrive. Pure: no I/O, no clock.

Both transports (sync sockets and the asyncio protocol) push whatever they received
into a `ResponseParser` and take back body pieces; every framing decision is made
here, once (RFC 9112 §6.3, "Message Body Length"):

    HEAD request, 1xx, 204, 304      no body
    Transfer-Encoding ends "chunked"   chunked (extensions and trailers read and dropped)
    other Transfer-Encoding            read until the server closes (§6.3 item 4)
    Content-Length                     exactly that many bytes; differing values are an error
    none of these                      read until the server closes ("close-delimited")

Interim answers (100 Continue, 102, 103 Early Hints) are skipped: the next status line
is the real one (RFC 9110 §15.2). A 101 is an error: we never ask to switch protocols.

`keep_alive` says whether the connection may carry another request once `done`:
only if the framing ended the body by itself, the server did not say
`Connection: close`, HTTP/1.0 said `keep-alive`, and no byte arrived after the end
(`extra`): a connection with unread bytes on it would hand them to the next request.

Content-Encoding is undone by `core/decoding.py`; the size cap applies to the decoded
body, and inflating stops at the cap (a small gzip bomb cannot fill memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import APIConnectionError, BadResponseError, ResponseTooLargeError
from .decoding import ACCEPT_ENCODING, Decoder, decoder_for

__all__ = ["ACCEPT_ENCODING", "HeaderMap", "ResponseParser", "head_bytes"]

MAX_HEAD_BYTES = 64 << 10
_HEAD, _FIXED, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS, _CLOSE, _DONE = range(8)


class HeaderMap:
    """Response headers: `get(name)` is case-insensitive (repeats joined with ", "),
    `items()` keeps every (name, value) pair as received."""

    __slots__ = ("_map", "_raw")

    def __init__(self, raw: list[tuple[str, str]]) -> None:
        self._raw = raw
        lower: dict[str, str] = {}
        for name, value in raw:
            key = name.lower()
            if key in lower:
                lower[key] += ", " + value
            else:
                lower[key] = value
        self._map = lower

    def get(self, name: str, default: Any = None) -> Any:
        return self._map.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def items(self) -> list[tuple[str, str]]:
        return list(self._raw)

    def __iter__(self) -> Iterator[str]:
        return iter(name for name, _ in self._raw)

    def __repr__(self) -> str:
        return f"HeaderMap({len(self._raw)} headers)"  # values may hold what a server echoed


def head_bytes(method: str, target: str, host: str, headers: dict[str, str], body_length: int | None) -> bytes:
    """The request line and headers, ready to write. A value holding CR, LF or NUL would
    let a header smuggle another one in: refused, naming the header but not its value."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\0" in value or "\r" in name or "\n" in name or ":" in name:
            from ..errors import ConfigError

            raise ConfigError(f"header {name!r} holds a line break or NUL; remove it from the config")
        lines.append(f"{name}: {value}")
    if body_length is not None:
        lines.append(f"Content-Length: {body_length}")
    text = "\r\n".join(lines) + "\r\n\r\n"
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        bad = next((name for name, value in headers.items() if not _latin1(name + value)), "?")
        from ..errors import ConfigError

        raise ConfigError(
            f"header {bad!r} holds characters HTTP headers cannot carry (only ASCII is safe); fix it in the config"
        ) from None


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


class ResponseParser:
    """One response. `feed(bytes) -> [body pieces]`, `eof() -> [body pieces]` when the
    server closed; `head` (status, headers) once the headers are in; `done` at the end.

        >>> p = ResponseParser()
        >>> p.feed(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi"), p.done, p.keep_alive
        ([b'hi'], True, True)

    `where` names the URL in messages; `max_bytes` caps the decoded body.
    """

    __slots__ = ("status", "reason", "version", "headers", "done", "keep_alive", "extra", "received",
                 "_state", "_buf", "_head_buf", "_left", "_bodiless", "_where", "_max", "_decoder", "_close",
                 "_interim")

    def __init__(self, *, where: str = "the server", max_bytes: int = 64 << 20, bodiless: bool = False) -> None:
        self.status = 0
        self.reason = ""
        self.version = ""
        self.headers: HeaderMap | None = None
        self.done = False
        self.keep_alive = False
        self.extra = False  # bytes arrived after the end of the response
        self.received = 0  # decoded body bytes so far
        self._state = _HEAD
        self._buf = b""
        self._head_buf: bytearray | None = None  # a head begun in earlier reads
        self._left = 0
        self._bodiless = bodiless  # a HEAD request, or a CONNECT's 2xx
        self._where = where
        self._max = max_bytes
        self._decoder: Decoder | None = None
        self._close = False
        self._interim = 0

    @property
    def started(self) -> bool:
        """Whether any byte of the response arrived (a reused connection that fails
        before this may be retried on a fresh one)."""
        return bool(self._buf) or self._head_buf is not None or self.headers is not None or self._interim > 0

    def feed(self, data: bytes) -> list[bytes]:
        if self._state == _DONE:
            if data:
                self.extra = True
                self.keep_alive = False
            return []
        if self._head_buf is not None:
            data = self._more_head(data)
            if not data:
                return []
        elif self._buf:
            data = self._buf + data
            self._buf = b""
        out: list[bytes] = []
        if self._state == _HEAD:
            data = self._head(data)
            if self._state == _HEAD:
                return out
        # The usual cases first: the whole fixed-length body, or part of it.
        state = self._state
        if state == _FIXED:
            if len(data) < self._left:
                self._left -= len(data)
                if data:
                    self._emit(data, out)
                return out
            piece, rest = data[: self._left], data[self._left :]
            self._left = 0
            if piece:
                self._emit(piece, out)
            self._finish(out, rest)
            return out
        if state == _CLOSE:
            if data:
                self._emit(data, out)
            return out
        self._chunked(data, out)
        return out

    def eof(self) -> list[bytes]:
        """The server closed the connection: the end of a close-delimited body, or a
        response cut short (`APIConnectionError`, worth a retry)."""
        out: list[bytes] = []
        if self._state == _DONE:
            return out
        if self._state == _CLOSE:
            self._finish(out, b"", reusable=False)
            return out
        if self._state == _HEAD and self._head_buf is None and self.headers is None and not self._interim:
            hint = "; if it only speaks TLS, use https:// in base_url" if self._where.startswith("http://") else ""
            raise APIConnectionError(f"the server closed the connection without answering ({self._where}){hint}")
        what = "before the headers were complete" if self._state == _HEAD else "before the body was complete"
        raise APIConnectionError(f"the server closed the connection {what} ({self._where})", reason="closed")

    # ---- the status line and headers ---------------------------------------------------

    def _head(self, data: bytes) -> bytes:
        while True:
            end = data.find(b"\r\n\r\n")
            skip = 4
            if end < 0:
                end = data.find(b"\n\n")
                skip = 2
                if end < 0:
                    if len(data) > MAX_HEAD_BYTES:
                        raise self._bad(f"the response headers passed {MAX_HEAD_BYTES} bytes without ending")
                    if data[:1] and not b"HTTP/".startswith(data[:5]) and not data.startswith(b"HTTP/"):
                        self._not_http(data)
                    self._head_buf = bytearray(data)  # grown in place by _more_head
                    return b""
            lines = data[:end].split(b"\n")
            rest = data[end + skip :]
            status = self._status_line(lines[0].rstrip(b"\r"), data)
            if 100 <= status < 200:
                if status == 101:
                    raise self._bad("the server switched protocols (101), which was not asked for")
                self._interim += 1  # 100 Continue, 103 Early Hints: the real answer follows
                if self._interim > 32:
                    raise self._bad("the server sent more than 32 interim (1xx) answers")
                data = rest
                continue
            self.headers = HeaderMap(_header_pairs(lines[1:], self))
            self._frame()
            return rest

    def _more_head(self, data: bytes) -> bytes:
        """A head begun in earlier reads: all of it once its end has come, else b"". Only
        the new bytes (and the three before them) are searched for the end, and the head
        grows in place: a server that sends its head a byte at a time costs linear time
        (a 60 KB head took 4 s when each read copied and searched all of it)."""
        buf = self._head_buf
        assert buf is not None
        start = max(0, len(buf) - 3)
        buf += data
        if buf.find(b"\n\n", start) < 0 and buf.find(b"\r\n\r\n", start) < 0:
            if len(buf) > MAX_HEAD_BYTES:
                raise self._bad(f"the response headers passed {MAX_HEAD_BYTES} bytes without ending")
            if start < 5 and not b"HTTP/".startswith(bytes(buf[:5])) and not buf.startswith(b"HTTP/"):
                self._not_http(bytes(buf))  # the first bytes, checked as they come
            return b""
        self._head_buf = None
        return bytes(buf)

    def _status_line(self, line: bytes, data: bytes) -> int:
        version, _, rest = line.partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            self._not_http(data)
        self.version = version.decode("ascii", "replace")
        self.reason = reason.decode("latin-1").strip()
        self.status = int(code)
        return self.status

    def _frame(self) -> None:
        headers = self.headers
        assert headers is not None
        connection = (headers.get("connection") or "").lower()
        if self.version == "HTTP/1.0":
            self._close = "keep-alive" not in connection
        else:
            self._close = "close" in connection
        encoding = headers.get("content-encoding")
        if encoding:
            self._decoder = decoder_for(encoding, self._where)
        status = self.status
        if self._bodiless or status in (204, 304):
            self._state = _DONE
            self.done = True
            self.keep_alive = not self._close
            return
        transfer = headers.get("transfer-encoding")
        if transfer is not None:
            codings = [c.strip().lower() for c in transfer.split(",") if c.strip()]
            applied = [c for c in codings if c not in ("chunked", "identity")]
            if applied:  # a transfer-coding such as gzip: undone after chunked framing, before Content-Encoding
                self._decoder = decoder_for(", ".join([encoding or "identity", *applied]), self._where)
            # RFC 9112 §6.1: with both, Transfer-Encoding wins and the connection closes after.
            if "content-length" in headers:
                self._close = True
            if transfer.lower().rstrip().endswith("chunked"):
                self._state = _CHUNK_SIZE
            else:
                self._state = _CLOSE
            return
        length = headers.get("content-length")
        if length is not None:
            values = {value.strip() for value in length.split(",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise self._bad(f"the response has an invalid Content-Length {length[:40]!r}")
            self._left = int(next(iter(values)))
            if self._left > self._max and self._decoder is None:
                raise self._too_large()
            self._state = _FIXED
            if self._left == 0:
                self._finish([], b"")
            return
        self._state = _CLOSE  # no length: the body ends when the server closes

    # ---- the body ------------------------------------------------------------------------

    def _chunked(self, data: bytes, out: list[bytes]) -> None:
        pos = 0
        size = len(data)
        while pos < size:
            state = self._state
            if state == _CHUNK_SIZE:
                end = data.find(b"\n", pos)
                if end < 0:
                    self._keep(data[pos:], 1024, "a chunk size line")
                    return
                line = data[pos:end].split(b";", 1)[0].strip()
                pos = end + 1
                try:
                    self._left = int(line, 16)
                except ValueError:
                    raise self._bad(f"a chunk size is not hexadecimal: {line[:20]!r}") from None
                if self._left < 0:
                    raise self._bad("a chunk size is negative")
                self._state = _TRAILERS if self._left == 0 else _CHUNK_DATA
            elif state == _CHUNK_DATA:
                take = min(self._left, size - pos)
                if take:
                    self._emit(data[pos : pos + take], out)
                    pos += take
                    self._left -= take
                if self._left:
                    return
                self._state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                end = data.find(b"\n", pos)
                if end < 0:
                    self._keep(data[pos:], 2, "the end of a chunk")
                    return
                if data[pos:end].strip():
                    raise self._bad("a chunk is longer than its declared size")
                pos = end + 1
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = data.find(b"\n", pos)
                if end < 0:
                    self._keep(data[pos:], 8192, "the trailers")
                    return
                line = data[pos:end].strip()
                pos = end + 1
                if not line:
                    self._finish(out, data[pos:])
                    return
            else:
                return

    def _keep(self, rest: bytes, limit: int, what: str) -> None:
        if len(rest) > limit + 2:
            raise self._bad(f"{what} is too long")
        self._buf = rest

    def _emit(self, data: bytes, out: list[bytes]) -> None:
        if self._decoder is not None:
            data = self._decoder.decode(data, self._max - self.received + 1)
            if not data:
                return
        self.received += len(data)
        if self.received > self._max:
            raise self._too_large()
        out.append(data)

    def _finish(self, out: list[bytes], rest: bytes, reusable: bool = True) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self.received += len(tail)
                if self.received > self._max:
                    raise self._too_large()
                out.append(tail)
        self._state = _DONE
        self.done = True
        self.extra = bool(rest)
        self.keep_alive = reusable and not self._close and not self.extra

    # ---- errors ----------------------------------------------------------------------------

    def _not_http(self, data: bytes) -> None:
        if data[:1] in (b"\x15", b"\x16") and data[1:2] == b"\x03":
            raise BadResponseError(
                f"the server answered with TLS, not plain HTTP ({self._where}); use https:// in base_url",
                body_preview="",
            )
        raise self._bad(f"the server did not answer in HTTP/1.x; it began with {data[:24]!r}")

    def _bad(self, message: str) -> BadResponseError:
        return BadResponseError(f"{message} ({self._where})", retryable=False)

    def _too_large(self) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the response passed the {self._max}-byte cap ({self._where}); raise limits.max_response_bytes "
            "or limits.max_stream_bytes in the config if such answers are expected"
        )


def _header_pairs(lines: list[bytes], parser: ResponseParser) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.rstrip(b"\r")
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and pairs:  # obsolete line folding (RFC 9112 §5.2)
            name, value = pairs[-1]
            pairs[-1] = (name, value + " " + line.strip().decode("latin-1"))
            continue
        key, colon, rest = line.partition(b":")
        if not colon or not key or key != key.strip():
            raise parser._bad(f"a response header line is malformed: {line[:40]!r}")
        pairs.append((key.decode("latin-1"), rest.strip().decode("latin-1")))
    return pairs
