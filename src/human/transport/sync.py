"""The synchronous transport: plain sockets, the shared HTTP/1.1 parser
(`core/http1.py`) and a keep-alive pool. Its async twin is `aio.py`; the two are laid
out method for method alike.

Deadlines are real: before every `recv` the time allowed is recomputed from the call's
deadlines (`base.Deadlines`), so a server that trickles bytes cannot stretch
first_byte, idle or total, whatever the framing of its body.

`socket` and `ssl` are imported where a connection is opened or checked, not at the top:
every `Client` holds a transport, and a client that never connects (a dry run, `human
chat --dry-run`) should not pay ~15 ms of start-up for them.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING

from ..core.http1 import ACCEPT_ENCODING, HeaderMap, ResponseParser, head_bytes
from ..core.proxy import Network, Proxy
from ..core.redirect import REDIRECT_STATUSES, follow
from ..errors import APIConnectionError, APITimeoutError, HumanError
from .base import (
    READ_SIZE,
    Deadlines,
    Endpoint,
    connect_request,
    connection_error,
    endpoint,
    readable,
    route_key,
    timeout_error,
    tls_context,
    tunnel_error,
)

if TYPE_CHECKING:
    import socket

__all__ = ["SyncExchange", "SyncTransport"]

Key = tuple[str, str, int, "Proxy | None", "str | None"]


class SyncExchange:
    """One response being read: `read()` for a whole body, `chunks()` for a stream;
    `close()` hands the connection back only if the response ended cleanly."""

    __slots__ = ("_transport", "_key", "_sock", "_parser", "_deadlines", "_where", "_first", "status", "headers")

    def __init__(self, transport: SyncTransport, key: Key, sock: socket.socket, parser: ResponseParser,
                 deadlines: Deadlines, where: str, first: list[bytes]) -> None:
        self._transport = transport
        self._key = key
        self._sock: socket.socket | None = sock
        self._parser = parser
        self._deadlines = deadlines
        self._where = where
        self._first = first
        self.status = parser.status
        self.headers: HeaderMap = parser.headers  # type: ignore[assignment]

    def chunks(self) -> Generator[bytes, None, None]:
        parser, first = self._parser, self._first
        self._first = []
        try:
            yield from first
            while not parser.done:
                yield from self._transport._receive(self._sock, parser, self._deadlines, "idle", self._where)
        finally:
            self.close()

    def read(self) -> bytes:
        if self._parser.done:  # the usual case: the whole body came with the headers
            body = b"".join(self._first)
            self.close()
            return body
        return b"".join(self.chunks())

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._parser.done and self._parser.keep_alive:
            self._transport._release(self._key, sock)
        else:
            sock.close()  # unread bytes, a body not read to its end, or the server's wish


class SyncTransport:
    """Sockets with a keep-alive pool per (origin, proxy, CA bundle). Thread-safe."""

    def __init__(self, max_idle_per_host: int = 16) -> None:
        self._idle: dict[Key, list[socket.socket]] = {}
        self._lock = threading.Lock()
        self._max_idle = max_idle_per_host

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, deadlines: Deadlines,
             max_bytes: int, network: Network) -> SyncExchange:
        """Send one request, following redirects as `core/redirect.py` decides."""
        deadlines.start()
        hops = 0
        while True:
            exchange = self._exchange(method, url, headers, body, deadlines, max_bytes, network)
            if exchange.status not in REDIRECT_STATUSES:
                return exchange
            exchange.close()
            method, url, headers, keep_body = follow(method, url, exchange.status, exchange.headers.get("location"),
                                                     headers, hops=hops, secret_headers=network.secret_headers)
            body = body if keep_body else None
            hops += 1

    def _exchange(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                  deadlines: Deadlines, max_bytes: int, network: Network) -> SyncExchange:
        end = endpoint(url)
        key = route_key(end, network)
        request = _request_bytes(method, end, key[3], headers, body)
        for reused in (True, False):
            sock = self._take(key) if reused else None
            if reused and sock is None:
                continue
            if sock is None:
                sock = self._open(key, end, deadlines)
            parser = ResponseParser(where=end.where, max_bytes=max_bytes)
            failure: HumanError | None = None
            first: list[bytes] = []
            try:
                self._write(sock, request, deadlines, end.where)
            except HumanError as exc:
                failure = exc  # the server may have answered (and closed) before reading it all
            try:
                while parser.headers is None:
                    first += self._receive(sock, parser, deadlines, "first_byte", end.where)
            except HumanError as exc:
                failure = failure or exc
            else:
                failure = None
            if failure is None:
                return SyncExchange(self, key, sock, parser, deadlines, end.where, first)
            sock.close()
            if reused and not parser.started and _stale(failure):
                continue  # a kept-alive connection the server had dropped: once more on a fresh one
            raise failure
        raise AssertionError("unreachable")

    # ---- reading and writing ----------------------------------------------------------

    def _write(self, sock: socket.socket, request: bytes, deadlines: Deadlines, where: str) -> None:
        limit, which = deadlines.limit("first_byte")
        failure: HumanError | None = None
        try:
            sock.settimeout(_positive(limit))
            sock.sendall(request)
        except TimeoutError:
            failure = timeout_error(which, deadlines, where)
        except OSError as exc:
            failure = connection_error(exc, where, "while sending the request")
        if failure is not None:
            raise failure

    def _receive(self, sock: socket.socket | None, parser: ResponseParser, deadlines: Deadlines, kind: str,
                 where: str) -> list[bytes]:
        """One read under the deadline that applies now; the body pieces it completed."""
        assert sock is not None, "the exchange is closed"
        limit, which = deadlines.limit(kind)
        failure: HumanError | None = None
        data = b""
        try:
            sock.settimeout(_positive(limit))
            data = sock.recv(READ_SIZE)
        except TimeoutError:
            failure = timeout_error(which, deadlines, where)
        except OSError as exc:
            if _tls_eof(exc):
                data = b""  # closed without TLS close_notify: an end like any other (framing decides)
            else:
                failure = connection_error(exc, where, "in the middle of the response" if parser.headers is not None
                                           else "before the response")
        if failure is not None:
            raise failure
        if not data:
            return parser.eof()
        deadlines.last = time.monotonic()
        return parser.feed(data)

    # ---- connections ----------------------------------------------------------------------

    def _open(self, key: Key, end: Endpoint, deadlines: Deadlines) -> socket.socket:
        import socket

        proxy = key[3]
        address = (proxy.host, proxy.port) if proxy is not None else (end.host, end.port)
        context = tls_context(key[4]) if end.https else None
        deadlines.connecting()
        limit, which = deadlines.limit("connect")
        failure: HumanError | None = None
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection(address, timeout=_positive(limit))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proxy is not None and end.https:
                self._tunnel(sock, end, proxy, deadlines)
            if context is not None:
                sock.settimeout(_positive(deadlines.limit("connect")[0]))
                sock = context.wrap_socket(sock, server_hostname=end.host)
        except TimeoutError:
            failure = timeout_error(which, deadlines, end.where)
        except OSError as exc:
            failure = connection_error(exc, end.where, "while connecting", host=end.host, proxy=proxy)
        except HumanError as exc:
            failure = exc
        if failure is not None:
            if sock is not None:
                sock.close()
            raise failure
        assert sock is not None
        return sock

    def _tunnel(self, sock: socket.socket, end: Endpoint, proxy: Proxy, deadlines: Deadlines) -> None:
        sock.sendall(connect_request(end, proxy))
        parser = ResponseParser(where=f"the proxy {proxy.shown}", bodiless=True)
        while parser.headers is None:
            self._receive(sock, parser, deadlines, "connect", proxy.shown)
        if not 200 <= parser.status < 300:
            raise tunnel_error(parser.status, proxy, end)

    def _take(self, key: Key) -> socket.socket | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                sock = idle.pop() if idle else None
            if sock is None or _healthy(sock):
                return sock
            sock.close()

    def _release(self, key: Key, sock: socket.socket) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._max_idle:
                idle.append(sock)
                return
        sock.close()

    def close(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for idle in pools.values():
            for sock in idle:
                sock.close()


def _request_bytes(method: str, end: Endpoint, proxy: Proxy | None, headers: Mapping[str, str],
                   body: bytes | None) -> bytes:
    fields = dict(headers)
    if "Accept-Encoding" not in fields:
        fields["Accept-Encoding"] = ACCEPT_ENCODING
    target = end.target
    if proxy is not None and not end.https:
        target = end.absolute  # a plain-http request through a proxy names the whole URL
        if proxy.authorization is not None:
            fields["Proxy-Authorization"] = proxy.authorization.reveal()
    head = head_bytes(method, target, end.host_header, fields, None if body is None else len(body))
    return head + body if body else head


def _positive(limit: float | None) -> float | None:
    """A socket timeout: None blocks; 0 would mean non-blocking, so a spent deadline
    becomes the smallest wait that still times out at once."""
    if limit is None:
        return None
    return limit if limit > 0 else 1e-6


def _stale(failure: HumanError) -> bool:
    """Whether a failure before any response byte is how a dropped idle connection looks."""
    return isinstance(failure, APIConnectionError) and not isinstance(failure, APITimeoutError) \
        and failure.retryable


def _tls_eof(exc: OSError) -> bool:
    """Whether a failed read is a TLS peer closing without close_notify."""
    import ssl

    return isinstance(exc, ssl.SSLEOFError)


def _healthy(sock: socket.socket) -> bool:
    """An idle connection is fit for reuse only if nothing arrived on it: readable means
    the server closed it or sent bytes nobody asked for (never reused, issue 10)."""
    try:
        waiting = readable(sock.fileno())
    except OSError:
        return False
    ssl = sys.modules.get("ssl")  # not imported: then no socket is a TLS one (and no import per reuse)
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        if sock.pending():
            return False
        if waiting:
            # TLS 1.3 sends session tickets after the handshake: readable, yet no data.
            sock.setblocking(False)
            try:
                sock.recv(1)
            except ssl.SSLWantReadError:
                return True
            except OSError:
                return False
            return False
        return True
    return not waiting
