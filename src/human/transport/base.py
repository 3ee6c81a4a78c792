"""What both transports share: the deadlines, where a URL goes, TLS contexts, and the
one mapping from socket and TLS failures to `human.errors`.

Every error is built here and raised by the caller *outside* its `except` block, so no
exception chain (`__context__` included) carries anything of the request. `socket` and
`ssl` are imported where a context is built or a failure mapped, as in sync.py.
"""

from __future__ import annotations

import select
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..core.proxy import Network, Proxy
from ..errors import APIConnectionError, APITimeoutError, ConfigError, TLSError

if TYPE_CHECKING:
    import ssl

__all__ = ["READ_SIZE", "Deadlines", "Endpoint", "connection_error", "endpoint", "timeout_error", "tls_context"]

READ_SIZE = 65536

_WHAT = {
    "connect": "connecting to {where} took longer than connect={limit}",
    "first_byte": "{where} sent no complete response headers within first_byte={limit}",
    "idle": "{where} sent nothing for idle={limit} in the middle of the response",
    "total": "the request to {where} did not finish within total={limit}",
}


class Deadlines:
    """The four limits of one call, in seconds (None = off), counted from `start()`.

    `limit(kind)` is how long the next wait may take: the step's own limit (connect,
    first_byte from the start, idle from the last byte) or what is left of `total`,
    whichever ends first, and the name of that limit. Recomputed before every wait, so
    a server that trickles one byte a second cannot stretch first_byte or total.
    """

    __slots__ = ("connect", "first_byte", "idle", "total", "started", "last", "opened")

    def __init__(self, connect: float | None, first_byte: float | None, idle: float | None,
                 total: float | None) -> None:
        self.connect = connect
        self.first_byte = first_byte
        self.idle = idle
        self.total = total
        self.started = 0.0
        self.last = 0.0  # when the last body byte arrived (idle counts from it)
        self.opened = 0.0  # when the current connection attempt began (connect counts from it)

    def start(self, now: float | None = None) -> Deadlines:
        self.started = self.last = self.opened = time.monotonic() if now is None else now
        return self

    def connecting(self) -> None:
        """A new connection is being opened: connect (TCP, CONNECT, TLS) counts from now."""
        self.opened = time.monotonic()

    def limit(self, kind: str, now: float | None = None) -> tuple[float | None, str]:
        """(seconds allowed for the next wait or None, the limit that ends it)."""
        if now is None:
            now = time.monotonic()
        if kind == "idle":
            step = None if self.idle is None else self.last + self.idle - now
        elif kind == "first_byte":
            step = None if self.first_byte is None else self.started + self.first_byte - now
        else:
            step = None if self.connect is None else self.opened + self.connect - now
        if self.total is not None:
            left = self.started + self.total - now
            if step is None or left < step:
                return max(left, 0.0), "total"
        if step is None:
            return None, kind
        return max(step, 0.0), kind

    def configured(self, kind: str) -> float | None:
        value: float | None = getattr(self, kind)
        return value


def timeout_error(kind: str, deadlines: Deadlines, where: str) -> APITimeoutError:
    """Names the limit that passed and its configured value, and where to change it."""
    limit = deadlines.configured(kind)
    text = _WHAT[kind].format(where=where, limit=f"{limit:g}s")
    return APITimeoutError(
        f"timed out ({kind} timeout): {text} (raise timeouts.{kind} in the config, or pass "
        f"timeout={{'{kind}': seconds}} to the call)",
        kind=kind,
        seconds=limit,
    )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL taken apart once: where to connect, what to write on the request line."""

    scheme: str
    host: str
    port: int
    target: str  # origin-form: /path?query
    host_header: str
    where: str  # scheme://host:port/path, for messages (never the query: it may hold a key)

    @property
    def https(self) -> bool:
        return self.scheme == "https"

    @property
    def absolute(self) -> str:
        """The absolute-form request target a plain-http proxy needs (RFC 9112 §3.2.2)."""
        return f"{self.scheme}://{self.host_header}{self.target}"


_ENDPOINTS: dict[str, Endpoint] = {}


def endpoint(url: str) -> Endpoint:
    found = _ENDPOINTS.get(url)
    if found is not None:
        return found
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ConfigError(f"{url!r} has an invalid port") from None
    default = port == (443 if scheme == "https" else 80)
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if default else f"{bracketed}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    found = Endpoint(scheme, host, port, target, host_header, f"{scheme}://{host_header}{parts.path}")
    if len(_ENDPOINTS) < 1024:
        _ENDPOINTS[url] = found
    return found


def route_key(end: Endpoint, network: Network) -> tuple[str, str, int, Proxy | None, str | None]:
    """The pool a connection belongs to: same origin, same proxy, same CA bundle."""
    proxy = network.proxy.choose(end.scheme, end.host, end.port)
    return end.scheme, end.host, end.port, proxy, network.ca_bundle if end.https else None


def readable(fd: int) -> bool:
    """Whether bytes (or the end) are waiting on an idle connection: then it is not fit
    for reuse, whether or not an event loop has looked at it yet."""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


_CONTEXTS: dict[str | None, ssl.SSLContext] = {}
_CONTEXT_LOCK = threading.Lock()


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """One verifying context per CA bundle (None = the system's store; OpenSSL reads
    SSL_CERT_FILE / SSL_CERT_DIR for it too). Built once: building one costs ~10 ms."""
    context = _CONTEXTS.get(ca_bundle)
    if context is not None:
        return context
    import ssl

    with _CONTEXT_LOCK:
        context = _CONTEXTS.get(ca_bundle)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=ca_bundle)
            except FileNotFoundError:
                context = None
                problem = "does not exist"
            except (ssl.SSLError, OSError) as exc:
                context = None
                problem = f"could not be read as PEM certificates ({type(exc).__name__})"
            if context is None:
                raise ConfigError(f"ca_bundle {ca_bundle!r} {problem}; point \"ca_bundle\" (or SSL_CERT_FILE) "
                                  "at a PEM file of CA certificates")
            context.set_alpn_protocols(["http/1.1"])
            _CONTEXTS[ca_bundle] = context
    return context


def connection_error(exc: BaseException, where: str, during: str, *, host: str = "",
                     proxy: Proxy | None = None) -> APIConnectionError:
    """One message per kind of failure, saying what to check next."""
    import socket
    import ssl

    via = f" through the proxy {proxy.shown}" if proxy is not None else ""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "not trusted"
        return TLSError(
            f"TLS certificate of {host or where} could not be verified ({reason}){via}; if a corporate proxy or a "
            "private CA signs it, set \"ca_bundle\" in the config (or SSL_CERT_FILE) to that CA's PEM file"
        )
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or exc).upper()
        if any(word in reason for word in ("WRONG_VERSION_NUMBER", "RECORD_LAYER", "PACKET_LENGTH", "HTTP_REQUEST",
                                           "UNKNOWN_PROTOCOL")):
            return TLSError(f"{where} does not speak TLS on that port{via} (is it a plain http:// server? "
                            "then use http:// in base_url)")
        return TLSError(f"TLS failed with {where}{via}: {exc.reason or type(exc).__name__}")
    if isinstance(exc, ConnectionRefusedError):
        if proxy is not None:
            return APIConnectionError(f"connection refused by the proxy {proxy.shown} (is it running? check "
                                      "\"proxy\" in the config or HTTPS_PROXY/HTTP_PROXY)", reason="proxy")
        return APIConnectionError(f"connection refused by {where} (is the server running on that port?)",
                                  reason="refused")
    if isinstance(exc, socket.gaierror):
        name = proxy.shown if proxy is not None else where
        return APIConnectionError(f"cannot resolve the host of {name} ({exc.strerror}); check the URL", reason="dns")
    if isinstance(exc, ConnectionResetError):
        return APIConnectionError(f"the connection to {where}{via} was reset {during}", reason="reset")
    if isinstance(exc, (BrokenPipeError, ConnectionAbortedError, EOFError)):
        return APIConnectionError(f"the server closed the connection {during} ({where}{via})", reason="closed")
    return APIConnectionError(f"connection to {where}{via} failed {during}: {type(exc).__name__}"
                              + (f" ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror else ""))


def connect_request(end: Endpoint, proxy: Proxy) -> bytes:
    """The CONNECT that opens a tunnel to an https origin (RFC 9110 §9.3.6)."""
    authority = f"[{end.host}]:{end.port}" if ":" in end.host else f"{end.host}:{end.port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization is not None:
        lines.append("Proxy-Authorization: " + proxy.authorization.reveal())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def tunnel_error(status: int, proxy: Proxy, end: Endpoint) -> APIConnectionError:
    """A CONNECT the proxy refused. 407 and 403 will not change by retrying."""
    if status == 407:
        return APIConnectionError(
            f"the proxy {proxy.shown} wants credentials (407) to reach {end.host}:{end.port}; put them in the "
            "proxy URL (http://user:password@host:port)", status=status, reason="proxy", retryable=False)
    return APIConnectionError(
        f"the proxy {proxy.shown} refused to open a tunnel to {end.host}:{end.port} (HTTP {status}); check "
        "\"proxy\" / HTTPS_PROXY and NO_PROXY", status=status, reason="proxy", retryable=status >= 500)
