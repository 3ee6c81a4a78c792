"""Fixtures for the hostile-server tests: the driver (both clients), a second fake
server (another origin), a TLS fake server with certificates made at test time, and a
recording forward proxy. Every server listens on 127.0.0.1 only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.conftest import CANARY, config_for, driver, write_config  # noqa: F401 - fixtures
from tests.fakes.openai_server import FakeServer
from tests.fakes.proxy import RecordingProxy
from tests.fakes.tls import Certificates, TLSFakeServer, make_certificates


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_server(certificates: Certificates) -> Iterator[TLSFakeServer]:
    server = TLSFakeServer(certificates).start()
    yield server
    server.stop()


@pytest.fixture
def tls_fake(tls_server: TLSFakeServer) -> TLSFakeServer:
    return tls_server.reset()  # type: ignore[return-value]


@pytest.fixture(scope="session")
def other_server() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


@pytest.fixture
def other(other_server: FakeServer) -> FakeServer:
    """A second fake server: another port, so another origin."""
    return other_server.reset()


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    with RecordingProxy() as running:
        yield running


@pytest.fixture
def config_at(tmp_path: Path) -> Any:
    """config_at(base_url, entry=..., **top) -> a Config whose default provider 'p' is there."""

    def make(base_url: str, entry: dict[str, Any] | None = None, **top: Any) -> Any:
        row = {"name": "p", "base_url": base_url, "api_key": CANARY, **(entry or {})}
        data = {"default_provider": "p", "default_model": "test-model", "providers": [row],
                "reliability": {"provider_retries": 0}, **top}
        return write_config(tmp_path, data)

    return make


def chain_text(exc: BaseException) -> str:
    """Everything an exception and its whole chain (__cause__ and __context__) can show."""
    texts: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        texts += [repr(value) for name, value in vars(current).items() if name != "partial"]
        todo += [current.__cause__, current.__context__]
    return "\n".join(texts)
