"""A gateway for tests: built from a config file pointing at the scripted fake server,
run on its own event loop in a thread, on 127.0.0.1 and a free port."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

from human.config import load_config
from human.gateway import build
from human.gateway.app import Gateway, serve

UPSTREAM_KEY = "sk-upstream-CANARY-0123456789abcdef"
FALLBACK_KEY = "sk-fallback-CANARY-fedcba9876543210"


def gateway_config(tmp_path: Path, upstream_url: str, **overrides: Any) -> dict[str, Any]:
    """Two providers on the fake server (the second for fallbacks), routes, and the
    gateway's files in tmp_path; `overrides` replace top-level sections."""
    data: dict[str, Any] = {
        "providers": [
            {"name": "fake", "base_url": upstream_url, "api_key": UPSTREAM_KEY},
            {"name": "backup", "base_url": upstream_url, "api_key": FALLBACK_KEY},
        ],
        "routes": {"models": ["fake/fake-model", "backup/fake-model"], "aliases": {"fast": "fake/fake-model"}},
        "reliability": {"provider_retries": 0, "provider_backoff_ms": 0},
        "gateway": {"keys_file": str(tmp_path / "gateway-keys.json"), "log_path": str(tmp_path / "logs.db")},
    }
    data.update(overrides)
    return data


class Running:
    """A gateway serving on a thread of its own. `close()` stops it and flushes its log."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-gateway", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test gateway did not start within 10 s")
        if self._error is not None:
            raise self._error

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(url: str) -> None:
                self.url = url
                self._ready.set()

            await serve(self.gateway, ready=ready, stop=self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self._error = exc
            self._ready.set()

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        if self.gateway.logbook is not None:
            self.gateway.logbook.flush()


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data, indent=2))
    os.chmod(path, 0o600)
    return path


def start(tmp_path: Path, data: dict[str, Any]) -> Running:
    config = load_config(write_config(tmp_path, data))
    return Running(build(config, host="127.0.0.1", port=0))
