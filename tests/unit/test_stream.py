"""The stream assembler: chunk payloads in, typed events and one ChatResponse out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from human.core.stream import StreamAssembler
from human.errors import BadResponseError
from human.types import (
    ContentDelta,
    FinishEvent,
    ReasoningDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
    Usage,
    UsageEvent,
)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **top: Any) -> str:
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    body["choices"] = [choice]
    body.update(top)
    return json.dumps(body)


def tool(index: Any = "absent", id: str | None = None, name: str | None = None, args: Any = None) -> dict[str, Any]:
    fragment: dict[str, Any] = {}
    if index != "absent":
        fragment["index"] = index
    if id is not None:
        fragment.update(id=id, type="function")
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if args is not None:
        function["arguments"] = args
    fragment["function"] = function
    return fragment


def run(*datas: str) -> tuple[StreamAssembler, list[Any]]:
    assembler = StreamAssembler(provider="p", model="m")
    events: list[Any] = []
    for data in datas:
        events += assembler.add(data)
    events += assembler.close()
    return assembler, events


def calls(*datas: str) -> list[tuple[str | None, str, str]]:
    assembler, _ = run(*datas)
    return [(c.id, c.name, c.arguments) for c in assembler.finish().tool_calls]


# ---- content --------------------------------------------------------------------------


def test_content_deltas_are_emitted_and_joined() -> None:
    assembler, events = run(
        chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"})
    )
    assert events == [ContentDelta("Hel"), ContentDelta("lo")]
    assert assembler.finish().content == "Hello"


def test_no_content_gives_none_not_empty_string() -> None:
    assembler, _ = run(chunk({"role": "assistant", "content": ""}), chunk({}, "stop"))
    assert assembler.finish().content is None


def test_content_as_array_of_text_parts() -> None:
    assembler, events = run(chunk({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}))
    assert events == [ContentDelta("ab")]


def test_thinking_parts_in_content_become_reasoning() -> None:
    part = {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]}
    assembler, events = run(chunk({"content": [part]}), chunk({"content": "Hi"}))
    assert events == [ReasoningDelta("hmm"), ContentDelta("Hi")]
    assert (assembler.finish().reasoning, assembler.finish().content) == ("hmm", "Hi")


def test_reasoning_content_field_becomes_reasoning() -> None:
    assembler, events = run(
        chunk({"reasoning_content": "think", "content": None}), chunk({"reasoning_content": None, "content": "ok"})
    )
    assert events == [ReasoningDelta("think"), ContentDelta("ok")]


def test_reasoning_field_becomes_reasoning() -> None:
    assembler, _ = run(chunk({"reasoning": "a"}), chunk({"reasoning": "b", "content": "x"}))
    assert assembler.finish().reasoning == "ab"


def test_reasoning_sent_under_both_names_is_taken_once() -> None:
    assembler, _ = run(chunk({"reasoning_content": "same", "reasoning": "same"}))
    assert assembler.finish().reasoning == "same"


# ---- <think> tags -------------------------------------------------------------------------


def test_think_tags_split_across_chunks_do_not_leak() -> None:
    pieces = ["<th", "ink>", "plan", " it</thi", "nk", ">\n\nAnswer", "!"]
    assembler, events = run(*(chunk({"content": p}) for p in pieces))
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "plan it"
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "Answer!"
    assert all("<" not in e.text and ">" not in e.text for e in events)
    response = assembler.finish()
    assert (response.reasoning, response.content) == ("plan it", "Answer!")


def test_think_block_after_leading_whitespace_is_recognised() -> None:
    assembler, _ = run(chunk({"content": "\n"}), chunk({"content": "<think>r</think>c"}))
    assert (assembler.finish().reasoning, assembler.finish().content) == ("r", "c")


def test_unclosed_think_block_is_all_reasoning() -> None:
    assembler, _ = run(chunk({"content": "<think>still thinking</thi"}), chunk({}, "length"))
    assert (assembler.finish().reasoning, assembler.finish().content) == ("still thinking</thi", None)


def test_content_that_only_looks_like_a_tag_start_is_released() -> None:
    assembler, events = run(chunk({"content": "<th"}), chunk({"content": "is is html"}))
    assert events == [ContentDelta("<this is html")]


def test_think_tag_later_in_the_answer_is_ordinary_content() -> None:
    assembler, _ = run(chunk({"content": "Use "}), chunk({"content": "<think> tags"}))
    assert assembler.finish().content == "Use <think> tags"
    assert assembler.finish().reasoning is None


def test_held_back_tag_prefix_is_released_at_close() -> None:
    assembler = StreamAssembler()
    assert assembler.add(chunk({"content": "<thi"})) == []
    assert assembler.partial().content == "<thi"
    assert assembler.close() == [ContentDelta("<thi")]
    assert assembler.finish().content == "<thi"


# ---- tool calls -----------------------------------------------------------------------


def test_tool_calls_assembled_by_index() -> None:
    assert calls(
        chunk({"tool_calls": [tool(0, "a", "f", "")]}),
        chunk({"tool_calls": [tool(0, args='{"x"')]}),
        chunk({"tool_calls": [tool(0, args=": 1}")]}),
    ) == [("a", "f", '{"x": 1}')]


def test_parallel_tool_calls_interleaved_by_index() -> None:
    assert calls(
        chunk({"tool_calls": [tool(0, "a", "f", "{"), tool(1, "b", "g", "[")]}),
        chunk({"tool_calls": [tool(1, args="]")]}),
        chunk({"tool_calls": [tool(0, args="}")]}),
    ) == [("a", "f", "{}"), ("b", "g", "[]")]


def test_tool_calls_without_index_assembled_by_id() -> None:
    assert calls(
        chunk({"tool_calls": [tool(id="a", name="f", args='{"c":1}')]}),
        chunk({"tool_calls": [tool(id="b", name="f", args='{"c":2}')]}),
        chunk({"tool_calls": [tool(id="a", args="")]}),
    ) == [("a", "f", '{"c":1}'), ("b", "f", '{"c":2}')]


def test_tool_calls_with_null_index_assembled_by_id() -> None:
    assert calls(
        chunk({"tool_calls": [tool(None, "a", "f", "1"), tool(None, "b", "g", "2")]}),
    ) == [("a", "f", "1"), ("b", "g", "2")]


def test_reused_index_with_a_new_id_starts_a_new_call() -> None:
    assert calls(
        chunk({"tool_calls": [tool(0, "a", "f", "")]}),
        chunk({"tool_calls": [tool(0, args="A")]}),
        chunk({"tool_calls": [tool(0, "b", "g", "")]}),
        chunk({"tool_calls": [tool(0, args="B")]}),
    ) == [("a", "f", "A"), ("b", "g", "B")]


def test_idless_indexless_fragment_continues_the_current_call() -> None:
    assert calls(
        chunk({"tool_calls": [tool(id="a", name="f", args="{")]}),
        chunk({"tool_calls": [tool(args='"q": 1')]}),
        chunk({"tool_calls": [tool(args="}")]}),
    ) == [("a", "f", '{"q": 1}')]


def test_idless_indexless_fragment_with_no_call_yet_starts_one() -> None:
    from human.core.shapes import synthetic_call_id

    assert calls(chunk({"tool_calls": [tool(name="f", args="{}")]})) == [(synthetic_call_id(0, "f", "{}"), "f", "{}")]


def test_a_stream_whose_only_choice_is_numbered_one_is_read() -> None:
    one = json.dumps({"choices": [{"index": 1, "delta": {"content": "hi"}, "finish_reason": "stop"}]})
    assembler, _ = run(one)
    assert assembler.finish().content == "hi"


def test_arguments_sent_as_object_are_serialised() -> None:
    assert calls(chunk({"tool_calls": [tool(0, "a", "f", {"city": "Paris", "n": 2})]})) == [
        ("a", "f", '{"city":"Paris","n":2}')
    ]


def test_repeated_full_name_is_not_concatenated() -> None:
    assert calls(
        chunk({"tool_calls": [tool(0, "a", "get_weather", "{")]}),
        chunk({"tool_calls": [tool(0, "a", "get_weather", "}")]}),
    ) == [("a", "get_weather", "{}")]


def test_id_arriving_after_the_first_fragment_is_kept() -> None:
    assert calls(
        chunk({"tool_calls": [tool(0, name="f", args="{")]}),
        chunk({"tool_calls": [tool(0, "late", args="}")]}),
    ) == [("late", "f", "{}")]


def test_tool_call_without_a_name_is_kept_with_empty_name() -> None:
    assert calls(chunk({"tool_calls": [tool(0, "a", args='{"x":1}')]})) == [("a", "", '{"x":1}')]


def test_tool_call_events_start_delta_done_in_order() -> None:
    _, events = run(
        chunk({"tool_calls": [tool(0, "a", "f", "")]}),
        chunk({"tool_calls": [tool(1, "b", "g", "{}")]}),
        chunk({"tool_calls": [tool(0, args="[]")]}),
    )
    assert events == [
        ToolCallStart(0, "a", "f"),
        ToolCallStart(1, "b", "g"),
        ToolCallDelta(1, "{}"),
        ToolCallDelta(0, "[]"),
        ToolCallDone(0, ToolCall("a", "f", "[]")),
        ToolCallDone(1, ToolCall("b", "g", "{}")),
    ]


def test_close_twice_emits_done_events_once() -> None:
    assembler, _ = run(chunk({"tool_calls": [tool(0, "a", "f", "{}")]}))
    assert assembler.close() == []


# ---- finish reason --------------------------------------------------------------------


def test_finish_reason_is_remembered_and_emitted() -> None:
    assembler, events = run(chunk({"content": "x"}), chunk({}, "stop"), chunk({}))
    assert FinishEvent("stop") in events
    assert assembler.finish().finish_reason == "stop"


def test_tool_calls_win_over_finish_reason_stop() -> None:
    assembler, events = run(chunk({"tool_calls": [tool(0, "a", "f", "{}")]}), chunk({}, "stop"))
    assert FinishEvent("tool_calls") in events
    assert assembler.finish().finish_reason == "tool_calls"


@pytest.mark.parametrize("reason", [None, "end_turn"])
def test_tool_calls_win_over_missing_or_odd_finish_reason(reason: str | None) -> None:
    assembler, _ = run(chunk({"tool_calls": [tool(0, "a", "f", "{}")]}, reason))
    assert assembler.finish().finish_reason == "tool_calls"


def test_length_with_tool_calls_is_kept_so_truncation_shows() -> None:
    assembler, _ = run(chunk({"tool_calls": [tool(0, "a", "f", '{"x":')]}, "length"))
    assert assembler.finish().finish_reason == "length"


def test_no_finish_reason_stays_none() -> None:
    assembler, _ = run(chunk({"content": "x"}))
    assert assembler.finish().finish_reason is None


# ---- usage ----------------------------------------------------------------------------


def test_usage_only_final_chunk_with_empty_choices() -> None:
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }
    assembler, events = run(chunk({"content": "hi"}, "stop"), json.dumps({"id": "c1", "choices": [], "usage": usage}))
    assert events[-1] == UsageEvent(Usage(5, 2, 7, 3, 1))
    assert assembler.finish().usage == Usage(5, 2, 7, 3, 1)


def test_usage_on_a_final_chunk_with_an_empty_delta_choice() -> None:
    final = json.dumps(
        {
            "choices": [{"index": 0, "delta": {}}],
            "usage": {"prompt_tokens": 8, "completion_tokens": 9, "total_tokens": 17},
        }
    )
    assembler, _ = run(chunk({"content": "x"}), final)
    assert assembler.finish().usage == Usage(8, 9, 17)


def test_null_usage_on_every_chunk_is_no_usage() -> None:
    assembler, _ = run(chunk({"content": "x"}, usage=None))
    assert assembler.finish().usage is None


def test_empty_usage_object_is_no_usage_and_emits_nothing() -> None:
    assembler, events = run(chunk({"content": "x"}, usage={}))
    assert events == [ContentDelta("x")]
    assert assembler.finish().usage is None


def test_non_numeric_usage_fields_are_none_not_zero() -> None:
    final = json.dumps(
        {"choices": [], "usage": {"prompt_tokens": "12", "completion_tokens": True, "total_tokens": 3.0}}
    )
    assembler, _ = run(final)
    assert assembler.finish().usage == Usage(None, None, 3)


# ---- tolerance ------------------------------------------------------------------------


def test_empty_choices_chunk_is_tolerated() -> None:
    assembler = StreamAssembler()
    assert assembler.add(json.dumps({"id": "", "choices": [], "prompt_filter_results": []})) == []


def test_missing_delta_and_null_role_are_tolerated() -> None:
    assembler, events = run(
        json.dumps({"choices": [{"index": 0, "finish_reason": None}]}),
        chunk({"role": None, "content": "x"}),
        json.dumps({"choices": [{"index": 0, "delta": None}]}),
    )
    assert events == [ContentDelta("x")]


def test_response_id_is_the_first_chunks_and_model_the_last_seen() -> None:
    assembler, _ = run(
        json.dumps({"id": "first", "model": "m1", "choices": [{"index": 0, "delta": {"content": "a"}}]}),
        json.dumps({"id": "second", "model": "m2", "choices": [{"index": 0, "delta": {"content": "b"}}]}),
    )
    response = assembler.finish()
    assert (response.id, response.model, response.provider) == ("first", "m2", "p")
    assert response.raw["id"] == "second"


def test_only_choice_index_zero_is_assembled() -> None:
    other = json.dumps({"choices": [{"index": 1, "delta": {"content": "NO"}}]})
    both = json.dumps({"choices": [{"index": 1, "delta": {"content": "NO"}}, {"index": 0, "delta": {"content": "b"}}]})
    assembler, _ = run(chunk({"content": "a"}), other, both)
    assert assembler.finish().content == "ab"


def test_done_sets_done_and_returns_nothing() -> None:
    assembler = StreamAssembler()
    assert assembler.add("[DONE]") == []
    assert assembler.done


def test_done_with_surrounding_whitespace_is_recognised() -> None:
    assembler = StreamAssembler()
    assert assembler.add(" [DONE]\n") == []
    assert assembler.done


def test_empty_data_is_ignored() -> None:
    assembler = StreamAssembler()
    assert assembler.add("") == [] and assembler.add("  ") == []


def test_json_with_leading_whitespace_is_read() -> None:
    assert StreamAssembler().add(" " + chunk({"content": "x"})) == [ContentDelta("x")]


def test_finish_without_done_returns_what_arrived() -> None:
    assembler, _ = run(chunk({"content": "partial"}))
    assert not assembler.done
    assert assembler.finish().content == "partial"


# ---- errors ---------------------------------------------------------------------------


def test_non_json_data_raises_bad_response_with_preview_and_partial() -> None:
    assembler = StreamAssembler(provider="p", model="m")
    assembler.add(chunk({"content": "so far"}))
    with pytest.raises(BadResponseError) as caught:
        assembler.add("<html>oops")
    error = caught.value
    assert "<html>oops" in str(error) and error.body_preview == "<html>oops"
    assert error.partial is not None and error.partial.content == "so far"
    assert (error.provider, error.model) == ("p", "m")


def test_json_that_is_not_an_object_raises_bad_response() -> None:
    with pytest.raises(BadResponseError, match="JSON list"):
        StreamAssembler().add("[1, 2]")


def test_error_event_mid_stream_carries_partial_content_and_status() -> None:
    assembler = StreamAssembler()
    assembler.add(chunk({"content": "The answer"}))
    error_event = {"error": {"message": "too long", "type": "BadRequestError", "param": None, "code": 400}}
    with pytest.raises(BadResponseError) as caught:
        assembler.add(json.dumps(error_event))
    error = caught.value
    assert "too long" in str(error) and "BadRequestError" in str(error) and "code 400" in str(error)
    assert "after 10 characters" in str(error)
    assert error.status == 400 and not error.retryable
    assert error.partial is not None and error.partial.content == "The answer"


def test_error_event_with_string_status_code_is_retryable() -> None:
    with pytest.raises(BadResponseError) as caught:
        StreamAssembler().add(
            json.dumps({"error": {"message": "slow down", "type": "throttling_error", "code": "429"}})
        )
    assert caught.value.status == 429 and caught.value.retryable


def test_error_event_with_server_error_code_is_retryable() -> None:
    with pytest.raises(BadResponseError) as caught:
        StreamAssembler().add(json.dumps({"error": {"code": "server_error", "message": "Provider disconnected"}}))
    assert caught.value.status is None and caught.value.retryable


def test_error_event_as_plain_string() -> None:
    with pytest.raises(BadResponseError, match="boom"):
        StreamAssembler().add(json.dumps({"error": "boom"}))


def test_error_partial_includes_tool_calls_so_far() -> None:
    assembler = StreamAssembler()
    assembler.add(chunk({"tool_calls": [tool(0, "a", "f", '{"x":')]}))
    with pytest.raises(BadResponseError) as caught:
        assembler.add(json.dumps({"error": {"message": "x"}}))
    assert caught.value.partial is not None
    assert caught.value.partial.tool_calls == (ToolCall("a", "f", '{"x":'),)


def test_null_error_key_is_not_an_error() -> None:
    assert StreamAssembler().add(chunk({"content": "x"}, error=None)) == [ContentDelta("x")]


def test_surrogate_pair_split_across_deltas_is_joined():
    """aimock slices text by UTF-16 units: an emoji can arrive as two lone halves."""
    assembler = StreamAssembler()
    events = []
    for piece in ["hi \ud83d", "\ude00 ok"]:
        events += assembler.add(json.dumps({"choices": [{"index": 0, "delta": {"content": piece}}]}))
    events += assembler.close()
    assert [e.text for e in events] == ["hi ", "\U0001F600 ok"]
    assert assembler.finish().content == "hi \U0001F600 ok"


def test_unpaired_surrogate_at_the_end_becomes_a_replacement_character():
    assembler = StreamAssembler()
    assembler.add(json.dumps({"choices": [{"index": 0, "delta": {"content": "end \ud83d"}}]}))
    assembler.close()
    assert assembler.finish().content == "end \ufffd"
