"""The `driver` fixture: every behaviour in tests/client runs through both `Client`
and `AsyncClient`, written once. The async side runs on one event loop per test, so an
`AsyncClient` keeps its connection pool across calls exactly as it would in a program."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from human.config import load_config
from tests.drivers import Driver

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e1d3b5a7c9e2f"


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Any:
    d = Driver(request.param)
    yield d
    d.close()


def write_config(tmp_path: Path, data: dict[str, Any], **env: str) -> Any:
    file = tmp_path / "config.json"
    file.write_text(json.dumps(data))
    os.chmod(file, 0o600)
    return load_config(file, env={**os.environ, **env})


@pytest.fixture
def config_for(tmp_path: Path, fake: Any) -> Any:
    """config_for(**top_level) -> a Config whose default provider 'local' is the fake server."""

    def make(entry: dict[str, Any] | None = None, providers: list[dict[str, Any]] | None = None,
             **top: Any) -> Any:
        row = {"name": "local", "base_url": fake.url_v1, "api_key": CANARY, **(entry or {})}
        data = {"default_provider": "local", "default_model": "test-model", "providers": [row, *(providers or [])],
                **top}
        return write_config(tmp_path, data)

    return make
