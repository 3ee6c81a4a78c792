"""The loop's pure plan (agent/plan.py), driven without HTTP: the pairing invariant over
thousands of randomly stopped runs, and what the history keeps for the next turn
(tool-call extras, reasoning replay)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

import human
from human.agent.plan import CallModel, Plan, RunTools, Settings
from human.agent.tools import as_tools
from human.core.parse import parse_completion
from human.core.stream import StreamAssembler
from human.errors import BadRequestError, MaxTurnsError, ToolRunError
from human.types import ChatResponse, ToolCall
from tests.client.agent_support import pairing_problems


def fine(x: int) -> int:
    """Returns x."""
    return x


def other(y: str = "") -> str:
    """Returns y."""
    return y


def random_response(rng: random.Random, turn: int) -> ChatResponse:
    if rng.random() < 0.2:
        return ChatResponse("done")
    calls = tuple(ToolCall(rng.choice([None, "dup", f"c{turn}{i}", ""]), rng.choice(["fine", "other", "nope"]),
                           rng.choice(['{"x": 1}', '{"y": "a"}', "{", "[]", ""]))
                  for i in range(rng.randint(1, 4)))
    return ChatResponse(rng.choice([None, "hm"]), calls, reasoning=rng.choice([None, "thinking"]))


STOPS = [KeyboardInterrupt, asyncio.CancelledError, RuntimeError, ValueError]


def drive(plan: Plan, rng: random.Random) -> str:
    """Carry the plan out the way a driver would, failing at random points."""
    steps = plan.run()
    action = next(steps)
    while True:
        try:
            if isinstance(action, CallModel):
                roll = rng.random()
                if roll < 0.05:
                    raise BadRequestError("tools param requires --jinja flag", status=400)
                if roll < 0.08:
                    raise rng.choice(STOPS)("model call failed")
                outcome: Any = (random_response(rng, action.turn), 0.01)
            else:
                assert isinstance(action, RunTools)
                for position in range(len(action.jobs)):
                    if rng.random() < 0.1:
                        raise rng.choice(STOPS)("stopped mid-batch")
                    status = rng.choice(["ok", "ok", "error", "refused", "timeout"])
                    action.settle(position, status, value=1, error=ValueError("boom"), seconds=0.1, timeout=1)
                outcome = None
        except BaseException as exc:
            try:
                action = steps.throw(exc)
            except (BaseException) as final:
                return type(final).__name__
            continue
        try:
            action = steps.send(outcome)
        except StopIteration:
            return "answered"
        except (MaxTurnsError, ToolRunError) as final:
            return type(final).__name__


def test_the_plan_pairs_every_call_whatever_stops_it():
    tools = as_tools([fine, other])
    stops: dict[str, int] = {}
    for seed in range(3000):
        rng = random.Random(seed)
        settings = Settings(max_turns=rng.randint(1, 5), on_tool_error=rng.choice(["return", "raise"]),
                            repeat_limit=rng.choice([None, 2, 3]), tool_mode=rng.choice(["auto", "native"]))
        history = [{"role": "user", "content": "go"}]
        plan = Plan(history, tools, settings)
        stop = drive(plan, rng)
        stops[stop] = stops.get(stop, 0) + 1
        assert pairing_problems(plan.messages) == [], (seed, stop)
        ids = [item["id"] for m in plan.messages for item in m.get("tool_calls") or ()]
        assert len(ids) == len(set(ids)) and all(ids), seed
        assert history == [{"role": "user", "content": "go"}]
    assert set(stops) >= {"answered", "MaxTurnsError", "ToolRunError", "KeyboardInterrupt", "CancelledError",
                          "RuntimeError", "BadRequestError"}, stops


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_turns must be at least 1"):
        Settings(max_turns=0)
    with pytest.raises(ValueError, match="on_tool_error must be 'return' or 'raise'"):
        Settings(on_tool_error="ignore")  # type: ignore[arg-type]


def test_tool_choice_is_sent_on_the_first_turn_only():
    steps = Plan("go", as_tools([fine]), Settings(options={"tool_choice": "required", "temperature": 0})).run()
    first = next(steps)
    assert first.options["tool_choice"] == "required" and first.options["temperature"] == 0
    runs = steps.send((ChatResponse(None, (ToolCall("a", "fine", '{"x": 1}'),)), 0.0))
    runs.settle(0, "ok", value=1)
    second = steps.send(None)
    assert "tool_choice" not in second.options and second.options["temperature"] == 0


# ---- what the history keeps -----------------------------------------------------------------


def test_reasoning_goes_back_only_on_tool_call_turns_of_a_flagged_provider():
    call = ToolCall("a", "fine", "{}")
    flagged = ChatResponse(None, (call,), reasoning="why", reasoning_replay="reasoning_content")
    assert flagged.to_message()["reasoning_content"] == "why"
    assert ChatResponse(None, (call,), reasoning_replay="reasoning").to_message()["reasoning"] == ""
    answer = ChatResponse("hi", reasoning="why", reasoning_replay="reasoning_content")
    assert "reasoning_content" not in answer.to_message()
    assert "reasoning_content" not in ChatResponse(None, (call,), reasoning="why").to_message()


GEMINI_CALL = {"id": "function-call-1", "type": "function", "index": 0,
               "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
               "extra_content": {"google": {"thought_signature": "c2ln"}}}


def test_unknown_fields_of_a_tool_call_are_kept_verbatim_and_index_is_not():
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [GEMINI_CALL]},
                         "finish_reason": "tool_calls"}]}
    [call] = parse_completion(body).tool_calls
    assert call.extra == {"extra_content": {"google": {"thought_signature": "c2ln"}}}
    assert call.to_message() == {k: v for k, v in GEMINI_CALL.items() if k != "index"}
    assert hash(call) == hash(ToolCall(call.id, call.name, call.arguments))  # still hashable


def test_a_streamed_tool_call_keeps_its_unknown_fields_too():
    assembler = StreamAssembler()
    first = {**GEMINI_CALL, "function": {"name": "get_weather", "arguments": '{"city": '}}
    for delta in [{"tool_calls": [first]}, {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}]:
        assembler.add(json.dumps({"choices": [{"index": 0, "delta": delta}]}))
    assembler.add(json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))
    assembler.close()
    [call] = assembler.finish().tool_calls
    assert call.arguments == '{"city": "Oslo"}'
    assert call.to_message()["extra_content"] == {"google": {"thought_signature": "c2ln"}}


def test_the_public_names():
    assert {"run", "tool", "Tool", "RunResult", "MCPServer", "MaxTurnsError", "ToolRunError"} <= set(human.__all__)


def test_a_runs_cost_is_the_sum_of_its_answers_or_none_when_one_is_unknown():
    import dataclasses
    from decimal import Decimal

    from human.agent.result import add_costs, add_usage
    from human.types import Usage

    @dataclasses.dataclass(frozen=True)
    class Cost:
        amount: Decimal
        currency: str = "USD"
        source: str = ""
        input: Decimal | None = None
        output: Decimal | None = None

    costs = [Cost(Decimal("0.001"), source="a", input=Decimal("0.0004"), output=Decimal("0.0006")),
             Cost(Decimal("0.002"), source="b", input=Decimal("0.002"))]
    total = add_costs(costs)
    assert (total.amount, total.input, total.output, total.source) == (
        Decimal("0.003"), Decimal("0.0024"), None, "the sum of 2 answers")
    assert add_costs([0.5, 0.25]) == 0.75
    assert add_costs([0.5, None]) is None and add_costs([]) is None
    summed = add_usage(add_usage(Usage(), Usage(10, 5, 15)), Usage(1, None, 1, cached_tokens=4))
    assert summed == Usage(11, 5, 16, 4, None)
