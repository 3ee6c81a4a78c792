"""The only package that touches sockets. Two transports with one shape:

    SyncTransport   sync.py  plain sockets (ssl-wrapped for https), a keep-alive pool
    AsyncTransport  aio.py   an asyncio.Protocol per connection, a keep-alive pool

    transport.send(method, url, headers, body, deadlines, max_bytes, network) -> exchange
    exchange.status, exchange.headers.get(name), exchange.read(), exchange.chunks(), exchange.close()

Every decision is made in pure code that both share, so the two cannot disagree:
`core/http1.py` (status line, headers, 1xx, Content-Length / chunked / close-delimited
framing, gzip/deflate, size caps, whether a connection may be reused),
`core/redirect.py` (which redirects are followed and which headers survive them),
`core/proxy.py` (HTTP(S)_PROXY / ALL_PROXY / NO_PROXY and the "proxy" key). Here live
only the I/O, the deadlines (`base.Deadlines`, recomputed before every read) and the
one mapping of socket/TLS failures to `human.errors` (`base.connection_error`).

Why our own HTTP/1.1 client rather than http.client, urllib3, httpx or aiohttp's
ClientSession (issue 10; figures in docs/performance.md, "Notes"):
- Control. Every class of hostile-server behaviour in issue 10 (trickled headers,
  close-delimited and HTTP/1.0 bodies under real deadlines, 103 Early Hints, bytes
  after a complete response, a pooled connection the server closed, redirects that
  must not turn POST into GET or carry an api-key to another host, TLS errors that
  must become typed errors) is a few lines in a parser and a pool we own, and the
  sync and async clients then behave the same by construction. With the libraries,
  each one was a workaround around someone else's policy (aiohttp's redirect and
  header stripping, http.client's per-read timeouts and email-based header parsing).
- CPU. Measured on loopback against nginx (docs/performance.md, "Notes (issue 10)"),
  CPU per request: `Client` 288 µs against 448 µs on http.client (raw httpx 1,270 µs:
  0.23 ×); `AsyncClient` at 64 in flight 239 µs against 499 µs on aiohttp's
  ClientSession (a lean raw aiohttp 409 µs: 0.58 ×). The transports alone cost about
  half of http.client and of a lean ClientSession.
- No new dependency: aiohttp stays only for the gateway's server side.
What we give up: HTTP/2 (no chat-completions server needs it; a later transport can
add it behind the same two methods) and the libraries' years of field testing, which
the hostile-server tests in tests/transport/ stand in for.
"""

from __future__ import annotations

from .base import Deadlines

# SyncTransport is in .sync, AsyncTransport in .aio: import them from there, so that a
# program that only uses `Client` never loads asyncio.
__all__ = ["Deadlines"]
