"""The pure parts of the batch runner: the input and output line formats (batching/lines.py),
what a failure means for the run and the adaptive slow-down (batching/control.py), and the
rate meter behind the ETA (batching/summary.py)."""

from __future__ import annotations

import json

import pytest

from human.batching.control import Throttle, decide
from human.batching.lines import OPTIONS, LineError, failure_line, fingerprint, parse_input, parse_output, success_line
from human.batching.summary import Meter
from human.errors import (
    AllAttemptsFailedError,
    Attempt,
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ContextLengthError,
    MissingCredentialError,
    RateLimitError,
    ServerError,
)

MESSAGES = [{"role": "user", "content": "hi"}]


def line(value: object) -> bytes:
    return json.dumps(value).encode() + b"\n"


# ---- input ------------------------------------------------------------------------------------


def test_openai_batch_lines_and_plain_lines_give_the_same_request():
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0, "max_tokens": 20}
    batch = parse_input(line({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}), 1)
    plain = parse_input(line({"custom_id": "a", **body}), 1)
    for request in (batch, plain):
        assert request.custom_id == "a" and request.model == "gpt-4o-mini" and request.messages == MESSAGES
        assert request.options == {"temperature": 0, "max_tokens": 20}
        assert request.estimate.completion == 20


def test_fields_the_client_does_not_name_go_out_as_extra_body():
    request = parse_input(line({"custom_id": "a", "messages": MESSAGES, "n": 2, "logprobs": True,
                                "max_completion_tokens": 9}), 3)
    assert request.options == {"max_tokens": 9, "extra_body": {"n": 2, "logprobs": True}}
    assert request.model is None and request.line == 3


def test_the_option_names_match_what_the_client_takes():
    from human.client import _OPTIONS

    assert set(_OPTIONS) - {"extra_body"} == OPTIONS


@pytest.mark.parametrize(("raw", "says"), [
    (b"not json", "is not valid JSON (Expecting value at column 1)"),
    (b"\xff\xfe{}", "is not UTF-8"),
    (b"[1, 2]", "must be a JSON object, not list"),
    (line({"messages": MESSAGES}), 'needs "custom_id"'),
    (line({"custom_id": 7, "messages": MESSAGES}), "(got int)"),
    (line({"custom_id": "a"}), 'needs "messages"'),
    (line({"custom_id": "a", "messages": []}), "non-empty list"),
    (line({"custom_id": "a", "messages": [{"role": "robot", "content": "x"}]}), "role 'robot'"),
    (line({"custom_id": "a", "messages": MESSAGES, "stream": True}), '"stream": true'),
    (line({"custom_id": "a", "messages": MESSAGES, "model": 4}), '"model"'),
    (line({"custom_id": "a", "messages": MESSAGES, "temperature": 3}), "temperature 3"),
    (line({"custom_id": "a", "messages": MESSAGES, "max_tokens": 0}), "max_tokens 0"),
    (line({"custom_id": "a", "messages": MESSAGES, "max_tokens": 5, "max_completion_tokens": 5}), "both"),
    (line({"custom_id": "a", "messages": MESSAGES, "tools": {"x": 1}}), "tools"),
    (line({"custom_id": "a", "messages": MESSAGES, "stop": [1]}), "stop"),
    (line({"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}), "only POST"),
    (line({"custom_id": "a", "url": "/v1/embeddings", "body": {"input": "x"}}), "only /v1/chat/completions"),
    (line({"custom_id": "a", "url": "/v1/chat/completions", "body": "x"}), 'needs "body"'),
])
def test_a_bad_line_says_what_is_wrong(raw: bytes, says: str):
    with pytest.raises(LineError) as caught:
        parse_input(raw, 1)
    assert says in str(caught.value)


def test_the_fingerprint_ignores_surrounding_space_but_not_the_request():
    raw = line({"custom_id": "a", "messages": MESSAGES})
    assert fingerprint(raw) == fingerprint(b"  " + raw.strip() + b"\r\n")
    assert fingerprint(raw) != fingerprint(line({"custom_id": "a", "messages": [{"role": "user", "content": "ho"}]}))


# ---- output -----------------------------------------------------------------------------------


def request():
    return parse_input(line({"custom_id": "q7", "messages": MESSAGES}), 7)


def test_a_success_line_is_openai_batch_output_and_reads_back():
    body = {"id": "chatcmpl-1", "choices": [{"message": {"content": "yo"}}]}
    raw = success_line("batch_req_1", request(), body, {"prompt_tokens": 5, "completion_tokens": 2, "cost": 0.5})
    data = json.loads(raw)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert data["id"] == "batch_req_1" and data["custom_id"] == "q7" and data["error"] is None
    assert data["response"] == {"status_code": 200, "request_id": None, "body": body}
    assert data["human"]["line"] == 7 and data["human"]["request"] == request().fingerprint
    done = parse_output(raw)
    assert (done.ok, done.prompt_tokens, done.completion_tokens, done.cost) == (True, 5, 2, 0.5)


def test_a_failure_line_carries_the_status_body_and_typed_error():
    error = RateLimitError("slow down", status=429, body={"error": {"message": "slow down"}},
                           code="rate_limit_exceeded", request_id="req_9", provider="groq")
    data = json.loads(failure_line("batch_req_2", request(), error, {"ms": 3}))
    assert data["response"] == {"status_code": 429, "request_id": "req_9", "body": {"error": {"message": "slow down"}}}
    assert data["error"]["type"] == "RateLimitError" and data["error"]["code"] == "rate_limit_exceeded"
    assert data["error"]["provider"] == "groq" and "slow down" in data["error"]["message"]
    assert not parse_output(failure_line("x", request(), error, {})).ok


def test_a_failure_without_an_answer_has_no_response_and_names_the_last_error():
    error = AllAttemptsFailedError([Attempt("a", "m", ServerError("boom", status=503)),
                                    Attempt("b", "m", CircuitOpenError("open"))])
    data = json.loads(failure_line("x", request(), error, {}))
    assert data["response"] is None
    assert data["error"]["type"] == "AllAttemptsFailedError" and data["error"]["last"] == "CircuitOpenError"


@pytest.mark.parametrize("raw", [b"{", b"[]", b'{"id": "x"}', b'{"custom_id": 5}'])
def test_a_line_that_is_not_batch_output_is_refused(raw: bytes):
    with pytest.raises(LineError):
        parse_output(raw)


def test_only_status_200_without_error_is_a_success():
    base = {"custom_id": "a", "response": {"status_code": 200, "body": {}}, "error": None}
    assert parse_output(json.dumps(base).encode()).ok
    assert not parse_output(json.dumps({**base, "error": {"message": "x"}}).encode()).ok
    assert not parse_output(json.dumps({**base, "response": {"status_code": 400}}).encode()).ok
    assert not parse_output(json.dumps({**base, "response": None}).encode()).ok


# ---- what a failure means ---------------------------------------------------------------------


@pytest.mark.parametrize("error", [
    RateLimitError("You exceeded your current quota", quota_exhausted=True, status=429),
    RateLimitError("Rate limit reached for model on requests per day (RPD): Limit 14400", status=429),
    RateLimitError("Rate limit reached on tokens per day (TPD)", status=429),
    RateLimitError("try again later", retry_after=3600.0, status=429),
    AuthenticationError("invalid key", status=401),
    MissingCredentialError("no key"),
    AllAttemptsFailedError([Attempt("a", "m", RateLimitError("x", status=429)),
                            Attempt("b", "m", RateLimitError("out of credits", quota_exhausted=True))]),
])
def test_errors_every_other_line_would_share_stop_the_run(error):
    assert decide(error).verdict == "stop"


def test_rate_limits_and_open_circuits_send_the_line_again_later():
    assert decide(RateLimitError("slow", retry_after=2.0)) .retry_after == 2.0
    assert decide(RateLimitError("slow")).verdict == "requeue"
    assert decide(CircuitOpenError("open")).verdict == "requeue"
    both = AllAttemptsFailedError([Attempt("a", "m", RateLimitError("x", retry_after=1.0)),
                                   Attempt("b", "m", RateLimitError("y", retry_after=4.0))])
    assert (decide(both).verdict, decide(both).retry_after) == ("requeue", 4.0)


@pytest.mark.parametrize("error", [
    BadRequestError("bad", status=400), ContextLengthError("long", status=400), ServerError("down", status=500),
    AllAttemptsFailedError([Attempt("a", "m", RateLimitError("x")), Attempt("b", "m", ServerError("y"))]),
])
def test_the_lines_own_failures_are_written(error):
    assert decide(error).verdict == "write"


def test_a_storm_of_429s_is_one_round_one_halving_and_each_pause_honoured():
    throttle = Throttle(64)
    assert throttle.refused(2.0, sent_in=0) == 2.0
    for _ in range(62):  # the rest of the window, sent before the slow-down, comes back 429 too
        assert throttle.refused(2.0, sent_in=0) == 2.0
    assert throttle.refused(5.0, sent_in=0) == 5.0  # each one's own Retry-After still counts
    assert throttle.allowed == 32 and throttle.strikes == 1 and throttle.epoch == 1
    throttle.refused(2.0, sent_in=1)  # sent after the slow-down and refused again: a new round
    assert throttle.allowed == 16 and throttle.strikes == 2


def test_without_retry_after_the_pause_doubles_each_round_and_the_window_floors_at_one():
    throttle = Throttle(4)
    pauses = [throttle.refused(None, sent_in=throttle.epoch) for _ in range(8)]
    assert pauses == [1, 2, 4, 8, 16, 32, 60, 60]
    assert throttle.allowed == 1
    assert throttle.refused(None, sent_in=0) == 60  # a late answer from an old round: no new strike
    assert throttle.strikes == 8


def test_successes_win_the_window_back_slowly_and_clear_the_strikes():
    throttle = Throttle(8)
    throttle.refused(1.0, 0)
    throttle.refused(1.0, 1)
    assert throttle.allowed == 2 and throttle.strikes == 2
    throttle.success()
    assert throttle.strikes == 0 and throttle.allowed == 2
    for _ in range(200):
        throttle.success()
    assert throttle.allowed == 8  # never above the configured concurrency


def test_a_door_that_stays_shut_ends_the_run():
    throttle = Throttle(4, max_strikes=3)
    for _ in range(3):
        assert not throttle.exhausted
        throttle.refused(1.0, throttle.epoch)
    assert throttle.exhausted
    with pytest.raises(ValueError, match="at least 1"):
        Throttle(0)


def test_the_meter_follows_the_recent_rate_and_gives_an_eta():
    meter = Meter(0.0)
    assert meter.eta(10) is None
    for second in range(1, 31):
        meter.update(100 * second, float(second))
    assert meter.rate == pytest.approx(100)
    for second in range(31, 61):  # slows to 10 a second: the rate follows within seconds
        meter.update(3000 + 10 * (second - 30), float(second))
    assert meter.rate == pytest.approx(10, rel=0.05)
    assert meter.eta(100) == pytest.approx(10, rel=0.05) and meter.eta(0) == 0.0
