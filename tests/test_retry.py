"""Retry decisions: which statuses, how long, and within which budget (pure, no sockets or clocks)."""

from __future__ import annotations

import datetime
import random

import pytest

from segment_logging._retry import (
    MAX_RETRY_AFTER,
    RetryPolicy,
    RetryState,
    is_retryable,
    parse_retry_after,
)


@pytest.mark.parametrize("status", [None, 408, 410, 429, 460, 500, 502, 503, 504, 599])
def test_retryable(status: int | None) -> None:
    """Network errors, 408/410/429/460 and 5xx are retried."""
    assert is_retryable(status)


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 413, 501, 505, 511])
def test_not_retryable(status: int) -> None:
    """Other 4xx, redirects, and 501, 505 and 511 are not retried."""
    assert not is_retryable(status)


def test_backoff_grows_with_jitter_and_cap() -> None:
    """Backoff doubles per attempt, stays between half and all of its ceiling, and is capped."""
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0, max_retry_time=100)
    rng = random.Random(1)
    for backoffs, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (5, 1.0), (19, 1.0), (5000, 1.0)]:
        delay = policy.backoff(backoffs, rng)
        assert ceiling / 2 <= delay <= ceiling


def test_defaults_are_segments() -> None:
    """Base 0.5 s, cap 60 s, 60 s budgets by default."""
    policy = RetryPolicy()
    assert (policy.base_delay, policy.max_delay) == (0.5, 60.0)
    assert (policy.max_retry_time, policy.max_rate_limit_time) == (60.0, 60.0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("1e9", MAX_RETRY_AFTER),
        ("301", MAX_RETRY_AFTER),
        ("nan", None),
        ("inf", None),
        ("-inf", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Thu, 01 Jan 2026 00:00:07 GMT", 7.0),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),
        ("Fri, 31 Dec 99999999999 23:59:59 GMT", MAX_RETRY_AFTER),
        ("Thu, 01 Jan 2026 00:00:07", 7.0),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    """Seconds or an HTTP date; past times are 0; absurd ones are capped at 300 s (even a year
    datetime cannot hold); nan, inf and garbage are no ask at all."""
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    assert parse_retry_after(value, now) == seconds


def test_retry_after_longer_than_backoff_is_obeyed_without_growing_backoff() -> None:
    """A server-directed wait is obeyed, counts as a retry, but not as a backoff attempt, and is
    spent from the rate-limit budget only."""
    policy = RetryPolicy(base_delay=0.1, max_retry_time=1, max_rate_limit_time=100)
    state = RetryState(rng=random.Random(0))
    for _ in range(5):
        assert policy.next_wait(state, 429, "4", elapsed=0.0) == 4.0
    assert (state.retries, state.backoffs, state.server_waited) == (5, 0, 20.0)
    # 20 s have passed in server-directed waits: the backoff budget is still whole.
    assert policy.next_wait(state, 503, None, elapsed=20.5) is not None
    assert state.backoffs == 1


@pytest.mark.parametrize("value", ["0", "-1", "nan", "garbage", "0.01"])
def test_backoff_is_the_floor_of_a_server_directed_wait(value: str) -> None:
    """Retry-After 0, negative, nan, garbage or shorter than the backoff: the normal backoff is
    waited instead, it grows, and it is spent from max_retry_time."""
    policy = RetryPolicy(base_delay=0.1, max_delay=10, max_retry_time=100)
    state = RetryState(rng=random.Random(0))
    waits = [policy.next_wait(state, 429, value, elapsed=0.0) for _ in range(4)]
    assert all(w is not None and w >= 0.05 for w in waits)
    assert waits[3] >= 0.4  # type: ignore[operator]
    assert state.backoffs == 4


def test_rate_limit_budget_is_used_to_its_end_then_given_up() -> None:
    """An ask past the rate-limit budget is cut to what is left (one last attempt), then the
    batch is given up."""
    policy = RetryPolicy(max_rate_limit_time=10)
    state = RetryState(rng=random.Random(0))
    assert policy.next_wait(state, 429, "300", elapsed=0.0) == 10.0
    assert policy.next_wait(state, 429, "300", elapsed=10.0) is None


def test_backoff_budget_is_used_to_its_end_then_given_up() -> None:
    """A backoff past max_retry_time is cut to what is left, then the batch is given up; a
    status that is not retryable is given up at once."""
    policy = RetryPolicy(base_delay=4, max_retry_time=5)
    state = RetryState(rng=random.Random(0))
    assert policy.next_wait(state, 503, None, elapsed=4.5) == pytest.approx(0.5)
    assert policy.next_wait(state, 503, None, elapsed=5.0) is None
    assert policy.next_wait(RetryState(), 400, None, elapsed=0.0) is None
    assert policy.next_wait(RetryState(), 511, "1", elapsed=0.0) is None


def test_max_retries_caps_the_retries() -> None:
    """With max_retries, the batch is given up after that many retries, budgets notwithstanding."""
    policy = RetryPolicy(base_delay=0.001, max_retries=2)
    state = RetryState(rng=random.Random(0))
    assert policy.next_wait(state, 503, None, 0.0) is not None
    assert policy.next_wait(state, 429, "5", 0.0) == 5.0
    assert policy.next_wait(state, 503, None, 0.0) is None
    assert RetryPolicy(max_retries=0).next_wait(RetryState(), 503, None, 0.0) is None
