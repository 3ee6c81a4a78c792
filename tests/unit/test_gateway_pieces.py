"""The gateway's pure pieces: the model id grammar, request checks and rewrites, the error
answers, budget periods, metrics text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from human.config import Config
from human.errors import (
    AllAttemptsFailedError,
    APIConnectionError,
    APITimeoutError,
    Attempt,
    AuthenticationError,
    ConfigError,
    RateLimitError,
)
from human.gateway.limits import period
from human.gateway.metrics import Metrics
from human.gateway.reply import Failure, failure_from
from human.gateway.request import ChatRequest, Rewrite, parse_request
from human.gateway.settings import routes_from, split_id


@pytest.mark.parametrize(("model_id", "provider", "model"), [
    ("openrouter/meta-llama/llama-3.1-8b", "openrouter", "meta-llama/llama-3.1-8b"),
    ("ollama/llama3:8b", "ollama", "llama3:8b"),
    ("z.ai/glm-4.6", "z.ai", "glm-4.6"),
    ("llama.cpp/any", "llama.cpp", "any"),
    ("kimi_coding/kimi-k2", "kimi_coding", "kimi-k2"),
])
def test_a_model_id_splits_at_the_first_slash(model_id: str, provider: str, model: str) -> None:
    assert split_id(model_id) == (provider, model)


def test_routes_aliases_and_the_default() -> None:
    routes = routes_from(Config({"routes": {
        "models": ["groq/llama-3.1-8b-instant"],
        "aliases": {"local": {"provider": "custom:http://127.0.0.1:11434/v1", "model": "llama3.2"},
                    "fast": "groq/llama-3.1-8b-instant"}}}))
    assert list(routes) == ["groq/llama-3.1-8b-instant", "local", "fast"]
    assert routes["local"].provider == "custom:http://127.0.0.1:11434/v1"
    assert routes["fast"].model == "llama-3.1-8b-instant"
    assert list(routes_from(Config({"default_provider": "groq", "default_model": "m"}))) == ["m"]
    with pytest.raises(ConfigError, match="nothing to serve"):
        routes_from(Config({}))
    with pytest.raises(ConfigError, match="both in routes.models and routes.aliases"):
        routes_from(Config({"routes": {"models": ["a/b"], "aliases": {"a/b": "c/d"}}}))


def request(body: dict[str, Any]) -> ChatRequest:
    parsed = parse_request(json.dumps(body).encode())
    assert isinstance(parsed, ChatRequest)
    return parsed


def test_bad_requests_get_a_400_that_names_the_field() -> None:
    for raw, param in ((b"[1]", None), (b'{"messages": [{}]}', "model"), (b'{"model": "m"}', "messages"),
                       (b'{"model": "m", "messages": [{}], "stream": "yes"}', "stream")):
        failure = parse_request(raw)
        assert isinstance(failure, Failure) and failure.status == 400 and failure.param == param


def test_the_caller_bytes_go_upstream_when_nothing_changes() -> None:
    parsed = request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
    assert Rewrite("m", "max_tokens", frozenset(), {}).apply(parsed) is parsed.raw


def test_rewrites_model_token_field_profile_and_stream_usage() -> None:
    parsed = request({"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5,
                      "temperature": 0, "stream": True, "stream_options": {"other": 1}})
    body = json.loads(Rewrite("gpt-x", "max_completion_tokens", frozenset({"temperature"}), {}).apply(parsed))
    assert body["model"] == "gpt-x" and body["max_completion_tokens"] == 5 and "max_tokens" not in body
    assert "temperature" not in body and body["stream_options"] == {"other": 1, "include_usage": True}
    no_options = json.loads(Rewrite("gpt-x", "max_tokens", frozenset({"stream_options"}), {}).apply(parsed))
    assert "stream_options" not in no_options  # the endpoint rejects it (profile): metered by estimate


def test_failures_map_to_what_the_caller_can_act_on() -> None:
    upstream_auth = failure_from(AuthenticationError("bad key", status=401))
    assert (upstream_auth.status, upstream_auth.code, upstream_auth.retry) == (502, "upstream_auth", False)
    limited = failure_from(RateLimitError("slow down", status=429, retry_after=2.5))
    assert limited.status == 429 and limited.headers()["Retry-After"] == "3"
    assert limited.headers()["retry-after-ms"] == "2500"
    assert failure_from(APITimeoutError("late", kind="first_byte")).status == 504
    assert failure_from(APIConnectionError("refused")).status == 502
    chain = AllAttemptsFailedError([Attempt("a", "m", APIConnectionError("x")), Attempt("b", "m", RateLimitError(
        "y", status=429))])
    assert failure_from(chain).status == 429
    assert json.loads(failure_from(chain).body())["error"]["message"].startswith("all 2 attempts failed")


def test_budget_periods() -> None:
    assert period("total", 0) == ("total", None)
    label, left = period("day", 86_400 * 3 + 3600)
    assert label == "1970-01-04" and left == 82_800
    assert period("month", 86_400 * 40)[0] == "1970-02"


def test_metrics_text() -> None:
    metrics = Metrics()
    metrics.record("fast", 200, False, 0.0004, 0.002)
    metrics.record("fast", 200, True, 0.0006, None)
    metrics.error("rate")
    metrics.metered("fast", 9, 3)
    text = metrics.render()
    assert 'human_gateway_requests_total{model="fast",status="200",stream="false"} 1' in text
    assert 'human_gateway_overhead_seconds{quantile="0.5"}' in text and "human_gateway_in_flight 0" in text
    assert 'human_gateway_upstream_seconds_bucket{le="+Inf"} 1' in text
    assert 'human_gateway_tokens_total{model="fast",kind="completion"} 3' in text


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({"model": st.sampled_from(["fast", "gpt-x", "é/ünïcode"]),
                              "messages": st.just([{"role": "user", "content": "hi \"there\" é"}])},
                             optional={"stream": st.booleans(), "max_tokens": st.integers(1, 9),
                                       "max_completion_tokens": st.integers(1, 9), "temperature": st.floats(0, 1),
                                       "stream_options": st.sampled_from([{}, {"other": 1}, {"include_usage": False},
                                                                          {"include_usage": True}, None, 3])}),
       st.sampled_from([{}, {"separators": (",", ":")}, {"indent": 1}, {"ensure_ascii": False}]),
       st.sampled_from(["max_tokens", "max_completion_tokens"]),
       st.sampled_from([frozenset(), frozenset({"stream_options"})]), st.sampled_from([{}, {"temperature": "temp"}]))
def test_the_splice_sends_what_the_whole_encode_sends(body: dict[str, Any], spacing: dict[str, Any], field: str,
                                                      drop: frozenset[str], rename: dict[str, str]) -> None:
    """Whatever changes: the body spliced into the caller's text reads as the one encoded
    whole (the fallback), and the members nothing changed keep the caller's own bytes."""
    raw = json.dumps(body, **spacing).encode()
    parsed = parse_request(raw)
    assert isinstance(parsed, ChatRequest) and parsed.where is not None
    rewrite = Rewrite("upstream-model", field, drop, rename)
    whole = ChatRequest(parsed.raw, parsed.body, parsed.model, parsed.stream, parsed.wants_usage)  # no spans
    assert json.loads(rewrite.apply(parsed)) == json.loads(rewrite.apply(whole))
    sent = rewrite.apply(parsed)
    if not any(name in body for name in drop) and "indent" not in spacing:
        assert json.dumps(body["messages"], **spacing).encode() in sent  # the caller's bytes, not re-encoded


def test_bodies_the_splice_cannot_take_are_encoded_whole() -> None:
    for raw in (b'{"model": "a", "model": "fast", "messages": [{"role": "user", "content": "hi"}]}',
                '{"model": "fast", "messages": [{"role": "user", "content": "hi"}]}'.encode("utf-16")):
        parsed = parse_request(raw)
        assert isinstance(parsed, ChatRequest) and parsed.where is None and parsed.model == "fast"
        assert json.loads(Rewrite("up", "max_tokens", frozenset(), {}).apply(parsed))["model"] == "up"
