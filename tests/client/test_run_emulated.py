"""`run()` on endpoints without native tool calling, through both clients: the tools are
prompted for and the JSON call read back, whether the config says so (`native_tools:
false`), the capability profile does, or the server answers 400 naming tools. Always
reported as an adjustment; the conversation handed back stays in the native shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from human.errors import BadRequestError
from human.profile import Profile, save_profile

from .agent_support import Model, answer, pairing_problems


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"{city}: 21 degrees"


def json_call(name: str, **arguments: Any) -> str:
    return json.dumps({"tool_calls": [{"name": name, "arguments": arguments}]})


@pytest.fixture
def client(driver, config_for, fake):
    def make(model: Model, entry: dict[str, Any] | None = None, **settings: Any):
        fake.respond(model).as_default()
        return driver.client(config_for(entry), **settings)

    return make


def test_native_tools_false_prompts_for_a_json_call_and_reads_it_back(client):
    model = Model(answer(json_call("get_weather", city="Oslo")), answer("It is 21 degrees in Oslo."))
    result = client(model, entry={"native_tools": False}).run(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}],
        tools=[get_weather], tool_choice="auto")
    assert result.content == "It is 21 degrees in Oslo."
    first, second = model.bodies
    assert "tools" not in first and "tool_choice" not in first
    system = first["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.\n\nYou can call tools.")
    assert '"name": "get_weather"' in system["content"]
    # what the endpoint sees: only system/user/assistant text
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert second["messages"][2]["content"] == json.dumps({"tool_calls": [{"name": "get_weather",
                                                                            "arguments": {"city": "Oslo"}}]})
    assert second["messages"][3]["content"] == "Result of get_weather (call_1_0):\nOslo: 21 degrees"
    # what the caller gets back: the native shape, paired
    assert [m["role"] for m in result.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert result.messages[2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert pairing_problems(result.messages) == []
    assert result.adjustments == (
        "tools emulated by prompting: native_tools is false for provider 'local'",
        "dropped tool_choice (tools are emulated)")
    assert all(step.emulated for step in result.steps)


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_stream"])
def test_a_400_naming_tools_switches_to_emulation_and_says_so(client, streamed):
    model = Model(answer("```json\n" + json_call("get_weather", city="Paris") + "\n```"), answer("Sunny."),
                  reject_tools=True)
    handle = client(model)
    if streamed:
        result = handle.run_stream("Weather in Paris?", tools=[get_weather]).result
        assert handle.text() == "Sunny."
    else:
        result = handle.run("Weather in Paris?", tools=[get_weather])
    assert result.content == "Sunny."
    assert model.refusals == ["tools param requires --jinja flag"]
    assert "tools" in model.bodies[0] and "tools" not in model.bodies[1]
    assert result.adjustments == (
        "tools emulated by prompting: the endpoint rejected native tools (tools param requires --jinja flag)",)
    assert result.steps[0].tools[0].output == "Paris: 21 degrees"


def test_tool_mode_native_never_emulates(client):
    model = Model(reject_tools=True)
    with pytest.raises(BadRequestError, match="--jinja"):
        client(model).run("hi", tools=[get_weather], tool_mode="native")


def test_a_profile_that_says_tools_were_rejected_emulates_from_the_first_turn(client, fake):
    save_profile(Profile(provider="local", base_url=fake.url_v1, model="test-model", probed_at="2026-01-01T00:00:00",
                         supports_tools=False))
    model = Model(answer("No tool needed: hello."))
    result = client(model).run("hi", tools=[get_weather])
    assert "tools" not in model.bodies[0]
    assert result.adjustments == (
        "tools emulated by prompting: `human doctor` found that the endpoint rejects tools",)


def test_an_answer_that_is_json_but_not_a_call_is_the_answer(client):
    model = Model(answer('{"city": "Oslo", "degrees": 21}'))
    result = client(model, entry={"native_tools": False}).run("as json please", tools=[get_weather])
    assert result.content == '{"city": "Oslo", "degrees": 21}'
    assert result.steps[0].tools == ()


def test_emulated_streaming_never_shows_the_json_of_a_call(client, fake):
    fake.stream_text(json_call("get_weather", city="Oslo"), pieces=6)
    fake.stream_text("It is 21 degrees.", pieces=3)
    handle = client(Model(), entry={"native_tools": False})
    fake.default = None
    stream = handle.run_stream("weather?", tools=[get_weather])
    assert handle.text() == "It is 21 degrees."
    assert [e.type for e in handle.events if e.type.startswith("tool_")] == ["tool_start", "tool_result"]
    assert stream.result.steps[0].tools[0].output == "Oslo: 21 degrees"


def test_a_native_endpoint_that_leaves_a_call_in_its_text_still_gets_it_run(client):
    """A server whose chat template's tool format it could not parse (Hermes' <tool_call>
    tags in the content, no tool_calls): the call is read, and the result says so."""
    model = Model(answer('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'),
                  answer("21 degrees."))
    result = client(model).run("weather?", tools=[get_weather])
    assert result.content == "21 degrees."
    assert result.steps[0].tools[0].output == "Oslo: 21 degrees"
    assert "tools" in model.bodies[1]  # still native: the next request sends tools as before
    assert model.bodies[1]["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert result.adjustments[0].startswith("read a tool call the server left in the answer's text")
