"""The asynchronous transport: an `asyncio.Protocol` per connection feeding the shared
HTTP/1.1 parser (`core/http1.py`), and a keep-alive pool of our own. The twin of
`sync.py`, laid out method for method alike.

Each wait is one future and one timer: the protocol wakes the future when bytes
arrive, the timer when the deadline that applies now (recomputed before every wait,
`base.Deadlines`) passes. A connection idle in the pool that receives bytes or is
closed by the server is never handed out again.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from ..core.http1 import HeaderMap, ResponseParser
from ..core.proxy import Network, Proxy
from ..core.redirect import REDIRECT_STATUSES, follow
from ..errors import HumanError
from .base import (
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
from .sync import Key, _request_bytes, _stale

__all__ = ["AsyncExchange", "AsyncTransport"]

# Past this much received and not yet taken by the reader, stop reading from the socket.
_HIGH_WATER = 1 << 20


class _Conn(asyncio.Protocol):
    """One connection. While a response is read, `parser` is set and received body
    pieces collect in `pieces`; while idle, any byte or a close retires it."""

    __slots__ = ("loop", "transport", "parser", "pieces", "buffered", "paused", "waiter", "error", "closed",
                 "dirty", "deadlines", "where", "fd")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: Any = None
        self.parser: ResponseParser | None = None
        self.pieces: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[bool] | None = None
        self.error: HumanError | None = None
        self.closed = False
        self.dirty = False
        self.deadlines: Deadlines | None = None
        self.where = ""
        self.fd = -1

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:  # idle in the pool: bytes nobody asked for (issue 10)
            self.dirty = True
            self.transport.close()
            return
        if self.error is not None:
            return
        self.deadlines.last = time.monotonic()  # type: ignore[union-attr]  # idle counts from here
        try:
            pieces = parser.feed(data)
        except HumanError as exc:
            self.error = exc
            pieces = []
        if pieces:
            self.pieces += pieces
            self.buffered += sum(map(len, pieces)) if len(pieces) > 1 else len(pieces[0])
            if self.buffered > _HIGH_WATER and not self.paused:
                self.paused = True
                self.transport.pause_reading()
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(True)

    def eof_received(self) -> bool:
        return False  # close; connection_lost decides what the end means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        parser = self.parser
        if parser is not None and not parser.done and self.error is None:
            if exc is None or isinstance(exc, ssl.SSLEOFError):
                try:
                    self.pieces += parser.eof()
                except HumanError as error:
                    self.error = error
            else:
                during = "in the middle of the response" if parser.headers is not None else "before the response"
                self.error = connection_error(exc, self.where, during)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(True)

    # ---- used by the transport ----------------------------------------------------------

    def start(self, parser: ResponseParser, deadlines: Deadlines, where: str) -> None:
        self.parser, self.deadlines, self.where = parser, deadlines, where
        self.pieces, self.buffered, self.error = [], 0, None

    async def wait(self, kind: str) -> None:
        """Until bytes arrive, the connection ends, or the deadline that applies passes."""
        if self.error is not None:
            raise self.error
        deadlines = self.deadlines
        assert deadlines is not None
        limit, which = deadlines.limit(kind)
        if limit is not None and limit <= 0:
            raise timeout_error(which, deadlines, self.where)
        waiter = self.waiter = self.loop.create_future()
        handle = None if limit is None else self.loop.call_later(limit, _expire, waiter)
        try:
            woke = await waiter
        finally:
            if handle is not None:
                handle.cancel()
        if self.error is not None:
            raise self.error
        if not woke:
            raise timeout_error(which, deadlines, self.where)

    def take(self) -> list[bytes]:
        pieces, self.pieces, self.buffered = self.pieces, [], 0
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        return pieces

    def reusable(self) -> bool:
        parser = self.parser
        return (parser is not None and parser.done and parser.keep_alive and not self.closed and not self.dirty
                and self.error is None and not self.transport.is_closing())

    def abort(self) -> None:
        """Drop the connection at once: nothing more is written, nothing more read."""
        self.parser = None
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class AsyncExchange:
    """One response being read: `read()` for a whole body, `chunks()` for a stream;
    `close()` hands the connection back only if the response ended cleanly."""

    __slots__ = ("_transport", "_key", "_conn", "status", "headers")

    def __init__(self, transport: AsyncTransport, key: Key, conn: _Conn) -> None:
        self._transport = transport
        self._key = key
        self._conn: _Conn | None = conn
        parser = conn.parser
        assert parser is not None
        self.status = parser.status
        self.headers: HeaderMap = parser.headers  # type: ignore[assignment]

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        conn = self._conn
        assert conn is not None and conn.parser is not None
        parser = conn.parser
        try:
            while True:
                if conn.pieces:
                    for piece in conn.take():
                        yield piece
                    continue
                if conn.error is not None:
                    raise conn.error
                if parser.done:
                    break
                await conn.wait("idle")
        finally:
            self.close()

    async def read(self) -> bytes:
        conn = self._conn
        assert conn is not None and conn.parser is not None
        parser = conn.parser
        try:
            while not parser.done and conn.error is None:
                await conn.wait("idle")
            if conn.error is not None:
                raise conn.error
            body = b"".join(conn.take())
        finally:
            self.close()
        return body

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.reusable():
            conn.parser = None
            self._transport._release(self._key, conn)
        else:
            conn.abort()  # unread bytes, a body not read to its end, or the server's wish


class AsyncTransport:
    """asyncio connections with a keep-alive pool per (origin, proxy, CA bundle)."""

    def __init__(self, max_idle_per_host: int = 256) -> None:
        self._idle: dict[Key, list[_Conn]] = {}
        self._max_idle = max_idle_per_host
        self._loop: asyncio.AbstractEventLoop | None = None

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                   deadlines: Deadlines, max_bytes: int, network: Network) -> AsyncExchange:
        """Send one request, following redirects as `core/redirect.py` decides."""
        deadlines.start()
        hops = 0
        while True:
            exchange = await self._exchange(method, url, headers, body, deadlines, max_bytes, network)
            if exchange.status not in REDIRECT_STATUSES:
                return exchange
            exchange.close()
            method, url, headers, keep_body = follow(method, url, exchange.status, exchange.headers.get("location"),
                                                     headers, hops=hops, secret_headers=network.secret_headers)
            body = body if keep_body else None
            hops += 1

    async def _exchange(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                        deadlines: Deadlines, max_bytes: int, network: Network) -> AsyncExchange:
        end = endpoint(url)
        key = route_key(end, network)
        request = _request_bytes(method, end, key[3], headers, body)
        for reused in (True, False):
            conn = self._take(key) if reused else None
            if reused and conn is None:
                continue
            if conn is None:
                conn = await self._open(key, end, deadlines)
            parser = ResponseParser(where=end.where, max_bytes=max_bytes)
            conn.start(parser, deadlines, end.where)
            failure: HumanError | None = None
            try:
                conn.transport.write(request)
                while parser.headers is None:
                    await conn.wait("first_byte")
            except HumanError as exc:
                failure = exc
            except BaseException:  # cancelled: the connection is in an unknown state
                conn.abort()
                raise
            if failure is None:
                return AsyncExchange(self, key, conn)
            conn.abort()
            if reused and not parser.started and _stale(failure):
                continue  # a kept-alive connection the server had dropped: once more on a fresh one
            raise failure
        raise AssertionError("unreachable")

    # ---- connections ----------------------------------------------------------------------

    async def _open(self, key: Key, end: Endpoint, deadlines: Deadlines) -> _Conn:
        loop = asyncio.get_running_loop()
        proxy = key[3]
        context = tls_context(key[4]) if end.https else None
        deadlines.connecting()
        limit, which = deadlines.limit("connect")
        failure: HumanError | None = None
        conn = _Conn(loop)
        try:
            if proxy is not None:
                await asyncio.wait_for(loop.create_connection(lambda: conn, proxy.host, proxy.port), limit)
                if context is not None:
                    await self._tunnel(conn, end, proxy, deadlines)
                    conn.transport = await asyncio.wait_for(
                        loop.start_tls(conn.transport, conn, context, server_hostname=end.host),
                        deadlines.limit("connect")[0])
            else:
                await asyncio.wait_for(loop.create_connection(
                    lambda: conn, end.host, end.port, ssl=context, server_hostname=end.host if context else None),
                    limit)
        except asyncio.TimeoutError:
            failure = timeout_error(which, deadlines, end.where)
        except OSError as exc:
            failure = connection_error(exc, end.where, "while connecting", host=end.host, proxy=proxy)
        except HumanError as exc:
            failure = exc
        if failure is not None:
            conn.abort()
            raise failure
        conn.parser = None
        return conn

    async def _tunnel(self, conn: _Conn, end: Endpoint, proxy: Proxy, deadlines: Deadlines) -> None:
        parser = ResponseParser(where=f"the proxy {proxy.shown}", bodiless=True)
        conn.start(parser, deadlines, proxy.shown)
        conn.transport.write(connect_request(end, proxy))
        while parser.headers is None:
            await conn.wait("connect")
        if not 200 <= parser.status < 300:
            raise tunnel_error(parser.status, proxy, end)
        conn.parser = None

    def _take(self, key: Key) -> _Conn | None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that made them
            self._idle = {}
            self._loop = loop
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            # Bytes or a close the loop has not looked at yet count too (readable).
            if not conn.closed and not conn.dirty and not conn.transport.is_closing() and not readable(conn.fd):
                return conn
            conn.abort()
        return None

    def _release(self, key: Key, conn: _Conn) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) < self._max_idle:
            idle.append(conn)
        else:
            conn.abort()

    async def close(self) -> None:
        pools, self._idle = self._idle, {}
        for idle in pools.values():
            for conn in idle:
                conn.abort()
        if pools:
            # abort() finishes on the loop's next turns (the socket is closed in
            # connection_lost); give it them, so nothing is left for the garbage collector.
            for _ in range(3):
                await asyncio.sleep(0)
