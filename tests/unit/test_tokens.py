"""The token estimator (core/tokens.py): text, message framing, images, tools, limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from human.core.tokens import (
    IMAGE,
    IMAGE_LOW,
    PER_MESSAGE,
    PER_REPLY,
    TokenEstimate,
    estimate_messages,
    estimate_request,
    estimate_text,
)


def test_english_text_is_about_four_characters_a_token():
    assert estimate_text("") == 0
    assert estimate_text("hi") == 1
    assert estimate_text("The quick brown fox jumps over the lazy dog.") == 11  # 44 characters; cl100k: 10


def test_text_outside_ascii_counts_about_a_token_a_character():
    assert estimate_text("你好世界") == 5  # 4 characters, 12 bytes; cl100k: 4 to 6
    assert estimate_text("Grüße aus Köln") == 5  # 14 characters, 3 of them two bytes


@given(st.text())
def test_any_text_gets_a_bounded_non_negative_estimate(text: str):
    estimate = estimate_text(text)
    assert 0 <= estimate <= 2 * len(text) + 1
    assert estimate >= len(text) // 4


def test_each_message_adds_its_framing_and_every_reply_is_primed():
    one = [{"role": "user", "content": "hi"}]
    assert estimate_messages(one) == PER_REPLY + PER_MESSAGE + 1
    two = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi", "name": "ann"}]
    assert estimate_messages(two) == PER_REPLY + 2 * PER_MESSAGE + 2 + 1 + 1 + 1


def test_images_count_by_detail_and_text_parts_by_their_text():
    parts = [{"type": "text", "text": "what is this?"},
             {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
             {"type": "image_url", "image_url": {"url": "https://example.com/b.png", "detail": "low"}}]
    assert estimate_messages([{"role": "user", "content": parts}]) == PER_REPLY + PER_MESSAGE + 4 + IMAGE + IMAGE_LOW


def test_tool_definitions_and_tool_calls_count_as_their_json():
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    bare = estimate_messages([{"role": "user", "content": "hi"}])
    assert estimate_messages([{"role": "user", "content": "hi"}], tools) > bare + 10
    assert estimate_messages([{"role": "user", "content": "hi"}, call]) > bare + PER_MESSAGE


def test_a_request_carries_its_output_limit_and_reserves_it():
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
    assert estimate_request(body) == TokenEstimate(7, 100)
    assert estimate_request(body).reserve(500) == 107
    newer = {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 40}
    assert estimate_request(newer).completion == 40
    unbounded = estimate_request({"messages": [{"role": "user", "content": "hi"}], "max_tokens": True})
    assert unbounded.completion is None and unbounded.reserve(500) == 507  # the caller's guess


def test_odd_bodies_are_estimated_not_refused():
    assert estimate_request({}).prompt == PER_REPLY
    assert estimate_request({"messages": "just a string"}).prompt == PER_REPLY + PER_MESSAGE + 4
    assert estimate_request({"messages": [42, {"role": "user", "content": {"odd": 1}}]}).prompt > 2 * PER_MESSAGE
