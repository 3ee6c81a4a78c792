"""Hostile replies for the scripted fake server: HTTP bent the way real proxies,
gateways and half-broken servers bend it (issue 10). Each function queues one reply on
a `FakeServer` and returns it, so they chain like the server's own methods:

    hostile.trickle_head(fake, interval=0.3)            # the status line one byte at a time
    hostile.framed(fake, body, framing="http10")         # HTTP/1.0, no length, FIN at the end
    hostile.endless(fake, framing="chunked")             # a body that never ends
    hostile.interim(fake, body, codes=(100, 103))        # 1xx answers before the real one
    hostile.encoded(fake, body, "gzip")                  # Content-Encoding gzip / deflate / raw-deflate
    hostile.redirect(fake, 307, "/v1/other")             # a redirect of any kind
    hostile.with_extra(fake, body, b"HTTP/1.1 200 ...")  # bytes after a complete response
    hostile.close_without_answer(fake)                   # read the request, FIN, nothing sent
    hostile.done_then(fake, events, then="hold")         # [DONE], then more bytes or silence
    hostile.raw(fake, b"...", 0.5, b"...", then="close") # anything: bytes and pauses in order

Everything waits on the server's stop event, so stopping the server never hangs.
"""

from __future__ import annotations

import gzip as gziplib
import json as jsonlib
import zlib
from collections.abc import Sequence
from typing import Any, Literal

from tests.fakes.openai_server import FakeServer, Handler, Reply

__all__ = ["close_without_answer", "completion_body", "done_then", "encoded", "endless", "framed", "interim",
           "raw", "redirect", "sse_body", "trickle_head", "with_extra"]

Then = Literal["keep", "close", "hold"]


def completion_body(content: str = "hi", **extra: Any) -> bytes:
    return jsonlib.dumps({"id": "chatcmpl-hostile", "object": "chat.completion", "model": "fake-model",
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                       "finish_reason": "stop"}], **extra}).encode()


def sse_body(*texts: str, finish: str | None = "stop", done: bool = True) -> bytes:
    out = b""
    for text in texts:
        out += b"data: " + jsonlib.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}).encode() + b"\n\n"
    if finish:
        out += b"data: " + jsonlib.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}).encode()
        out += b"\n\n"
    if done:
        out += b"data: [DONE]\n\n"
    return out


def raw(fake: FakeServer, *steps: bytes | float, then: Then = "keep") -> FakeServer:
    """Write each bytes step as it comes, pause for each float; then keep the connection
    (the handler reads the next request), close it (FIN), or hold it open silently until
    the server stops."""

    def act(h: Handler) -> None:
        for step in steps:
            if isinstance(step, (int, float)):
                if h.wait(step):
                    return
                continue
            h.wfile.write(step)
            h.wfile.flush()
        if then == "close":
            h.fin()
        elif then == "hold":
            h.wait(3600)

    return fake._push(Reply(act, "raw"))


def _head(status: int = 200, headers: dict[str, str] | None = None, version: str = "HTTP/1.1",
          reason: str = "OK") -> bytes:
    lines = [f"{version} {status} {reason}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunked(payload: bytes, size: int = 7) -> bytes:
    out = b""
    for i in range(0, len(payload), size):
        piece = payload[i : i + size]
        out += b"%x;ext=1\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


def framed(fake: FakeServer, body: bytes, *, framing: str, content_type: str = "application/json",
           status: int = 200) -> FakeServer:
    """One whole response in the named framing:

        length    Content-Length; the connection stays open
        chunked   chunked, with chunk extensions and a trailer
        close     HTTP/1.1, Connection: close, no length; FIN ends the body
        http10    HTTP/1.0, no length; FIN ends the body
        http10ka  HTTP/1.0 with Content-Length and Connection: keep-alive
        te+cl     Transfer-Encoding: chunked AND a (wrong) Content-Length: chunked wins
        dup-cl    the same Content-Length twice
    """
    ctype = {"Content-Type": content_type}
    if framing == "length":
        return raw(fake, _head(status, {**ctype, "Content-Length": str(len(body))}) + body)
    if framing == "chunked":
        return raw(fake, _head(status, {**ctype, "Transfer-Encoding": "chunked"}) + _chunked(body))
    if framing == "close":
        return raw(fake, _head(status, {**ctype, "Connection": "close"}) + body, then="close")
    if framing == "http10":
        return raw(fake, _head(status, ctype, version="HTTP/1.0") + body, then="close")
    if framing == "http10ka":
        head = _head(status, {**ctype, "Content-Length": str(len(body)), "Connection": "keep-alive"},
                     version="HTTP/1.0")
        return raw(fake, head + body, then="close")
    if framing == "te+cl":
        head = _head(status, {**ctype, "Transfer-Encoding": "chunked", "Content-Length": "3"})
        return raw(fake, head + _chunked(body))
    if framing == "dup-cl":
        head = f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n" \
               f"Content-Length: {len(body)}\r\n\r\n"
        return raw(fake, head.encode() + body)
    raise ValueError(framing)


FRAMINGS = ("length", "chunked", "close", "http10", "http10ka", "te+cl", "dup-cl")


def trickle_head(fake: FakeServer, body: bytes | None = None, *, interval: float = 0.2,
                 content_type: str = "application/json") -> FakeServer:
    """The status line and headers one byte per `interval`; the body (if it ever comes) at once."""
    body = completion_body() if body is None else body
    head = _head(200, {"Content-Type": content_type, "Content-Length": str(len(body))})
    steps: list[bytes | float] = []
    for byte in head:
        steps += [bytes([byte]), interval]
    return raw(fake, *steps, body, then="close")


def endless(fake: FakeServer, *, framing: str, interval: float = 0.1, content_type: str = "application/json",
            piece: bytes = b" ") -> FakeServer:
    """Headers at once, then a body that never ends: one small piece per `interval`,
    each well inside idle, so only total can stop it. Framings as in `framed` (not te+cl)."""
    if framing == "length":
        head = _head(200, {"Content-Type": content_type, "Content-Length": str(10**6)})
    elif framing == "chunked":
        head = _head(200, {"Content-Type": content_type, "Transfer-Encoding": "chunked"})
        piece = b"%x\r\n%s\r\n" % (len(piece), piece)
    elif framing == "close":
        head = _head(200, {"Content-Type": content_type, "Connection": "close"})
    elif framing == "http10":
        head = _head(200, {"Content-Type": content_type}, version="HTTP/1.0")
    else:
        raise ValueError(framing)
    steps: list[bytes | float] = [head]
    for _ in range(3000):  # bounded: five minutes at most, and the server's stop ends it sooner
        steps += [interval, piece]
    return raw(fake, *steps, then="close")


def interim(fake: FakeServer, body: bytes | None = None, *, codes: Sequence[int] = (100, 103)) -> FakeServer:
    """1xx interim answers (103 with Link headers), then the real one."""
    body = completion_body() if body is None else body
    steps = b"".join(_head(code, {"Link": "</style.css>; rel=preload"} if code == 103 else {}, reason="Interim")
                     for code in codes)
    return raw(fake, steps + _head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
               + body)


def encoded(fake: FakeServer, body: bytes, encoding: str, *, framing: str = "length",
            content_type: str = "application/json") -> FakeServer:
    """The body compressed: gzip, deflate (zlib-wrapped, per the RFC) or raw-deflate (sent
    as "deflate" by many servers), in Content-Length or chunked framing."""
    if encoding == "gzip":
        data, name = gziplib.compress(body), "gzip"
    elif encoding == "deflate":
        data, name = zlib.compress(body), "deflate"
    elif encoding == "raw-deflate":
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data, name = compressor.compress(body) + compressor.flush(), "deflate"
    else:
        raise ValueError(encoding)
    headers = {"Content-Type": content_type, "Content-Encoding": name}
    if framing == "chunked":
        return raw(fake, _head(200, {**headers, "Transfer-Encoding": "chunked"}) + _chunked(data, 5))
    return raw(fake, _head(200, {**headers, "Content-Length": str(len(data))}) + data)


def redirect(fake: FakeServer, status: int, location: str | None, *, body: bytes = b"") -> FakeServer:
    headers = {"Content-Length": str(len(body))}
    if location is not None:
        headers["Location"] = location
    return raw(fake, _head(status, headers, reason="Redirect") + body)


def with_extra(fake: FakeServer, body: bytes, extra: bytes, *, delay: float = 0.0) -> FakeServer:
    """A complete Content-Length response followed by bytes nobody asked for: at once (in
    the same write) or `delay` seconds later, while the client holds the connection idle."""
    head = _head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
    if delay:
        return raw(fake, head + body, delay, extra, then="hold")
    return raw(fake, head + body + extra, then="hold")


def close_without_answer(fake: FakeServer) -> FakeServer:
    """Read the request, then FIN: how a kept-alive connection the server dropped looks."""
    return raw(fake, then="close")


def done_then(fake: FakeServer, body: bytes, *, then: Literal["hold", "more"], chunked: bool = True) -> FakeServer:
    """A stream `body` ending in [DONE], then either silence on an open connection or more
    event bytes (which are not part of the answer)."""
    head = _head(200, {"Content-Type": "text/event-stream",
                       **({"Transfer-Encoding": "chunked"} if chunked else {"Connection": "close"})})
    frame = (lambda data: b"%x\r\n%s\r\n" % (len(data), data)) if chunked else (lambda data: data)
    if then == "hold":
        return raw(fake, head + frame(body), then="hold")
    more = sse_body("MORE", finish=None, done=False)
    return raw(fake, head + frame(body), 0.05, frame(more), then="hold")
