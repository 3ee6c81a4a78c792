"""Fixtures for the interop tests: real third-party servers on 127.0.0.1, started by
`bash tests/interop/servers.sh start` (which `.ci/run` calls).

- A test that needs a server is skipped, with the command that starts it, only when that
  server does not answer. If `servers.sh start` recorded a PID for it (it was meant to be
  running) the test fails instead: CI must not turn a dead server into green skips.
- Every client is configured the way a user would: a JSON config file (`compatible` with
  a base_url, `custom:<url>`, or the `litellm` registry name with a base_url override).
- `driver` runs a test through `human.Client` and `human.AsyncClient` alike; sleeps are
  recorded, not slept, so retry waits can be asserted exactly.
- aimock scopes its sequence counters and its request journal by the `X-Test-Id` request
  header; `test_id` is unique per test, so "fail once, then succeed" fixtures start fresh
  and `journal()` shows exactly what our client sent.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .interop_support import AIMOCK, AIMOCK_AUTH, LITELLM, Driver, Server, require


@pytest.fixture
def litellm() -> Server:
    return require(LITELLM)


@pytest.fixture
def aimock() -> Server:
    return require(AIMOCK)


@pytest.fixture
def aimock_auth() -> Server:
    return require(AIMOCK_AUTH)


@pytest.fixture
def test_id(request: pytest.FixtureRequest) -> str:
    """Unique per test (and per sync/async run): aimock's X-Test-Id."""
    return f"{uuid.uuid4().hex[:12]}-{request.node.name}"[:120]


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """write_config(data, name="config.json") -> the path of a JSON config file (mode 600,
    as `human config init` writes it: a file holding keys must not be world-readable)."""

    def write(data: dict[str, Any], name: str = "config.json") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2))
        os.chmod(path, 0o600)
        return path

    return write


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    d = Driver(request.param)
    yield d
    d.close()
