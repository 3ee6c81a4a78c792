"""The two-dimension limiter (core/limiter.py): burst and pacing, tokens reserved then
refunded, debt for an oversized request, a pause for Retry-After. A fake clock: no sleeps."""

from __future__ import annotations

import pytest

from human.core.limiter import Limiter


def run(limiter: Limiter, seconds: float, tokens: float = 0, late: float = 0.0) -> list[float]:
    """A greedy caller that waits as told (and wakes `late` seconds after each wait), for
    `seconds`: the times it was let through."""
    granted = []
    now = 0.0
    while now < seconds:
        wait = limiter.acquire(tokens, now)
        if wait == 0.0:
            granted.append(now)
        else:
            now += wait + late
    return granted


def test_window_limit_lets_the_whole_minute_through_at_once_then_refills() -> None:
    limiter = Limiter(rpm=60)
    granted = run(limiter, 10)
    assert len([t for t in granted if t == 0.0]) == 60  # exactly the configured number, at once
    assert len(granted) == 60 + 9  # then one per second: t = 1, 2, ..., 9


def test_pacing_spreads_requests_evenly_over_the_minute() -> None:
    limiter = Limiter.pacing(rpm=600)
    granted = run(limiter, 60)
    assert len(granted) == 600  # t = 0, 0.1, ..., 59.9
    gaps = [b - a for a, b in zip(granted, granted[1:])]
    assert min(gaps) == pytest.approx(0.1) and max(gaps) == pytest.approx(0.1)


@pytest.mark.parametrize("late", [0.001, 0.005, 0.02, 0.09])
def test_pacing_keeps_its_rate_when_every_wake_up_is_late(late: float) -> None:
    """A sleeping caller always wakes a little late; a bucket capped at exactly one request
    would lose that time on every request (600 rpm, 5 ms late: 571 a minute, -5 %)."""
    granted = run(Limiter.pacing(rpm=600), 60, late=late)
    assert 594 <= len(granted) <= 606


def test_pacing_lets_the_first_request_go_at_once_without_a_burst() -> None:
    limiter = Limiter.pacing(rpm=600)
    assert limiter.acquire(0, 0.0) == 0.0
    assert limiter.acquire(0, 0.0) == pytest.approx(0.1)


def test_both_dimensions_are_taken_together_or_not_at_all() -> None:
    limiter = Limiter(rpm=100, tpm=1000)
    assert limiter.acquire(900, 0.0) == 0.0
    wait = limiter.acquire(200, 0.0)
    assert wait == pytest.approx(100 / (1000 / 60))  # 100 tokens short at 16.7 tokens/s
    assert limiter.requests is not None and limiter.requests.level == 99  # the refused call took nothing


def test_refund_gives_back_the_unused_reservation_and_charges_an_underestimate() -> None:
    limiter = Limiter(tpm=1000)
    assert limiter.acquire(800, 0.0) == 0.0
    limiter.refund(800, 300, 0.0)
    assert limiter.tokens is not None and limiter.tokens.level == 700
    assert limiter.acquire(700, 0.0) == 0.0
    limiter.refund(700, 900, 0.0)  # used more than reserved: the bucket goes into debt
    assert limiter.tokens.level == -200
    assert limiter.acquire(1, 0.0) == pytest.approx(201 / (1000 / 60))
    limiter.refund(10, None, 0.0)  # unknown usage: the reservation stands
    assert limiter.tokens.level == -200


def test_a_request_larger_than_the_bucket_waits_for_a_full_bucket_then_goes_into_debt() -> None:
    limiter = Limiter(tpm=600)
    assert limiter.acquire(100, 0.0) == 0.0
    assert limiter.acquire(5000, 0.0) == pytest.approx(100 / 10)  # until full again (10 tokens/s)
    assert limiter.acquire(5000, 10.0) == 0.0
    assert limiter.tokens is not None and limiter.tokens.level == 600 - 5000


def test_pause_holds_everything_until_retry_after_has_passed() -> None:
    limiter = Limiter(rpm=1000)
    limiter.pause(2.0, now=5.0)
    assert limiter.acquire(0, 5.5) == pytest.approx(1.5)
    assert limiter.acquire(0, 7.0) == 0.0


def test_unlimited_and_invalid_settings() -> None:
    assert Limiter().unlimited and Limiter().acquire(10**9, 0.0) == 0.0
    with pytest.raises(ValueError, match="rpm must be positive"):
        Limiter(rpm=0)


def test_a_pause_can_be_read_back_and_only_ever_lengthens():
    limiter = Limiter.pacing(rpm=60)
    assert limiter.paused_until == 0.0
    limiter.pause(5.0, now=10.0)
    limiter.pause(1.0, now=11.0)  # a shorter Retry-After does not cut the pause short
    assert limiter.paused_until == 15.0
