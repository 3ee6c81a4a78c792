"""A recording forward proxy on 127.0.0.1, for the proxy tests (issue 10).

    with RecordingProxy() as proxy:            # proxy.url == "http://127.0.0.1:PORT"
        ... HTTPS_PROXY=proxy.url ...
        proxy.seen                             # [Seen(method, target, headers)], one per connection

`CONNECT host:port` opens a tunnel (bytes piped both ways; TLS runs end to end through
it); any other request line is an absolute-form plain-http request, forwarded as it
came (the fake server reads absolute-form targets too). Only loopback targets are
served. `require_auth="user:pass"` answers 407 without the right Proxy-Authorization;
`refuse=True` answers every CONNECT with 403.
"""

from __future__ import annotations

import base64
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["RecordingProxy", "Seen"]


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names


class RecordingProxy:
    def __init__(self, *, require_auth: str | None = None, refuse: bool = False) -> None:
        self.require_auth = require_auth
        self.refuse = refuse
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)  # accept() wakes to see the stop flag
        self._thread = threading.Thread(target=self._accept, daemon=True, name="recording-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._thread.join(timeout=5)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            with self._lock:
                self.seen.append(Seen(method, target, headers))
            if self.require_auth is not None:
                wanted = "Basic " + base64.b64encode(self.require_auth.encode()).decode()
                if headers.get("proxy-authorization") != wanted:
                    client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                   b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                    return
            if method == "CONNECT":
                if self.refuse:
                    client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                host, _, port = target.rpartition(":")
                upstream = self._connect(host.strip("[]"), int(port))
                if upstream is None:
                    client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    return
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                parts = urlsplit(target)
                upstream = self._connect(parts.hostname or "", parts.port or 80)
                if upstream is None:
                    client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    return
                upstream.sendall(head + b"\r\n\r\n" + rest)
            self._pipe(client, upstream)
        except OSError:
            pass
        finally:
            client.close()

    def _connect(self, host: str, port: int) -> socket.socket | None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            return None  # loopback only, as every test
        try:
            upstream = socket.create_connection((host, port), timeout=5)
        except OSError:
            return None
        upstream.settimeout(None)
        self._track(upstream)
        return upstream

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        def copy(source: socket.socket, sink: socket.socket) -> None:
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        other = threading.Thread(target=copy, args=(upstream, client), daemon=True)
        other.start()
        copy(client, upstream)
        other.join(timeout=30)
        upstream.close()
