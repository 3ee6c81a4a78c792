"""Shared fixtures: a clean environment for every test, a loopback-only network guard,
and the scripted fake server."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeServer

# ---- environment --------------------------------------------------------------------------------

_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def _registry_key_vars() -> frozenset[str]:
    """Every `api_key_env` in the shipped registry: a few (HF_TOKEN,
    AWS_BEARER_TOKEN_BEDROCK) do not end in _API_KEY."""
    rows = json.loads(resources.files("human.config").joinpath("providers.json").read_text("utf-8"))["providers"]
    return frozenset(row["api_key_env"] for row in rows if row.get("api_key_env"))


_KEY_VARS = _registry_key_vars()


def _leaks(name: str) -> bool:
    return (name.startswith(("HUMAN_", "HU_")) or name.endswith(("_API_KEY", "_TOKEN")) or name in _KEY_VARS
            or name == "OPENAI_BASE_URL" or name.lower() in _PROXY_VARS)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A developer's real config, keys and proxies never leak into a test: their
    variables are removed, HOME is an empty directory and the working directory is
    another (config is also read from ./.human/). Yields the HOME directory."""
    for name in list(os.environ):
        if _leaks(name):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path_factory.mktemp("work"))
    yield home


# ---- network guard ------------------------------------------------------------------------------


def _loopback(host: Any) -> bool:
    if host is None or host in ("localhost", "", b"localhost", b""):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # any other name: refuse before it is even looked up


def _refuse(address: Any) -> ConnectionRefusedError:
    return ConnectionRefusedError(f"test network guard: {address!r} is not loopback; tests may not use the network")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach beyond 127.0.0.0/8, ::1 and localhost (AF_UNIX is fine). The
    check runs before the real call, so a refused address sees no packet and no DNS
    query. The error is a ConnectionRefusedError, so clients handle it as they would
    a real refusal, and its message names the guard."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise _refuse(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise _refuse(address)
        return real_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if not _loopback(address[0]):
            raise _refuse(address)
        return real_create_connection(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback(host):
            raise _refuse((host, *args[:1]))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# ---- the fake server ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeServer]:
    """One FakeServer for the whole session; use `fake` in tests."""
    with FakeServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeServer) -> FakeServer:
    """The session's FakeServer with an empty script and no recorded requests."""
    return fake_server.reset()
