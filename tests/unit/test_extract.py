"""Finding the JSON in a model's answer (core/extract.py): bare, fenced, embedded in prose,
after reasoning blocks whose braces must not be taken for the answer."""

from __future__ import annotations

import pytest

from human.core.extract import NoJSON, find_json, strip_reasoning

ADA = {"name": "Ada", "age": 36}


@pytest.mark.parametrize(("text", "where"), [
    ('{"name": "Ada", "age": 36}', "whole"),
    ('  \n{"name": "Ada", "age": 36}\n', "whole"),
    ('Sure!\n```json\n{"name": "Ada", "age": 36}\n```\nAnything else?', "fenced"),
    ('```\n{"name": "Ada", "age": 36}\n```', "fenced"),
    ('```JSON\n{"name": "Ada", "age": 36}', "fenced"),  # the closing fence never came
    ('The person is {"name": "Ada", "age": 36}. Done.', "embedded"),
    ('<think>They want {name, age}; maybe {"name": 1}?</think>{"name": "Ada", "age": 36}', "whole"),
    ('<thinking>{"x": 1}</thinking>\n```json\n{"name": "Ada", "age": 36}\n```', "fenced"),
    ('Answer: <think>{"no": true}</think> {"name": "Ada", "age": 36}', "embedded"),
])
def test_finds_the_object(text, where):
    found = find_json(text, "object")
    assert (found.value, found.where) == (ADA, where)


def test_a_json_fence_wins_over_another_fence():
    text = '```python\nprint({"a": 1})\n```\n```json\n{"name": "Ada", "age": 36}\n```'
    assert find_json(text, "object").value == ADA


def test_a_stray_array_does_not_beat_the_object_that_follows():
    assert find_json('Steps [1] and [2]: {"name": "Ada", "age": 36}', "object").value == ADA
    assert find_json('Here: [1, 2, 3]', "array").value == [1, 2, 3]
    assert find_json('Here: [1, 2, 3]').value == [1, 2, 3]


def test_a_raw_newline_inside_a_string_is_accepted():
    assert find_json('{"text": "line one\nline two"}', "object").value == {"text": "line one\nline two"}


@pytest.mark.parametrize(("text", "reason"), [
    ("", "the answer was empty"),
    ("   ", "the answer was empty"),
    ("<think>{\"a\": 1} and more", "the answer held only reasoning, no JSON after it"),
    ("Ada was 36.", "no JSON object was found in the answer: 'Ada was 36.'"),
    ('{"name": "Ada", "age": 36', "no JSON object was found in the answer"),
])
def test_no_json_says_what_was_seen(text, reason):
    with pytest.raises(NoJSON) as caught:
        find_json(text, "object")
    assert caught.value.reason.startswith(reason)


def test_strip_reasoning_cuts_closed_and_unclosed_blocks():
    assert strip_reasoning("a<think>x</think>b<reasoning>y") == "ab"
    assert strip_reasoning("no tags") == "no tags"
