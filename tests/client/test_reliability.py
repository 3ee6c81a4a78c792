"""Failures through both clients: each asserts the typed error or the recovered answer,
the number of attempts the server saw, and the waits that were asked for (recorded,
never slept)."""

from __future__ import annotations

import socket
from email.utils import formatdate

import pytest

from human.errors import (
    AllAttemptsFailedError,
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadResponseError,
    ContextLengthError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
)

FAST = {"connect": 1, "first_byte": 0.4, "idle": 0.4, "total": 5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def error_body(message: str, type_: str = "server_error", code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "code": code}}


def test_connection_refused_is_a_connection_error_after_retries(driver, config_for, tmp_path):
    from .conftest import write_config

    url = f"http://127.0.0.1:{free_port()}/v1"
    config = write_config(tmp_path, {"default_provider": "compatible", "default_model": "m",
                                     "providers": [{"name": "compatible", "base_url": url}],
                                     "reliability": {"provider_retries": 1}})
    with pytest.raises(AllAttemptsFailedError) as caught:
        driver.client(config).chat("hi")
    assert len(caught.value.attempts) == 2
    assert isinstance(caught.value.last, APIConnectionError)
    assert "connection refused" in str(caught.value.last)
    assert len(driver.slept) == 1


def test_reset_before_the_response_is_retried(driver, fake, config_for):
    fake.reset_connection()
    fake.completion("recovered")
    answer = driver.client(config_for()).chat("hi")
    assert answer.content == "recovered" and answer.attempt == 2
    assert len(fake.requests) == 2


def test_503_three_times_then_200(driver, fake, config_for):
    for _ in range(3):
        fake.reply(status=503, json=error_body("busy"))
    fake.completion("finally")
    answer = driver.client(config_for(reliability={"provider_retries": 3, "provider_backoff_ms": 100})).chat("hi")
    assert answer.content == "finally" and answer.attempt == 4
    assert len(fake.requests) == 4
    assert driver.slept == [0.05, 0.1, 0.2]  # equal jitter with random()=0: half of 0.1, 0.2, 0.4 s


@pytest.mark.parametrize(
    ("headers", "wait"),
    [({"Retry-After": "2"}, 2.0), ({"retry-after-ms": "1500"}, 1.5)],
)
def test_429_waits_as_the_server_asks(driver, fake, config_for, headers, wait):
    fake.reply(status=429, json=error_body("slow down", "rate_limit_error", "rate_limit_exceeded"), headers=headers)
    fake.completion("ok")
    answer = driver.client(config_for()).chat("hi")
    assert answer.content == "ok" and answer.attempt == 2
    assert driver.slept == [wait]


def test_429_with_an_http_date(driver, fake, config_for):
    import time

    fake.reply(status=429, json=error_body("slow down", "rate_limit_error"),
               headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)})
    fake.completion("ok")
    assert driver.client(config_for()).chat("hi").content == "ok"
    assert len(driver.slept) == 1 and 25 <= driver.slept[0] <= 31


def test_429_quota_exhausted_is_not_retried(driver, fake, config_for):
    fake.reply(status=429, json=error_body("You exceeded your current quota", "insufficient_quota",
                                           "insufficient_quota"))
    with pytest.raises(RateLimitError) as caught:
        driver.client(config_for()).chat("hi")
    assert caught.value.quota_exhausted
    assert len(fake.requests) == 1 and driver.slept == []


def test_401_is_not_retried(driver, fake, config_for):
    fake.reply(status=401, json=error_body("Incorrect API key", "invalid_request_error", "invalid_api_key"))
    with pytest.raises(AuthenticationError, match="check the API key"):
        driver.client(config_for()).chat("hi")
    assert len(fake.requests) == 1 and driver.slept == []


def test_500_on_primary_then_success_on_the_fallback(driver, fake, config_for):
    fake.reply(status=500, json=error_body("boom"))
    fake.completion("from backup")
    config = config_for({"timeouts": FAST}, providers=[{"name": "backup", "base_url": fake.url + "/backup/v1"}],
                        reliability={"provider_retries": 0, "fallback_providers": ["backup"]})
    answer = driver.client(config).chat("hi")
    assert (answer.content, answer.provider, answer.attempt) == ("from backup", "backup", 2)
    assert [r.path for r in fake.requests] == ["/v1/chat/completions", "/backup/v1/chat/completions"]
    assert "Authorization" not in fake.requests[1].headers  # the primary's key stays with the primary


def test_context_length_moves_to_the_next_model(driver, fake, config_for):
    fake.reply(status=400, json=error_body("This model's maximum context length is 8 tokens",
                                           "invalid_request_error", "context_length_exceeded"))
    fake.completion("fits now")
    config = config_for(reliability={"model_fallbacks": {"test-model": ["test-model-long"]}})
    answer = driver.client(config).chat("hi")
    assert answer.content == "fits now" and answer.model_requested == "test-model-long"
    assert [r.json["model"] for r in fake.requests] == ["test-model", "test-model-long"]


def test_context_length_without_a_fallback_is_raised_at_once(driver, fake, config_for):
    fake.reply(status=400, json=error_body("too long", "invalid_request_error", "context_length_exceeded"))
    with pytest.raises(ContextLengthError):
        driver.client(config_for()).chat("hi")
    assert len(fake.requests) == 1


def test_truncated_json_is_retried_then_reported(driver, fake, config_for):
    for _ in range(2):
        fake.reply(body=b'{"id": "x", "choices": [{"message": {"content": "hal', content_type="application/json")
    with pytest.raises(AllAttemptsFailedError) as caught:
        driver.client(config_for(reliability={"provider_retries": 1})).chat("hi")
    assert isinstance(caught.value.last, BadResponseError)
    assert "truncated" in str(caught.value.last)
    assert len(fake.requests) == 2


def test_oversized_body_is_refused(driver, fake, config_for):
    fake.reply(body=b'{"pad": "' + b"x" * 5000 + b'"}', content_type="application/json")
    with pytest.raises(ResponseTooLargeError):
        driver.client(config_for(limits={"max_response_bytes": 2048},
                                 reliability={"provider_retries": 0})).chat("hi")


def test_server_that_never_answers_hits_the_first_byte_timeout(driver, fake, config_for):
    fake.hang(3)
    with pytest.raises(APITimeoutError) as caught:
        driver.client(config_for({"timeouts": FAST}, reliability={"provider_retries": 0})).chat("hi")
    assert caught.value.kind == "first_byte"


def test_stalled_stream_ends_with_an_idle_timeout_not_a_hang(driver, fake, config_for):
    fake.stall_after_headers(3, events=[{"choices": [{"index": 0, "delta": {"content": "start"}}]}])
    handle = driver.client(config_for({"timeouts": FAST}, reliability={"provider_retries": 0}))
    with pytest.raises(APITimeoutError) as caught:
        handle.stream("hi")
    assert caught.value.kind == "idle"
    assert caught.value.partial is not None and caught.value.partial.content == "start"


def test_trickling_server_hits_the_total_timeout(driver, fake, config_for):
    fake.trickle(b'{"choices": [{"message": {"content": "' + b"x" * 100 + b'"}}]}', interval=0.1)
    timeouts = {**FAST, "total": 0.8}
    with pytest.raises(APITimeoutError) as caught:
        driver.client(config_for({"timeouts": timeouts}, reliability={"provider_retries": 0})).chat("hi")
    assert caught.value.kind == "total"


def test_per_call_timeout_overrides_the_config(driver, fake, config_for):
    fake.hang(3)
    with pytest.raises(APITimeoutError) as caught:
        driver.client(config_for(reliability={"provider_retries": 0})).chat("hi", timeout={"first_byte": 0.3})
    assert caught.value.kind == "first_byte" and caught.value.seconds == pytest.approx(0.3)


def test_errors_carry_provider_model_status_and_request_id(driver, fake, config_for):
    fake.reply(status=500, json=error_body("boom"), headers={"x-request-id": "req_42"})
    with pytest.raises(ServerError) as caught:
        driver.client(config_for(reliability={"provider_retries": 0})).chat("hi")
    error = caught.value
    assert (error.provider, error.model, error.status, error.request_id) == ("local", "test-model", 500, "req_42")
    assert str(error).startswith("[local/test-model] HTTP 500: boom")


def test_runaway_stream_is_cut_at_the_stream_cap(driver, fake, config_for):
    events = [{"choices": [{"index": 0, "delta": {"content": "x" * 200}}]} for _ in range(50)]
    fake.stream(events)
    handle = driver.client(config_for(limits={"max_stream_bytes": 4096}, reliability={"provider_retries": 0}))
    with pytest.raises(ResponseTooLargeError) as caught:
        handle.stream("hi")
    partial = caught.value.partial  # None when the very first read already passed the cap
    assert partial is None or len(partial.content or "") < 4096
    assert len(fake.requests) == 1
