"""Re-asking through both clients: an answer that does not parse or validate is sent back
with its problems, up to `max_retries`, within `token_budget`; every attempt's usage is
summed; a truncated answer is never re-asked; transport failures are never re-asked (the
client's own retry policy handles them once); and nothing of the key leaks."""

from __future__ import annotations

import dataclasses
import json

import pytest

import human
from human.errors import (
    AllAttemptsFailedError,
    APIError,
    APITimeoutError,
    HumanError,
    StructuredOutputError,
    TruncatedOutputError,
)
from tests.client.conftest import CANARY
from tests.fakes.quirky_model import ADA


@dataclasses.dataclass
class Person:
    name: str
    age: int


def usage(total: int) -> dict[str, int]:
    return {"prompt_tokens": total - 5, "completion_tokens": 5, "total_tokens": total}


def test_invalid_json_first_then_valid_is_re_asked_with_the_problem(driver, fake, config_for):
    fake.completion('{"name": "Ada", "age": 36', usage=usage(20))  # cut short, but finish_reason stop
    fake.completion(json.dumps(ADA), usage=usage(30))
    answer = driver.client(config_for()).chat("Ada", response_format=Person)
    assert answer.parsed == Person("Ada", 36)
    assert len(fake.requests) == 2
    retry = fake.last.json["messages"]
    assert retry[0] == {"role": "user", "content": "Ada"}
    assert retry[1] == {"role": "assistant", "content": '{"name": "Ada", "age": 36'}
    assert retry[2]["role"] == "user" and "no JSON object was found" in retry[2]["content"]
    assert answer.usage == human.Usage(40, 10, 50)  # both attempts
    assert answer.adjustments[-1] == "structured output: re-asked 1 time(s); usage is the total of 2 requests"


def test_validation_errors_are_listed_with_their_paths(driver, fake, config_for):
    fake.completion('{"name": 7, "age": "36", "extra": true}')
    fake.completion(json.dumps(ADA))
    driver.client(config_for()).parse("Ada", Person)
    problems = fake.last.json["messages"][-1]["content"]
    assert problems == ("That answer does not fit the required JSON Schema:\n"
                        "- $.name: expected a string, got integer\n"
                        "- $.age: expected an integer, got string\n"
                        "- $.extra: unexpected field (allowed: name, age)\n"
                        "Please answer again with only the corrected JSON object.")


def test_re_asks_do_not_pile_up_the_failed_answers(driver, fake, config_for):
    fake.completion('{"name": 1, "age": 36}')
    fake.completion('{"name": 2, "age": 36}')
    fake.completion(json.dumps(ADA))
    driver.client(config_for()).parse("Ada", Person)
    second, third = fake.requests[1].json["messages"], fake.requests[2].json["messages"]
    assert len(second) == len(third) == 3  # the original, the last failed answer, its problems
    assert third[1]["content"] == '{"name": 2, "age": 36}'


def test_gives_up_after_max_retries_with_every_attempt_and_the_total_usage(driver, fake, config_for):
    for number in range(3):
        fake.completion(f"no json here {number}", usage=usage(10 + number))
    with pytest.raises(StructuredOutputError) as caught:
        driver.client(config_for()).parse("Ada", Person)
    error = caught.value
    assert len(fake.requests) == 3  # max_retries (2) + 1
    assert [a.raw for a in error.attempts] == ["no json here 0", "no json here 1", "no json here 2"]
    assert all(a.errors and a.errors[0].startswith("$: no JSON object was found") for a in error.attempts)
    assert error.usage == human.Usage(18, 15, 33)
    assert error.response.content == "no json here 2"
    assert str(error).startswith("no answer fitted Person after 3 attempt(s) (prompt mode)")
    assert error.advice.startswith("raise max_retries") and str(error).endswith(f"; {error.advice}")


def test_max_retries_zero_sends_one_request(driver, fake, config_for):
    fake.completion("nope")
    with pytest.raises(StructuredOutputError):
        driver.client(config_for()).parse("Ada", Person, max_retries=0)
    assert len(fake.requests) == 1


def test_token_budget_stops_re_asking(driver, fake, config_for):
    fake.completion('{"name": 1, "age": 36}', usage=usage(120))
    with pytest.raises(StructuredOutputError, match=r"token budget \(100\) was spent after 1 attempt\(s\) \(120"):
        driver.client(config_for()).parse("Ada", Person, token_budget=100)
    assert len(fake.requests) == 1


def test_truncated_answer_is_never_re_asked(driver, fake, config_for):
    fake.completion('{"name": "Ada", "ag', finish_reason="length", usage=usage(16))
    with pytest.raises(TruncatedOutputError) as caught:
        driver.client(config_for()).parse("Ada", Person, max_tokens=16)
    assert len(fake.requests) == 1
    assert "raise max_tokens" in str(caught.value)
    assert caught.value.attempts[0].finish_reason == "length" and caught.value.usage == human.Usage(11, 5, 16)


def test_reasoning_that_ate_every_token_says_so(driver, fake, config_for):
    fake.completion("", finish_reason="length", reasoning_content="Let me think about {name}...",
                    usage={"prompt_tokens": 5, "completion_tokens": 64, "total_tokens": 69,
                           "completion_tokens_details": {"reasoning_tokens": 64}})
    with pytest.raises(TruncatedOutputError, match=r"spent it all on reasoning \(64 reasoning tokens\)"):
        driver.client(config_for()).parse("Ada", Person)


def test_a_truncated_answer_that_is_still_valid_is_kept(driver, fake, config_for):
    fake.completion(json.dumps(ADA), finish_reason="length")
    assert driver.client(config_for()).parse("Ada", Person) == Person("Ada", 36)


def test_transport_failures_are_retried_by_the_client_only_never_re_asked(driver, fake, config_for):
    fake.reply(status=500, json={"error": {"message": "boom"}}).as_default()
    handle = driver.client(config_for(reliability={"provider_retries": 2}))
    with pytest.raises(HumanError) as caught:
        handle.parse("Ada", Person)
    assert isinstance(caught.value, AllAttemptsFailedError)
    assert isinstance(caught.value.last, APIError) and caught.value.last.status == 500
    assert len(fake.requests) == 3  # the client's 2 retries, and no structured re-ask on top


def test_a_retried_transport_failure_then_a_re_ask(driver, fake, config_for):
    fake.reply(status=503, json={"error": {"message": "busy"}})
    fake.completion('{"name": "Ada"}')
    fake.completion(json.dumps(ADA))
    handle = driver.client(config_for(reliability={"provider_retries": 1}))
    assert handle.parse("Ada", Person) == Person("Ada", 36)
    assert len(fake.requests) == 3
    assert "$.age: required field is missing" in fake.last.json["messages"][-1]["content"]


def test_the_key_never_leaks_from_a_structured_error(driver, fake, config_for):
    for _ in range(2):
        fake.completion(f"I cannot; my key is {CANARY}")
    with pytest.raises(HumanError) as caught:
        driver.client(config_for()).parse("Ada", Person, max_retries=1)
    error = caught.value
    shown = [str(error), repr(error), repr(vars(error)), *(repr(a) for a in error.attempts)]
    assert all(CANARY not in text for text in shown)


def test_the_key_never_leaks_from_a_structured_stream_error(driver, fake, config_for):
    for _ in range(2):
        fake.completion(f"I cannot; my key is {CANARY}")
    with pytest.raises(StructuredOutputError) as caught:
        driver.client(config_for()).stream("Ada", response_format=Person, max_retries=1)
    error = caught.value
    shown = [str(error), repr(error), repr(vars(error)), *(repr(a) for a in error.attempts)]
    assert all(CANARY not in text for text in shown)
    assert error.__cause__ is None and error.__suppress_context__


def test_a_whole_call_timeout_bounds_the_re_asks_too(driver, fake, config_for):
    now = [0.0]

    def slow_answer(request):  # each answer takes 6 s on the client's clock
        now[0] += 6
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "no json"},
                             "finish_reason": "stop"}]}

    fake.respond(slow_answer).as_default()
    handle = driver.client(config_for(), clock=lambda: now[0])
    with pytest.raises(APITimeoutError) as caught:
        handle.parse("Ada", Person, timeout=10)
    assert caught.value.kind == "call" and "re-ask included" in str(caught.value)
    assert len(fake.requests) == 2  # 6 s, then 6 more: no time left for a third
