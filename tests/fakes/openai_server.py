"""A scripted fake OpenAI-compatible server on 127.0.0.1: real sockets, real HTTP/1.1.

Tests queue replies (one per request, in order) and read back what arrived:

    fake.completion("hi")                       # a chat.completion body
    fake.stream([chunk, chunk], chunk_bytes=3)  # SSE, re-split into 3-byte writes
    fake.reply(status=429, json=..., headers={"Retry-After": "2"})
    fake.hang(3) / fake.trickle(body) / fake.reset_connection() / fake.stall_after_headers(...)
    ... client call ...
    fake.last.json, fake.requests, fake.connections

Every wait is on a `threading.Event`, so stopping the server never hangs the suite.
An unscripted request gets a 599 so a test that forgot to script fails loudly.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["FakeServer", "Recorded"]


class Headers(dict):  # type: ignore[type-arg]
    """Case-insensitive lookup over the received headers (first value wins)."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        super().__init__()
        self.raw = list(pairs)
        for name, value in self.raw:
            super().setdefault(name.lower(), value)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    json: Any = None


@dataclass
class Reply:
    """One scripted answer: a function that writes to the socket."""

    action: Callable[[Handler], None]
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _sse(events: Iterable[Any], done: bool) -> bytes:
    out = bytearray()
    for event in events:
        if isinstance(event, bytes):
            out += event
        elif isinstance(event, str):
            out += event.encode()
        else:
            out += b"data: " + json.dumps(event).encode() + b"\n\n"
    if done:
        out += b"data: [DONE]\n\n"
    return bytes(out)


def _pieces(payload: bytes, chunk_bytes: int | None, events: list[bytes] | None = None) -> list[bytes]:
    if chunk_bytes:
        return [payload[i : i + chunk_bytes] for i in range(0, len(payload), chunk_bytes)] or [b""]
    return events if events is not None else [payload]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, OSError):
            pass

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        self.server.fake._record(Recorded(self.command, parts.path, dict(parse_qsl(parts.query)),
                                          Headers(self.headers.items()), body, parsed))

    def do_POST(self) -> None:  # noqa: N802
        self._record()
        self.server.fake._next().action(self)

    do_GET = do_POST  # noqa: N815

    # ---- writing helpers used by replies --------------------------------------------------

    def head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def wait(self, seconds: float) -> bool:
        """Sleep unless the server stops; True if it is stopping."""
        return self.server.fake._stopping.wait(seconds)

    def write(self, data: bytes, chunked: bool) -> None:
        if chunked:
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.wfile.write(data)
        self.wfile.flush()

    def rst(self) -> None:
        """Close with a TCP reset (SO_LINGER 0): the client sees a broken connection."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeServer

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        self.fake._count_connection()
        return request

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class FakeServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.connections = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.default: Reply | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeServer:
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests = []
            self.connections = 0
            self.default = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url_v1(self) -> str:
        return self.url + "/v1"

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def _count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def _next(self) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.default is not None:
            return self.default
        return self._make_reply(599, {"error": {"message": "fake server: no reply scripted"}})

    def _push(self, reply: Reply) -> FakeServer:
        with self._lock:
            self._queue.append(reply)
        return self

    # ---- scripting: whole bodies ------------------------------------------------------------

    @staticmethod
    def _make_reply(status: int, json_body: Any = None, *, body: bytes | None = None,
                    headers: dict[str, str] | None = None, content_type: str | None = None,
                    delay: float = 0.0) -> Reply:
        payload = body if body is not None else json.dumps(json_body).encode()
        kind = content_type or ("application/json" if body is None else "application/octet-stream")

        def act(h: Handler) -> None:
            if delay and h.wait(delay):
                return
            h.head(status, {"Content-Type": kind, "Content-Length": str(len(payload)), **(headers or {})})
            h.wfile.write(payload)
            h.wfile.flush()

        return Reply(act, f"reply {status}")

    def reply(self, json: Any = None, status: int = 200, headers: dict[str, str] | None = None,
              body: bytes | None = None, content_type: str | None = None, delay: float = 0.0) -> FakeServer:
        return self._push(self._make_reply(status, json, body=body, headers=headers, content_type=content_type,
                                           delay=delay))

    def completion(self, content: str | None = "hi", *, tool_calls: list[dict[str, Any]] | None = None,
                   usage: dict[str, Any] | None = None, finish_reason: str = "stop", model: str = "fake-model",
                   reasoning_content: str | None = None, **reply: Any) -> FakeServer:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls is not None:
            message["tool_calls"] = tool_calls
        if reasoning_content is not None:
            message["reasoning_content"] = reasoning_content
        body: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000,
                                "model": model,
                                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}]}
        if usage is not None:
            body["usage"] = usage
        return self.reply(json=body, **reply)

    def replay(self, path: str | Path, *, chunk_bytes: int | None = None, delay: float = 0.0,
               status: int = 200) -> FakeServer:
        path = Path(path)
        payload = path.read_bytes()
        kind = {".sse": "text/event-stream", ".json": "application/json", ".html": "text/html"}.get(
            path.suffix, "application/octet-stream")
        return self._push(self._stream_reply(_pieces(payload, chunk_bytes), kind, delay=delay, status=status))

    # ---- scripting: streams ---------------------------------------------------------------

    def _stream_reply(self, pieces: list[bytes], content_type: str, *, delay: float = 0.0, status: int = 200,
                      drop_after: int | None = None, chunked: bool = True, headers: dict[str, str] | None = None,
                      stall: float = 0.0) -> Reply:
        def act(h: Handler) -> None:
            framing = {"Transfer-Encoding": "chunked"} if chunked else {"Connection": "close"}
            h.head(status, {"Content-Type": content_type, "Cache-Control": "no-cache", **framing, **(headers or {})})
            h.wfile.flush()
            for number, piece in enumerate(pieces):
                if drop_after is not None and number >= drop_after:
                    h.rst()
                    return
                if number and delay and h.wait(delay):
                    return
                h.write(piece, chunked)
            if stall:
                h.wait(stall)
                h.close_connection = True
                return
            if chunked:
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
            else:
                h.close_connection = True

        return Reply(act, "stream")

    def stream(self, events: list[Any], *, delay: float = 0.0, chunk_bytes: int | None = None,
               drop_after: int | None = None, done: bool = True, headers: dict[str, str] | None = None,
               status: int = 200, chunked: bool = True) -> FakeServer:
        """SSE: dicts become `data: <json>` events; str/bytes pieces go out verbatim. Without
        chunk_bytes each event is one write (and `drop_after` counts events)."""
        per_event = [_sse([event], False) for event in events] + ([b"data: [DONE]\n\n"] if done else [])
        payload = b"".join(per_event)
        return self._push(self._stream_reply(_pieces(payload, chunk_bytes, per_event), "text/event-stream",
                                             delay=delay, drop_after=drop_after, chunked=chunked, headers=headers,
                                             status=status))

    def stream_text(self, text: str, *, pieces: int = 4, **kw: Any) -> FakeServer:
        size = max(1, -(-len(text) // pieces))
        parts = [text[i : i + size] for i in range(0, len(text), size)]
        events = [{"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
        events += [{"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}]} for part in parts]
        events.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        return self.stream(events, **kw)

    def stall_after_headers(self, seconds: float, events: list[Any] = ()) -> FakeServer:  # type: ignore[assignment]
        per_event = [_sse([event], False) for event in events]
        return self._push(self._stream_reply(per_event, "text/event-stream", stall=seconds))

    # ---- scripting: misbehaviour ------------------------------------------------------------

    def hang(self, seconds: float = 5.0) -> FakeServer:
        """Read the request, send nothing for `seconds`, then close."""

        def act(h: Handler) -> None:
            h.wait(seconds)
            h.close_connection = True

        return self._push(Reply(act, "hang"))

    def trickle(self, body: bytes, *, interval: float = 1.0, content_type: str = "application/json") -> FakeServer:
        """Headers at once, then the body one byte per `interval`."""

        def act(h: Handler) -> None:
            h.head(200, {"Content-Type": content_type, "Content-Length": str(len(body))})
            h.wfile.flush()
            for byte in body:
                if h.wait(interval):
                    return
                h.wfile.write(bytes([byte]))
                h.wfile.flush()

        return self._push(Reply(act, "trickle"))

    def reset_connection(self) -> FakeServer:
        """Read the request, then reset the connection before any response byte."""
        return self._push(Reply(lambda h: h.rst(), "reset"))

    def close_after_headers(self) -> FakeServer:
        def act(h: Handler) -> None:
            h.head(200, {"Content-Type": "application/json", "Content-Length": "100"})
            h.wfile.flush()
            h.rst()

        return self._push(Reply(act, "close after headers"))
