"""Deadlines are deadlines (issue 10, class 1): first_byte holds against trickled
headers, idle against a stalled body, total against a body that never ends, in every
framing, through both clients, streamed and not. The error names the limit and its
configured value. Margins are generous: the machine is a loaded 2-core one."""

from __future__ import annotations

import time

import pytest

from human.errors import APITimeoutError
from tests.fakes import hostile
from tests.fakes.hostile import _head

SLACK = 1.5  # seconds past a limit still accepted (scheduling on a busy machine)


def timed_failure(call):
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as caught:
        call()
    return caught.value, time.monotonic() - started


def run(handle, method):
    return handle.chat("hi") if method == "chat" else handle.stream("hi")


@pytest.mark.parametrize("method", ["chat", "stream"])
def test_trickled_headers_stop_at_first_byte(driver, fake, config_for, method):
    hostile.trickle_head(fake, interval=0.1)  # about 80 header bytes: eight seconds
    handle = driver.client(config_for(timeouts={"first_byte": 0.6, "idle": 5, "total": 30},
                                      reliability={"provider_retries": 0}))
    error, elapsed = timed_failure(lambda: run(handle, method))
    assert error.kind == "first_byte" and error.seconds == 0.6
    assert "first_byte=0.6s" in str(error) and "timeouts.first_byte" in str(error)
    assert 0.5 <= elapsed < 0.6 + SLACK
    assert len(fake.requests) == 1


@pytest.mark.parametrize("framing", ["length", "chunked", "close", "http10"])
@pytest.mark.parametrize("method", ["chat", "stream"])
def test_an_endless_body_stops_at_total(driver, fake, config_for, framing, method):
    kind = "application/json" if method == "chat" else "text/event-stream"
    piece = b" " if method == "chat" else b": keep-alive\n\n"
    hostile.endless(fake, framing=framing, interval=0.1, content_type=kind, piece=piece)
    handle = driver.client(config_for(timeouts={"first_byte": 5, "idle": 0.5, "total": 1.2},
                                      reliability={"provider_retries": 0}))
    error, elapsed = timed_failure(lambda: run(handle, method))
    assert error.kind == "total" and error.seconds == 1.2 and "total=1.2s" in str(error)
    assert 1.1 <= elapsed < 1.2 + SLACK


@pytest.mark.parametrize("framing", ["chunked", "close", "http10"])
def test_an_endless_stream_of_events_stops_at_total_with_the_partial_answer(driver, fake, config_for, framing):
    event = hostile.sse_body("tick", finish=None, done=False)
    hostile.endless(fake, framing=framing, interval=0.1, content_type="text/event-stream", piece=event)
    handle = driver.client(config_for(timeouts={"idle": 0.5, "total": 1.0}, reliability={"provider_retries": 0}))
    error, elapsed = timed_failure(lambda: handle.stream("hi"))
    assert error.kind == "total" and elapsed < 1.0 + SLACK
    assert error.partial is not None and (error.partial.content or "").startswith("ticktick")


@pytest.mark.parametrize("framing", ["length", "chunked", "close", "http10"])
@pytest.mark.parametrize("method", ["chat", "stream"])
def test_a_stalled_body_stops_at_idle(driver, fake, config_for, framing, method):
    kind = "application/json" if method == "chat" else "text/event-stream"
    first = b'{"choi' if method == "chat" else hostile.sse_body("partial", finish=None, done=False)
    headers = {"Content-Type": kind}
    version = "HTTP/1.1"
    if framing == "length":
        headers["Content-Length"] = "1000"
    elif framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        first = b"%x\r\n%s\r\n" % (len(first), first)
    elif framing == "close":
        headers["Connection"] = "close"
    else:
        version = "HTTP/1.0"
    hostile.raw(fake, _head(200, headers, version=version) + first, 10.0, then="close")
    handle = driver.client(config_for(timeouts={"first_byte": 5, "idle": 0.5, "total": 30},
                                      reliability={"provider_retries": 0}))
    error, elapsed = timed_failure(lambda: run(handle, method))
    assert error.kind == "idle" and error.seconds == 0.5 and "idle=0.5s" in str(error)
    assert 0.4 <= elapsed < 0.5 + SLACK


def test_total_counts_from_the_start_of_the_call(driver, fake, config_for):
    hostile.raw(fake, 0.5, _head(200, {"Content-Type": "application/json", "Content-Length": "100"}), 0.4, b"{",
                0.4, b" ", 5.0, then="close")
    handle = driver.client(config_for(timeouts={"first_byte": 5, "idle": 3, "total": 1.0},
                                      reliability={"provider_retries": 0}))
    error, elapsed = timed_failure(lambda: handle.chat("hi"))
    assert error.kind == "total" and 0.9 <= elapsed < 1.0 + SLACK


def test_a_call_timeout_overrides_the_config_and_the_message_says_so(driver, fake, config_for):
    fake.hang(5)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    error, elapsed = timed_failure(lambda: handle.chat("hi", timeout={"first_byte": 0.4}))
    assert error.kind == "first_byte" and error.seconds == 0.4 and elapsed < 0.4 + SLACK
    assert "timeout={'first_byte'" in str(error)


def test_a_timed_out_attempt_is_retried_and_counted(driver, fake, config_for):
    fake.hang(3)
    fake.completion("second")
    handle = driver.client(config_for(timeouts={"first_byte": 0.3}, reliability={"provider_retries": 1}))
    response = handle.chat("hi")
    assert response.content == "second" and response.attempt == 2 and len(driver.slept) == 1


@pytest.mark.parametrize("method", ["chat", "stream"])
def test_idle_counts_from_the_last_byte_not_from_the_start(driver, fake, config_for, method):
    body = hostile.completion_body("slow but steady") if method == "chat" else hostile.sse_body("slow", " steady")
    kind = "application/json" if method == "chat" else "text/event-stream"
    head = _head(200, {"Content-Type": kind, "Content-Length": str(len(body))})
    third = len(body) // 3
    hostile.raw(fake, 0.7, head, 0.35, body[:third], 0.35, body[third : 2 * third], 0.35, body[2 * third :])
    handle = driver.client(config_for(timeouts={"first_byte": 5, "idle": 0.6, "total": 30},
                                      reliability={"provider_retries": 0}))
    assert (run(handle, method).content or "").replace(" ", "") in ("slowbutsteady", "slowsteady")
