"""Every body framing, interim answers and content codings give the right answer
through both clients, streamed and not (issue 10, classes 1 and 6)."""

from __future__ import annotations

import pytest

from human.errors import APIConnectionError, BadResponseError
from tests.fakes import hostile

FRAMINGS = hostile.FRAMINGS


@pytest.mark.parametrize("framing", FRAMINGS)
def test_chat_reads_every_framing(driver, fake, config_for, framing):
    hostile.framed(fake, hostile.completion_body("framed answer"), framing=framing)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    response = handle.chat("hi")
    assert response.content == "framed answer" and response.attempt == 1


@pytest.mark.parametrize("framing", FRAMINGS)
def test_stream_reads_every_framing(driver, fake, config_for, framing):
    hostile.framed(fake, hostile.sse_body("Hel", "lo"), framing=framing, content_type="text/event-stream")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.stream("hi").content == "Hello"
    assert handle.text() == "Hello"


@pytest.mark.parametrize("codes", [(100,), (103,), (100, 103, 103)])
def test_interim_answers_are_skipped(driver, fake, config_for, codes):
    hostile.interim(fake, hostile.completion_body("after hints"), codes=codes)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.chat("hi").content == "after hints"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_compressed_bodies_are_decoded(driver, fake, config_for, encoding, framing):
    hostile.encoded(fake, hostile.completion_body("squeezed"), encoding, framing=framing)
    hostile.encoded(fake, hostile.sse_body("sque", "ezed"), encoding, framing=framing,
                    content_type="text/event-stream")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.chat("hi").content == "squeezed"
    assert handle.stream("hi").content == "squeezed"
    assert "gzip" in fake.requests[0].headers.get("Accept-Encoding", "")


def test_a_body_shorter_than_its_length_is_a_retried_connection_error(driver, fake, config_for):
    hostile.raw(fake, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"cho",
                then="close")
    fake.completion("second try")
    handle = driver.client(config_for())
    response = handle.chat("hi")
    assert response.content == "second try" and response.attempt == 2


@pytest.mark.parametrize("reply", [
    b"SSH-2.0-OpenSSH_9.2\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd-unknown\r\nContent-Length: 2\r\n\r\n{}",
])
def test_answers_that_are_not_http_are_typed_and_not_retried(driver, fake, config_for, reply):
    hostile.raw(fake, reply, then="close")
    handle = driver.client(config_for(reliability={"provider_retries": 2}))
    with pytest.raises(BadResponseError):
        handle.chat("hi")
    assert len(fake.requests) == 1


def test_a_server_that_closes_without_answering_is_retried(driver, fake, config_for):
    hostile.close_without_answer(fake)
    fake.completion("ok")
    handle = driver.client(config_for())
    assert handle.chat("hi").attempt == 2


def test_the_last_failure_is_a_connection_error_when_retries_run_out(driver, fake, config_for):
    hostile.close_without_answer(fake)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    with pytest.raises(APIConnectionError, match="without answering"):
        handle.chat("hi")


def test_a_gzip_transfer_coding_is_undone(driver, fake, config_for):
    import gzip

    data = gzip.compress(hostile.completion_body("transfer-coded"))
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)
    hostile.raw(fake, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                + chunked)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.chat("hi").content == "transfer-coded"
