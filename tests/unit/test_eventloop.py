"""The loop `human gateway` and `human batch` run on: uvloop's when installed (the test
extra installs it), asyncio's when declined, with asyncio.run's clean-up either way."""

from __future__ import annotations

import asyncio

import pytest

from human import eventloop

uvloop = pytest.importorskip("uvloop")


async def _loop_and_generator_state() -> tuple[type, list[str]]:
    closed: list[str] = []

    async def numbers():
        try:
            yield 1
            yield 2
        finally:
            closed.append("generator")

    agen = numbers()
    await agen.__anext__()  # left suspended: the run must close it
    return type(asyncio.get_running_loop()), closed


def test_runs_on_uvloop_when_it_is_installed(monkeypatch):
    monkeypatch.delenv("HUMAN_LOOP", raising=False)
    monkeypatch.delenv("HUMAN_GATEWAY_LOOP", raising=False)
    kind, closed = eventloop.run(_loop_and_generator_state())
    assert kind is uvloop.Loop
    assert closed == ["generator"]  # the suspended async generator was shut down


@pytest.mark.parametrize("name", ["HUMAN_LOOP", "HUMAN_GATEWAY_LOOP"])
def test_asyncio_is_kept_when_asked(monkeypatch, name):
    monkeypatch.setenv(name, "asyncio")
    assert eventloop.loop_factory() is None
    kind, closed = eventloop.run(_loop_and_generator_state())
    assert not issubclass(kind, uvloop.Loop)
    assert closed == ["generator"]


def test_the_result_and_the_exception_come_back_and_the_loop_is_left_clean(monkeypatch):
    monkeypatch.delenv("HUMAN_LOOP", raising=False)

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def fails() -> None:
        raise ValueError("boom")

    assert eventloop.run(answer()) == 42
    with pytest.raises(ValueError, match="boom"):
        eventloop.run(fails())
    with pytest.raises(RuntimeError):  # no loop left set for this thread
        asyncio.get_running_loop()
