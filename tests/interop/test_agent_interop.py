"""The agent loop against servers nobody on this project wrote: aimock's tool fixtures
(a tool call answered once a tool result is in the turn, parallel calls, a chain, reasoning
on a tool-call turn, a model that only answers the emulation prompt) and LiteLLM's mock
models (one that always asks for a tool: the repeat guard and the turn limit end it).
Both clients, `run` and `run_stream`."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import human
from human.errors import MaxTurnsError

from .interop_support import aimock_config, journal, litellm_config

pytestmark = pytest.mark.interop


def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city."""
    return f"{city}: 21 degrees {unit}"


def get_time(tz: str) -> str:
    """Local time in a time zone."""
    return f"14:05 in {tz}"


def lookup_city(person: str) -> str:
    """Where someone lives."""
    return {"ada": "London"}[person]


@pytest.fixture
def aimock_client(aimock, test_id, write_config, driver):
    def make(model: str, **entry: Any):
        return driver.client(write_config(aimock_config(aimock, test_id, model, entry=entry)))

    return make


def sent(aimock, test_id) -> list[dict[str, Any]]:
    return [entry["body"] for entry in journal(aimock, test_id)]


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_stream"])
def test_a_tool_round_trip_on_aimock(aimock_client, aimock, test_id, streamed):
    client = aimock_client("mock-tools")
    if streamed:
        result = client.run_stream("Weather in Paris?", tools=[get_weather]).result
        kinds = client.types()
        assert kinds.index("tool_call_done") < kinds.index("tool_start") < kinds.index("tool_result")
        assert client.text() == "It is 21 degrees in Paris."
    else:
        result = client.run("Weather in Paris?", tools=[get_weather])
    assert result.content == "It is 21 degrees in Paris."
    [run] = result.steps[0].tools
    assert (run.call.id, run.arguments, run.output) == (
        "call_weather_1", {"city": "Paris", "unit": "celsius"}, "Paris: 21 degrees celsius")
    first, second = sent(aimock, test_id)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_weather_1",
                                      "content": "Paris: 21 degrees celsius"}


def test_parallel_calls_on_aimock_run_concurrently(aimock_client, aimock, test_id):
    barrier = threading.Barrier(2, timeout=10)

    def weather(city: str) -> str:
        barrier.wait()
        return get_weather(city)

    def local_time(tz: str) -> str:
        barrier.wait()
        return get_time(tz)

    tools = [human.tool(weather, name="get_weather"), human.tool(local_time, name="get_time")]
    result = aimock_client("mock-parallel-tools").run("Weather and time in Paris?", tools=tools)
    assert result.content == "Paris: 21 degrees, 14:05."
    assert [run.output for run in result.steps[0].tools] == ["Paris: 21 degrees celsius", "14:05 in Europe/Paris"]
    tool_ids = [m["tool_call_id"] for m in sent(aimock, test_id)[1]["messages"] if m["role"] == "tool"]
    assert tool_ids == ["call_a", "call_b"]


def test_a_chain_of_calls_on_aimock(aimock_client):
    result = aimock_client("mock-chain").run("What is the weather where Ada lives?",
                                             tools=[lookup_city, get_weather])
    assert result.content == "Ada's weather: London is at 12 degrees."
    assert [run.output for run in result.tool_runs] == ["London", "London: 21 degrees celsius"]
    assert len(result.steps) == 3


@pytest.mark.parametrize("replay", [None, "reasoning_content"])
def test_reasoning_on_a_tool_call_turn_is_sent_back_only_where_flagged(aimock_client, aimock, test_id, replay):
    entry = {"reasoning_replay": replay} if replay else {}
    result = aimock_client("mock-reasoning-tools", **entry).run("Weather in Paris?", tools=[get_weather])
    assert result.content == "It is 21 degrees in Paris."
    assert result.steps[0].response.reasoning == "I need the weather tool."
    assistant = sent(aimock, test_id)[1]["messages"][1]
    assert assistant["tool_calls"][0]["id"] == "call_think_1"
    if replay:
        assert assistant["reasoning_content"] == "I need the weather tool."
    else:
        assert "reasoning_content" not in assistant


def test_emulated_tools_on_aimock(aimock_client, aimock, test_id):
    result = aimock_client("mock-emulated", native_tools=False).run("Weather in Paris?", tools=[get_weather])
    assert result.content == "It is 21 degrees in Paris."
    assert result.tool_runs[0].output == "Paris: 21 degrees celsius"
    first, second = sent(aimock, test_id)
    assert "tools" not in first and "tools" not in second
    assert second["messages"][-1]["content"].startswith("Result of get_weather (call_1_0):")
    assert result.adjustments[0] == "tools emulated by prompting: native_tools is false for provider 'compatible'"


# ---- LiteLLM --------------------------------------------------------------------------------


@pytest.fixture
def litellm_client(litellm, write_config, driver):
    def make(model: str):
        return driver.client(write_config(litellm_config(litellm, model)))

    return make


def test_a_model_that_always_asks_for_the_same_tool_is_stopped(litellm_client):
    """LiteLLM's mock-tools answers the same get_weather call whatever it is sent: the
    repeat guard stops running it at the third identical call, the turn limit ends the run."""
    ran = []

    def weather(city: str, unit: str = "celsius") -> str:
        ran.append(city)
        return get_weather(city, unit)

    with pytest.raises(MaxTurnsError) as caught:
        litellm_client("mock-tools").run("Weather in Paris?", tools=[human.tool(weather, name="get_weather")],
                                         max_turns=4)
    assert ran == ["Paris", "Paris"]
    statuses = [run.status for run in caught.value.result.tool_runs]
    assert statuses == ["ok", "ok", "skipped", "skipped"]


def test_tools_offered_but_not_used_on_litellm(litellm_client):
    result = litellm_client("mock-gpt").run("hi", tools=[get_weather])
    assert result.content == "Hello from the LiteLLM mock server."
    assert [step.tools for step in result.steps] == [()]


def test_the_spec_shaped_tool_call_on_litellm(litellm_client):
    with pytest.raises(MaxTurnsError) as caught:
        litellm_client("mock-tools-dict").run("Weather in Paris?", tools=[get_weather], max_turns=2)
    first = caught.value.result.tool_runs[0]
    assert (first.call.id, first.output) == ("call_abc123", "Paris: 21 degrees celsius")
    assert caught.value.result.usage.prompt_tokens == 84  # 42 per turn, summed
