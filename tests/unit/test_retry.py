"""The retry and fallback plan, driven by hand: no I/O, no sleeping."""

from __future__ import annotations

import pytest

from human.core.retry import CircuitBreaker, Plan, RetryPolicy, Send, Sleep
from human.errors import (
    AllAttemptsFailedError,
    APIConnectionError,
    AuthenticationError,
    ContextLengthError,
    RateLimitError,
    ServerError,
)


def drive(plan: Plan, outcomes: list) -> tuple[object, list]:
    """Feed outcomes to the plan in order; return (result or raised error, actions seen)."""
    actions: list = []
    generator = plan.run()
    action = next(generator)
    try:
        while True:
            actions.append(action)
            reply = None if isinstance(action, Sleep) else outcomes.pop(0)
            action = generator.send(reply)
    except StopIteration as done:
        return done.value, actions
    except Exception as exc:  # noqa: BLE001 - the plan's final error is the result
        return exc, actions


def make(providers=("a",), models=("m",), retries=2, **policy) -> Plan:
    return Plan(providers=list(providers), models=list(models), resolve=lambda p, m: (p, m),
                policy=RetryPolicy(retries=retries, **policy), random=lambda: 0.0)


def sends(actions):
    return [a.target for a in actions if isinstance(a, Send)]


def sleeps(actions):
    return [a.seconds for a in actions if isinstance(a, Sleep)]


def test_503_twice_then_success_waits_with_backoff():
    result, actions = drive(make(backoff_s=1.0), [ServerError("x", status=503), ServerError("x", status=503), "ok"])
    assert result[0] == "ok"
    assert result[1].attempt == 3
    assert sleeps(actions) == [0.5, 1.0]  # equal jitter with random() = 0: half of 1 s, then of 2 s


def test_401_is_not_retried():
    error = AuthenticationError("bad key", status=401)
    result, actions = drive(make(), [error])
    assert result is error
    assert len(sends(actions)) == 1 and sleeps(actions) == []


def test_retry_after_is_honoured_exactly():
    result, actions = drive(make(), [RateLimitError("slow down", status=429, retry_after=7.0), "ok"])
    assert result[0] == "ok"
    assert sleeps(actions) == [7.0]


def test_retry_after_longer_than_the_cap_moves_to_the_fallback():
    result, actions = drive(make(providers=("a", "b"), max_retry_after_s=60),
                            [RateLimitError("wait an hour", status=429, retry_after=3600.0), "ok"])
    assert result[0] == "ok"
    assert sends(actions) == [("a", "m"), ("b", "m")]
    assert sleeps(actions) == []


def test_quota_exhausted_is_not_retried_but_the_fallback_is_tried():
    result, actions = drive(make(providers=("a", "b")),
                            [RateLimitError("no credit", status=429, quota_exhausted=True), "ok"])
    assert result[0] == "ok"
    assert sends(actions) == [("a", "m"), ("b", "m")]


def test_500_on_primary_then_success_on_fallback():
    result, actions = drive(make(providers=("a", "b"), retries=0), [ServerError("down", status=500), "ok"])
    assert result[0] == "ok" and result[1].target == ("b", "m") and result[1].attempt == 2


def test_context_length_goes_to_the_next_model_not_the_next_provider():
    result, actions = drive(make(providers=("a", "b"), models=("big", "bigger")),
                            [ContextLengthError("too long", status=400), "ok"])
    assert result[0] == "ok"
    assert sends(actions) == [("a", "big"), ("a", "bigger")]


def test_all_attempts_failed_lists_every_attempt():
    errors = [APIConnectionError("refused"), APIConnectionError("refused"), ServerError("x", status=502)]
    result, actions = drive(make(providers=("a", "b"), retries=1), list(errors) + [ServerError("y", status=500)])
    assert isinstance(result, AllAttemptsFailedError)
    assert [(a.provider, a.model) for a in result.attempts] == [("a", "m"), ("a", "m"), ("b", "m"), ("b", "m")]
    assert "all 4 attempts failed" in str(result)


def test_retry_budget_stops_waiting():
    result, actions = drive(make(retries=5, backoff_s=10.0, budget_s=12.0),
                            [ServerError("x", status=503)] * 6)
    assert isinstance(result, AllAttemptsFailedError)
    assert sum(sleeps(actions)) <= 12.0


def test_circuit_breaker_opens_and_recovers():
    clock = [0.0]
    breaker = CircuitBreaker(threshold=2, recovery_s=30)

    def plan():
        return Plan(providers=["a", "b"], models=["m"], resolve=lambda p, m: (p, m),
                    policy=RetryPolicy(retries=0), breaker=breaker, now=lambda: clock[0])

    for _ in range(2):
        drive(plan(), [ServerError("x", status=500), "ok"])
    result, actions = drive(plan(), ["ok"])
    assert sends(actions) == [("b", "m")]  # a is skipped while open
    clock[0] = 31.0
    result, actions = drive(plan(), ["ok"])
    assert sends(actions) == [("a", "m")]  # half-open: tried again, and its success closes it


def test_fallback_that_cannot_be_resolved_is_recorded_and_skipped():
    from human.errors import MissingCredentialError

    def resolve(provider, model):
        if provider == "b":
            raise MissingCredentialError("b needs a key")
        return (provider, model)

    plan = Plan(providers=["a", "b", "c"], models=["m"], resolve=resolve, policy=RetryPolicy(retries=0))
    result, actions = drive(plan, [ServerError("x", status=500), "ok"])
    assert result[0] == "ok" and sends(actions) == [("a", "m"), ("c", "m")]


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_are_raised_at_once(status):
    from human.core.classify import classify

    error = classify(status, {}, b'{"error": {"message": "no"}}')
    result, actions = drive(make(providers=("a", "b")), [error])
    assert result is error and len(sends(actions)) == 1


def test_client_errors_do_not_open_the_circuit_breaker():
    breaker = CircuitBreaker(threshold=2, recovery_s=30)
    for _ in range(3):
        plan = Plan(providers=["a"], models=["m"], resolve=lambda p, m: (p, m), policy=RetryPolicy(retries=0),
                    breaker=breaker)
        result, actions = drive(plan, [ContextLengthError("too long", status=400)])
        assert isinstance(result, ContextLengthError)  # sent every time, never skipped
    assert breaker.allow("a", 0.0)


def test_rate_limits_do_not_open_the_circuit_breaker():
    """A 429 is the server answering; a batch gets several at once, and they must not shut
    the provider out for recovery_s when it asked for a second's wait."""
    breaker = CircuitBreaker(threshold=2, recovery_s=30)
    for _ in range(3):
        plan = Plan(providers=["a"], models=["m"], resolve=lambda p, m: (p, m), policy=RetryPolicy(retries=0),
                    breaker=breaker)
        result, actions = drive(plan, [RateLimitError("slow down", status=429, retry_after=1.0)])
        assert isinstance(result, RateLimitError)
    assert breaker.allow("a", 0.0)
