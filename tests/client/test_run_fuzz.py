"""The pairing invariant, fuzzed over real HTTP through both clients: runs stopped in every
way (a tool that raises with on_tool_error="raise", a refusal, an approve hook that
raises, Ctrl-C or cancellation inside a tool, the turn limit, bad and repeated calls,
missing and duplicated ids) always leave a conversation in which every tool_call_id has
exactly one tool message. The scripted server refuses (400) any request a strict server
would refuse, including the one that resumes each stopped run: it must refuse none."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

import human

from .agent_support import Model, answer, call, pairing_problems

RUNS = 500  # per client: 1,000 in all


def fine(x: int) -> int:
    """Returns x."""
    return x


def broken(x: int) -> int:
    """Raises."""
    raise ValueError("broken")


def interrupted(x: int) -> int:
    """Ctrl-C while it runs."""
    raise KeyboardInterrupt


async def cancelled(x: int) -> int:
    """The task running it is cancelled."""
    raise asyncio.CancelledError


def model_turn(rng: random.Random, stopper: str) -> Any:
    def turn(body: dict[str, Any]) -> dict[str, Any]:
        if rng.random() < 0.25:
            return answer("done")
        calls = []
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(["fine", "fine", "broken", stopper, "missing"])
            arguments = rng.choice(['{"x": 1}', '{"x": 1}', '{"x": "one"}', '{"x": ', "{}"])
            ident = rng.choice(["auto", None, "same", f"id{rng.randint(0, 3)}"])
            calls.append(call(name, arguments, id=f"call_{rng.randint(0, 10**6)}" if ident == "auto" else ident))
        return answer(rng.choice([None, "let me see"]), calls)

    return turn


def test_every_stop_leaves_every_tool_call_answered(driver, config_for, fake):
    stopper = "cancelled" if driver.is_async else "interrupted"
    model = Model()
    fake.respond(model).as_default()
    handle = driver.client(config_for(), retries=0)
    tools = [fine, broken, interrupted if not driver.is_async else cancelled]
    stops: dict[str, int] = {}
    for seed in range(RUNS):
        rng = random.Random(seed)
        model.then = model_turn(rng, stopper)

        def approve(tool_call: human.ToolCall, rng: random.Random = rng) -> bool:
            roll = rng.random()
            if roll < 0.03:
                raise RuntimeError("approval failed")
            return roll > 0.15

        settings: dict[str, Any] = {"max_turns": rng.randint(1, 4), "on_tool_error": rng.choice(["return", "raise"]),
                                    "approve": rng.choice([None, approve]), "max_parallel": rng.choice([1, 4])}
        try:
            handle.run_stream("go", tools=tools, **settings)
            stop = "answered"
        except (human.HumanError, RuntimeError, KeyboardInterrupt, asyncio.CancelledError) as exc:
            stop = type(exc).__name__
        stops[stop] = stops.get(stop, 0) + 1
        messages = handle.last.messages
        assert pairing_problems(messages) == [], (seed, stop)
        model.then = answer("resumed")
        assert handle.chat([*messages, human.user("go on")]).content == "resumed", seed
    assert model.refusals == []
    # every kind of stop happened
    expected = {"answered", "MaxTurnsError", "ToolRunError", "RuntimeError",
                "CancelledError" if driver.is_async else "KeyboardInterrupt"}
    assert expected <= set(stops), stops


@pytest.mark.parametrize("driver", ["async"], indirect=True)
def test_cancelling_an_async_run_mid_tool_leaves_every_call_answered(driver, config_for, fake):
    started = asyncio.Event()

    async def forever() -> str:
        """Never finishes."""
        started.set()
        await asyncio.sleep(3600)
        return "never"

    fake.respond(Model(answer(None, [call("forever"), call("fine", {"x": 2})]))).as_default()
    handle = driver.client(config_for())
    stream = handle.client.run_stream("go", tools=[forever, fine])

    finished = asyncio.Event()

    async def consume() -> None:
        async for event in stream:
            if event.type == "tool_result":
                finished.set()

    async def main() -> None:
        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(asyncio.gather(started.wait(), finished.wait()), 10)  # `fine` is done
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    driver.run(main())
    assert pairing_problems(stream.messages) == []
    outputs = [m["content"] for m in stream.messages if m["role"] == "tool"]
    assert outputs == ["not run: the run stopped (CancelledError) before this call finished", "2"]
