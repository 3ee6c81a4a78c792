"""Stream end rules (issue 10, class 2), written once in core/stream.py and kept by
both clients: [DONE] ends the stream; a body cut off before finish_reason or [DONE]
is an APIConnectionError with .partial; any `event: error` is a typed error."""

from __future__ import annotations

import time

import pytest

from human.errors import AllAttemptsFailedError, APIConnectionError, BadResponseError
from tests.fakes import hostile


def chunk(text: str, finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


@pytest.mark.parametrize("chunked", [True, False])
def test_done_then_a_held_open_connection_is_a_complete_answer_at_once(driver, fake, config_for, chunked):
    hostile.done_then(fake, hostile.sse_body("all", " here"), then="hold", chunked=chunked)
    fake.completion("next")
    handle = driver.client(config_for(timeouts={"idle": 3}, reliability={"provider_retries": 0}))
    started = time.monotonic()
    assert handle.stream("hi").content == "all here"
    assert time.monotonic() - started < 2.5  # well before idle
    assert handle.chat("hi").content == "next"
    assert fake.connections == 2  # the held connection was not reused


def test_bytes_after_done_are_not_part_of_the_answer(driver, fake, config_for):
    hostile.done_then(fake, hostile.sse_body("final"), then="more")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.stream("hi").content == "final"
    assert handle.text() == "final"


def test_done_and_more_events_in_one_write(driver, fake, config_for):
    fake.stream([chunk("yes"), "data: [DONE]\n\n", chunk("NO"), chunk("NO")], done=False, chunk_bytes=10_000)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.stream("hi").content == "yes"


@pytest.mark.parametrize("drop_with", ["fin", "clean"])
def test_a_stream_cut_before_finish_reason_is_a_connection_error_with_the_partial(driver, fake, config_for,
                                                                                   drop_with):
    events = [chunk("Part"), chunk("ial")]
    if drop_with == "fin":
        fake.stream(events, done=False, drop_after=2, drop_with="fin")
    else:
        fake.stream(events, done=False)  # the body ends cleanly, but the answer did not
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    with pytest.raises(APIConnectionError) as caught:
        handle.stream("hi")
    assert caught.value.partial is not None and caught.value.partial.content == "Partial"
    assert handle.text() == "Partial"


def test_a_finish_reason_without_done_is_a_complete_answer(driver, fake, config_for):
    fake.stream([chunk("done"), chunk("", "stop")], done=False)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    response = handle.stream("hi")
    assert response.content == "done" and response.finish_reason == "stop"


@pytest.mark.parametrize("data", ["upstream overloaded", '{"message": "boom"}', '{"error": "boom"}', "", "[1, 2]",
                                  '{"error": {"message": "boom", "code": 503}}'])
def test_any_error_event_is_a_typed_error(driver, fake, config_for, data):
    lines = "".join(f"data: {line}\n" for line in data.split("\n")) if data else ""
    fake.stream([chunk("so far"), f"event: error\n{lines}\n"], done=False)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    with pytest.raises(BadResponseError) as caught:
        handle.stream("hi")
    assert caught.value.partial is not None and caught.value.partial.content == "so far"
    assert "error inside the stream" in str(caught.value)


def test_an_error_event_before_any_content_may_be_retried(driver, fake, config_for):
    fake.stream(['event: error\ndata: {"error": {"message": "overloaded", "type": "overloaded"}}\n\n'], done=False)
    fake.stream([chunk("ok"), chunk("", "stop")])
    handle = driver.client(config_for(reliability={"provider_retries": 1}))
    assert handle.stream("hi").content == "ok"


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "text/event-stream"])
def test_an_html_page_answering_a_stream_is_not_retried(driver, fake, config_for, content_type):
    page = b"<!doctype html><html><head><title>Sign in</title></head><body>portal</body></html>"
    fake.reply(body=page, content_type=content_type)
    handle = driver.client(config_for(reliability={"provider_retries": 3}))
    with pytest.raises(BadResponseError) as caught:
        handle.stream("hi")
    assert not isinstance(caught.value, AllAttemptsFailedError)
    assert "HTML" in str(caught.value) and not caught.value.retryable
    assert len(fake.requests) == 1


def test_a_json_answer_labelled_as_a_stream_is_read_whole(driver, fake, config_for):
    fake.reply(body=hostile.completion_body("whole answer"), content_type="text/event-stream")
    fake.reply(body=b'{"error": {"message": "model overloaded", "type": "server_error"}}',
               content_type="text/event-stream")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.stream("hi").content == "whole answer" and handle.text() == "whole answer"
    with pytest.raises(BadResponseError, match="model overloaded"):
        handle.stream("hi")


def test_events_labelled_as_json_are_read_as_a_stream(driver, fake, config_for):
    fake.reply(body=hostile.sse_body("mis", "labelled"), content_type="application/json")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.stream("hi").content == "mislabelled"
