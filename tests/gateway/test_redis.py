"""Limits and budgets shared through a real Redis: the Lua scripts follow core/limiter.py's
rules, two gateway processes enforce one limit, and an unreachable Redis fails open (each
process limits alone) or closed (503), as configured."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from human.core.limiter import Limiter
from human.gateway.keys import KeyFile
from human.gateway.limits import Refusal
from human.gateway.redis import RedisLimits
from tests.fakes.openai_server import FakeServer

from .harness import write_config
from .test_keys_limits import HI, USAGE, post


def _wait(refusal: Refusal | None) -> float:
    return 0.0 if refusal is None else float(refusal.retry_after or 0.0)


def test_the_scripts_follow_the_limiter_rules(redis_url: str, keyfile: KeyFile) -> None:
    """The same steps through core/limiter.py (at a fixed moment) and through Redis (whose
    clock moves a few ms meanwhile: 10 tokens/s, so waits agree within ~0.1 s)."""
    record, _ = keyfile.create("alice", rpm=2, tpm=600)
    local = Limiter(rpm=2, tpm=600)

    async def steps() -> list[tuple[float, float]]:
        limits = RedisLimits(redis_url, fail_open=False)
        pairs = []
        try:
            for tokens in (500, 200):
                pairs.append((local.acquire(tokens, 0.0), _wait(await limits.acquire(record, tokens))))
            local.refund(500, 100, 0.0)
            limits.settle(record, 500, 100, None)
            await asyncio.sleep(0.05)  # the refund is sent on the loop's next turns
            pairs.append((local.acquire(200, 0.0), _wait(await limits.acquire(record, 200))))  # the refund made room
            pairs.append((local.acquire(100, 0.0), _wait(await limits.acquire(record, 100))))  # rpm: 2 taken
        finally:
            await limits.close()
        return pairs

    pairs = asyncio.run(steps())
    assert pairs[0] == (0.0, 0.0)
    assert pairs[1][0] == pytest.approx(10.0) and pairs[1][1] == pytest.approx(10.0, abs=0.2)
    assert pairs[2] == (0.0, 0.0)
    assert pairs[3][0] == pytest.approx(30.0) and pairs[3][1] == pytest.approx(30.0, abs=0.2)


def test_budget_spend_is_shared(redis_url: str, keyfile: KeyFile) -> None:
    record, _ = keyfile.create("alice", budget=1.0, budget_period="month")

    async def run() -> tuple[Refusal | None, Refusal | None]:
        first, second = RedisLimits(redis_url), RedisLimits(redis_url)  # two processes' worth
        try:
            before = await first.acquire(record, 0)
            second.settle(record, 0, 10, 1.5)
            await asyncio.sleep(0.05)
            return before, await first.acquire(record, 0)
        finally:
            await first.close()
            await second.close()

    before, after = asyncio.run(run())
    assert before is None
    assert after is not None and after.reason == "budget" and after.retry_after is not None


@pytest.mark.parametrize("fail_open", [True, False], ids=["open", "closed"])
def test_an_unreachable_redis_fails_as_configured(keyfile: KeyFile, fail_open: bool) -> None:
    record, _ = keyfile.create("alice", rpm=1)

    async def run() -> list[Refusal | None]:
        limits = RedisLimits("redis://127.0.0.1:9/0", fail_open=fail_open)  # port 9: nothing listens
        try:
            return [await limits.acquire(record, 0), await limits.acquire(record, 0)]
        finally:
            await limits.close()

    first, second = asyncio.run(run())
    if fail_open:  # this process's own limits: one request, then wait
        assert first is None and second is not None and second.reason == "rate"
    else:
        assert first is not None and first.reason == "unavailable"


def _spawn(config: Path) -> tuple[subprocess.Popen[str], str]:
    """`human gateway --port 0` in a process of its own; (the process, its URL)."""
    env = {**os.environ, "HUMAN_GATEWAY_LOOP": "asyncio"}
    process = subprocess.Popen([sys.executable, "-m", "human", "--config", str(config), "gateway", "--port", "0"],
                               stderr=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None
    for line in process.stderr:
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].split()[0]
            threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
            return process, url
    process.stderr.close()
    process.kill()
    raise AssertionError(f"the gateway process did not start (exit {process.wait()})")


def test_two_gateway_processes_enforce_one_limit(redis_url: str, tmp_path: Path, fake: FakeServer,
                                                 keyfile: KeyFile, config: dict[str, Any]) -> None:
    config["gateway"] = {**config["gateway"], "redis_url": redis_url, "log": False}
    path = write_config(tmp_path, config)
    _, key = keyfile.create("alice", rpm=6)
    fake.completion("ok", usage=USAGE).as_default()
    processes = [_spawn(path), _spawn(path)]
    try:
        statuses: list[int] = []
        lock = threading.Lock()

        def call(url: str) -> None:
            status = post(url, key, {"model": "fast", "messages": HI})[0]
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=call, args=(processes[i % 2][1],)) for i in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            process.wait(10)
            assert process.stderr is not None
            process.stderr.close()
    assert statuses.count(200) == 6 and statuses.count(429) == 18  # not 6 per process
    assert len(fake.requests) == 6
    assert json.loads(json.dumps(statuses))  # both processes answered
