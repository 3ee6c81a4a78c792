"""Error classification: status first, then the body's structured fields, text last."""

from __future__ import annotations

import json

import pytest

from human.core.classify import classify, parse_retry_after
from human.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


def body(message="m", type_=None, code=None, param=None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "code": code, "param": param}}).encode()


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequestError), (422, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError),
     (404, NotFoundError), (429, RateLimitError), (500, ServerError), (503, ServerError), (529, ServerError),
     (408, ServerError)],
)
def test_status_picks_the_class(status, cls):
    error = classify(status, {}, body())
    assert type(error) is cls
    assert error.status == status


def test_retryable_flags_follow_the_class():
    assert classify(429, {}, body()).retryable
    assert classify(503, {}, body()).retryable
    assert not classify(401, {}, body()).retryable
    assert not classify(400, {}, body()).retryable


def test_context_length_from_the_code_field():
    error = classify(400, {}, body("too long (mock)", "invalid_request_error", "context_length_exceeded", "messages"))
    assert isinstance(error, ContextLengthError)
    assert error.param == "messages"


def test_context_length_from_litellm_text_when_no_code():
    text = b'{"error": {"message": "litellm.ContextWindowExceededError: maximum context length", "code": "400"}}'
    assert isinstance(classify(400, {}, text), ContextLengthError)


def test_quota_exhausted_is_told_apart_from_a_momentary_limit():
    quota = classify(429, {}, body("You exceeded your current quota", "insufficient_quota", "insufficient_quota"))
    momentary = classify(429, {}, body("Rate limit reached", "rate_limit_error", "rate_limit_exceeded"))
    assert quota.quota_exhausted and not quota.retryable
    assert not momentary.quota_exhausted and momentary.retryable


def test_server_fields_and_request_id_are_kept():
    error = classify(400, {"x-request-id": "req_123"}, body("bad", "invalid_request_error", "bad_param", "top_p"))
    assert (error.error_type, error.code, error.param, error.request_id) == (
        "invalid_request_error", "bad_param", "top_p", "req_123")
    assert "top_p" in str(error) and "req_123" in str(error)


def test_litellm_string_param_none_is_treated_as_absent():
    error = classify(401, {}, b'{"error": {"message": "Auth", "type": "auth_error", "param": "None", "code": "401"}}')
    assert error.param is None


def test_404_for_a_model_says_the_model_is_wrong():
    error = classify(404, {}, body("The model `gpt-5x` does not exist"), model="gpt-5x",
                     url="https://api.example.com/v1/chat/completions")
    assert "model 'gpt-5x' does not exist" in str(error)


def test_404_without_v1_says_base_url_probably_lacks_v1():
    error = classify(404, {}, b"Not Found", url="https://api.groq.com/openai/chat/completions")
    assert "probably lacks /v1" in str(error)


def test_html_error_page_is_described_not_dumped():
    error = classify(502, {}, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
    assert "HTML page" in str(error)
    assert "<html>" not in str(error)


def test_plain_text_body_is_quoted():
    assert "Internal Server Error" in str(classify(500, {}, b"Internal Server Error"))


def test_key_echoed_by_the_server_is_scrubbed():
    error = classify(401, {}, body(f"Incorrect API key provided: {CANARY}"), secrets=(CANARY,))
    assert CANARY not in str(error)
    assert CANARY not in error.message


def test_unknown_key_shapes_are_scrubbed_too():
    error = classify(401, {}, body("Incorrect API key provided: sk-proj-abcdefghijklmnop"))
    assert "abcdefghijklmnop" not in str(error)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "2"}, 2.0), ({"retry-after": "1.5"}, 1.5), ({"retry-after-ms": "250"}, 0.25),
     ({"retry-after-ms": "250", "retry-after": "9"}, 0.25), ({"retry-after": "soon"}, None), ({}, None),
     ({"retry-after": "-3"}, 0.0)],
)
def test_retry_after_forms(headers, expected):
    assert parse_retry_after(headers) == expected


def test_retry_after_http_date_is_relative_to_now():
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert parse_retry_after({"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"}, now=lambda: now) == 30.0


def test_rate_limit_error_carries_retry_after():
    error = classify(429, {"retry-after": "2"}, body("slow", "rate_limit_error", "rate_limit_exceeded"))
    assert isinstance(error, RateLimitError) and error.retry_after == 2.0
