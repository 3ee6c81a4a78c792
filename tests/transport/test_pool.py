"""Pool health (issue 10, class 3): a connection with unread bytes or closed by the
server is never reused, and a reused connection that fails before any response byte
is retried once on a fresh one, transparently, in both clients."""

from __future__ import annotations

import time

from tests.fakes import hostile

STALE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(hostile.completion_body("STALE")), hostile.completion_body("STALE"))


def test_bytes_after_a_complete_response_are_never_the_next_answer(driver, fake, config_for):
    hostile.with_extra(fake, hostile.completion_body("first"), STALE)
    fake.completion("second")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.chat("hi").content == "first"
    second = handle.chat("hi")
    assert second.content == "second" and second.attempt == 1
    assert fake.connections == 2


def test_bytes_that_arrive_while_the_connection_is_idle_retire_it(driver, fake, config_for):
    hostile.with_extra(fake, hostile.completion_body("first"), STALE, delay=0.05)
    fake.completion("second")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.chat("hi").content == "first"
    time.sleep(0.3)  # the server writes its stray answer while the connection sits in the pool
    assert handle.chat("hi").content == "second"
    assert fake.connections == 2


def test_a_connection_the_server_closed_while_idle_is_not_reused(driver, fake, config_for):
    hostile.raw(fake, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(hostile.completion_body("one")), hostile.completion_body("one")), 0.05, then="close")
    fake.completion("two")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.chat("hi").content == "one"
    time.sleep(0.3)  # the server's idle timeout passes
    response = handle.chat("hi")
    assert response.content == "two" and response.attempt == 1


def test_a_reused_connection_dropped_before_any_byte_is_retried_once_transparently(driver, fake, config_for):
    fake.completion("one")
    hostile.close_without_answer(fake)  # the server drops the kept-alive connection as the request arrives
    fake.completion("two")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.chat("hi").content == "one"
    response = handle.chat("hi")
    assert response.content == "two" and response.attempt == 1  # not a retry the caller sees
    assert len(fake.requests) == 3 and fake.connections == 2


def test_a_fresh_connection_that_fails_is_not_retried_behind_the_callers_back(driver, fake, config_for):
    hostile.close_without_answer(fake)
    fake.completion("never read")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    try:
        handle.chat("hi")
    except Exception as exc:  # noqa: BLE001 - the type is checked below
        assert type(exc).__name__ == "APIConnectionError"
    assert len(fake.requests) == 1


def test_a_body_not_read_to_its_end_is_never_reused(driver, fake, config_for):
    fake.stream([{"choices": [{"index": 0, "delta": {"content": "a"}}]}] * 3, delay=0.05)
    fake.completion("after")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    stream = handle.client.stream("hi")
    if driver.is_async:
        async def first_then_close():
            iterator = stream.__aiter__()
            await iterator.__anext__()
            await stream.aclose()

        driver.run(first_then_close())
    else:
        next(iter(stream))
        stream.close()
    assert handle.chat("hi").content == "after"
    assert fake.connections == 2


def test_keep_alive_reuses_one_connection_for_clean_answers(driver, fake, config_for):
    for framing in ("length", "chunked", "http10ka", "length"):
        hostile.framed(fake, hostile.completion_body(framing), framing=framing)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert [handle.chat("hi").content for _ in range(4)] == ["length", "chunked", "http10ka", "length"]
    assert fake.connections == 2  # HTTP/1.0 keep-alive is honoured, but its server closed after
