"""core/members.py: a JSON object's members and their spans must agree with json.loads on
every object, however it is spaced, and anything that is not one plain object is left to
a whole parse (None)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from human.core.members import members, splice

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                                             inner, max_size=3),
                      max_leaves=8)
OBJECTS = st.dictionaries(st.text(max_size=8), VALUES, max_size=6)
SPACING = st.sampled_from([{}, {"separators": (",", ":")}, {"indent": 2}, {"indent": "\t"},
                           {"ensure_ascii": False}, {"separators": (" , ", " : ")}])


@settings(max_examples=300, deadline=None)
@given(OBJECTS, SPACING, st.sampled_from(["", " ", "\n", "\r\n\t "]))
def test_members_and_spans_agree_with_json_loads(obj: dict[str, Any], spacing: dict[str, Any], pad: str) -> None:
    text = pad + json.dumps(obj, **spacing) + pad
    found = members(text)
    assert found is not None
    body, where = found
    assert body == json.loads(text) and list(where) == list(body)
    for name, (name_start, name_end, start, end) in where.items():
        assert json.loads(text[name_start:name_end]) == name
        assert json.loads(text[start:end]) == body[name]


@settings(max_examples=100, deadline=None)
@given(OBJECTS.filter(bool), SPACING)
def test_a_spliced_value_reads_back(obj: dict[str, Any], spacing: dict[str, Any]) -> None:
    text = json.dumps(obj, **spacing)
    _, where = members(text)  # type: ignore[misc]
    name = next(iter(where))
    name_start, _, start, end = where[name]
    out = json.loads(splice(text, [(start, end, '"new"'), (name_start, name_start, '"added":1,')]))
    assert out == {"added": 1, **obj, name: "new"}


def test_what_is_not_one_plain_object_is_left_to_a_whole_parse() -> None:
    for text in ('[1]', '"x"', '', '{', '{"a":1', '{"a":1,}', '{"a" 1}', '{"a":1} x', '{"a":1}{"b":2}',
                 '{"a":1,"a":2}', "{'a':1}", '{"a":}', '{"a":1 "b":2}', '{"a":"\x01"}', '{1:2}'):
        assert members(text) is None, text
    assert members("{}") == ({}, {}) and members(" { } ") == ({}, {})
