"""Streaming through both clients: events, assembly, awkward chunk boundaries, failures."""

from __future__ import annotations

import pytest

import human
from human.errors import APIConnectionError, BadResponseError


def chunk(delta: dict, finish: str | None = None, **extra) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "test-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def test_stream_yields_content_and_assembles_the_answer(driver, fake, config_for):
    fake.stream([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
                 chunk({}, "stop")])
    handle = driver.client(config_for())
    answer = handle.stream("hi")
    assert [e.text for e in handle.events if e.type == "content"] == ["Hel", "lo"]
    assert answer.content == "Hello" and answer.finish_reason == "stop"
    assert fake.last.json["stream"] is True


def test_stream_options_only_where_the_provider_accepts_them(driver, fake, config_for):
    fake.stream([chunk({"content": "a"}, "stop")])
    fake.stream([chunk({"content": "a"}, "stop")])
    driver.client(config_for()).stream("hi")
    assert "stream_options" not in fake.requests[0].json
    driver.client(config_for({"stream_usage": True})).stream("hi")
    assert fake.requests[1].json["stream_options"] == {"include_usage": True}


def test_usage_only_final_chunk_with_empty_choices(driver, fake, config_for):
    fake.stream([chunk({"content": "a"}), chunk({}, "stop"),
                 {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1,
                                                             "total_tokens": 4}}])
    handle = driver.client(config_for({"stream_usage": True}))
    answer = handle.stream("hi")
    assert answer.usage == human.Usage(3, 1, 4)
    assert any(e.type == "usage" for e in handle.events)


def test_events_split_at_every_few_bytes_come_out_intact(driver, fake, config_for):
    text = "Grüße, 世界! 🎉 done"
    fake.stream([chunk({"content": piece}) for piece in ("Grüße, ", "世界! ", "🎉 done")] + [chunk({}, "stop")],
                chunk_bytes=3)
    answer = driver.client(config_for()).stream("hi")
    assert answer.content == text


def test_stream_tool_calls_are_assembled(driver, fake, config_for):
    fake.stream([
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
        chunk({}, "tool_calls"),
    ])
    handle = driver.client(config_for())
    answer = handle.stream("hi")
    assert answer.tool_calls[0].parsed_arguments() == {"city": "Paris"}
    kinds = [e.type for e in handle.events]
    assert kinds[0] == "tool_call_start" and "tool_call_done" in kinds and kinds[-1] in ("finish", "tool_call_done")


def test_stream_without_done_still_completes(driver, fake, config_for):
    fake.stream([chunk({"content": "partial but fine"}, "stop")], done=False)
    assert driver.client(config_for()).stream("hi").content == "partial but fine"


def test_error_event_mid_stream_carries_the_partial_content(driver, fake, config_for):
    fake.stream([chunk({"content": "Once upon"}), {"error": {"message": "model crashed", "code": 500}}])
    handle = driver.client(config_for())
    with pytest.raises(BadResponseError, match="model crashed") as caught:
        handle.stream("hi")
    assert caught.value.partial is not None and caught.value.partial.content == "Once upon"
    assert [e.text for e in handle.events if e.type == "content"] == ["Once upon"]


def test_connection_dropped_mid_stream_raises_with_partial(driver, fake, config_for):
    fake.stream([chunk({"content": "one "}), chunk({"content": "two "}), chunk({"content": "three"})],
                drop_after=2, done=False)
    with pytest.raises(APIConnectionError) as caught:
        driver.client(config_for(reliability={"provider_retries": 0})).stream("hi")
    assert caught.value.partial is not None and caught.value.partial.content.startswith("one")


def test_server_that_ignores_stream_true_still_works(driver, fake, config_for):
    fake.completion("whole answer")
    handle = driver.client(config_for())
    answer = handle.stream("hi")
    assert answer.content == "whole answer"
    assert [e.text for e in handle.events if e.type == "content"] == ["whole answer"]


def test_stream_is_retried_before_the_first_event(driver, fake, config_for):
    fake.reply(status=503, json={"error": {"message": "busy"}})
    fake.stream([chunk({"content": "ok"}, "stop")])
    handle = driver.client(config_for())
    answer = handle.stream("hi")
    assert answer.content == "ok" and answer.attempt == 2
    assert len(fake.requests) == 2


def test_reasoning_content_surfaces_as_reasoning(driver, fake, config_for):
    fake.stream([chunk({"reasoning_content": "thinking..."}), chunk({"content": "answer"}, "stop")])
    handle = driver.client(config_for())
    answer = handle.stream("hi")
    assert answer.reasoning == "thinking..." and answer.content == "answer"
    assert [e.type for e in handle.events][:2] == ["reasoning", "content"]
