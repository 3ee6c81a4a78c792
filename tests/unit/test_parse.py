"""Whole (non-streamed) answers: decode_body, then parse_completion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from human.core.parse import decode_body, parse_completion
from human.core.shapes import ThinkSplitter, flatten_parts, usage_from
from human.errors import BadResponseError
from human.types import ToolCall, Usage


def completion(message: dict[str, Any] | None = None, finish: str | None = "stop", **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion", "model": "served-model"}
    body["choices"] = [{"index": 0, "message": {"role": "assistant", **(message or {})}, "finish_reason": finish}]
    body.update(top)
    return body


def bad(raw: bytes, content_type: str | None = "application/json", **kw: Any) -> BadResponseError:
    with pytest.raises(BadResponseError) as caught:
        decode_body(raw, content_type, provider="p", model="m", **kw)
    return caught.value


# ---- decode_body ------------------------------------------------------------------------


def test_json_body_is_decoded() -> None:
    assert decode_body(b'{"a": [1, "\xc3\xa9"]}', "application/json") == {"a": [1, "é"]}


def test_html_content_type_is_reported_as_a_wrong_base_url() -> None:
    error = bad(b"<!doctype html><html><head><title>Welcome | Site</title></head></html>", "text/html; charset=utf-8")
    assert "HTML page" in str(error) and "base_url" in str(error) and "Welcome | Site" in str(error)
    assert not error.retryable


def test_body_starting_with_angle_bracket_is_html_whatever_the_content_type() -> None:
    assert "HTML page" in str(bad(b"\n  <html><body>hi</body></html>", "application/json"))


def test_html_from_a_failing_gateway_is_retryable() -> None:
    assert bad(b"<html>502 Bad Gateway</html>", "text/html", status=502).retryable


def test_empty_body_raises() -> None:
    error = bad(b"")
    assert "empty body" in str(error)


def test_whitespace_only_body_is_empty() -> None:
    assert "empty body" in str(bad(b" \r\n\t"))


@pytest.mark.parametrize(
    "raw",
    [b'{"choices": [{"message": {"content": "cut', b'{"a": 1', b'{"a": tr', b'{"a": -', b"[1, 2,", b'{"a"', b"{"],
)
def test_truncated_json_is_retryable_and_says_so(raw: bytes) -> None:
    error = bad(raw)
    assert error.retryable
    assert "truncated" in str(error)


def test_invalid_json_is_not_retryable_and_shows_a_preview() -> None:
    error = bad(b"{malformed json: <<<chaos>>>")
    assert not error.retryable
    assert "not valid JSON" in str(error) and "<<<chaos>>>" in str(error)


def test_extra_data_after_json_is_invalid_not_truncated() -> None:
    assert not bad(b'{"a": 1} {"b": 2}').retryable


def test_plain_text_body_is_invalid_json() -> None:
    error = bad(b"Internal Server Error", "text/plain")
    assert not error.retryable and "Internal Server Error" in str(error)


def test_body_preview_is_the_first_200_characters() -> None:
    error = bad(b"x" * 1000)
    assert error.body_preview == "x" * 200


def test_error_carries_provider_model_and_status() -> None:
    error = bad(b"nope", status=200)
    assert (error.provider, error.model, error.status) == ("p", "m", 200)


def test_utf8_bom_before_json_is_accepted() -> None:
    assert decode_body(b'\xef\xbb\xbf{"a": 1}', None) == {"a": 1}


def test_invalid_utf8_inside_a_string_becomes_replacement_characters() -> None:
    assert decode_body(b'{"a": "x\xffy"}', None) == {"a": "x\ufffdy"}


def test_deeply_nested_json_raises_bad_response() -> None:
    assert not bad(b"[" * 100_000 + b"]" * 100_000).retryable


# ---- parse_completion: shape ------------------------------------------------------------


def test_plain_answer() -> None:
    body = completion({"content": "Hi"}, usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4})
    response = parse_completion(body, provider="p", model="m")
    assert response.content == "Hi"
    assert response.usage == Usage(3, 1, 4)
    assert (response.id, response.model, response.provider, response.finish_reason) == (
        "chatcmpl-1",
        "served-model",
        "p",
        "stop",
    )
    assert response.raw is body


def test_body_that_is_not_an_object_raises() -> None:
    with pytest.raises(BadResponseError, match="JSON list"):
        parse_completion([1, 2])


def test_error_object_in_a_200_names_message_type_and_code() -> None:
    body = {"error": {"message": "Invalid model", "type": "invalid_request_error", "code": "model_not_found"}}
    with pytest.raises(BadResponseError) as caught:
        parse_completion(body, provider="p", model="m")
    text = str(caught.value)
    assert "Invalid model" in text and "invalid_request_error" in text and "model_not_found" in text
    assert caught.value.status is None and not caught.value.retryable


def test_error_object_with_http_code_sets_status() -> None:
    with pytest.raises(BadResponseError) as caught:
        parse_completion({"error": {"message": "upstream", "code": 503}})
    assert caught.value.status == 503 and caught.value.retryable


def test_missing_choices_gives_no_content() -> None:
    response = parse_completion({"id": "x", "usage": {"prompt_tokens": 1}})
    assert response.content is None and response.tool_calls == () and response.finish_reason is None


def test_empty_choices_gives_no_content() -> None:
    assert parse_completion({"choices": []}).content is None


def test_choice_without_message_gives_no_content() -> None:
    assert parse_completion({"choices": [{"index": 0, "finish_reason": "stop"}]}).content is None


def test_only_choice_index_zero_is_read() -> None:
    body = {"choices": [{"index": 1, "message": {"content": "no"}}, {"index": 0, "message": {"content": "yes"}}]}
    assert parse_completion(body).content == "yes"


# ---- content and reasoning ------------------------------------------------------------


def test_null_content_is_none() -> None:
    assert parse_completion(completion({"content": None})).content is None


def test_content_array_text_parts_are_joined() -> None:
    parts = [
        {"type": "text", "text": "a"},
        {"type": "image_url", "image_url": {"url": "u"}},
        {"type": "text", "text": "b"},
    ]
    assert parse_completion(completion({"content": parts})).content == "ab"


def test_thinking_parts_become_reasoning() -> None:
    parts = [{"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]}, {"type": "text", "text": "ok"}]
    response = parse_completion(completion({"content": parts}))
    assert (response.reasoning, response.content) == ("hm", "ok")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_fields_become_reasoning(field: str) -> None:
    response = parse_completion(completion({"content": "4", field: "2+2"}))
    assert (response.reasoning, response.content) == ("2+2", "4")


def test_think_prefix_becomes_reasoning_without_tags() -> None:
    response = parse_completion(completion({"content": "<think>why</think>\n\nbecause"}))
    assert (response.reasoning, response.content) == ("why", "because")


def test_unclosed_think_block_is_all_reasoning() -> None:
    response = parse_completion(completion({"content": "<think>cut off"}, "length"))
    assert (response.reasoning, response.content) == ("cut off", None)


# ---- tool calls -----------------------------------------------------------------------


def test_tool_call_with_arguments_as_object_becomes_a_string() -> None:
    message = {
        "content": None,
        "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}],
    }
    assert parse_completion(completion(message, "tool_calls")).tool_calls == (ToolCall("a", "f", '{"x":1}'),)


def test_tool_call_without_id_gets_a_stable_synthetic_one() -> None:
    message = {"tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    call = parse_completion(completion(message)).tool_calls[0]
    assert call.id is not None and call.id.startswith("call_0_")
    assert parse_completion(completion(message)).tool_calls[0].id == call.id  # stable
    assert call.to_message()["id"] == call.id  # so a tool result can refer to it


def test_only_choice_numbered_one_is_read() -> None:
    body = {"choices": [{"index": 1, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    assert parse_completion(body).content == "hi"


def test_tool_call_entries_without_name_are_kept_only_with_arguments() -> None:
    message = {
        "tool_calls": [
            {"id": "a", "function": {"arguments": '{"x":1}'}},
            {"id": "b", "function": {}},
            {"id": "c"},
            "garbage",
            {"id": "d", "function": {"name": "g"}},
        ]
    }
    assert parse_completion(completion(message)).tool_calls == (ToolCall("a", "", '{"x":1}'), ToolCall("d", "g", ""))


def test_tool_calls_turn_finish_reason_stop_into_tool_calls() -> None:
    message = {"content": "mock", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}]}
    response = parse_completion(completion(message, "stop"))
    assert response.finish_reason == "tool_calls" and response.content == "mock"


def test_tool_calls_keep_finish_reason_length() -> None:
    message = {"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": '{"x":'}}]}
    assert parse_completion(completion(message, "length")).finish_reason == "length"


def test_no_tool_calls_keeps_finish_reason() -> None:
    assert parse_completion(completion({"content": "x"}, "end_turn")).finish_reason == "end_turn"


# ---- usage ----------------------------------------------------------------------------


def test_usage_maps_cached_and_reasoning_tokens() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "total_tokens": 30,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 7},
    }
    assert parse_completion(completion({"content": "x"}, usage=usage)).usage == Usage(10, 20, 30, 4, 7)


def test_deepseek_cache_hit_tokens_count_as_cached() -> None:
    assert usage_from({"prompt_tokens": 9, "prompt_cache_hit_tokens": 6}) == Usage(prompt_tokens=9, cached_tokens=6)


def test_no_usage_object_gives_none() -> None:
    assert parse_completion(completion({"content": "x"})).usage is None
    assert parse_completion(completion({"content": "x"}, usage=None)).usage is None


def test_empty_usage_object_gives_none() -> None:
    assert parse_completion(completion({"content": "x"}, usage={})).usage is None


def test_absent_or_non_numeric_usage_fields_are_none_never_invented() -> None:
    usage = {"prompt_tokens": "7", "completion_tokens": None, "total_tokens": 2.5, "completion_tokens_details": None}
    assert parse_completion(completion({"content": "x"}, usage=usage)).usage == Usage()


# ---- shared helpers -------------------------------------------------------------------


def test_flatten_parts_ignores_non_text_parts() -> None:
    assert flatten_parts([{"type": "audio"}, 3, None, {"type": "text", "text": 5}, "raw"]) == ("raw", "")


def test_think_splitter_whole_text_without_tags_is_content() -> None:
    assert ThinkSplitter.split("  plain") == ("", "  plain")


def test_decode_then_parse_round_trip() -> None:
    raw = json.dumps(completion({"content": "Hi"})).encode()
    assert parse_completion(decode_body(raw, "application/json")).content == "Hi"
