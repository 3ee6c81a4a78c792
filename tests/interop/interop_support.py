"""Helpers shared by the interop tests (servers, config files, both clients). See conftest.py."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("STATE_DIR") or ROOT / ".servers") / "run"
START = "bash tests/interop/servers.sh start"

LITELLM_KEY = "sk-test-master"
AIMOCK_KEY = "sk-aimock-test"


@dataclass(frozen=True)
class Server:
    name: str  # the name servers.sh uses for its pid/log files
    title: str
    port: int
    health: str  # path answering 200 when ready
    prefix: str  # the API's base path ("/v1" or "")

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root + self.prefix

    @property
    def log(self) -> Path:
        return RUN_DIR / f"{self.name}.log"


LITELLM = Server("litellm", "LiteLLM proxy", int(os.environ.get("LITELLM_PORT", "4011")), "/health/liveliness", "")
AIMOCK = Server("aimock", "aimock", int(os.environ.get("AIMOCK_PORT", "4013")), "/health", "/v1")
AIMOCK_AUTH = Server("aimock-auth", "aimock (with AIMOCK_API_KEYS)",
                     int(os.environ.get("AIMOCK_AUTH_PORT", "4014")), "/health", "/v1")

_reachable: dict[str, bool] = {}


def _answers(server: Server) -> bool:
    if server.name not in _reachable:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                pass
            with urllib.request.urlopen(server.root + server.health, timeout=5) as response:  # noqa: S310
                _reachable[server.name] = response.status == 200
        except OSError:
            _reachable[server.name] = False
    return _reachable[server.name]


def require(server: Server) -> Server:
    if _answers(server):
        return server
    if (RUN_DIR / f"{server.name}.pid").exists():
        pytest.fail(f"{server.title} should be running on 127.0.0.1:{server.port} ({START} recorded its PID) "
                    f"but does not answer; see {server.log}")
    pytest.skip(f"{server.title} not running on 127.0.0.1:{server.port} — start it with {START}")


# ---- the aimock request journal ------------------------------------------------------------


def journal(server: Server, test_id: str) -> list[dict[str, Any]]:
    """The requests aimock received with this X-Test-Id, oldest first."""
    url = f"{server.root}/__aimock/journal?testId={urllib.request.quote(test_id)}"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        entries = json.loads(response.read())
    return sorted(entries, key=lambda entry: entry["timestamp"])


# ---- configs, written the way a user would ---------------------------------------------------


def aimock_config(server: Server, test_id: str, model: str = "any-model", *, entry: dict[str, Any] | None = None,
                  providers: list[dict[str, Any]] | None = None, **top: Any) -> dict[str, Any]:
    """A config whose default provider is `compatible` pointing at aimock."""
    row = {"name": "compatible", "base_url": server.base_url, "headers": {"X-Test-Id": test_id}, **(entry or {})}
    return {"default_provider": "compatible", "default_model": model, "providers": [row, *(providers or [])],
            **top}


def backup_provider(server: Server, test_id: str, name: str = "backup") -> dict[str, Any]:
    """Another provider entry on the same aimock: the X-AIMock-Context header routes it to
    fixtures where the failing models are healthy (a second, working provider)."""
    return {"name": name, "base_url": server.base_url,
            "headers": {"X-Test-Id": test_id, "X-AIMock-Context": "backup"}}


def litellm_config(server: Server, model: str = "mock-gpt", *, entry: dict[str, Any] | None = None,
                   **top: Any) -> dict[str, Any]:
    """A config whose default provider is the `litellm` registry name, its base_url
    overridden to the proxy, with the proxy's master key."""
    row = {"name": "litellm", "base_url": server.base_url, "api_key": LITELLM_KEY, **(entry or {})}
    return {"default_provider": "litellm", "default_model": model, "providers": [row], **top}


# ---- one test body, both clients ------------------------------------------------------------


from tests.drivers import Driver, Handle  # noqa: E402,F401 - re-exported for the interop tests


def content_events(events: list[Any]) -> list[str]:
    return [event.text for event in events if event.type == "content"]

