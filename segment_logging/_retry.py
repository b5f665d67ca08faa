"""When to retry a request to Segment, and how long to wait first.

Pure decisions, so they can be tested without sockets or clocks. The sync
and async senders are thin loops around :meth:`RetryPolicy.delay`.
"""

from __future__ import annotations

import datetime
import email.utils
import random
from dataclasses import dataclass

# Segment's own libraries retry these 4xx; 501 and 505 mean retrying cannot help.
_RETRYABLE_4XX = frozenset((408, 410, 429, 460))
_NEVER_RETRIED_5XX = frozenset((501, 505))


def is_retryable(status: int | None) -> bool:
    """Whether a request that got ``status`` (None: no answer at all) may be tried again."""
    if status is None:
        return True
    if status in _RETRYABLE_4XX:
        return True
    return 500 <= status <= 599 and status not in _NEVER_RETRIED_5XX


def parse_retry_after(value: str | None, now: datetime.datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    current = now or datetime.datetime.now(datetime.timezone.utc)
    return max(0.0, (when - current).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter inside a total time budget.

    Attributes:
        max_retry_time: seconds from a batch's first attempt after which it is given up.
        base_delay: the first backoff, doubled on each further attempt.
        max_delay: the longest single backoff.
    """

    max_retry_time: float = 60.0
    base_delay: float = 0.1
    max_delay: float = 10.0

    def delay(
        self,
        attempt: int,
        status: int | None,
        retry_after: str | None,
        elapsed: float,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        Args:
            attempt: how many attempts have failed so far (1 after the first).
            status: the failed attempt's HTTP status, None for a network error or timeout.
            retry_after: the answer's ``Retry-After`` header, honoured when present.
            elapsed: seconds since the first attempt started.
            rng: source of jitter (tests pass a seeded one).
        """
        if not is_retryable(status):
            return None
        wait = parse_retry_after(retry_after)
        if wait is None:
            ceiling = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
            # "Equal jitter": at least half the backoff, so a crowd of clients still spreads out.
            wait = ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
        if elapsed + wait > self.max_retry_time:
            return None
        return wait
