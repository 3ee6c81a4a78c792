"""Tools from Python (agent/tools.py) and the emulated-tools helpers (agent/emulate.py):
schemas, argument checking, results as text, calls read out of plain answers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from typing import Any, Literal, TypedDict

import pytest

import human
from human.agent.emulate import ContentGate, names_tools, parse_calls, project
from human.agent.tools import Tool, as_tools, render_output
from human.core.typeschema import Mismatch


def get_weather(city: str, unit: Literal["c", "f"] = "c", days: int | None = None) -> str:
    """The weather in a city.

    Args:
        city: The city's name.
        unit: Celsius or Fahrenheit.
        days: How many days ahead.
    """
    return f"{city} {unit} {days}"


# ---- tools ------------------------------------------------------------------------------------


def test_a_plain_function_is_a_tool_and_the_decorator_keeps_it_callable():
    decorated = human.tool(get_weather)
    assert decorated("Oslo") == "Oslo c None"
    [made] = as_tools([get_weather])
    assert made.schema() == decorated.schema() == {"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city.", "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name."},
                           "unit": {"type": "string", "enum": ["c", "f"], "description": "Celsius or Fahrenheit."},
                           "days": {"type": ["integer", "null"], "description": "How many days ahead."}},
            "required": ["city"], "additionalProperties": False}}}


def test_the_decorator_with_settings():
    @human.tool(name="weather", description="Weather now.", timeout=5)
    async def fetch(city: str) -> str:
        return city

    assert (fetch.name, fetch.description, fetch.timeout, fetch.is_async) == ("weather", "Weather now.", 5, True)
    assert fetch.invoke({"city": "Oslo"}) == "Oslo"  # an async tool, run from sync code


def test_strict_tools_send_a_closed_schema_and_take_null_for_a_default():
    strict = human.tool(get_weather, strict=True)
    function = strict.schema()["function"]
    assert function["strict"] is True
    assert function["parameters"]["required"] == ["city", "unit", "days"]
    assert function["parameters"]["properties"]["unit"]["type"] == ["string", "null"]
    # null for a parameter with a default: left out, so the default applies
    assert strict.arguments({"city": "Oslo", "unit": None, "days": None}) == {"city": "Oslo"}


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Mode(enum.Enum):
    FAST = "fast"


class Filter(TypedDict):
    field: str
    value: str


def plot(points: list[Point], mode: Mode, when: dt.date) -> None:
    """Plots."""


def test_arguments_are_converted_and_every_problem_is_listed():
    made = human.tool(plot)
    converted = made.arguments({"points": [{"x": 1, "y": 2.5}], "mode": "fast", "when": "2026-01-02"})
    assert converted == {"points": [Point(1.0, 2.5)], "mode": Mode.FAST, "when": dt.date(2026, 1, 2)}
    with pytest.raises(Mismatch) as caught:
        made.arguments({"points": [{"x": "a"}], "mode": "slow", "extra": 1})
    assert caught.value.errors == [
        "$.when: required field is missing", "$.points[0].y: required field is missing",
        "$.points[0].x: expected a number, got string", "$.mode: expected one of ['fast'], got 'slow'",
        "$.extra: unexpected field (allowed: points, mode, when)"]


def test_a_typeddict_and_a_pydantic_model_as_parameters():
    pydantic = pytest.importorskip("pydantic")

    class Page(pydantic.BaseModel):
        size: int = 10

    def search(filters: list[Filter], page: Any) -> str:
        """Searches."""
        return "ok"

    search.__annotations__["page"] = Page  # a class made inside the test: hand the hint over resolved
    made = human.tool(search)
    properties = made.schema()["function"]["parameters"]["properties"]
    assert properties["filters"]["items"]["required"] == ["field", "value"]
    assert properties["page"]["properties"]["size"]["default"] == 10
    assert made.arguments({"filters": [], "page": {"size": 3}})["page"] == Page(size=3)


def test_a_function_with_its_own_json_schema():
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"],
              "additionalProperties": False}
    made = human.tool(lambda **kw: kw["q"], name="find", description="Finds.", parameters=schema)
    assert made.schema()["function"] == {"name": "find", "description": "Finds.", "parameters": schema}
    assert made.arguments({"q": "x"}) == {"q": "x"}
    with pytest.raises(Mismatch) as caught:
        made.arguments({"q": 1, "r": 2})
    assert caught.value.errors == ["$.q: expected string, found number 1", "$.r: unknown key 'r'"]
    openai_dict = {"type": "function", "function": {"name": "find", "parameters": schema}}
    assert Tool.from_schema(openai_dict, lambda q: q).invoke({"q": "y"}) == "y"


def test_what_cannot_be_a_tool_is_refused_with_what_to_do():
    with pytest.raises(TypeError, match=r"tools\[0\] \(find\) has no function to run; pass the function"):
        as_tools([{"type": "function", "function": {"name": "find", "parameters": {}}}])
    with pytest.raises(TypeError, match="two tools are named 'get_weather'"):
        as_tools([get_weather, human.tool(get_weather)])
    with pytest.raises(TypeError, match=r"tools\[0\] is a int"):
        as_tools([3])
    with pytest.raises(TypeError, match="1-64 letters"):
        human.tool(get_weather, name="get weather")


def test_results_become_text():
    @dataclasses.dataclass
    class Reading:
        at: dt.datetime
        tags: frozenset[str]

    assert render_output("plain") == "plain"
    assert render_output(None) == "null"
    assert render_output({"n": 1.5, "ok": True}) == '{"n": 1.5, "ok": true}'
    assert json.loads(render_output(Reading(dt.datetime(2026, 1, 2, 3, 4), frozenset({"a"})))) == {
        "at": "2026-01-02T03:04:00", "tags": ["a"]}
    assert render_output("Zürich ☀") == "Zürich ☀"


# ---- emulated tools ----------------------------------------------------------------------------


NAMES = ["get_weather", "get_time"]


@pytest.mark.parametrize("text", [
    '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}',
    '```json\n{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}\n```',
    '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
    '{"tool": "get_weather", "args": {"city": "Oslo"}}',
    '[{"function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}}]',
    '{"tool_call": {"name": "get_weather", "parameters": {"city": "Oslo"}}}',
])
def test_the_shapes_of_an_emulated_call(text):
    calls, before = parse_calls(text, NAMES)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert before is None


def test_text_before_a_call_is_kept_and_json_that_is_not_a_call_is_an_answer():
    calls, before = parse_calls('Let me check.\n{"tool_calls": [{"name": "get_time", "arguments": {}}]}', NAMES)
    assert ([c.name for c in calls], before) == (["get_time"], "Let me check.")
    for answer in ['{"city": "Oslo"}', '{"name": "Ada", "arguments": "none"}', "a {brace} in prose", "", None]:
        assert parse_calls(answer, NAMES) == ([], answer)
    # the explicit wrapper counts even for an unknown name: the loop tells the model
    assert [c.name for c in parse_calls('{"tool_calls": [{"name": "nope", "arguments": {}}]}', NAMES)[0]] == ["nope"]


@pytest.mark.parametrize("text", [
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
    '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}}]',
    '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}',
    '```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```',
])
def test_a_call_left_in_the_text_by_a_native_endpoint_is_read(text):
    calls, before = parse_calls(text, NAMES, only=True)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert before is None


@pytest.mark.parametrize("text", [
    'Here is the call: {"name": "get_weather", "arguments": {"city": "Oslo"}}',
    '{"name": "get_weather", "arguments": {"city": "Oslo"}} and that is all',
    '{"tool_calls": [{"name": "unknown_tool", "arguments": {}}]}',
    '{"city": "Oslo"}',
])
def test_only_a_bare_call_of_a_known_tool_counts_on_a_native_endpoint(text):
    assert parse_calls(text, NAMES, only=True) == ([], text)


def test_project_renders_the_native_conversation_as_plain_messages():
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "21"},
        {"role": "tool", "tool_call_id": "b", "content": "12:00"},
    ]
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {}}}]
    out = project(messages, tools)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"].startswith("You can call tools.")
    assert out[2]["content"] == 'Checking.\n{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}, ' \
                                '{"name": "get_time", "arguments": {}}]}'
    assert out[3]["content"] == "Result of get_weather (a):\n21\n\nResult of get_time (b):\n12:00"
    assert messages[1]["content"] == "Checking."  # the caller's messages are not changed


def test_the_gate_holds_back_only_what_may_be_a_call():
    gate = ContentGate()
    assert [gate.feed(piece) for piece in [" ", '{"tool', '_calls": []}']] == ["", "", ""]
    assert gate.finish(is_call=True) == ""
    gate = ContentGate()
    assert [gate.feed(piece) for piece in ["", " It", " is"]] == ["", " It", " is"]
    gate = ContentGate()
    assert gate.feed("{") == "" and gate.finish(is_call=False) == "{"


@pytest.mark.parametrize(("param", "message", "expected"), [
    (None, "tools param requires --jinja flag", True),
    (None, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', True),
    (None, "registry.ollama.ai/library/gemma:2b does not support tools", True),
    (None, "This model does not support function calling", True),
    ("tools", "Invalid value", True),
    (None, "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
           "'tool_call_id'", False),
    (None, "Missing `reasoning_content` field in the assistant message at message index 2", False),
    (None, "temperature must be at most 2", False),
])
def test_which_400s_say_the_endpoint_has_no_tools(param, message, expected):
    assert names_tools(param, message) is expected


def test_a_tool_runs_the_same_from_sync_and_async_code():
    import asyncio

    made = human.tool(get_weather)
    assert made.invoke({"city": "Oslo"}) == "Oslo c None"
    assert asyncio.run(made.ainvoke({"city": "Oslo", "days": 2})) == "Oslo c 2"
