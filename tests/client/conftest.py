"""The `driver` fixture: every behaviour in tests/client runs through both `Client`
and `AsyncClient`, written once. The async side runs on one event loop per test, so an
`AsyncClient` keeps its connection pool across calls exactly as it would in a program."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

import human
from human.config import load_config

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e1d3b5a7c9e2f"


class Handle:
    """A client of either kind behind one synchronous face."""

    def __init__(self, driver: Driver, client: Any) -> None:
        self.driver = driver
        self.client = client
        self.events: list[Any] = []

    def chat(self, messages: Any = "hi", **options: Any) -> human.ChatResponse:
        return self.driver.run(self.client.chat(messages, **options)) if self.driver.is_async else (
            self.client.chat(messages, **options))

    def stream(self, messages: Any = "hi", **options: Any) -> human.ChatResponse:
        """Consume a stream; events land in `self.events` (kept when it fails)."""
        self.events = []
        stream = self.client.stream(messages, **options)
        if self.driver.is_async:
            async def consume() -> None:
                async for event in stream:
                    self.events.append(event)

            self.driver.run(consume())
        else:
            for event in stream:
                self.events.append(event)
        assert stream.response is not None
        return stream.response

    def models(self, provider: str | None = None) -> list[dict[str, Any]]:
        call = self.client.models(provider)
        return self.driver.run(call) if self.driver.is_async else call

    def close(self) -> None:
        if self.driver.is_async:
            self.driver.run(self.client.close())
        else:
            self.client.close()


class Driver:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.is_async = kind == "async"
        self.loop = asyncio.new_event_loop() if self.is_async else None
        self.handles: list[Handle] = []
        self.slept: list[float] = []

    def run(self, coroutine: Any) -> Any:
        assert self.loop is not None
        return self.loop.run_until_complete(coroutine)

    def client(self, config: Any = None, **settings: Any) -> Handle:
        """A client whose sleeps are recorded, not slept (no real waiting in tests)."""
        if self.is_async:
            async def sleep(seconds: float) -> None:
                self.slept.append(seconds)

            cls: Any = human.AsyncClient
        else:
            def sleep(seconds: float) -> None:  # type: ignore[misc]
                self.slept.append(seconds)

            cls = human.Client
        handle = Handle(self, cls(config=config, sleep=sleep, random=lambda: 0.0, **settings))
        self.handles.append(handle)
        return handle

    def close(self) -> None:
        for handle in self.handles:
            handle.close()
        if self.loop is not None:
            self.loop.close()


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
