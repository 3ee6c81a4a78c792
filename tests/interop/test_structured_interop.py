"""Structured output against aimock, a server nobody on this project wrote, through both
clients. aimock accepts `response_format` and ignores it (as many local setups do,
wave2.md B.2 item 1), so the object can only come from a fallback mode:

    mock-structured        prose, unless the system prompt carries the JSON Schema: then
                           the object in a ```json fence inside prose
    mock-structured-tools  a call of `final_result` whose arguments are the object

(tests/interop/aimock/fixtures/fixtures.json). `journal()` shows what was really sent.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from typing import Any

import pytest

from human.doctor import diagnose
from human.errors import StructuredOutputError
from human.profile import load_profile

from .interop_support import aimock_config, journal

pytestmark = pytest.mark.interop


@dataclasses.dataclass
class Person:
    name: str
    age: int


ADA = Person("Ada Lovelace", 36)


@pytest.fixture
def connect(aimock, test_id, write_config, driver):
    _require_fixtures(aimock)

    def make(model: str, **config: Any):
        return driver.client(write_config(aimock_config(aimock, test_id, model, **config)))

    return make


def _require_fixtures(aimock) -> None:
    """aimock reads its fixtures once, at start: one started before these were added
    answers "Hello from aimock." to everything. Say so instead of failing obscurely."""
    with urllib.request.urlopen(f"{aimock.root}/__aimock/fixtures?include=fixtures", timeout=5) as reply:  # noqa: S310
        loaded = json.loads(reply.read()).get("fixtures", [])
    if not any(fixture.get("match", {}).get("model") == "mock-structured" for fixture in loaded):
        pytest.skip("the running aimock was started before the mock-structured fixtures existed; restart it: "
                    "bash tests/interop/servers.sh stop && bash tests/interop/servers.sh start")


def sent(aimock, test_id) -> list[dict[str, Any]]:
    return [entry["body"] for entry in journal(aimock, test_id)]


def test_ignored_response_format_falls_back_to_the_schema_in_the_prompt(connect, aimock, test_id):
    handle = connect("mock-structured")
    answer = handle.chat("Who was Ada Lovelace?", response_format=Person)
    assert answer.parsed == ADA
    bodies = sent(aimock, test_id)
    assert len(bodies) == 2
    assert bodies[0]["response_format"]["type"] == "json_schema"
    assert "response_format" not in bodies[1]
    assert "JSON Schema" in bodies[1]["messages"][0]["content"]
    assert any("ignored response_format json_schema" in note for note in answer.adjustments)
    # learned for this endpoint: the next call needs one request
    assert handle.parse("Who was Ada Lovelace?", Person) == ADA
    assert len(sent(aimock, test_id)) == 3


def test_json_object_mode_works_because_the_schema_is_in_the_prompt(connect, aimock, test_id):
    assert connect("mock-structured").parse("Ada?", Person, mode="json_object") == ADA
    (body,) = sent(aimock, test_id)
    assert body["response_format"] == {"type": "json_object"}


def test_tools_mode_takes_the_forced_call(connect, aimock, test_id):
    assert connect("mock-structured-tools").parse("Ada?", Person, mode="tools") == ADA
    (body,) = sent(aimock, test_id)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "final_result"}}


def test_streamed_partials_then_the_object(connect):
    handle = connect("mock-structured")
    response = handle.stream("Ada?", response_format=Person, mode="prompt")
    partials = [event.value for event in handle.events if event.type == "partial"]
    assert partials == [{"name": "Ada Lovelace"}, {"name": "Ada Lovelace", "age": 36}]
    assert handle.events[-1].type == "parsed" and response.parsed == ADA


def test_a_forced_native_mode_on_a_server_that_ignores_it_fails_typed(connect, aimock, test_id):
    with pytest.raises(StructuredOutputError) as caught:
        connect("mock-structured").parse("Ada?", Person, mode="json_schema", max_retries=1)
    assert [a.raw for a in caught.value.attempts] == ["Ada Lovelace was 36 years old."] * 2
    assert len(sent(aimock, test_id)) == 2


def test_after_doctor_the_first_request_already_carries_the_schema(aimock, test_id, write_config, driver):
    _require_fixtures(aimock)
    config = write_config(aimock_config(aimock, test_id, "mock-structured"))
    diagnose(config=config, provider="compatible")
    saved = load_profile("compatible", aimock.base_url, "mock-structured")
    assert saved is not None
    assert (saved.supports_json_schema, saved.honours_json_schema, saved.honours_json_object,
            saved.supports_tools, saved.calls_tools) == (True, False, False, True, False)
    probes = len(sent(aimock, test_id))
    answer = driver.client(config).chat("Who was Ada Lovelace?", response_format=Person)
    assert answer.parsed == ADA
    assert len(sent(aimock, test_id)) == probes + 1  # no wasted json_schema request
    assert answer.adjustments[0] == ("structured output: prompt mode, from the capability profile "
                                     "(response_format rejected or ignored)")
