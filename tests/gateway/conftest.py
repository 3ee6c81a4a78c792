"""Fixtures for the gateway tests: a gateway in front of the scripted fake server, keys,
and the real Redis and PostgreSQL that `.ci/run` starts (tests/servers/*.sh).

A test that needs Redis or PostgreSQL is skipped, with the command that starts it, only
when the server does not answer and was not meant to be running; if the start script
left its PID file (CI started it), the test fails instead: a dead server must not turn
into green skips (the pattern of tests/interop/conftest.py)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from human.gateway.keys import KeyFile
from tests.fakes.openai_server import FakeServer

from .harness import Running, gateway_config, start

ROOT = Path(__file__).resolve().parents[2]
REDIS_PORT = int(os.environ.get("HUMAN_TEST_REDIS_PORT", "6390"))
PG_PORT = int(os.environ.get("HUMAN_TEST_PG_PORT", "55432"))
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
PG_URL = f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres"
_STATE = Path(os.environ.get("STATE_DIR") or ROOT / ".servers")
_REDIS_PID = _STATE / "run" / f"redis-{REDIS_PORT}.pid"
_PG_PID = Path(os.environ.get("PG_DIR") or Path(os.environ.get("TMPDIR") or "/tmp") / f"human-postgres-{PG_PORT}"
               ) / "data" / "postmaster.pid"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _require(name: str, port: int, pid_file: Path, script: str) -> None:
    if _answers(port):
        return
    start_command = f"bash tests/servers/{script} start"
    if pid_file.exists():
        pytest.fail(f"{name} should be running on 127.0.0.1:{port} ({start_command} left {pid_file}) but does not "
                    "answer")
    pytest.skip(f"{name} not running on 127.0.0.1:{port} — start it with {start_command}")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis, emptied before the test."""
    _require("Redis", REDIS_PORT, _REDIS_PID, "redis.sh")
    import redis

    client = redis.Redis(port=REDIS_PORT)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def database_url() -> Iterator[str]:
    """A real PostgreSQL database of its own, dropped after the test."""
    _require("PostgreSQL", PG_PORT, _PG_PID, "postgres.sh")
    import psycopg

    name = f"human_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def keyfile(tmp_path: Path) -> KeyFile:
    return KeyFile(tmp_path / "gateway-keys.json")


@pytest.fixture
def config(tmp_path: Path, fake: FakeServer) -> dict[str, Any]:
    """The gateway's config (edit it before `gateway()` starts it)."""
    return gateway_config(tmp_path, fake.url_v1)


@pytest.fixture
def gateway(tmp_path: Path, config: dict[str, Any]) -> Iterator[Callable[..., Running]]:
    """gateway(**gateway_section_overrides) -> a running gateway on `config`; stopped after."""
    running: list[Running] = []

    def make(**section: Any) -> Running:
        data = dict(config)
        data["gateway"] = {**config.get("gateway", {}), **section}
        gw = start(tmp_path, data)
        running.append(gw)
        return gw

    yield make
    for gw in running:
        gw.close()
