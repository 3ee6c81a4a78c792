"""The pure half of structured output (human/structured/spec.py, modes.py, session.py):
the schema derived and sent for each supported type, the wrapping of non-object roots, the
check of answers with paths, the mode choice per endpoint, and which 400s step down."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Literal, TypedDict

import jsonschema
import pytest

from human.core.typeschema import Mismatch
from human.errors import BadRequestError, ContextLengthError, ServerError
from human.profile import Profile
from human.structured import modes
from human.structured.session import Session, total_usage
from human.structured.spec import output_spec
from human.types import ChatResponse, Usage
from tests.fakes.quirky_model import closed

pydantic = pytest.importorskip("pydantic")


@dataclasses.dataclass
class Address:
    city: str
    zip: str | None = None


@dataclasses.dataclass
class Person:
    """Someone."""

    name: str
    age: int
    address: Address
    tags: list[str] = dataclasses.field(default_factory=list)


class Movie(TypedDict):
    title: str
    year: int


class Pet(pydantic.BaseModel):
    species: Literal["cat", "dog"]


class Owner(pydantic.BaseModel):
    name: str
    pets: list[Pet] = []


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


SCHEMA_DICT = {"title": "Point 2D", "type": "object", "properties": {"x": {"type": "number"}},
               "required": ["x"]}

SAMPLES: list[tuple[Any, str, str | None, Any, Any]] = [
    # (type, name, wrap, an answer as sent, the result)
    (Person, "Person", None, {"name": "Ada", "age": 36, "address": {"city": "London"}},
     Person("Ada", 36, Address("London"))),
    (Movie, "Movie", None, {"title": "Heat", "year": 1995}, {"title": "Heat", "year": 1995}),
    (Owner, "Owner", None, {"name": "Ada", "pets": [{"species": "cat"}]},
     Owner(name="Ada", pets=[Pet(species="cat")])),
    (list[Owner], "Owner_list", "items", {"items": [{"name": "Ada"}]}, [Owner(name="Ada")]),
    (list[Address], "Address_list", "items", {"items": [{"city": "Oslo"}]}, [Address("Oslo")]),
    (Mood, "Mood", "value", {"value": "sad"}, Mood.SAD),
    (int, "int", "value", {"value": 7}, 7),
    (dict[str, int], "dict", None, {"a": 1}, {"a": 1}),
    (SCHEMA_DICT, "Point_2D", None, {"x": 1.5}, {"x": 1.5}),
]


@pytest.mark.parametrize(("tp", "name", "wrap", "answer", "result"), SAMPLES, ids=[s[1] for s in SAMPLES])
def test_schema_sent_for_each_type_is_valid_and_fits_its_answers(tp, name, wrap, answer, result):
    spec = output_spec(tp)
    assert (spec.name, spec.wrap) == (name, wrap)
    assert spec.schema["type"] == "object"  # servers want an object at the root
    jsonschema.Draft202012Validator.check_schema(spec.schema)
    jsonschema.validate(answer, spec.schema)  # every $ref resolves from the root
    if spec.strict_ok:
        jsonschema.Draft202012Validator.check_schema(spec.strict_schema)
        assert closed(spec.strict_schema)
    assert spec.convert(answer) == result


def test_a_wrapped_list_also_takes_a_bare_array_and_reports_paths_as_sent():
    spec = output_spec(list[Address])
    assert spec.convert([{"city": "Oslo"}]) == [Address("Oslo")]
    with pytest.raises(Mismatch) as caught:
        spec.convert({"items": [{"city": 1}]})
    assert caught.value.errors == ["$.items[0].city: expected a string, got integer"]
    with pytest.raises(Mismatch, match="single field 'items'"):
        spec.convert({"people": []})


def test_json_schema_dict_problems_carry_paths():
    spec = output_spec({"type": "object", "properties": {"p": {"type": "array", "items": {"type": "integer"}}},
                        "required": ["p"], "additionalProperties": False})
    with pytest.raises(Mismatch) as caught:
        spec.convert({"p": [1, "2"], "q": 0})
    assert caught.value.errors == ["$.p[1]: expected integer, found string '2'", "$.q: unknown key 'q'"]


def test_nulls_for_optional_fields_are_dropped_where_null_is_not_allowed():
    spec = output_spec(Person)
    strict_answer = {"name": "Ada", "age": 36, "address": {"city": "Oslo", "zip": None}, "tags": None}
    assert spec.convert(strict_answer) == Person("Ada", 36, Address("Oslo", None), [])
    with pytest.raises(Mismatch, match=r"\$.age: expected an integer, got null"):
        spec.convert({**strict_answer, "age": None})  # required: the null stays and is reported
    assert output_spec(Owner).convert({"name": "Ada", "pets": None}) == Owner(name="Ada")


def test_free_keyed_objects_cannot_be_strict():
    assert not output_spec(dict[str, int]).strict_ok
    assert output_spec(Person).strict_ok


# ---- choosing a mode -------------------------------------------------------------------------


def profile(**fields: Any) -> Profile:
    return Profile(provider="p", base_url="http://x", model="m", probed_at="now", **fields)


@pytest.mark.parametrize(("forced", "learned", "prof", "hint", "mode"), [
    (None, None, None, None, "json_schema"),
    ("auto", None, None, "json_object", "json_object"),
    ("prompt", "tools", profile(supports_json_schema=True), "json_schema_strict", "prompt"),
    (None, "json_object", profile(supports_json_schema=True), None, "json_object"),
    (None, None, profile(supports_json_schema=True), None, "json_schema_strict"),
    (None, None, profile(supports_json_schema=True, honours_json_schema=False, supports_json_object=True),
     None, "json_object"),
    (None, None, profile(supports_json_schema=False, supports_json_object=False, supports_tools=True,
                         calls_tools=True), "json_schema", "tools"),
    (None, None, profile(supports_json_schema=False, supports_json_object=False, supports_tools=True,
                         calls_tools=False), None, "prompt"),
    (None, None, profile(supports_json_schema=False, supports_json_object=False), None, "prompt"),
    (None, None, profile(supports_tools=True), "json_schema_strict", "json_schema_strict"),  # no JSON probe
])
def test_mode_choice_order(forced, learned, prof, hint, mode):
    assert modes.choose(forced, learned, prof, hint, output_spec(Person))[0] == mode


def test_strict_falls_back_to_plain_json_schema_for_a_free_keyed_object():
    assert modes.choose("json_schema_strict", None, None, None, output_spec(dict[str, int]))[0] == "json_schema"


@pytest.mark.parametrize(("error", "mode", "steps"), [
    (BadRequestError("'response_format.type' must be 'json_schema'"), "json_object", True),
    (BadRequestError("bad", param="response_format"), "json_schema", True),
    (BadRequestError("Invalid schema for response_format 'x'"), "json_schema_strict", True),
    (BadRequestError("tool_choice is not supported"), "tools", True),
    (BadRequestError("messages: too many"), "json_schema", False),
    (ContextLengthError("response_format and a prompt too long"), "json_schema", False),
    (ServerError("response_format broke us"), "json_schema", False),
    (BadRequestError("response_format"), "prompt", False),
])
def test_which_errors_step_down(error, mode, steps):
    assert modes.is_rejection(error, mode) is steps


def test_the_ladder():
    assert [modes.step_down(m) for m in modes.MODES] == ["json_schema", "json_object", "prompt", None, "prompt"]


# ---- the session, without a server ------------------------------------------------------------


def answer(content: str, total: int = 10, finish: str = "stop") -> ChatResponse:
    return ChatResponse(content, usage=Usage(total - 2, 2, total), finish_reason=finish)


def test_session_totals_usage_and_keeps_every_attempt():
    session = Session(output_spec(Movie), "film", {}, "prompt", "test", max_retries=2)
    assert session.answered(answer("nope", 10)).messages[-1]["role"] == "user"  # type: ignore[union-attr]
    final = session.answered(answer('{"title": "Heat", "year": 1995}', 20))
    assert isinstance(final, ChatResponse) and final.parsed == {"title": "Heat", "year": 1995}
    assert final.usage == Usage(26, 4, 30)
    assert [a.raw for a in session.attempts] == ["nope", '{"title": "Heat", "year": 1995}']


def test_total_usage_keeps_unknown_fields_unknown():
    assert total_usage([None, None]) is None
    assert total_usage([Usage(1, 2, 3), None, Usage(1, None, 1, cached_tokens=4)]) == Usage(2, 2, 4, 4, None)


def test_session_arguments_are_checked():
    with pytest.raises(ValueError, match="token_budget"):
        Session(output_spec(Movie), "x", {}, "prompt", "test", token_budget=0)
    with pytest.raises(ValueError, match="max_retries"):
        Session(output_spec(Movie), "x", {}, "prompt", "test", max_retries=True)  # type: ignore[arg-type]
