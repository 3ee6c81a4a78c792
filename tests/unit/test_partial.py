"""The incremental JSON reader (core/partial.py): only structurally complete values are
shown, and what is shown does not depend on how the text was split: every test feeds the
text split at every character."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from human.core.partial import PartialJSON


def run(pieces: list[str], start: str = "{[") -> tuple[PartialJSON, list[Any]]:
    reader = PartialJSON(start)
    snapshots = []
    for piece in pieces:
        if reader.feed(piece):
            snapshots.append(reader.snapshot())
    if reader.close():
        snapshots.append(reader.snapshot())
    return reader, snapshots


def every_split(text: str) -> list[list[str]]:
    """The text whole, one character at a time, and cut in two at every position."""
    return [[text], list(text), *([text[:i], text[i:]] for i in range(1, len(text)))]


TEXT = ('Sure:\n```json\n{"name": "Ada \\"L\\u00e9\\ud83d\\ude00", "age": 36, "pi": -3.5e-2,\n'
        ' "tags": ["x", {"a": []}, true, null, false], "empty": {}, "nested": {"b": [1, [2]]}}\n```')
FINAL = json.loads(TEXT[TEXT.index("{"):TEXT.rindex("}") + 1])


def test_only_complete_values_appear_in_order():
    _, snapshots = run(list(TEXT))
    assert snapshots[0] == {"name": 'Ada "Lé😀'}
    assert snapshots[1] == {"name": 'Ada "Lé😀', "age": 36}  # 36 only once the comma came, never 3
    assert snapshots[-1] == FINAL
    for earlier, later in zip(snapshots, snapshots[1:]):
        assert earlier != later  # a snapshot is reported only when something new is complete


def test_the_result_does_not_depend_on_the_split():
    whole_reader, whole = run([TEXT])
    assert whole_reader.done and whole == [FINAL]
    by_char = run(list(TEXT))[1]
    for pieces in every_split(TEXT):
        reader, snapshots = run(pieces)
        assert reader.done and reader.failed is None
        assert snapshots[-1] == FINAL
        assert all(_is_prefix_of(s, FINAL) for s in snapshots)
        assert all(s in by_char for s in snapshots)  # coarser pieces skip snapshots, never invent one


def test_a_string_split_inside_an_escape_is_read_whole():
    text = '{"s": "a\\u00e9\\n\\"b"}'
    for pieces in every_split(text):
        assert run(pieces)[1][-1] == {"s": 'aé\n"b'}


def test_an_array_at_the_top_and_text_after_the_value():
    reader, snapshots = run(list('[1, {"a": 2}] and then {"b": 3}'))
    assert snapshots == [[1], [1, {"a": 2}]] and reader.done


def test_a_top_level_number_completes_at_close():
    reader, snapshots = run(["4", "2"], start="{[0123456789-")
    assert snapshots == [42] and reader.done


def test_object_only_start_skips_a_preamble_array():
    _, snapshots = run(list('[note] {"a": 1}'), start="{")
    assert snapshots == [{"a": 1}]


def test_malformed_input_stops_the_reader():
    reader, snapshots = run(list('{"a": 1, "b": tru, "c": 3}'))
    assert reader.failed is not None and "literal" in reader.failed
    assert snapshots == [{"a": 1}]
    reader, _ = run(list('{"a" 1}'))
    assert reader.failed == "expected ':', found '1'"


def _is_prefix_of(partial: Any, final: Any) -> bool:
    """Every value in `partial` is in `final` at the same place, complete (containers may
    hold fewer members)."""
    if isinstance(partial, dict):
        return isinstance(final, dict) and all(k in final and _is_prefix_of(v, final[k]) for k, v in partial.items())
    if isinstance(partial, list):
        return isinstance(final, list) and len(partial) <= len(final) and all(
            _is_prefix_of(v, final[i]) if isinstance(v, (dict, list)) else v == final[i]
            for i, v in enumerate(partial))
    return bool(partial == final)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=5), json_values, max_size=5), st.integers(1, 9), st.booleans())
def test_any_object_split_anyhow_reads_back_exactly(value, size, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only, indent=1 if size % 2 else None)
    reader, snapshots = run([text[i:i + size] for i in range(0, len(text), size)])
    assert reader.done and reader.failed is None
    assert (snapshots[-1] if snapshots else {}) == value
    assert all(_is_prefix_of(s, value) for s in snapshots)


def test_a_snapshot_never_changes_after_more_is_fed():
    import copy

    reader = PartialJSON()
    kept = []
    for char in '{"a": [1, {"b": [2, 3]}, 4], "c": {"d": "e"}}':
        if reader.feed(char):
            snapshot = reader.snapshot()
            kept.append((snapshot, copy.deepcopy(snapshot)))
    assert len(kept) == 5
    assert all(snapshot == frozen for snapshot, frozen in kept)
