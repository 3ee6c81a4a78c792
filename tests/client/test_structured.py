"""Structured output through both clients against the fake server, made to honour, ignore
or reject each way of asking for JSON (tests/fakes/quirky_model.py): each type that
`response_format` takes, the mode ladder, the choice of a mode per endpoint, and what the
answer reports about it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypedDict

import pytest

import human
from human.errors import BadRequestError
from human.profile import Profile, save_profile
from tests.fakes.quirky_model import ADA, QuirkyModel, completion


@dataclasses.dataclass
class Person:
    name: str
    age: int
    tags: list[str] = dataclasses.field(default_factory=list)


class Movie(TypedDict):
    title: str
    year: int


def server(fake: Any, **quirks: Any) -> QuirkyModel:
    model = QuirkyModel(**quirks)
    fake.respond(model).as_default()
    return model


def sent_format(request: Any) -> Any:
    return (request.json.get("response_format") or {}).get("type")


# ---- each type response_format takes ------------------------------------------------------


def test_dataclass_in_json_schema_mode_by_default(driver, fake, config_for):
    server(fake)
    answer = driver.client(config_for()).chat("Ada is 36", response_format=Person)
    assert answer.parsed == Person("Ada", 36)
    assert answer.content == json.dumps(ADA)
    sent = fake.last.json["response_format"]
    assert sent["type"] == "json_schema" and "strict" not in sent["json_schema"]
    assert sent["json_schema"]["name"] == "Person"
    assert sent["json_schema"]["schema"]["required"] == ["name", "age"]
    assert fake.last.json["messages"] == [{"role": "user", "content": "Ada is 36"}]  # no prompt added
    assert answer.adjustments == ("structured output: json_schema mode, the default (no capability profile; "
                                  "`human doctor` measures one)",)


def test_parse_with_a_pydantic_model(driver, fake, config_for):
    pydantic = pytest.importorskip("pydantic")

    class Author(pydantic.BaseModel):
        name: str
        age: int

    server(fake)
    author = driver.client(config_for()).parse("Ada is 36", Author)
    assert isinstance(author, Author) and (author.name, author.age) == ("Ada", 36)
    assert fake.last.json["response_format"]["json_schema"]["name"] == "Author"


def test_typeddict_list_and_json_schema_dict(driver, fake, config_for):
    handle = driver.client(config_for())
    server(fake, answer={"title": "Heat", "year": 1995})
    assert handle.parse("a film", Movie) == {"title": "Heat", "year": 1995}

    fake.reset()
    server(fake, answer={"items": [ADA, {"name": "Alan", "age": 41}]})
    people = handle.parse("two people", list[Person])
    assert people == [Person("Ada", 36), Person("Alan", 41)]
    schema = fake.last.json["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["items"] and schema["properties"]["items"]["type"] == "array"

    fake.reset()
    server(fake)
    as_dict = handle.parse("Ada", {"type": "object", "properties": {"name": {"type": "string"},
                                                                   "age": {"type": "integer", "minimum": 0}},
                                   "required": ["name", "age"]})
    assert as_dict == ADA


def test_the_wire_forms_keep_todays_behaviour(driver, fake, config_for):
    fake.completion('{"a": 1}')
    answer = driver.client(config_for()).chat("x", response_format="json_object")
    assert fake.last.json["response_format"] == {"type": "json_object"}
    assert answer.parsed is None and answer.adjustments == ()


def test_a_type_with_no_json_form_is_a_type_error(driver, fake, config_for):
    with pytest.raises(TypeError, match="complex has no JSON Schema form"):
        driver.client(config_for()).chat("x", response_format=complex)
    assert fake.requests == []


def test_bad_structured_options_are_refused_before_sending(driver, fake, config_for):
    handle = driver.client(config_for())
    with pytest.raises(ValueError, match="mode must be"):
        handle.chat("x", response_format=Person, mode="xml")
    with pytest.raises(ValueError, match="max_retries"):
        handle.chat("x", response_format=Person, max_retries=-1)
    with pytest.raises(TypeError, match="mode"):
        handle.chat("x", mode="json_object")  # only with response_format=<type>
    assert fake.requests == []


# ---- the ladder --------------------------------------------------------------------------------


def test_strict_mode_sends_a_closed_schema_and_drops_nulls_of_optional_fields(driver, fake, config_for):
    model = server(fake, answer={"name": "Ada", "age": 36, "tags": None})  # strict: optional -> nullable
    answer = driver.client(config_for({"structured_output": "json_schema_strict"})).chat("x", response_format=Person)
    assert answer.parsed == Person("Ada", 36, [])
    sent = fake.last.json["response_format"]["json_schema"]
    assert sent["strict"] is True
    assert sent["schema"]["required"] == ["name", "age", "tags"]
    assert sent["schema"]["properties"]["tags"]["type"] == ["array", "null"]
    assert model.seen == ["honoured json_schema"]  # accepted at once: the schema was made strict
    assert "json_schema (strict) mode, from the provider's structured_output setting" in answer.adjustments[0]


def test_strict_is_not_used_for_a_free_keyed_object(driver, fake, config_for):
    server(fake, answer={"a": 1})
    parsed = driver.client(config_for({"structured_output": "json_schema_strict"})).parse("x", dict[str, int])
    assert parsed == {"a": 1}
    assert "strict" not in fake.last.json["response_format"]["json_schema"]


def test_400_naming_response_format_steps_down_and_is_remembered(driver, fake, config_for):
    model = server(fake, rejects={"json_schema", "json_object"})
    handle = driver.client(config_for())
    answer = handle.chat("Ada", response_format=Person)
    assert answer.parsed == Person("Ada", 36)
    assert model.seen == ["rejected json_schema", "rejected json_object", "prompted"]
    assert [sent_format(r) for r in fake.requests] == ["json_schema", "json_object", None]
    assert "JSON Schema: " in fake.last.json["messages"][0]["content"]
    assert answer.adjustments[1].startswith("structured output: stepped down from json_schema to json_object: "
                                            "the endpoint rejected it (")
    assert answer.adjustments[2].startswith("structured output: stepped down from json_object to prompt")
    # the next call on this client goes straight to the mode that worked
    assert handle.parse("Ada", Person) == Person("Ada", 36)
    assert model.seen[-1] == "prompted" and len(fake.requests) == 4
    again = handle.chat("Ada", response_format=Person)
    assert "learned from an earlier answer of this endpoint" in again.adjustments[0]


def test_lm_studio_rejects_json_object_but_json_schema_works_first_time(driver, fake, config_for):
    model = server(fake, rejects={"json_object"})
    assert driver.client(config_for()).parse("Ada", Person) == Person("Ada", 36)
    assert model.seen == ["honoured json_schema"]


def test_a_forced_mode_is_kept_even_when_rejected(driver, fake, config_for):
    server(fake, rejects={"json_object"})
    with pytest.raises(BadRequestError, match="response_format"):
        driver.client(config_for()).parse("Ada", Person, mode="json_object")
    assert len(fake.requests) == 1


def test_a_server_that_ignores_response_format_gets_the_schema_in_the_prompt(driver, fake, config_for):
    model = server(fake, ignores={"json_schema", "json_object"},
                   dress=lambda text: f"Here you go:\n```json\n{text}\n```\nAnything else?")
    handle = driver.client(config_for())
    answer = handle.chat("Ada", response_format=Person)
    assert answer.parsed == Person("Ada", 36)
    assert model.seen == ["prose", "prompted"]
    assert answer.adjustments[1] == ("structured output: the endpoint ignored response_format json_schema (the "
                                     "answer held no JSON); asked again with the schema in the prompt")
    retry = fake.last.json["messages"]
    assert retry[-2] == {"role": "assistant", "content": "Ada Lovelace was 36 years old."}
    assert "no JSON object was found in the answer" in retry[-1]["content"]
    assert handle.parse("Ada", Person) == Person("Ada", 36)  # learned: one request this time
    assert model.seen[-1] == "prompted" and len(fake.requests) == 3


def test_json_object_mode_puts_the_schema_in_an_existing_system_message(driver, fake, config_for):
    server(fake)
    answer = driver.client(config_for()).chat([human.system("Be exact."), human.user("Ada")],
                                              response_format=Person, mode="json_object")
    assert answer.parsed == Person("Ada", 36)
    messages = fake.last.json["messages"]
    assert len(messages) == 2 and messages[0]["role"] == "system"
    assert messages[0]["content"].startswith("Be exact.\n\nAnswer with one JSON object that matches this JSON Schema")
    assert fake.last.json["response_format"] == {"type": "json_object"}
    assert answer.adjustments[0] == "structured output: json_object mode, chosen with mode="


def test_tools_mode_forces_one_call_whose_arguments_are_the_object(driver, fake, config_for):
    model = server(fake)
    answer = driver.client(config_for()).chat("Ada", response_format=Person, mode="tools")
    assert answer.parsed == Person("Ada", 36)
    assert model.seen == ["tool call"]
    body = fake.last.json
    assert "response_format" not in body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "final_result"}}
    assert body["tools"][0]["function"]["parameters"]["properties"]["age"] == {"type": "integer"}


def test_tools_mode_refuses_the_callers_own_tools(driver, fake, config_for):
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(TypeError, match="tools"):
        driver.client(config_for()).parse("x", Person, mode="tools", tools=[tool])


# ---- the mode comes from the capability profile ------------------------------------------------


def profile(**fields: Any) -> None:
    save_profile(Profile(provider="local", base_url=fields.pop("base_url"), model="test-model",
                         probed_at="2026-12-04T00:00:00+00:00", **fields))


@pytest.fixture
def state(monkeypatch, tmp_path):
    monkeypatch.setenv("HU_STATE_DIR", str(tmp_path / "state"))


def test_profile_with_json_schema_accepted_means_strict(driver, fake, config_for, state):
    profile(base_url=fake.url_v1, supports_json_schema=True, supports_json_object=True)
    server(fake)
    answer = driver.client(config_for()).chat("Ada", response_format=Person)
    assert fake.last.json["response_format"]["json_schema"]["strict"] is True
    assert "json_schema (strict) mode, from the capability profile" in answer.adjustments[0]


def test_profile_json_schema_ignored_json_object_honoured(driver, fake, config_for, state):
    profile(base_url=fake.url_v1, supports_json_schema=True, honours_json_schema=False,
            supports_json_object=True, honours_json_object=True)
    server(fake)
    answer = driver.client(config_for()).chat("Ada", response_format=Person)
    assert sent_format(fake.last) == "json_object" and answer.parsed == Person("Ada", 36)


def test_profile_without_json_modes_but_with_tools_uses_a_tool_call(driver, fake, config_for, state):
    profile(base_url=fake.url_v1, supports_json_schema=False, supports_json_object=False, supports_tools=True,
            calls_tools=True)
    model = server(fake)
    assert driver.client(config_for()).parse("Ada", Person) == Person("Ada", 36)
    assert model.seen == ["tool call"]


def test_tools_accepted_but_never_called_is_not_a_mode(driver, fake, config_for, state):
    profile(base_url=fake.url_v1, supports_json_schema=False, supports_json_object=False, supports_tools=True,
            calls_tools=False)
    model = server(fake)
    assert driver.client(config_for()).parse("Ada", Person) == Person("Ada", 36)
    assert model.seen == ["prompted"]


def test_a_forced_tool_call_answered_with_prose_falls_back_to_the_prompt(driver, fake, config_for):
    fake.completion("Ada Lovelace, 36.")  # the server ignored tool_choice
    fake.completion(json.dumps(ADA))
    answer = driver.client(config_for({"structured_output": "tools"})).chat("Ada", response_format=Person)
    assert answer.parsed == Person("Ada", 36)
    assert "the endpoint ignored the forced tool call" in answer.adjustments[1]
    assert "tools" not in fake.last.json and "JSON Schema" in fake.last.json["messages"][0]["content"]


def test_profile_without_anything_prompts(driver, fake, config_for, state):
    profile(base_url=fake.url_v1, supports_json_schema=False, supports_json_object=False, supports_tools=False)
    model = server(fake, dress=lambda text: f"<think>They want {{name, age}}.</think>{text}")
    assert driver.client(config_for()).parse("Ada", Person) == Person("Ada", 36)
    assert model.seen == ["prompted"]


def test_profiles_off_ignores_the_profile(driver, fake, config_for, state):
    profile(base_url=fake.url_v1, supports_json_schema=False, supports_json_object=False, supports_tools=True,
            calls_tools=True)
    server(fake)
    driver.client(config_for(), profiles=False).parse("Ada", Person)
    assert sent_format(fake.last) == "json_schema"


# ---- what dry_run shows ----------------------------------------------------------------------


def test_dry_run_shows_the_first_structured_request(driver, fake, config_for):
    shown = driver.client(config_for()).dry_run("Ada", response_format=Person, mode="prompt")
    assert "response_format" not in shown["body"]
    assert "JSON Schema" in shown["body"]["messages"][0]["content"]
    assert shown["adjustments"] == ["structured output: prompt mode, chosen with mode="]
    assert fake.requests == []


def test_reasoning_split_off_by_the_server_and_a_think_block_left_in_content(driver, fake, config_for):
    handle = driver.client(config_for())
    fake.completion(f'<think>Fields {{"name"}} and {{age}}...</think>\n{json.dumps(ADA)}')
    assert handle.parse("Ada", Person) == Person("Ada", 36)
    fake.completion(f'Answer: <think>maybe {{"name": 1}}</think> {json.dumps(ADA)}')
    assert handle.parse("Ada", Person) == Person("Ada", 36)
    fake.reply(json=completion(json.dumps(ADA)) | {"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": json.dumps(ADA), "reasoning_content": "think {x}"}}]})
    assert handle.parse("Ada", Person) == Person("Ada", 36)


# ---- the quirk matrix (wave2.md F.1): a validated object or a typed error, within bounds ------


SCENARIOS = {
    "honours everything": dict(),
    "ignores response_format": dict(ignores={"json_schema", "json_object"}),
    "rejects json_object": dict(rejects={"json_object"}),
    "fenced JSON when prompted": dict(ignores={"json_schema"}, dress=lambda t: f"```json\n{t}\n```"),
    "<think> with braces first": dict(ignores={"json_schema"},
                                      dress=lambda t: f"<think>is it {{name}} or {{\"x\": 1}}?</think>{t}"),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("max_retries", [1, 2])
@pytest.mark.parametrize("strict", [False, True])
def test_every_quirk_ends_in_an_object_within_max_retries_plus_one_requests(driver, fake, config_for, scenario,
                                                                           max_retries, strict):
    server(fake, **SCENARIOS[scenario])
    entry = {"structured_output": "json_schema_strict"} if strict else {}
    assert driver.client(config_for(entry)).parse("Ada", Person, max_retries=max_retries) == Person("Ada", 36)
    assert len(fake.requests) <= max_retries + 1
