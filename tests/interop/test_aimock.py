"""Interop with aimock (npm @copilotkit/aimock), through `human.Client` and
`human.AsyncClient`, configured by a JSON config file as a user would.

aimock is the closest to OpenAI's shapes of the servers we run (first delta
`{"role":"assistant","content":""}`, usage chunk with `choices: []`, tool-call deltas
with `index`, arguments split over chunks) and it can misbehave on demand: behaviour is
picked by the request's `model` (tests/interop/aimock/fixtures/fixtures.json).
`journal()` shows what our client actually sent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import human
from human.errors import (
    AllAttemptsFailedError,
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadResponseError,
    ContextLengthError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)

from .interop_support import (
    AIMOCK_KEY,
    aimock_config,
    backup_provider,
    content_events,
    journal,
)

pytestmark = pytest.mark.interop

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                       "required": ["city"]},
    },
}
TIME_TOOL = {"name": "get_time", "description": "Local time", "parameters": {"type": "object", "properties": {
    "tz": {"type": "string"}}}}  # the short form: human wraps it in {"type": "function", ...}


@pytest.fixture
def connect(aimock, test_id, write_config, driver):
    """connect(model, **config) -> a client on a config file whose default provider is
    `compatible` with aimock's base_url (backoff 500 ms, 2 retries: the defaults)."""

    def make(model: str = "any-model", **config: Any):
        return driver.client(write_config(aimock_config(aimock, test_id, model, **config)))

    return make


def sent(aimock, test_id) -> list[dict[str, Any]]:
    """The bodies our client sent in this test, oldest first."""
    return [entry["body"] for entry in journal(aimock, test_id)]


# ---- plain chat and streaming ---------------------------------------------------------------


def test_plain_chat(connect, aimock, test_id):
    answer = connect().chat([human.system("Be brief."), human.user("hi")], temperature=0)
    assert answer.content == "Hello from aimock."
    assert answer.finish_reason == "stop"
    assert answer.id.startswith("chatcmpl-")
    assert (answer.provider, answer.model_requested, answer.attempt) == ("compatible", "any-model", 1)
    body = sent(aimock, test_id)[0]
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert body["temperature"] == 0  # 0 is sent as 0
    assert "stream" not in body


def test_plain_chat_with_custom_url_provider(aimock, test_id, write_config, driver):
    name = f"custom:{aimock.base_url}"
    config = write_config({"default_provider": name, "default_model": "any-model",
                           "providers": [{"name": name, "headers": {"X-Test-Id": test_id}}]})
    answer = driver.client(config).chat("ping")
    assert answer.content == "pong"
    assert answer.provider == name
    assert len(journal(aimock, test_id)) == 1


def test_keyless_local_server_gets_no_authorization_header(connect, aimock, test_id):
    connect().chat("hi")
    headers = journal(aimock, test_id)[0]["headers"]
    assert "authorization" not in headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("human/")


def test_stream_plain(connect):
    client = connect()
    answer = client.stream("hi")
    # --chunk-size 8: several content events, and none for the empty first delta
    # ({"role":"assistant","content":""}).
    pieces = content_events(client.events)
    assert len(pieces) >= 2 and all(pieces)
    assert "".join(pieces) == answer.content == "Hello from aimock."
    assert client.types()[-1] == "finish"
    assert client.events[-1].finish_reason == "stop"
    assert answer.finish_reason == "stop" and answer.id.startswith("chatcmpl-")


def test_stream_request_shape(connect, aimock, test_id):
    connect().stream("hi", max_tokens=7)
    body = sent(aimock, test_id)[0]
    assert body["stream"] is True
    assert body["max_tokens"] == 7
    assert "stream_options" not in body  # only where the provider takes it (stream_usage)


def test_stream_reasoning_content(connect):
    client = connect("mock-reasoning")
    answer = client.stream("hi")
    assert "reasoning" in client.types()
    assert answer.reasoning == "The user greets me; answer briefly."
    assert answer.content == "Hi there."
    whole = client.chat("hi")
    assert (whole.reasoning, whole.content) == (answer.reasoning, answer.content)


def test_non_ascii_text_whole(connect):
    assert connect("mock-unicode").chat("hi").content == "Grüße, 世界! 😀👍 — fin."


def test_non_ascii_text_streamed_with_emoji_split_into_surrogate_halves(connect):
    """aimock slices text by UTF-16 code units, so an emoji can arrive as two JSON
    escapes in two chunks ("\\ud83d" then "\\ude00"). Each chunk is valid JSON; the
    client must join the halves, or the answer holds lone surrogates that cannot be
    printed or encoded as UTF-8."""
    client = connect("mock-unicode")
    answer = client.stream("hi")
    assert answer.content == "Grüße, 世界! 😀👍 — fin."
    answer.content.encode("utf-8")
    "".join(content_events(client.events)).encode("utf-8")


# ---- usage ----------------------------------------------------------------------------------


def test_usage_whole(connect):
    answer = connect("mock-usage").chat("hi")
    assert answer.usage == human.Usage(prompt_tokens=11, completion_tokens=7, total_tokens=18)
    assert (answer.id, answer.content) == ("chatcmpl-fixed", "Fixed usage.")


def test_usage_stream_when_the_provider_takes_stream_options(connect, aimock, test_id):
    client = connect("mock-usage", entry={"stream_usage": True})
    answer = client.stream("hi")
    assert sent(aimock, test_id)[0]["stream_options"] == {"include_usage": True}
    # the usage chunk has "choices": [] (OpenAI's shape): one usage event, after the finish
    usage_events = [event for event in client.events if event.type == "usage"]
    assert [event.usage for event in usage_events] == [human.Usage(11, 7, 18)]
    assert client.types().count("finish") == 1
    assert answer.usage == human.Usage(11, 7, 18)
    assert answer.content == "Fixed usage."


def test_usage_stream_not_asked_for(connect):
    client = connect("mock-usage")
    answer = client.stream("hi")
    assert "usage" not in client.types()
    assert answer.usage is None


# ---- tool calls -----------------------------------------------------------------------------


def test_tool_call_whole(connect, aimock, test_id):
    answer = connect("mock-tools").chat("weather in Paris?", tools=[WEATHER_TOOL], tool_choice="auto")
    assert answer.finish_reason == "tool_calls"
    assert answer.content is None
    [call] = answer.tool_calls
    assert (call.id, call.name, call.type) == ("call_weather_1", "get_weather", "function")
    assert call.parsed_arguments() == {"city": "Paris", "unit": "celsius"}
    body = sent(aimock, test_id)[0]
    assert body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == "auto"


def test_tool_call_streamed(connect):
    client = connect("mock-tools")
    answer = client.stream("weather in Paris?", tools=[WEATHER_TOOL])
    types = client.types()
    assert "content" not in types  # the first delta has content null
    start = next(event for event in client.events if event.type == "tool_call_start")
    assert (start.index, start.id, start.name) == (0, "call_weather_1", "get_weather")
    fragments = [event.arguments for event in client.events if event.type == "tool_call_delta"]
    assert len(fragments) >= 2  # arguments split across chunks
    done = [event for event in client.events if event.type == "tool_call_done"]
    assert len(done) == 1 and done[0].tool_call.arguments == "".join(fragments)
    assert types.index("tool_call_start") < types.index("tool_call_delta") < types.index("tool_call_done")
    assert answer.finish_reason == "tool_calls"
    [call] = answer.tool_calls
    assert call.id == "call_weather_1"
    assert call.parsed_arguments() == {"city": "Paris", "unit": "celsius"}


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_parallel_tool_calls(connect, aimock, test_id, streamed):
    client = connect("mock-parallel-tools")
    options = {"tools": [WEATHER_TOOL, TIME_TOOL], "parallel_tool_calls": True}
    answer = client.stream("weather and time", **options) if streamed else client.chat("weather and time", **options)
    assert [(c.id, c.name, c.parsed_arguments()) for c in answer.tool_calls] == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_time", {"tz": "Europe/Paris"}),
    ]
    assert answer.finish_reason == "tool_calls"
    body = sent(aimock, test_id)[0]
    assert body["parallel_tool_calls"] is True
    assert body["tools"][1] == {"type": "function", "function": TIME_TOOL}
    if streamed:
        starts = [(e.index, e.id) for e in client.events if e.type == "tool_call_start"]
        assert starts == [(0, "call_a"), (1, "call_b")]


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_text_plus_tool_call(connect, streamed):
    client = connect("mock-text-and-tool")
    answer = client.stream("hi", tools=[WEATHER_TOOL]) if streamed else client.chat("hi", tools=[WEATHER_TOOL])
    assert answer.content == "Let me check that."
    [call] = answer.tool_calls
    assert (call.id, call.name, call.parsed_arguments()) == ("call_mix_1", "get_weather", {"city": "Oslo"})
    assert answer.finish_reason == "tool_calls"
    if streamed:
        types = client.types()
        assert types.index("content") < types.index("tool_call_start")


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_tool_result_round_trip(connect, aimock, test_id, streamed):
    client = connect("mock-tools")
    ask = client.stream if streamed else client.chat
    conversation: list[dict[str, Any]] = [human.user("weather in Paris?")]
    first = ask(conversation, tools=[WEATHER_TOOL])
    [call] = first.tool_calls
    conversation.append(first.to_message())
    conversation.append(human.tool_result(call.id, {"temp_c": 21}, name=call.name))
    second = ask(conversation, tools=[WEATHER_TOOL])
    assert second.content == "It is 21 degrees in Paris."
    assert second.tool_calls == ()
    assert second.finish_reason == "stop"
    messages = sent(aimock, test_id)[1]["messages"]
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_weather_1", "type": "function",
         "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "celsius"},
                                                                     separators=(",", ":"))}}]}
    assert messages[2] == {"role": "tool", "tool_call_id": "call_weather_1", "content": '{"temp_c": 21}',
                           "name": "get_weather"}


def test_parallel_tool_results_round_trip(connect):
    client = connect("mock-parallel-tools")
    conversation: list[dict[str, Any]] = [human.user("weather and time")]
    first = client.chat(conversation, tools=[WEATHER_TOOL, TIME_TOOL])
    conversation.append(first.to_message())
    conversation += [human.tool_result(call.id, "ok") for call in first.tool_calls]
    assert client.chat(conversation, tools=[WEATHER_TOOL, TIME_TOOL]).content == "Paris: 21 degrees, 14:05."


# ---- finish_reason length -------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_finish_reason_length(connect, aimock, test_id, streamed):
    client = connect("mock-length")
    answer = client.stream("hi", max_tokens=5) if streamed else client.chat("hi", max_tokens=5)
    assert answer.finish_reason == "length"
    assert answer.content == "Truncated by max_tokens"
    assert sent(aimock, test_id)[0]["max_tokens"] == 5
    if streamed:
        assert [e.finish_reason for e in client.events if e.type == "finish"] == ["length"]
    else:
        assert answer.usage == human.Usage(12, 5, 17)


# ---- URL rule -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/v1/", "/v1//", "", "/v1/chat/completions"])
def test_base_url_spellings(aimock, test_id, write_config, driver, suffix):
    """aimock answers 404 to a trailing slash; our URL rule drops it. It serves the API
    with and without /v1, and a base URL may already end in /chat/completions."""
    config = aimock_config(aimock, test_id, entry={"base_url": aimock.root + suffix})
    assert driver.client(write_config(config)).chat("ping").content == "pong"
    assert journal(aimock, test_id)[0]["path"] in ("/v1/chat/completions", "/chat/completions")


def test_models_list(connect):
    ids = {model["id"] for model in connect().models()}
    assert {"mock-tools", "mock-usage", "mock-429"} <= ids


# ---- authentication -------------------------------------------------------------------------


def test_401_from_the_server_is_not_retried(connect, driver, aimock, test_id):
    with pytest.raises(AuthenticationError) as caught:
        connect("mock-401").chat("hi")
    error = caught.value
    assert error.status == 401
    assert error.code == "invalid_api_key"
    assert "check the API key" in str(error) and "[compatible/mock-401]" in str(error)
    assert driver.slept == [] and len(journal(aimock, test_id)) == 1


@pytest.mark.parametrize("key", [None, "sk-wrong"], ids=["no-key", "wrong-key"])
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_401_from_a_server_that_requires_a_key(aimock_auth, write_config, driver, key, streamed):
    entry = {"name": "compatible", "base_url": aimock_auth.base_url, **({"api_key": key} if key else {})}
    client = driver.client(write_config({"default_provider": "compatible", "default_model": "any-model",
                                         "providers": [entry]}))
    with pytest.raises(AuthenticationError) as caught:
        client.stream("hi") if streamed else client.chat("hi")
    error = caught.value
    assert (error.status, error.error_type, error.code, error.param) == (
        401, "authentication_error", "invalid_api_key", None)
    assert "Invalid API key" in str(error) and "check the API key" in str(error)
    if key:
        assert key not in str(error)
    assert driver.slept == []


@pytest.mark.parametrize("where", ["config", "argument"])
def test_right_key_is_accepted(aimock_auth, write_config, driver, where):
    entry = {"name": "compatible", "base_url": aimock_auth.base_url}
    if where == "config":
        entry["api_key"] = AIMOCK_KEY
    config = write_config({"default_provider": "compatible", "default_model": "any-model", "providers": [entry]})
    client = driver.client(config, **({"api_key": AIMOCK_KEY} if where == "argument" else {}))
    assert client.chat("hi").content == "Hello from aimock."
    assert client.stream("ping").content == "pong"


def test_403_permission_denied(connect, driver):
    with pytest.raises(PermissionDeniedError) as caught:
        connect("mock-403").chat("hi")
    assert caught.value.status == 403 and caught.value.code == "model_not_allowed"
    assert driver.slept == []


# ---- 429 and Retry-After --------------------------------------------------------------------


def test_429_retry_after_is_honoured_and_recovers(connect, driver, aimock, test_id):
    """The first answer is 429 with Retry-After: 1, the next one succeeds."""
    client = connect("mock-429-once", reliability={"retry_budget_ms": 5000})
    answer = client.chat("hi")
    assert answer.content == "Recovered after a 429."
    assert answer.attempt == 2
    assert driver.slept == [1.0]
    assert [entry["response"]["status"] for entry in journal(aimock, test_id)] == [429, 200]


def test_429_retry_after_is_honoured_and_recovers_streaming(connect, driver):
    client = connect("mock-429-once")
    answer = client.stream("hi")
    assert answer.content == "Recovered after a 429." and answer.attempt == 2
    assert driver.slept == [1.0]


def test_429_that_never_clears_waits_retry_after_each_time(connect, driver, aimock, test_id):
    with pytest.raises(AllAttemptsFailedError) as caught:
        connect("mock-429").chat("hi")
    attempts = caught.value.attempts
    assert len(attempts) == 3  # provider_retries 2
    assert all(isinstance(a.error, RateLimitError) and a.error.retry_after == 2.0 for a in attempts)
    assert isinstance(caught.value.last, RateLimitError)
    assert caught.value.last.code == "rate_limit_exceeded"
    assert driver.slept == [2.0, 2.0]  # the server's Retry-After, not our backoff
    assert len(journal(aimock, test_id)) == 3


def test_429_retry_budget_too_small_gives_up_without_waiting(connect, driver, aimock, test_id):
    """Waiting Retry-After (2 s) would pass retry_budget_ms (1.5 s): the 429 is raised as is."""
    with pytest.raises(RateLimitError) as caught:
        connect("mock-429", reliability={"retry_budget_ms": 1500}).chat("hi")
    assert caught.value.retry_after == 2.0
    assert driver.slept == []
    assert len(journal(aimock, test_id)) == 1


def test_429_falls_back_to_another_provider_that_recovers(aimock, test_id, write_config, driver):
    config = aimock_config(aimock, test_id, "mock-429", providers=[backup_provider(aimock, test_id)],
                           reliability={"provider_retries": 1, "fallback_providers": ["backup"]})
    answer = driver.client(write_config(config)).chat("hi")
    assert answer.content == "Served by the backup provider."
    assert (answer.provider, answer.attempt) == ("backup", 3)
    assert driver.slept == [2.0]
    contexts = [entry["headers"].get("x-aimock-context") for entry in journal(aimock, test_id)]
    assert contexts == [None, None, "backup"]


def test_429_asking_for_longer_than_the_cap_moves_on_at_once(aimock, test_id, write_config, driver):
    """Retry-After: 120 is over max_retry_after_ms (60 s by default): no wait, next provider."""
    config = aimock_config(aimock, test_id, "mock-429-long", providers=[backup_provider(aimock, test_id)],
                           reliability={"fallback_providers": ["backup"]})
    answer = driver.client(write_config(config)).chat("hi")
    assert (answer.provider, answer.attempt, answer.content) == ("backup", 2, "Served by the backup provider.")
    assert driver.slept == []


def test_429_asking_for_longer_than_the_cap_without_fallback(connect, driver):
    with pytest.raises(RateLimitError) as caught:
        connect("mock-429-long").chat("hi")
    assert caught.value.retry_after == 120.0
    assert driver.slept == []


def test_429_quota_exhausted_is_not_retried(connect, driver, aimock, test_id):
    with pytest.raises(RateLimitError) as caught:
        connect("mock-429-quota").chat("hi")
    assert caught.value.quota_exhausted
    assert "out of quota" in str(caught.value)
    assert driver.slept == [] and len(journal(aimock, test_id)) == 1


# ---- 5xx ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model,status", [("mock-500", 500), ("mock-503", 503)])
def test_5xx_is_retried_with_backoff_then_reported(connect, driver, model, status):
    with pytest.raises(AllAttemptsFailedError) as caught:
        connect(model, reliability={"provider_backoff_ms": 400}).chat("hi")
    assert [a.error.status for a in caught.value.attempts] == [status] * 3
    assert all(isinstance(a.error, ServerError) for a in caught.value.attempts)
    assert driver.slept == [0.2, 0.4]  # equal jitter with random() == 0: half of 400 ms, then of 800 ms
    assert "all 3 attempts failed" in str(caught.value)


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_503_once_then_recovers(connect, driver, streamed):
    client = connect("mock-503-once", reliability={"provider_backoff_ms": 400})
    answer = client.stream("hi") if streamed else client.chat("hi")
    assert (answer.content, answer.attempt) == ("Recovered after a 503.", 2)
    assert driver.slept == [0.2]


def test_503_falls_back_to_another_provider(aimock, test_id, write_config, driver):
    config = aimock_config(aimock, test_id, "mock-503", providers=[backup_provider(aimock, test_id)],
                           reliability={"provider_retries": 0, "fallback_providers": ["backup"]})
    answer = driver.client(write_config(config)).stream("hi")
    assert (answer.provider, answer.attempt, answer.content) == ("backup", 2, "Served by the backup provider.")


# ---- 400 context length ---------------------------------------------------------------------


def test_context_length_error(connect, driver, aimock, test_id):
    with pytest.raises(ContextLengthError) as caught:
        connect("mock-400").chat("a long prompt " * 50)
    error = caught.value
    assert (error.status, error.code, error.param) == (400, "context_length_exceeded", "messages")
    assert "maximum context length" in str(error)
    assert driver.slept == [] and len(journal(aimock, test_id)) == 1


def test_context_length_error_moves_to_the_model_fallback(connect, driver):
    client = connect("mock-400", reliability={"model_fallbacks": {"mock-400": ["mock-usage"]}})
    answer = client.chat("hi")
    assert (answer.content, answer.model_requested, answer.attempt) == ("Fixed usage.", "mock-usage", 2)
    assert driver.slept == []


# ---- broken streams and bodies --------------------------------------------------------------


def test_stream_truncated_before_any_content_is_retried(connect, driver, aimock, test_id):
    """mock-truncate: the role chunk, then the connection is cut (no [DONE]). Nothing
    reached the caller, so the stream is retried like any connection failure."""
    with pytest.raises(AllAttemptsFailedError) as caught:
        connect("mock-truncate", reliability={"provider_backoff_ms": 400}).stream("hi")
    assert all(isinstance(a.error, APIConnectionError) for a in caught.value.attempts)
    assert len(caught.value.attempts) == 3 and driver.slept == [0.2, 0.4]
    assert len(journal(aimock, test_id)) == 3


def test_stream_truncated_after_content_raises_with_the_partial_answer(connect, driver, aimock, test_id):
    """mock-truncate-late: two content chunks, then the connection is cut (no [DONE]).
    Text already reached the caller: no retry, an error carrying what arrived."""
    client = connect("mock-truncate-late")
    with pytest.raises(APIConnectionError) as caught:
        client.stream("hi")
    assert "".join(content_events(client.events)) == "This streamed answer"
    assert caught.value.partial is not None
    assert caught.value.partial.content == "This streamed answer"
    assert caught.value.partial.finish_reason is None
    assert driver.slept == [] and len(journal(aimock, test_id)) == 1


def test_stream_mid_stream_disconnect(connect, driver, aimock, test_id):
    """mock-disconnect: 5-character chunks every 200 ms, hang-up after 500 ms."""
    client = connect("mock-disconnect")
    with pytest.raises(APIConnectionError) as caught:
        client.stream("hi")
    error = caught.value
    assert not isinstance(error, APITimeoutError)
    received = "".join(content_events(client.events))
    assert received and "This answer is slow and the server hangs up".startswith(received)
    assert error.partial is not None and error.partial.content == received
    assert "closed the connection" in str(error)
    assert driver.slept == [] and len(journal(aimock, test_id)) == 1


def test_disconnect_fixture_is_whole_without_streaming(connect):
    assert connect("mock-disconnect").chat("hi").content.endswith("hangs up in the middle of it.")


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_malformed_200_body(connect, driver, streamed):
    """HTTP 200, application/json, body `{malformed json: <<<chaos>>>` (also when a
    stream was asked for)."""
    client = connect("mock-malformed")
    with pytest.raises(BadResponseError) as caught:
        client.stream("hi", retries=0) if streamed else client.chat("hi", retries=0)
    error = caught.value
    assert error.status == 200
    assert "not valid JSON" in str(error)
    assert "{malformed json" in error.body_preview
    assert not error.retryable and driver.slept == []


# ---- timeouts -------------------------------------------------------------------------------


def test_slow_stream_under_the_idle_timeout(connect):
    """500 ms between chunks, idle timeout 2 s: completes."""
    client = connect("mock-slow")
    answer = client.stream("hi", timeout={"idle": 2})
    assert answer.content == "Slow but complete answer."
    assert len(content_events(client.events)) >= 4


def test_slow_stream_over_the_idle_timeout(connect, driver):
    """500 ms between chunks, idle timeout 0.2 s: APITimeoutError(kind="idle"), never a hang."""
    with pytest.raises(APITimeoutError) as caught:
        connect("mock-slow").stream("hi", timeout={"idle": 0.2}, retries=0)
    assert caught.value.kind == "idle"
    assert caught.value.seconds == pytest.approx(0.2)
    assert "idle" in str(caught.value)


def test_slow_stream_over_the_idle_timeout_is_retried_before_the_first_event(connect, driver):
    with pytest.raises(AllAttemptsFailedError) as caught:
        connect("mock-slow", reliability={"provider_retries": 1}).stream("hi", timeout={"idle": 0.2})
    assert [getattr(a.error, "kind", None) for a in caught.value.attempts] == ["idle", "idle"]
    assert len(driver.slept) == 1


def test_idle_timeout_from_the_config_file(connect):
    client = connect("mock-slow", entry={"timeouts": {"idle": 0.2}}, reliability={"provider_retries": 0})
    with pytest.raises(APITimeoutError) as caught:
        client.stream("hi")
    assert caught.value.kind == "idle"


# ---- circuit breaker ------------------------------------------------------------------------


def test_client_errors_do_not_open_the_circuit_breaker(connect, aimock, test_id):
    """Prompts that are too long (400 context length) say nothing about the provider's
    health: after `threshold` of them, a normal request must still be sent."""
    client = connect("mock-400", reliability={"circuit_breaker": {"threshold": 2, "recovery_s": 60}})
    for _ in range(3):
        with pytest.raises(ContextLengthError):
            client.chat("a long prompt")
    assert client.chat("ping", model="any-model").content == "pong"
    assert len(journal(aimock, test_id)) == 4


def test_server_errors_open_the_circuit_breaker(connect, aimock, test_id):
    client = connect("mock-503", reliability={"provider_retries": 0,
                                               "circuit_breaker": {"threshold": 2, "recovery_s": 60}})
    for _ in range(2):
        with pytest.raises(ServerError):
            client.chat("hi")
    with pytest.raises(human.CircuitOpenError):
        client.chat("ping", model="any-model")
    assert len(journal(aimock, test_id)) == 2  # the third call was not sent
