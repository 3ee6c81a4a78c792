"""TLS for the fake server, with certificates made at test time by the openssl command
(no key or certificate is checked in): a throwaway CA, and a server certificate it
signed for 127.0.0.1 and localhost.

    files = make_certificates(tmp_dir)      # files.ca, files.cert, files.key
    with TLSFakeServer(files) as server:    # server.url == "https://127.0.0.1:PORT"
        ...
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.openai_server import FakeServer

__all__ = ["Certificates", "TLSFakeServer", "make_certificates"]


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA certificate: what a client must trust (ca_bundle / SSL_CERT_FILE)
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> Certificates:
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=human test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=directory)
    (directory / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=directory)
    return Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")


class TLSFakeServer(FakeServer):
    """The scripted fake server behind TLS. The handshake runs in each connection's own
    thread (on its first read), so a client that fails it never blocks the others."""

    def __init__(self, certificates: Certificates) -> None:
        super().__init__()
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certificates.cert, certificates.key)

    def start(self) -> TLSFakeServer:
        super().start()
        assert self._server is not None
        self._server.socket = self._context.wrap_socket(self._server.socket, server_side=True,
                                                        do_handshake_on_connect=False)
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"
