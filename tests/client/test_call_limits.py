"""What a call promises about time and about feedback, through both clients: `timeout=`
bounds the whole call (retries and waits included), a name that does not resolve is not
retried, the progress hook sees every send and every wait, and errors name who failed
(issue 11, defects 3, 4 and 5)."""

from __future__ import annotations

import socket
import time

import pytest

from human.core.retry import Send, Sleep
from human.errors import APIConnectionError, APITimeoutError, RateLimitError, ServerError

from .conftest import write_config


def test_timeout_bounds_the_whole_call_not_each_attempt(driver, fake, config_for):
    """Three hanging attempts with timeout=0.6 used to take three times 0.6 s plus the
    waits; now the call ends at 0.6 s with an error that says it was the call's limit."""
    fake.hang(5).as_default()
    client = driver.client(config_for(reliability={"provider_retries": 2}))
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as caught:
        client.chat("hi", timeout=0.6)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5  # generous: the limit is 0.6 s on a loaded 2-core machine
    assert caught.value.kind == "call" and caught.value.seconds == 0.6
    assert "0.6 s" in str(caught.value) and "every attempt and wait included" in str(caught.value)
    assert len(fake.requests) == 1  # the deadline is spent: no second try


def test_a_wait_that_would_outlast_the_timeout_is_not_begun(driver, fake, config_for):
    fake.reply(status=429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "5"})
    client = driver.client(config_for(reliability={"provider_retries": 2}))
    with pytest.raises(RateLimitError):
        client.chat("hi", timeout=2)
    assert driver.slept == []  # before issue 11 it slept 5 s past a 2 s timeout
    assert len(fake.requests) == 1


def test_the_client_timeout_bounds_each_call_too(driver, fake, config_for):
    fake.hang(5).as_default()
    client = driver.client(config_for(reliability={"provider_retries": 1}), timeout=0.5)
    with pytest.raises(APITimeoutError) as caught:
        client.chat("hi")
    assert caught.value.kind == "call" and len(fake.requests) == 1


def test_a_stream_is_bounded_by_the_call_timeout(driver, fake, config_for):
    fake.hang(5).as_default()
    client = driver.client(config_for(reliability={"provider_retries": 2}))
    with pytest.raises(APITimeoutError) as caught:
        client.stream("hi", timeout=0.5)
    assert caught.value.kind == "call" and len(fake.requests) == 1


def test_per_exchange_limits_still_come_from_a_mapping(driver, fake, config_for):
    fake.hang(5)
    fake.completion("second try")
    client = driver.client(config_for(reliability={"provider_retries": 1}))
    answer = client.chat("hi", timeout={"first_byte": 0.3})
    assert answer.content == "second try" and answer.attempt == 2


def test_a_host_that_does_not_resolve_is_tried_once(driver, tmp_path, monkeypatch):
    """A name that does not resolve will not resolve half a second later: one try, not
    three (the "DNS retry storm" of defect 4)."""
    lookups: list[str] = []

    def no_such_host(host, *args, **kwargs):
        lookups.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def connect(address, *args, **kwargs):
        return no_such_host(address[0])

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    monkeypatch.setattr(socket, "create_connection", connect)
    config = write_config(tmp_path, {"default_provider": "mine", "default_model": "m",
                                     "providers": [{"name": "mine", "base_url": "https://nowhere.invalid/v1"}],
                                     "reliability": {"provider_retries": 2}})
    with pytest.raises(APIConnectionError) as caught:
        driver.client(config).chat("hi")
    assert caught.value.reason == "dns" and not caught.value.retryable
    assert "cannot resolve the host" in str(caught.value) and "check base_url" not in str(caught.value)
    assert len(lookups) == 1 and driver.slept == []


def test_progress_sees_each_send_and_each_wait(driver, fake, config_for):
    seen: list[Send | Sleep] = []
    fake.reply(status=429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "2"})
    fake.completion("ok")
    client = driver.client(config_for(reliability={"provider_retries": 2}), progress=seen.append)
    assert client.chat("hi").content == "ok"
    assert [type(action).__name__ for action in seen] == ["Send", "Sleep", "Send"]
    wait = seen[1]
    assert isinstance(wait, Sleep) and wait.seconds == 2 and isinstance(wait.error, RateLimitError)
    assert (wait.attempt, wait.tries) == (2, 3)
    assert [action.attempt for action in seen if isinstance(action, Send)] == [1, 2]


def test_progress_sees_a_stream_s_sends_and_waits(driver, fake, config_for):
    seen: list[Send | Sleep] = []
    fake.reply(status=503, json={"error": {"message": "busy"}})
    fake.stream_text("hello")
    client = driver.client(config_for(reliability={"provider_retries": 1}), progress=seen.append)
    assert client.stream("hi").content == "hello"
    assert [type(action).__name__ for action in seen] == ["Send", "Sleep", "Send"]
    assert isinstance(seen[1].error, ServerError)


def test_a_models_connection_error_names_the_provider(driver, tmp_path):
    """`human models` printed "[?] connection refused …": its errors were never stamped."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = write_config(tmp_path, {"default_provider": "mine", "default_model": "m",
                                     "providers": [{"name": "mine", "base_url": f"http://127.0.0.1:{port}/v1"}]})
    with pytest.raises(APIConnectionError) as caught:
        driver.client(config).models()
    assert str(caught.value).startswith("[mine] connection refused")
