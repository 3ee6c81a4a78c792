"""Interop with the LiteLLM proxy (PyPI litellm[proxy]) serving mock models, through
`human.Client` and `human.AsyncClient`, configured as a user would: the `litellm`
registry name with its base_url overridden to the proxy (and `compatible` once).

Every deviation of LiteLLM's from OpenAI's shapes listed in
shared/research/real-servers.md that the client must tolerate has a test here; each
test's docstring names it. Behaviour is picked by the request's `model`
(tests/interop/litellm/config.yaml).
"""

from __future__ import annotations

from typing import Any

import pytest

import human
from human.errors import (
    AllAttemptsFailedError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    RateLimitError,
    ServerError,
)

from .interop_support import LITELLM_KEY, backup_provider, content_events, litellm_config

pytestmark = pytest.mark.interop

HELLO = "Hello from the LiteLLM mock server."
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def connect(litellm, write_config, driver):
    """connect(model, **config) -> a client whose default provider is `litellm` (the
    registry name) with base_url http://127.0.0.1:4011 and the proxy's key."""

    def make(model: str = "mock-gpt", **config: Any):
        return driver.client(write_config(litellm_config(litellm, model, **config)))

    return make


# ---- plain chat -----------------------------------------------------------------------------


def test_plain_chat(connect):
    """Also: ~20 extra `x-litellm-*` response headers are simply ignored."""
    answer = connect().chat([human.system("Be brief."), human.user("hi")], temperature=0, max_tokens=16)
    assert answer.content == HELLO
    assert answer.finish_reason == "stop"
    assert answer.id.startswith("chatcmpl-")
    assert (answer.provider, answer.model_requested, answer.model, answer.attempt) == (
        "litellm", "mock-gpt", "mock-gpt", 1)


def test_usage_whole(connect):
    """LiteLLM's non-stream mock usage is hard-coded 10/20/30, whatever the prompt."""
    assert connect().chat("hi").usage == human.Usage(prompt_tokens=10, completion_tokens=20, total_tokens=30)


def test_compatible_provider_on_the_v1_route(litellm, write_config, driver):
    config = write_config({"default_provider": "compatible", "default_model": "mock-gpt", "providers": [
        {"name": "compatible", "base_url": litellm.root + "/v1", "api_key": LITELLM_KEY}]})
    answer = driver.client(config).chat("hi")
    assert (answer.content, answer.provider) == (HELLO, "compatible")


def test_key_from_the_environment_variable_the_config_names(litellm, write_config, driver, monkeypatch):
    monkeypatch.setenv("MY_PROXY_KEY", LITELLM_KEY)
    config = litellm_config(litellm, entry={"api_key_env": "MY_PROXY_KEY"})
    del config["providers"][0]["api_key"]
    assert driver.client(write_config(config)).chat("hi").content == HELLO


def test_key_from_the_registry_environment_variable(litellm, write_config, driver, monkeypatch):
    """The `litellm` registry row reads LITELLM_API_KEY."""
    monkeypatch.setenv("LITELLM_API_KEY", LITELLM_KEY)
    config = litellm_config(litellm)
    del config["providers"][0]["api_key"]
    client = driver.client(write_config(config))
    assert client.client.target().key_source == "env LITELLM_API_KEY"
    assert client.chat("hi").content == HELLO


@pytest.mark.parametrize("suffix", ["/", "/v1/", "//"])
def test_trailing_slash_base_url_avoids_the_307(litellm, write_config, driver, suffix):
    """LiteLLM answers POST /chat/completions/ with a 307 redirect; our URL rule drops
    trailing slashes, so no redirect is ever met."""
    config = litellm_config(litellm, entry={"base_url": litellm.root + suffix})
    client = driver.client(write_config(config))
    assert client.chat("hi").content == HELLO
    assert client.stream("hi").content == HELLO


def test_connection_is_reused_after_a_content_length_body(connect, driver):
    """LiteLLM (uvicorn) sends non-stream answers with Content-Length, not chunked. Each
    call on one client must go out once: attempt 1, nothing slept, nothing re-sent."""
    client = connect()
    attempts = [client.chat("hi").attempt for _ in range(4)]
    attempts.append(client.stream("hi").attempt)
    attempts.append(client.chat("hi").attempt)
    assert attempts == [1] * 6
    assert driver.slept == []


def test_models_list(connect):
    ids = {model["id"] for model in connect().models()}
    assert {"mock-gpt", "mock-tools", "mock-429"} <= ids


# ---- streaming ------------------------------------------------------------------------------


def test_stream_plain(connect):
    """First delta carries role and content together ({"role":"assistant","content":"Hel"});
    3-character chunks; `finish_reason` is absent (not null) until the last chunk."""
    client = connect(entry={"stream_usage": False})
    answer = client.stream("hi")
    pieces = content_events(client.events)
    assert pieces[0] == "Hel"
    assert "".join(pieces) == answer.content == HELLO
    assert [e.finish_reason for e in client.events if e.type == "finish"] == ["stop"]
    assert client.types()[-1] == "finish"
    assert answer.finish_reason == "stop" and answer.usage is None
    assert answer.id.startswith("chatcmpl-")


def test_stream_usage_chunk_with_a_choice(connect):
    """With include_usage, LiteLLM's last chunk is `choices: [{"index":0,"delta":{}}]`
    plus usage (OpenAI sends `choices: []`) and `completion_tokens_details.text_tokens`:
    one usage event, no second finish, no empty content."""
    client = connect(entry={"stream_usage": True})
    answer = client.stream("hi")
    assert client.types()[-2:] == ["finish", "usage"]
    assert client.types().count("finish") == 1
    [event] = [e for e in client.events if e.type == "usage"]
    usage = event.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert answer.usage == usage
    assert answer.content == HELLO


def test_stream_usage_differs_from_whole_usage(connect):
    """Non-stream usage is the mock's fixed 10/20/30; in a stream LiteLLM counts with a
    tokenizer. Reported as the server sent them; never recomputed."""
    client = connect(entry={"stream_usage": True})
    whole, streamed = client.chat("hi").usage, client.stream("hi").usage
    assert whole == human.Usage(10, 20, 30)
    assert streamed is not None and streamed != whole


def test_stream_non_ascii(connect):
    client = connect("mock-unicode")
    assert client.stream("hi").content == client.chat("hi").content == "Grüße, 世界! 😀👍 — fin."


# ---- tool calls -----------------------------------------------------------------------------


def test_tool_call_with_content_and_finish_stop(connect):
    """`mock_tool_calls`: the message has content "This is a mock request" AND tool_calls,
    with finish_reason "stop". The tool calls win: finish_reason "tool_calls", text kept."""
    answer = connect("mock-tools").chat("weather?", tools=[WEATHER_TOOL])
    assert answer.finish_reason == "tool_calls"
    assert answer.content == "This is a mock request"
    [call] = answer.tool_calls
    assert (call.id, call.name) == ("call_mock_1", "get_weather")
    assert call.parsed_arguments() == {"city": "Paris", "unit": "celsius"}


def test_parallel_tool_calls(connect):
    answer = connect("mock-parallel-tools").chat("weather and time?", tools=[WEATHER_TOOL])
    assert [(c.id, c.name, c.parsed_arguments()) for c in answer.tool_calls] == [
        ("call_mock_a", "get_weather", {"city": "Paris"}),
        ("call_mock_b", "get_time", {"tz": "Europe/Paris"}),
    ]
    assert answer.finish_reason == "tool_calls"


def test_spec_shaped_tool_call(connect):
    """A dict mock: content null, finish_reason "tool_calls", fixed usage."""
    answer = connect("mock-tools-dict").chat("weather?", tools=[WEATHER_TOOL])
    assert answer.content is None and answer.finish_reason == "tool_calls"
    assert [(c.id, c.parsed_arguments()) for c in answer.tool_calls] == [("call_abc123", {"city": "Paris"})]
    assert answer.usage == human.Usage(42, 9, 51)
    assert answer.id == "chatcmpl-tools-fixed"


def test_streamed_mock_tool_calls_are_dropped_by_the_proxy(connect):
    """LiteLLM drops `mock_tool_calls` when streaming: the caller gets the text only
    (the server's behaviour, passed through as sent)."""
    client = connect("mock-tools")
    answer = client.stream("weather?", tools=[WEATHER_TOOL])
    assert answer.content == "This is a mock request"
    assert answer.tool_calls == () and answer.finish_reason == "stop"
    assert "tool_call_start" not in client.types()


def test_streamed_dict_mock_is_a_500(connect, driver):
    """`stream: true` on a dict mock → HTTP 500 `'ModelResponse' object has no attribute
    '__aiter__'`: a ServerError, retried, then reported with every attempt."""
    with pytest.raises(AllAttemptsFailedError) as caught:
        connect("mock-tools-dict", reliability={"provider_backoff_ms": 400}).stream("hi")
    assert [a.error.status for a in caught.value.attempts] == [500, 500, 500]
    assert "__aiter__" in str(caught.value.last)
    assert driver.slept == [0.2, 0.4]


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_tool_result_round_trip(connect, streamed):
    """The assistant message with tool_calls and the tool result, as `human` builds
    them, are accepted by LiteLLM's request validation."""
    client = connect("mock-tools")
    first = client.chat("weather in Paris?", tools=[WEATHER_TOOL])
    conversation = [human.user("weather in Paris?"), first.to_message()]
    conversation += [human.tool_result(call.id, {"temp_c": 21}) for call in first.tool_calls]
    ask = client.stream if streamed else client.chat
    second = ask(conversation, model="mock-gpt", tools=[WEATHER_TOOL])
    assert second.content == HELLO and second.finish_reason == "stop"


# ---- finish_reason length -------------------------------------------------------------------


def test_finish_reason_length(connect):
    answer = connect("mock-dict").chat("hi", max_tokens=7)
    assert (answer.content, answer.finish_reason) == ("truncated answer", "length")
    assert answer.usage == human.Usage(11, 7, 18)
    assert answer.id == "chatcmpl-fixed-id"


# ---- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_no_key_is_401(litellm, write_config, driver, streamed):
    """No key: 401 with `"type":"auth_error"`, `"code":"401"` (a string) and `"param":"None"`
    (the string): `param` is read as absent, not shown as "(parameter: None)"."""
    config = litellm_config(litellm)
    del config["providers"][0]["api_key"]
    client = driver.client(write_config(config))
    with pytest.raises(AuthenticationError) as caught:
        client.stream("hi") if streamed else client.chat("hi")
    error = caught.value
    assert (error.status, error.error_type, error.code, error.param) == (401, "auth_error", "401", None)
    assert "No api key passed in" in str(error) and "check the API key" in str(error)
    assert "None" not in str(error)
    assert driver.slept == []


def test_wrong_key_is_400_no_connected_db(connect, litellm, write_config, driver):
    """Without a database LiteLLM cannot look a key up: a wrong key is HTTP 400
    `No connected db.` (type no_db_connection), not 401. It is a BadRequestError: not
    retried, and the server's words are shown."""
    client = driver.client(write_config(litellm_config(litellm, entry={"api_key": "sk-wrong-key-123"})))
    with pytest.raises(BadRequestError) as caught:
        client.chat("hi")
    error = caught.value
    assert not isinstance(error, AuthenticationError)
    assert (error.status, error.error_type, error.code) == (400, "no_db_connection", "400")
    assert "No connected db" in str(error)
    assert "sk-wrong-key-123" not in str(error)
    assert driver.slept == []


# ---- errors ---------------------------------------------------------------------------------


def test_429_without_retry_after_backs_off(connect, driver):
    """429 without Retry-After, `"code":"429"` as a string, type throttling_error:
    retried with our exponential backoff."""
    with pytest.raises(AllAttemptsFailedError) as caught:
        connect("mock-429", reliability={"provider_backoff_ms": 400}).chat("hi")
    errors = [a.error for a in caught.value.attempts]
    assert all(isinstance(e, RateLimitError) for e in errors) and len(errors) == 3
    last = caught.value.last
    assert (last.status, last.code, last.error_type, last.retry_after) == (429, "429", "throttling_error", None)
    assert not last.quota_exhausted
    assert driver.slept == [0.2, 0.4]


def test_429_falls_back_to_another_server(litellm, aimock, test_id, write_config, driver):
    """The proxy keeps answering 429; the fallback provider (aimock) serves the call."""
    config = litellm_config(litellm, "mock-429", reliability={"provider_retries": 1, "provider_backoff_ms": 400,
                                                              "fallback_providers": ["backup"]})
    config["providers"].append(backup_provider(aimock, test_id))
    answer = driver.client(write_config(config)).chat("hi")
    assert (answer.provider, answer.attempt, answer.content) == ("backup", 3, "Served by the backup provider.")
    assert driver.slept == [0.2]


@pytest.mark.parametrize("model", ["mock-500", "mock-upstream-down"])
def test_500_is_retried_then_reported(connect, driver, model):
    with pytest.raises(AllAttemptsFailedError) as caught:
        connect(model, reliability={"provider_retries": 1, "provider_backoff_ms": 400}).chat("hi")
    last = caught.value.last
    assert isinstance(last, ServerError)
    assert (last.status, last.code, last.error_type) == (500, "500", "internal_server_error")
    assert len(caught.value.attempts) == 2 and driver.slept == [0.2]


def test_context_window_exceeded(connect, driver):
    """400 whose only structured hint is `litellm.ContextWindowExceededError` in the message
    (code is "400"): a ContextLengthError, not retried."""
    with pytest.raises(ContextLengthError) as caught:
        connect("mock-context-window").chat("hi")
    assert caught.value.status == 400
    assert "shorten the conversation" in str(caught.value)
    assert driver.slept == []


def test_context_window_exceeded_moves_to_the_model_fallback(connect, driver):
    client = connect("mock-context-window", reliability={"model_fallbacks": {"mock-context-window": ["mock-gpt"]}})
    answer = client.chat("hi")
    assert (answer.content, answer.model_requested, answer.attempt) == (HELLO, "mock-gpt", 2)


def test_content_filter_400_is_a_plain_bad_request(connect, driver):
    with pytest.raises(BadRequestError) as caught:
        connect("mock-content-filter").chat("hi")
    assert not isinstance(caught.value, ContextLengthError)
    assert caught.value.status == 400 and "content_filter_policy" in str(caught.value)
    assert driver.slept == []


def test_unknown_model_is_a_bad_request(connect, driver):
    with pytest.raises(BadRequestError) as caught:
        connect("no-such-model").chat("hi")
    assert "Invalid model name" in str(caught.value)
    assert driver.slept == []


def test_midstream_error_arrives_as_529_before_the_stream(connect, driver):
    """`mock-midstream-error`: the proxy pre-reads the first chunk, so the error is an
    HTTP 529 (a status line without reason phrase) before any SSE: a retryable
    ServerError."""
    client = connect("mock-midstream-error", reliability={"provider_retries": 1, "provider_backoff_ms": 400})
    with pytest.raises(AllAttemptsFailedError) as caught:
        client.stream("hi")
    assert [a.error.status for a in caught.value.attempts] == [529, 529]
    assert all(isinstance(a.error, ServerError) for a in caught.value.attempts)
    assert client.events == []


def test_server_side_timeout_408_is_retryable(connect, driver):
    """`mock-timeout` sleeps 2 s, then answers 408 (litellm.Timeout)."""
    with pytest.raises(ServerError) as caught:
        connect("mock-timeout").chat("hi", retries=0)
    assert caught.value.status == 408 and caught.value.retryable


def test_slow_first_byte_times_out(connect):
    """`mock-slow` answers after 3 s; first_byte 1 s → APITimeoutError(kind="first_byte")."""
    with pytest.raises(APITimeoutError) as caught:
        connect("mock-slow").chat("hi", timeout={"first_byte": 1}, retries=0)
    assert caught.value.kind == "first_byte"
