"""Streaming structured output through both clients: partial objects as fields complete
(never a half-written value), however the bytes are split; the validated object last;
a re-ask inside a stream; the tool-call mode streamed; a rejected format stepped down
before any event."""

from __future__ import annotations

import dataclasses
import json

import pytest

from human.errors import StructuredOutputError
from tests.fakes.quirky_model import QuirkyModel


@dataclasses.dataclass
class Person:
    name: str
    age: int
    tags: list[str] = dataclasses.field(default_factory=list)


ANSWER = '{"name": "Ada", "age": 36, "tags": ["math", "poetry"]}'
EXPECTED = [
    {"name": "Ada"},
    {"name": "Ada", "age": 36},
    {"name": "Ada", "age": 36, "tags": ["math"]},
    {"name": "Ada", "age": 36, "tags": ["math", "poetry"]},
]


def chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def partials(handle) -> list:
    return [event.value for event in handle.events if event.type == "partial"]


@pytest.mark.parametrize("chunk_bytes", [None, 1, 7])
def test_partials_show_only_complete_fields_however_the_bytes_are_split(driver, fake, config_for, chunk_bytes):
    fake.stream_text(f"```json\n{ANSWER}\n```", pieces=len(ANSWER), chunk_bytes=chunk_bytes)
    handle = driver.client(config_for())
    response = handle.stream("Ada", response_format=Person)
    assert partials(handle) == EXPECTED
    assert handle.events[-1].type == "parsed" and handle.events[-1].value == Person("Ada", 36, ["math", "poetry"])
    assert response.parsed == Person("Ada", 36, ["math", "poetry"])
    assert handle.text() == f"```json\n{ANSWER}\n```"  # the stream's own events still come through
    assert fake.last.json["stream"] is True
    assert fake.last.json["response_format"]["type"] == "json_schema"


def test_a_list_streams_each_item_once_it_is_complete(driver, fake, config_for):
    text = '{"items": [{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}]}'
    fake.stream_text(text, pieces=len(text))
    handle = driver.client(config_for())
    response = handle.stream("two", response_format=list[Person])
    assert partials(handle) == [[{"name": "Ada"}], [{"name": "Ada", "age": 36}],
                                [{"name": "Ada", "age": 36}, {"name": "Alan"}],
                                [{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}]]
    assert response.parsed == [Person("Ada", 36), Person("Alan", 41)]


def test_a_stream_that_does_not_fit_is_asked_again(driver, fake, config_for):
    fake.stream_text('{"name": "Ada", "age": "thirty-six"}')
    fake.stream_text(ANSWER)
    handle = driver.client(config_for())
    response = handle.stream("Ada", response_format=Person)
    kinds = [event.type for event in handle.events if event.type in ("partial", "reask", "parsed")]
    assert kinds.count("reask") == 1 and kinds[-1] == "parsed"
    reask = next(event for event in handle.events if event.type == "reask")
    assert reask.attempt == 2 and reask.errors == ("$.age: expected an integer, got string",)
    assert response.parsed == Person("Ada", 36, ["math", "poetry"])
    assert len(fake.requests) == 2 and fake.last.json["messages"][-1]["role"] == "user"
    assert response.usage is None  # the fake streams no usage; nothing is invented


def test_a_stream_that_never_fits_raises_after_max_retries(driver, fake, config_for):
    for _ in range(2):
        fake.stream_text('{"name": "Ada"}')
    with pytest.raises(StructuredOutputError):
        driver.client(config_for()).stream("Ada", response_format=Person, max_retries=1)
    assert len(fake.requests) == 2


def test_tools_mode_streams_the_arguments(driver, fake, config_for):
    pieces = [ANSWER[i:i + 5] for i in range(0, len(ANSWER), 5)]
    events = [chunk({"role": "assistant", "tool_calls": [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "final_result", "arguments": ""}}]})]
    events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in pieces]
    events.append(chunk({}, "tool_calls"))
    fake.stream(events)
    handle = driver.client(config_for())
    response = handle.stream("Ada", response_format=Person, mode="tools")
    assert partials(handle) == EXPECTED
    assert response.parsed == Person("Ada", 36, ["math", "poetry"])
    assert fake.last.json["tool_choice"]["function"]["name"] == "final_result"


def test_a_rejected_format_steps_down_before_any_event(driver, fake, config_for):
    model = QuirkyModel(rejects={"json_schema"})
    fake.respond(model)
    fake.stream_text(ANSWER)
    handle = driver.client(config_for())
    response = handle.stream("Ada", response_format=Person)
    assert response.parsed == Person("Ada", 36, ["math", "poetry"])
    assert model.seen == ["rejected json_schema"]
    assert fake.last.json["response_format"] == {"type": "json_object"}
    assert "stepped down from json_schema to json_object" in response.adjustments[1]


def test_a_server_that_answers_a_stream_with_one_json_body(driver, fake, config_for):
    fake.completion(ANSWER)  # ignores stream=true
    handle = driver.client(config_for())
    response = handle.stream("Ada", response_format=Person)
    assert partials(handle) == [json.loads(ANSWER)]
    assert response.parsed == Person("Ada", 36, ["math", "poetry"])
