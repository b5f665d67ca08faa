"""Retry decisions: which statuses, how long, and within what budget."""

from __future__ import annotations

import datetime
import random

import pytest

from segment_logging._retry import RetryPolicy, is_retryable, parse_retry_after


@pytest.mark.parametrize("status", [None, 408, 410, 429, 460, 500, 502, 503, 504, 599])
def test_retryable(status: int | None) -> None:
    """Network errors, 408/410/429/460 and 5xx are retried."""
    assert is_retryable(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 501, 505])
def test_not_retryable(status: int) -> None:
    """Other 4xx, 501 and 505 are not retried."""
    assert not is_retryable(status)


def test_backoff_grows_with_jitter_and_cap() -> None:
    """Backoff doubles per attempt, stays between half and all of its ceiling, and is capped."""
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0, max_retry_time=100)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 1.0), (20, 1.0)]:
        delay = policy.delay(attempt, 500, None, 0.0, rng)
        assert delay is not None
        assert ceiling / 2 <= delay <= ceiling


def test_retry_after_is_honoured() -> None:
    """Retry-After replaces the backoff, in seconds or as an HTTP date."""
    policy = RetryPolicy()
    assert policy.delay(1, 429, "3", 0.0) == 3.0
    assert policy.delay(1, 429, "0", 0.0) == 0.0
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:07 GMT", now) == 7.0
    assert parse_retry_after("soon") is None


def test_budget_stops_retries() -> None:
    """No retry once waiting would pass max_retry_time; none for a non-retryable status."""
    policy = RetryPolicy(max_retry_time=5)
    assert policy.delay(1, 503, "4", 0.5) == 4.0
    assert policy.delay(1, 503, "4", 1.5) is None
    assert policy.delay(1, 400, None, 0.0) is None
