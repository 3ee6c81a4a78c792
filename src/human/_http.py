"""The only module that touches sockets. Two transports with one shape:

    SyncTransport   the standard library's http.client, with a keep-alive pool
    AsyncTransport  aiohttp (imported on first use), one ClientSession per event loop

Both send one request and hand back an `Exchange`: status, headers, and the body as
chunks, with the four deadlines enforced (connect, first byte, idle gap, total) and the
size cap applied. Both map their library's exceptions to `human.errors` here, once.

Why http.client for sync: it is the fastest option measured here and adds no
dependency; we need only POST/GET with keep-alive, which it does well. Why aiohttp for
async: httpx's async pool tops out near 750 req/s at 64 in flight on these machines,
aiohttp does about 12,500 (docs/performance.md).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import APIConnectionError, APITimeoutError, ResponseTooLargeError

__all__ = ["AsyncTransport", "Deadlines", "SyncTransport"]

READ_SIZE = 65536


@dataclass(slots=True)
class Deadlines:
    """Timeouts in seconds (None = off), turned into per-step limits."""

    connect: float | None
    first_byte: float | None
    idle: float | None
    total: float | None
    started: float = 0.0

    def start(self) -> Deadlines:
        self.started = time.monotonic()
        return self

    def limit(self, step: float | None) -> tuple[float | None, str]:
        """The time allowed for the next wait, and which deadline that is."""
        if self.total is None:
            return step, ""
        remaining = self.total - (time.monotonic() - self.started)
        if step is None or remaining < step:
            return max(remaining, 0.001), "total"
        return step, ""


def _timeout_error(kind: str, seconds: float | None, url: str) -> APITimeoutError:
    what = {
        "connect": "connecting to",
        "first_byte": "waiting for the first byte from",
        "idle": "waiting for more data from",
        "total": "the whole request to",
    }[kind]
    return APITimeoutError(
        f"timed out after {seconds:g}s {what} {_where(url)} ({kind} timeout; raise it with "
        f"timeouts.{kind} in the config or timeout= per call)",
        kind=kind,
        seconds=seconds,
    )


def _too_large(cap: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"the response passed the {cap}-byte cap (limits.max_response_bytes / max_stream_bytes in the config)"
    )


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _connection_error(exc: BaseException, url: str, during: str) -> APIConnectionError:
    # No advice here: whether the URL is the user's to fix is known only above (issue 11).
    reason = ""
    if isinstance(exc, ConnectionRefusedError):
        text, reason = f"connection refused by {_where(url)} (is the server running on that port?)", "refused"
    elif isinstance(exc, socket.gaierror):
        text, reason = f"cannot resolve the host of {_where(url)} ({exc.strerror})", "dns"
    elif isinstance(exc, ssl.SSLError):
        text, reason = f"TLS failed with {_where(url)}: {exc.reason or exc}", "tls"
    elif isinstance(exc, (http.client.IncompleteRead, http.client.RemoteDisconnected)):
        text, reason = f"the server closed the connection {during} ({_where(url)})", "closed"
    elif isinstance(exc, ConnectionResetError):
        text, reason = f"the connection was reset {during} ({_where(url)})", "reset"
    else:
        text = f"connection to {_where(url)} failed {during}: {type(exc).__name__}: {exc}"
    return APIConnectionError(text, reason=reason)


# ---- sync ------------------------------------------------------------------------------


class SyncExchange:
    """One response being read. Iterate `chunks()` for the body; always `close()`."""

    __slots__ = ("_transport", "_key", "_conn", "_response", "_deadlines", "_url", "_max_bytes", "status",
                 "headers", "_done")

    def __init__(self, transport: SyncTransport, key: tuple[str, str, int], conn: http.client.HTTPConnection,
                 response: http.client.HTTPResponse, deadlines: Deadlines, url: str, max_bytes: int):
        self._transport = transport
        self._key = key
        self._conn = conn
        self._response = response
        self._deadlines = deadlines
        self._url = url
        self._max_bytes = max_bytes
        self.status = response.status
        self.headers = response.msg  # case-insensitive .get(), as the classifier needs
        self._done = False

    def chunks(self) -> Generator[bytes, None, None]:
        response, deadlines, sock = self._response, self._deadlines, self._conn.sock
        received = 0
        current: float | None = -1.0
        try:
            while True:
                limit, which = deadlines.limit(deadlines.idle)
                if limit != current and sock is not None:
                    sock.settimeout(limit)
                    current = limit
                try:
                    chunk = response.read1(READ_SIZE)
                except TimeoutError:
                    raise _timeout_error(which or "idle", limit, self._url) from None
                except (OSError, http.client.HTTPException) as exc:
                    raise _connection_error(exc, self._url, "in the middle of the response") from None
                if not chunk:
                    if response.length:  # a Content-Length the server did not fill
                        raise _connection_error(http.client.IncompleteRead(b""), self._url,
                                                "before the body was complete")
                    # read1() never closes a Content-Length response itself; until it is
                    # closed the connection refuses the next request.
                    response.close()
                    break
                received += len(chunk)
                if received > self._max_bytes:
                    raise _too_large(self._max_bytes)
                yield chunk
            self._done = True
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def close(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if self._done and not self._response.will_close:
            self._transport._release(self._key, conn)
        else:
            conn.close()


class SyncTransport:
    """http.client with a keep-alive pool per (scheme, host, port). Thread-safe."""

    def __init__(self, max_idle_per_host: int = 16) -> None:
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._max_idle = max_idle_per_host
        self._ssl: ssl.SSLContext | None = None

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
             deadlines: Deadlines, max_bytes: int) -> SyncExchange:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        key = (parts.scheme, parts.hostname or "", parts.port or (443 if https else 80))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        deadlines.start()
        for reused in (True, False):
            conn = self._acquire(key) if reused else None
            if reused and conn is None:
                continue
            fresh = conn is None
            if conn is None:
                conn = self._connect(key, https, deadlines, url)
            limit, which = deadlines.limit(deadlines.first_byte)
            conn.sock.settimeout(limit)
            try:
                conn.request(method, path, body=body, headers=dict(headers))
                response = conn.getresponse()
            except TimeoutError:
                conn.close()
                raise _timeout_error(which or "first_byte", limit, url) from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if not fresh and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError,
                                                  BrokenPipeError)):
                    continue  # an idle keep-alive connection the server had closed: reconnect once
                raise _connection_error(exc, url, "before the response") from None
            return SyncExchange(self, key, conn, response, deadlines, url, max_bytes)
        raise AssertionError("unreachable")

    def _connect(self, key: tuple[str, str, int], https: bool, deadlines: Deadlines,
                 url: str) -> http.client.HTTPConnection:
        scheme, host, port = key
        limit, which = deadlines.limit(deadlines.connect)
        if https:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=limit, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=limit)
        try:
            conn.connect()
        except TimeoutError:
            conn.close()
            raise _timeout_error(which or "connect", limit, url) from None
        except OSError as exc:
            conn.close()
            raise _connection_error(exc, url, "while connecting") from None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _acquire(self, key: tuple[str, str, int]) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def _release(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._max_idle:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for idle in pools.values():
            for conn in idle:
                conn.close()


# ---- async -----------------------------------------------------------------------------


class _Deadline:
    """What asyncio.timeout does for one await, at half its cost: it is paid on every
    request and every stream read (measured here: 3.4 us against 7.5 us a use).

        deadline = _Deadline(seconds)
        try:
            await something
        except asyncio.CancelledError:
            if not deadline.expired:
                raise
            ...  # our timeout, not someone else's cancellation
        finally:
            deadline.cancel()
    """

    __slots__ = ("_task", "_handle", "expired")

    def __init__(self, seconds: float | None) -> None:
        import asyncio

        self.expired = False
        self._task = asyncio.current_task()
        self._handle = None if seconds is None else asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()  # type: ignore[union-attr]

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self.expired and hasattr(self._task, "uncancel"):
            self._task.uncancel()  # type: ignore[union-attr]  # the cancel was ours, and is handled


class AsyncExchange:
    """One response being read: `read()` for a whole body, `chunks()` for a stream."""

    __slots__ = ("_response", "_deadlines", "_url", "_max_bytes", "_received", "status", "headers")

    def __init__(self, response: Any, deadlines: Deadlines, url: str, max_bytes: int) -> None:
        self._response = response
        self._deadlines = deadlines
        self._url = url
        self._max_bytes = max_bytes
        self._received = 0
        self.status = response.status
        self.headers = response.headers  # a case-insensitive multidict

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        try:
            while True:
                chunk = await self._next()
                if not chunk:
                    break
                yield chunk
        finally:
            self._response.release()

    async def read(self) -> bytes:
        """The whole body. Usually it arrived with the headers: then it is taken as it is,
        with no timer and no waiting."""
        content = self._response.content
        if content.is_eof() and not content.exception():
            try:
                body: bytes = content.read_nowait()
            finally:
                self._response.release()
            if len(body) > self._max_bytes:
                raise _too_large(self._max_bytes)
            return body
        parts = []
        try:
            while True:
                chunk = await self._next()
                if not chunk:
                    break
                parts.append(chunk)
                if self._response.content.at_eof():
                    break
        finally:
            self._response.release()
        return b"".join(parts)

    async def _next(self) -> bytes:
        """The next piece of the body (b"" at the end), under the idle and total deadlines."""
        import asyncio

        import aiohttp

        limit, which = self._deadlines.limit(self._deadlines.idle)
        deadline = _Deadline(limit)
        try:
            chunk: bytes = await self._response.content.readany()
        except asyncio.CancelledError:
            if not deadline.expired:
                raise
            raise _timeout_error(which or "idle", limit, self._url) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _async_connection_error(exc, self._url, "in the middle of the response") from None
        finally:
            deadline.cancel()
        self._received += len(chunk)
        if self._received > self._max_bytes:
            raise _too_large(self._max_bytes)
        return chunk


def _async_connection_error(exc: BaseException, url: str, during: str) -> APIConnectionError:
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ConnectionRefusedError):
        return _connection_error(exc.os_error, url, during)
    if isinstance(exc, aiohttp.ClientConnectorDNSError if hasattr(aiohttp, "ClientConnectorDNSError") else ()) or (
            isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, socket.gaierror)):
        return APIConnectionError(f"cannot resolve the host of {_where(url)}", reason="dns")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return APIConnectionError(f"the server closed the connection {during} ({_where(url)})", reason="closed")
    if isinstance(exc, aiohttp.ClientOSError) and isinstance(exc.__cause__ or exc, ConnectionResetError):
        return APIConnectionError(f"the connection was reset {during} ({_where(url)})", reason="reset")
    return _connection_error(exc, url, during)


class AsyncTransport:
    """aiohttp, one session per transport. Created lazily inside the running loop."""

    def __init__(self, limit: int = 256) -> None:
        self._session: Any = None
        self._limit = limit
        self._client_timeouts: dict[float | None, Any] = {}

    def _get_session(self) -> Any:
        if self._session is None or self._session.closed:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                   deadlines: Deadlines, max_bytes: int) -> AsyncExchange:
        import asyncio

        import aiohttp

        session = self._get_session()
        deadlines.start()
        limit, which = deadlines.limit(deadlines.first_byte)
        connect_limit, _ = deadlines.limit(deadlines.connect)
        client_timeout = self._client_timeouts.get(connect_limit)
        if client_timeout is None:
            client_timeout = self._client_timeouts[connect_limit] = aiohttp.ClientTimeout(
                total=None, sock_connect=connect_limit)
        deadline = _Deadline(limit)
        try:
            response = await session.request(method, url, data=body, headers=headers, timeout=client_timeout)
        except asyncio.CancelledError:
            if not deadline.expired:
                raise
            raise _timeout_error(which or "first_byte", limit, url) from None
        except aiohttp.ServerTimeoutError:  # sock_connect fired
            raise _timeout_error("connect", connect_limit, url) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _async_connection_error(exc, url, "before the response") from None
        finally:
            deadline.cancel()
        return AsyncExchange(response, deadlines, url, max_bytes)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
