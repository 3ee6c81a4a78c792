"""A scripted fake OpenAI-compatible server on 127.0.0.1: real sockets, real HTTP/1.1.

Tests queue replies (one per request, any method and path, in order) and read back
what arrived:

    fake.completion("hi")                       # a chat.completion body
    fake.stream([chunk, chunk], chunk_bytes=3)  # SSE, re-split into 3-byte writes
    fake.reply(status=429, json=..., headers={"Retry-After": "2"})
    fake.hang(3) / fake.trickle(body) / fake.reset_connection() / fake.stall_after_headers(...)
    fake.hold_until_closed()                    # records when the client went away (fake.closed_at)
    fake.respond(lambda request: {...})         # computed from the request (a quirky server)
    ... client call ...
    fake.last.json, fake.requests, fake.connections

Every wait is on a `threading.Event`, so stopping the server never hangs the suite.
An unscripted request gets a 599 so a test that forgot to script fails loudly; a
scripted reply becomes the answer to every unscripted request with `.as_default()`.

How a connection can end, and what a client sees:

    normal           Content-Length or a terminating chunk; the connection stays open
    chunked=False    no length, `Connection: close`, FIN at the end (read-until-close)
    drop_with="fin"  FIN mid-body: EOF before the body is complete (IncompleteRead)
    drop_with="rst"  RST mid-body (SO_LINGER 0): bytes already sent can still be read,
                     then ECONNRESET (ConnectionResetError)
"""

from __future__ import annotations

import json as jsonlib
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

__all__ = ["FakeServer", "Headers", "Recorded", "Reply"]

UNSCRIPTED_STATUS = 599
CONTENT_TYPES = {".sse": "text/event-stream", ".json": "application/json", ".html": "text/html",
                 ".txt": "text/plain"}


class Headers(dict[str, str]):
    """The received headers: case-insensitive lookup (first value wins); `raw` keeps
    every (name, value) pair in arrival order, `get_all` returns repeats."""

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

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.raw if key.lower() == name.lower()]


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived. `json` is the parsed body, or None when it is not JSON."""

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    json: Any = None


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a function that writes to the handler's socket."""

    action: Callable[[Handler], None]
    label: str = ""


def _sse(event: Any) -> bytes:
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):
        return event.encode()
    return b"data: " + jsonlib.dumps(event).encode() + b"\n\n"


def _split(payload: bytes, chunk_bytes: int | None) -> list[bytes]:
    if not chunk_bytes:
        return [payload]
    return [payload[i : i + chunk_bytes] for i in range(0, len(payload), chunk_bytes)]


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


class Handler(BaseHTTPRequestHandler):
    """Records each request, then hands the socket to the next scripted reply."""

    protocol_version = "HTTP/1.1"
    # Small writes must leave as separate segments, or "awkward boundaries" merge again.
    disable_nagle_algorithm = True
    server: _Server
    recorded: Recorded

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet on purpose
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the client went away; that is what many tests are about
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return bytes(body)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        body = self._read_body()
        parts = urlsplit(self.path)
        try:
            parsed = jsonlib.loads(body) if body else None
        except ValueError:
            parsed = None
        recorded = Recorded(self.command, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)),
                            Headers(self.headers.items()), body, parsed)
        self.server.fake._record(recorded)
        self.recorded = recorded  # for replies computed from the request (`FakeServer.respond`)
        self.server.fake._next().action(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

    # ---- writing helpers used by replies ----------------------------------------------------

    def head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def write(self, data: bytes, chunked: bool) -> None:
        if chunked:
            if data:  # an empty chunk would end the body
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.wfile.write(data)
        self.wfile.flush()

    def wait(self, seconds: float) -> bool:
        """Wait unless the server stops; True (and the connection is to close) if it is stopping."""
        stopping = self.server.fake._stopping.wait(seconds)
        if stopping:
            self.close_connection = True
        return stopping

    def fin(self) -> None:
        """End the connection normally (FIN) once this reply returns."""
        self.close_connection = True

    def rst(self) -> None:
        """Close now with a TCP reset: SO_LINGER on with a zero timeout discards the send
        buffer and sends RST instead of FIN."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the buffered reader holds a reference that would delay the close
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: 64 clients connecting at once overflow it, and
    # the dropped SYNs are retried by the kernel after 1, 3, 7, 15 s; on a loaded machine a
    # test of 64 concurrent requests then ran past its deadline (a CI flake).
    request_queue_size = 1024
    fake: FakeServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        self.fake._opened(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        self.fake._closed(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # no tracebacks on stderr when a client disconnects


class FakeServer:
    """A real HTTP/1.1 server on 127.0.0.1:0 (a fresh port) that answers from a script."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._live: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[Recorded] = []
        self.connections = 0
        self.closed_at: list[float] = []  # when `hold_until_closed` saw the client go (time.monotonic())
        #: What an unscripted request gets; None means a 599 JSON error.
        self.default: Reply | None = None

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeServer:
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-openai-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake every waiting reply, and close every open connection."""
        self._stopping.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self._lock:
            live, self._live = list(self._live), set()
        for sock in live:  # idle keep-alive connections sit in a blocking read; wake them
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> FakeServer:
        """Forget the script, the default, the recorded requests and the connection count."""
        with self._lock:
            self._queue.clear()
            self.requests = []
            self.connections = 0
            self.closed_at = []
            self.default = None
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeServer is not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url_v1(self) -> str:
        return self.url + "/v1"

    @property
    def last(self) -> Recorded:
        with self._lock:
            if not self.requests:
                raise AssertionError("the fake server has received no request")
            return self.requests[-1]

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        with self._lock:
            return len(self._queue)

    # ---- called from handler threads --------------------------------------------------------

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def _opened(self, sock: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            self._live.add(sock)

    def _closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.discard(sock)

    def _next(self) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self.default is not None:
                return self.default
        return _whole(UNSCRIPTED_STATUS, jsonlib.dumps({"error": {"message": "fake server: no reply scripted"}})
                      .encode(), "application/json")

    def _push(self, reply: Reply) -> FakeServer:
        with self._lock:
            self._queue.append(reply)
        return self

    def as_default(self) -> FakeServer:
        """Move the reply scripted last out of the queue and send it for every unscripted
        request: `fake.reply(status=503).as_default()`."""
        with self._lock:
            if not self._queue:
                raise AssertionError("as_default() needs a scripted reply to take")
            self.default = self._queue.pop()
        return self

    # ---- scripting: whole bodies ------------------------------------------------------------

    def reply(self, json: Any = None, status: int = 200, headers: dict[str, str] | None = None,
              body: bytes | None = None, content_type: str | None = None, delay: float = 0.0) -> FakeServer:
        """One response with Content-Length framing. `body` (bytes) overrides `json`;
        `headers` override the defaults; `delay` waits before the status line."""
        if body is None:
            payload, kind = jsonlib.dumps(json).encode(), content_type or "application/json"
        else:
            payload, kind = body, content_type or "application/octet-stream"
        return self._push(_whole(status, payload, kind, headers, delay))

    def completion(self, content: str | None = "hi", *, tool_calls: list[dict[str, Any]] | None = None,
                   usage: dict[str, Any] | None = None, finish_reason: str | None = "stop",
                   model: str = "fake-model", reasoning_content: str | None = None, **reply: Any) -> FakeServer:
        """A `chat.completion` body with one choice; `usage` is omitted unless given.
        Other keywords (status, headers, delay) go to `reply`."""
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
        """A recorded corpus file sent verbatim (chunked), its content type from the extension."""
        path = Path(path)
        kind = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        return self._push(_streamed(_split(path.read_bytes(), chunk_bytes), kind, status=status, delay=delay))

    def respond(self, answer: Callable[[Recorded], Any]) -> FakeServer:
        """A reply computed from the request, for servers that behave by what they are
        sent (`.as_default()` makes it the whole server). `answer(request)` returns a JSON
        body (status 200), a `(status, body)` pair, or a `list` of stream events (as
        `stream` takes them)."""

        def act(h: Handler) -> None:
            result = answer(h.recorded)
            if isinstance(result, list):
                reply = _streamed([_sse(event) for event in result] + [b"data: [DONE]\n\n"], "text/event-stream")
            else:
                status, body = result if isinstance(result, tuple) else (200, result)
                reply = _whole(status, jsonlib.dumps(body).encode(), "application/json")
            reply.action(h)

        return self._push(Reply(act, "respond"))

    # ---- scripting: streams -----------------------------------------------------------------

    def stream(self, events: Sequence[Any], *, delay: float = 0.0, chunk_bytes: int | None = None,
               drop_after: int | None = None, drop_with: Literal["rst", "fin"] = "rst", done: bool = True,
               headers: dict[str, str] | None = None, status: int = 200, chunked: bool = True) -> FakeServer:
        """SSE. Dicts become `data: <json>` events; str/bytes pieces go out verbatim;
        `done` appends `data: [DONE]`. Each event is one write, unless `chunk_bytes`
        re-splits the whole payload into writes of that size. `delay` separates writes.
        `drop_after=N` ends the connection after N writes, before the body is complete,
        with `drop_with` ("rst" or "fin"); the stream then never ends cleanly."""
        per_event = [_sse(event) for event in events] + ([b"data: [DONE]\n\n"] if done else [])
        pieces = _split(b"".join(per_event), chunk_bytes) if chunk_bytes else per_event
        return self._push(_streamed(pieces, "text/event-stream", status=status, delay=delay, headers=headers,
                                    chunked=chunked, drop_after=drop_after, drop_with=drop_with))

    def stream_text(self, text: str, *, pieces: int = 4, model: str = "fake-model",
                    finish_reason: str = "stop", **kw: Any) -> FakeServer:
        """`text` as content deltas in OpenAI's chunk shape: a role chunk, `pieces`
        content chunks, a finish chunk. Other keywords go to `stream`."""
        size = max(1, -(-len(text) // pieces))
        events = [_chunk(model, {"role": "assistant", "content": ""})]
        events += [_chunk(model, {"content": text[i : i + size]}) for i in range(0, len(text), size)]
        events.append(_chunk(model, {}, finish_reason))
        return self.stream(events, **kw)

    def stall_after_headers(self, seconds: float, events: Sequence[Any] = ()) -> FakeServer:
        """Headers and `events` at once, then silence for `seconds`, then FIN."""
        return self._push(_streamed([_sse(event) for event in events], "text/event-stream", stall=seconds))

    # ---- scripting: misbehaviour ------------------------------------------------------------

    def hang(self, seconds: float = 5.0) -> FakeServer:
        """Read the request, send nothing for `seconds`, then close (FIN)."""

        def act(h: Handler) -> None:
            h.wait(seconds)
            h.fin()

        return self._push(Reply(act, f"hang {seconds}"))

    def trickle(self, body: bytes, *, interval: float = 1.0, content_type: str = "application/json",
                status: int = 200) -> FakeServer:
        """Headers (with Content-Length) at once, then the body one byte per `interval`."""

        def act(h: Handler) -> None:
            h.head(status, {"Content-Type": content_type, "Content-Length": str(len(body))})
            for byte in body:
                if h.wait(interval):
                    return
                h.write(bytes([byte]), chunked=False)

        return self._push(Reply(act, "trickle"))

    def hold_until_closed(self, seconds: float = 10.0, *, events: Sequence[Any] | None = None) -> FakeServer:
        """Read the request, then wait for the client to close the connection (at most
        `seconds`). With `events`, first send a stream's headers and those events. The
        moment the close is seen (`time.monotonic()`) is appended to `closed_at`: a test
        of cancellation compares it with when its own caller went away."""

        def act(h: Handler) -> None:
            if events is not None:
                h.head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
                for event in events:
                    h.write(_sse(event), chunked=True)
            sock = h.connection
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not self._stopping.is_set():
                readable, _, _ = select.select([sock], [], [], 0.005)
                if not readable:
                    continue
                try:
                    gone = sock.recv(1, socket.MSG_PEEK) == b""
                except OSError:  # a reset: gone too
                    gone = True
                if gone:
                    with self._lock:
                        self.closed_at.append(time.monotonic())
                    break
                time.sleep(0.005)  # bytes the client sent: not a close
            h.fin()

        return self._push(Reply(act, "hold until closed"))

    def reset_connection(self) -> FakeServer:
        """Read the request, then reset the connection (RST) before any response byte."""
        return self._push(Reply(lambda h: h.rst(), "reset"))

    def close_after_headers(self, status: int = 200) -> FakeServer:
        """Status line and headers promising a 100-byte body, then FIN: the client sees
        the body end early."""

        def act(h: Handler) -> None:
            h.head(status, {"Content-Type": "application/json", "Content-Length": "100"})
            h.fin()

        return self._push(Reply(act, "close after headers"))


# ---- reply builders -----------------------------------------------------------------------------


def _whole(status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None,
           delay: float = 0.0) -> Reply:
    # 1xx, 204 and 304 responses carry no body (RFC 9110, section 6.4.1).
    bodiless = status < 200 or status in (204, 304)

    def act(h: Handler) -> None:
        if delay and h.wait(delay):
            return
        framing = {} if bodiless else {"Content-Type": content_type, "Content-Length": str(len(payload))}
        h.head(status, {**framing, **(headers or {})})
        if not bodiless:
            h.write(payload, chunked=False)

    return Reply(act, f"reply {status}")


def _streamed(pieces: list[bytes], content_type: str, *, status: int = 200, delay: float = 0.0,
              headers: dict[str, str] | None = None, chunked: bool = True, drop_after: int | None = None,
              drop_with: Literal["rst", "fin"] = "rst", stall: float = 0.0) -> Reply:
    if drop_with not in ("rst", "fin"):
        raise ValueError(f"drop_with must be 'rst' or 'fin', not {drop_with!r}")

    def drop(h: Handler) -> None:
        if drop_with == "rst":
            h.rst()
        else:
            h.fin()

    def act(h: Handler) -> None:
        framing = {"Transfer-Encoding": "chunked"} if chunked else {"Connection": "close"}
        h.head(status, {"Content-Type": content_type, "Cache-Control": "no-cache", **framing, **(headers or {})})
        for number, piece in enumerate(pieces):
            if number == drop_after:
                drop(h)
                return
            if number and delay and h.wait(delay):
                return
            h.write(piece, chunked)
        if drop_after is not None:  # fewer writes than drop_after: still never end cleanly
            drop(h)
        elif stall:
            h.wait(stall)
            h.fin()
        elif chunked:
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        else:
            h.fin()

    return Reply(act, "stream")
