"""Python types as JSON Schema and back (core/typeschema.py, core/functions.py): the schema
for each supported type, the conversion of JSON values, every error reported with its
path, and functions described as tools from their signatures and docstrings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from typing import Annotated, Any, Literal, Optional, TypedDict, Union

import jsonschema
import pytest

from human.core.functions import function_spec
from human.core.typeschema import Mismatch, shape_of, strict_schema

try:
    from typing import NotRequired
except ImportError:  # Python 3.10
    from typing_extensions import NotRequired


class Colour(enum.Enum):
    """A primary colour."""

    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Address:
    """Where someone lives."""

    city: str
    zip: str | None = None


@dataclasses.dataclass
class Person:
    name: str
    age: int
    address: Address
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node]


class Movie(TypedDict):
    title: str
    year: int
    rating: NotRequired[float]


def check(tp: Any, value: Any) -> Any:
    """Convert, and check the value against the generated schema with the real validator."""
    shape = shape_of(tp)
    jsonschema.Draft202012Validator.check_schema(shape.schema)
    jsonschema.validate(value, shape.schema)
    return shape.convert(value)


def errors(tp: Any, value: Any) -> list[str]:
    with pytest.raises(Mismatch) as caught:
        shape_of(tp).convert(value)
    return caught.value.errors


# ---- schemas and conversion per type ----------------------------------------------------


@pytest.mark.parametrize(("tp", "schema"), [
    (str, {"type": "string"}),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (type(None), {"type": "null"}),
    (Any, {}),
    (list[int], {"type": "array", "items": {"type": "integer"}}),
    (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
    (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
    (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
    (Optional[int], {"type": ["integer", "null"]}),
    (Union[int, str], {"type": ["integer", "string"]}),
    (int | None, {"type": ["integer", "null"]}),
    (tuple[int, str], {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}],
                       "minItems": 2, "maxItems": 2}),
    (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
    (dt.date, {"type": "string", "format": "date"}),
])
def test_schema_per_type(tp: Any, schema: dict[str, Any]) -> None:
    assert shape_of(tp).schema == schema
    jsonschema.Draft202012Validator.check_schema(schema)


def test_scalars_convert_strictly_but_accept_harmless_number_forms() -> None:
    assert check(int, 3) == 3
    assert check(int, 3.0) == 3 and isinstance(shape_of(int).convert(3.0), int)
    assert check(float, 2) == 2.0 and isinstance(shape_of(float).convert(2), float)
    assert errors(int, True) == ["$: expected an integer, got boolean"]
    assert errors(int, 2.5) == ["$: expected an integer, got 2.5"]
    assert errors(int, "3") == ["$: expected an integer, got string"]
    assert errors(float, "1.5") == ["$: expected a number, got string"]
    assert errors(str, 1) == ["$: expected a string, got integer"]
    assert errors(bool, 0) == ["$: expected a boolean, got integer"]


def test_enum_converts_to_members_and_keeps_its_docstring() -> None:
    shape = shape_of(Colour)
    assert shape.schema == {"type": "string", "enum": ["red", "blue"], "description": "A primary colour."}
    assert shape.convert("blue") is Colour.BLUE
    assert errors(Colour, "green") == ["$: expected one of ['red', 'blue'], got 'green'"]
    assert shape_of(Level).convert(2) is Level.HIGH
    assert errors(Level, True)  # a bool is not the integer 1


def test_literal_does_not_confuse_true_with_one() -> None:
    assert check(Literal[1, 2], 1) == 1
    assert errors(Literal[1, 2], True)


def test_dataclass_nested_with_defaults() -> None:
    shape = shape_of(Person)
    schema = shape.schema
    assert schema["required"] == ["name", "age", "address"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["address"]["description"] == "Where someone lives."
    value = {"name": "Ada", "age": 36, "address": {"city": "London"}}
    person = check(Person, value)
    assert person == Person("Ada", 36, Address("London"), [])


def test_every_problem_is_reported_with_its_path_at_once() -> None:
    problems = errors(Person, {"name": 1, "address": {"city": 2, "country": "UK"}, "tags": ["a", 3]})
    assert problems == [
        "$.age: required field is missing",
        "$.name: expected a string, got integer",
        "$.address.city: expected a string, got integer",
        "$.address.country: unexpected field (allowed: city, zip)",
        "$.tags[1]: expected a string, got integer",
    ]


def test_typeddict_required_and_not_required_keys() -> None:
    schema = shape_of(Movie).schema
    assert schema["required"] == ["title", "year"]
    assert check(Movie, {"title": "Heat", "year": 1995}) == {"title": "Heat", "year": 1995}
    assert check(Movie, {"title": "Heat", "year": 1995, "rating": 8}) == {"title": "Heat", "year": 1995,
                                                                          "rating": 8.0}
    assert errors(Movie, {"title": "Heat"}) == ["$.year: required field is missing"]


def test_list_of_dataclasses_and_dict_values() -> None:
    assert check(list[Address], [{"city": "Oslo"}, {"city": "Rome", "zip": "00100"}]) == [
        Address("Oslo"), Address("Rome", "00100")]
    assert check(dict[str, Colour], {"sky": "blue"}) == {"sky": Colour.BLUE}
    assert errors(dict[str, int], {"a": "x"}) == ["$.a: expected an integer, got string"]
    assert errors(dict[str, int], {"two words": "x"}) == ["$['two words']: expected an integer, got string"]


def test_union_tries_each_alternative_in_order() -> None:
    assert check(Union[int, str], "7") == "7"
    assert check(Optional[Address], None) is None
    assert check(Optional[Address], {"city": "Bonn"}) == Address("Bonn")
    (problem,) = errors(Union[int, Address], "x")
    assert problem.startswith("$: fits none of the allowed types")


def test_annotated_string_is_the_description() -> None:
    assert shape_of(Annotated[int, "how many"]).schema == {"type": "integer", "description": "how many"}


def test_times_parse_from_iso_strings() -> None:
    assert check(dt.datetime, "2026-12-04T10:00:00Z") == dt.datetime(2026, 12, 4, 10, tzinfo=dt.timezone.utc)
    assert check(dt.date, "2026-12-04") == dt.date(2026, 12, 4)
    assert errors(dt.date, "tomorrow") == ["$: 'tomorrow' is not an ISO date"]


def test_unsupported_and_recursive_types_raise_type_error_naming_them() -> None:
    with pytest.raises(TypeError, match="complex has no JSON Schema form"):
        shape_of(complex)
    with pytest.raises(TypeError, match="dict\\[str, ...\\]"):
        shape_of(dict[int, str])
    with pytest.raises(TypeError, match="refers to itself"):
        shape_of(Node)


def test_pydantic_models_are_asked_for_schema_and_validation() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Item(pydantic.BaseModel):
        name: str
        price: float

    shape = shape_of(Item)
    assert shape.schema["properties"]["price"]["type"] == "number"
    assert shape.convert({"name": "pen", "price": 2}) == Item(name="pen", price=2.0)
    problems = errors(Item, {"name": 5})
    assert any(p.startswith("$.price:") for p in problems) and any(p.startswith("$.name:") for p in problems)
    assert check(list[Item], [{"name": "a", "price": 1}])[0].name == "a"


def test_the_shape_of_a_type_is_compiled_once() -> None:
    assert shape_of(list[Address]) is shape_of(list[Address])


# ---- strict schemas ----------------------------------------------------------------------


def test_strict_schema_closes_objects_and_turns_optional_into_nullable() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"},
                                               "c": {"type": "object", "properties": {"d": {"enum": [1, 2]}}}},
              "required": ["a"]}
    strict = strict_schema(schema)
    assert strict["required"] == ["a", "b", "c"]
    assert strict["additionalProperties"] is False
    assert strict["properties"]["b"] == {"type": ["integer", "null"]}
    assert strict["properties"]["c"]["properties"]["d"] == {"anyOf": [{"enum": [1, 2]}, {"type": "null"}]}
    assert strict["properties"]["c"]["additionalProperties"] is False
    assert schema["required"] == ["a"]  # the input is not changed
    jsonschema.Draft202012Validator.check_schema(strict)
    jsonschema.validate({"a": "x", "b": None, "c": {"d": None}}, strict)


# ---- functions as tools ------------------------------------------------------------------


def get_weather(city: str, unit: Literal["C", "F"] = "C", days: int = 1) -> str:
    """Get the weather forecast for a city.

    Args:
        city: The city, e.g. "Oslo".
        unit: Celsius or Fahrenheit.
        days (int): How many days ahead,
            counting today.
    """
    return f"{city} {unit} {days}"


def sphinx_style(query: str, limit: Annotated[int, "at most this many"] = 5) -> list[str]:
    """Search the notes.

    :param query: words to look for
    :param limit: ignored, Annotated wins
    :returns: the matches
    """
    return []


def numpy_style(x: float, y: float) -> float:
    """Add two numbers.

    Parameters
    ----------
    x : float
        The first.
    y : float
        The second.

    Returns
    -------
    float
    """
    return x + y


def test_function_spec_from_google_docstring() -> None:
    spec = function_spec(get_weather)
    assert spec.name == "get_weather"
    assert spec.description == "Get the weather forecast for a city."
    assert spec.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": 'The city, e.g. "Oslo".'},
            "unit": {"type": "string", "enum": ["C", "F"], "description": "Celsius or Fahrenheit."},
            "days": {"type": "integer", "description": "How many days ahead, counting today."},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    jsonschema.Draft202012Validator.check_schema(spec.parameters)
    assert spec.arguments({"city": "Oslo", "days": 3.0}) == {"city": "Oslo", "days": 3}
    assert get_weather(**spec.arguments({"city": "Oslo"})) == "Oslo C 1"


def test_function_spec_from_sphinx_and_numpy_docstrings() -> None:
    spec = function_spec(sphinx_style)
    assert spec.description == "Search the notes."
    assert spec.parameters["properties"]["query"]["description"] == "words to look for"
    assert spec.parameters["properties"]["limit"]["description"] == "at most this many"
    numpy = function_spec(numpy_style)
    assert numpy.description == "Add two numbers."
    assert numpy.parameters["properties"]["x"] == {"type": "number", "description": "The first."}
    assert numpy.parameters["properties"]["y"] == {"type": "number", "description": "The second."}


def test_function_arguments_report_every_problem() -> None:
    spec = function_spec(get_weather)
    with pytest.raises(Mismatch) as caught:
        spec.arguments({"unit": "K", "extra": 1})
    assert caught.value.errors == [
        "$.city: required field is missing",
        "$.unit: expected one of ['C', 'F'], got 'K'",
        "$.extra: unexpected field (allowed: city, unit, days)",
    ]


def test_function_spec_refuses_what_a_model_cannot_call() -> None:
    def star(*args: int) -> None: ...
    def positional(a: int, /) -> None: ...

    with pytest.raises(TypeError, match="\\*args"):
        function_spec(star)
    with pytest.raises(TypeError, match="positional-only"):
        function_spec(positional)
    with pytest.raises(TypeError, match="tool name"):
        function_spec(get_weather, name="get weather")


def test_untyped_parameters_take_any_json_and_names_can_be_overridden() -> None:
    def echo(value):  # type: ignore[no-untyped-def]
        return value

    spec = function_spec(echo, name="echo_it", description="Echo.")
    assert (spec.name, spec.description) == ("echo_it", "Echo.")
    assert spec.parameters["properties"] == {"value": {}}
    assert spec.arguments({"value": [1, {"a": None}]}) == {"value": [1, {"a": None}]}
    json.dumps(spec.parameters)  # serialisable as sent


def test_nested_pydantic_definitions_move_to_the_root_so_refs_resolve() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Pet(pydantic.BaseModel):
        species: str

    class Owner(pydantic.BaseModel):
        pets: list[Pet]

    for schema in (shape_of(list[Owner]).schema, function_spec(adopt_factory(Owner)).parameters):
        assert "Pet" in schema["$defs"]
        assert '"$defs":' not in json.dumps({k: v for k, v in schema.items() if k != "$defs"})
        jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate([{"pets": [{"species": "cat"}]}], shape_of(list[Owner]).schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"pets": [{"species": 1}]}], shape_of(list[Owner]).schema)


def adopt_factory(owner_type: Any) -> Any:
    """A function whose parameter is typed with a class made inside a test."""

    def adopt(owner, note=""):  # type: ignore[no-untyped-def]
        """Adopt."""

    adopt.__annotations__ = {"owner": owner_type, "note": str, "return": None}
    return adopt


def test_strict_schema_leaves_a_free_keyed_object_open_and_drops_null_defaults() -> None:
    from human.core.typeschema import can_be_strict

    mapping = shape_of(dict[str, int]).schema
    assert strict_schema(mapping) == mapping and not can_be_strict(mapping)
    assert strict_schema({"type": "string", "default": None}) == {"type": "string"}
    assert can_be_strict(shape_of(Person).schema)
