"""Drivers that run one behaviour through `human.Client` and `human.AsyncClient` alike,
behind one synchronous face (used by tests/client and tests/interop). The async side
runs on one event loop per driver, so an `AsyncClient` keeps its connection pool across
calls exactly as it would in a program; sleeps are recorded, never slept."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import human


class Handle:
    """A `Client` or an `AsyncClient` behind one synchronous face."""

    def __init__(self, driver: Driver, client: Any) -> None:
        self.driver = driver
        self.client = client
        self.events: list[Any] = []
        self.last: Any = None  # the last run_stream object, also when it failed

    def chat(self, messages: Any = "hi", **options: Any) -> human.ChatResponse:
        if self.driver.is_async:
            return self.driver.run(self.client.chat(messages, **options))
        return self.client.chat(messages, **options)

    def parse(self, messages: Any, response_format: Any, **options: Any) -> Any:
        if self.driver.is_async:
            return self.driver.run(self.client.parse(messages, response_format, **options))
        return self.client.parse(messages, response_format, **options)

    def dry_run(self, messages: Any = "hi", **options: Any) -> dict[str, Any]:
        return self.client.dry_run(messages, **options)

    def stream(self, messages: Any = "hi", **options: Any) -> human.ChatResponse:
        """Consume a stream; the events land in `self.events` (kept when it fails)."""
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

    def run(self, messages: Any = "hi", **settings: Any) -> Any:
        """`client.run(...)`, the RunResult."""
        if self.driver.is_async:
            return self.driver.run(self.client.run(messages, **settings))
        return self.client.run(messages, **settings)

    def run_stream(self, messages: Any = "hi", **settings: Any) -> Any:
        """Consume `client.run_stream(...)`; the events land in `self.events` (kept when it
        fails). Returns the stream object (`.result`, `.messages`), also kept in `self.last`."""
        self.events = []
        stream = self.last = self.client.run_stream(messages, **settings)
        if self.driver.is_async:
            async def consume() -> None:
                async for event in stream:
                    self.events.append(event)

            self.driver.run(consume())
        else:
            for event in stream:
                self.events.append(event)
        return stream

    def models(self) -> list[dict[str, Any]]:
        call = self.client.models()
        return self.driver.run(call) if self.driver.is_async else call

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    def text(self) -> str:
        return "".join(event.text for event in self.events if event.type == "content")

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

    def client(self, config: Path | human.Config, **settings: Any) -> Handle:
        """A client on this config file; its sleeps are recorded in `slept`, not slept;
        jitter is 0 so a backoff wait is exactly half its cap."""
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
