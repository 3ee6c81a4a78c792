"""The small JSON Schema validator (core/schema.py) on the keywords structured output
needs: it must agree with the real `jsonschema` package on every case below, and say where
each problem is."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from human.core.schema import validate

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 10, "pattern": "^[A-Z]"},
        "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
        "kind": {"const": "person"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "uniqueItems": True},
        "pet": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Pet"}]},
        "point": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}], "items": False},
        "id": {"oneOf": [{"type": "integer"}, {"type": "string", "format": "uuid"}]},
        "both": {"allOf": [{"type": "number", "minimum": 1}, {"maximum": 2}]},
        "level": {"enum": [1, 2, "max"]},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
    "$defs": {"Pet": {"type": "object", "properties": {"species": {"enum": ["cat", "dog"]}},
                      "required": ["species"], "additionalProperties": False}},
}

GOOD = {"name": "Ada", "age": 36, "kind": "person", "tags": ["a", "b"], "pet": {"species": "cat"},
        "point": [1, 2.5], "id": "x-1", "both": 1.5, "level": "max"}


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("valid", GOOD, ""),
    ("minimal", {"name": "Ada", "age": 0}, ""),
    ("null pet", {**GOOD, "pet": None}, ""),
    ("short name", {**GOOD, "name": "A"}, "/name: must be at least 2 characters long, found 1"),
    ("long name", {**GOOD, "name": "Adaaaaaaaaaa"}, "/name: must be at most 10 characters long, found 12"),
    ("pattern", {**GOOD, "name": "ada"}, "/name: must match the pattern '^[A-Z]', found 'ada'"),
    ("negative", {**GOOD, "age": -1}, "/age: must be at least 0, found -1"),
    ("exclusive", {**GOOD, "age": 150}, "/age: must be less than 150, found 150"),
    ("bool is not an integer", {**GOOD, "age": True}, "/age: expected integer, found boolean True"),
    ("const", {**GOOD, "kind": "robot"}, "/kind: expected 'person', found 'robot'"),
    ("too many", {**GOOD, "tags": ["a", "b", "c"]}, "/tags: may have at most 2 item(s), found 3"),
    ("repeats", {**GOOD, "tags": ["a", "a"]}, "/tags/1: repeats an earlier item: 'a'"),
    ("bad ref", {**GOOD, "pet": {"species": "cow"}}, "/pet: fits none of the allowed schemas"),
    ("prefix", {**GOOD, "point": [1, "2"]}, "/point/1: expected number, found string '2'"),
    ("no extra items", {**GOOD, "point": [1, 2, 3]}, "/point: may have at most 2 item(s), found 3"),
    ("one of", {**GOOD, "id": 1.5}, "/id: fits none of the allowed schemas"),
    ("all of", {**GOOD, "both": 3}, "/both: must be at most 2, found 3"),
    ("enum true is not 1", {**GOOD, "level": True}, "/level: expected one of 1, 2, 'max', found True"),
    ("missing", {"name": "Ada"}, "/: missing required key 'age'"),
    ("unknown", {**GOOD, "nmae": "x"}, "/nmae: unknown key 'nmae' (did you mean 'name'?)"),
]


@pytest.mark.parametrize(("label", "value", "problem"), CASES, ids=[case[0] for case in CASES])
def test_agrees_with_jsonschema_and_names_the_place(label, value, problem):
    problems = validate(value, PERSON)
    real = list(jsonschema.Draft202012Validator(PERSON).iter_errors(value))
    assert bool(problems) == bool(real), (problems, [e.message for e in real])
    if problem:
        assert any(f"{pointer}: {message}".startswith(problem) for _, pointer, message in problems), problems


def test_one_of_that_fits_twice_is_an_error():
    schema = {"oneOf": [{"type": "number"}, {"type": "integer"}]}
    assert validate(2, schema) == [("error", "/", "fits 2 of the oneOf schemas; it must fit exactly one")]
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(2.5))
    assert validate(2.5, schema) == []


def test_unknown_keywords_and_format_are_ignored():
    assert validate("not-a-date", {"type": "string", "format": "date", "x-whatever": 1}) == []


def test_a_ref_that_points_nowhere_is_reported_not_raised():
    assert validate(1, {"$ref": "#/$defs/Missing"})[0][2] == "the schema's $ref '#/$defs/Missing' points nowhere"
