"""When to retry a request to Segment, and how long to wait first: the one place for retry rules.

Pure decisions, so they can be tested without sockets or clocks. The sync
and async senders are thin loops around :meth:`RetryPolicy.next_wait`.

The rules are those Segment's own SDKs converged on in 2026:

* retried: no answer at all, 408, 410, 429, 460, and every 5xx but 501, 505 and 511;
  never any other status (a 4xx will fail the same way again);
* a ``Retry-After`` (seconds or an HTTP date) on any retryable answer is obeyed,
  capped at 300 s; such a server-directed wait does not count as a backoff
  attempt and is spent from its own budget (``max_rate_limit_time``);
* the normal backoff is the floor: an ask shorter than it (``Retry-After: 0``),
  or one that cannot be read, is a normal backoff, growing and spent from
  ``max_retry_time``;
* otherwise exponential backoff with jitter, base 0.5 s, at most 60 s a wait,
  within ``max_retry_time`` of backing off.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import random
from dataclasses import dataclass, field

RETRYABLE_4XX = frozenset((408, 410, 429, 460))
NEVER_RETRIED_5XX = frozenset((501, 505, 511))
"""Not Implemented, HTTP Version Not Supported, Network Authentication Required: retrying cannot help."""

BASE_DELAY = 0.5
"""The first backoff, in seconds; doubled on each further attempt."""
MAX_DELAY = 60.0
"""The longest single backoff, in seconds."""
MAX_RETRY_AFTER = 300.0
"""The longest wait a server's ``Retry-After`` can ask for; longer asks are cut to this."""
DEFAULT_MAX_RETRY_TIME = 60.0
"""Default budget of backoff, in seconds, from a batch's first attempt."""
DEFAULT_MAX_RATE_LIMIT_TIME = 60.0
"""Default budget of server-directed (``Retry-After``) waits for one batch, in seconds."""


def is_retryable(status: int | None) -> bool:
    """Whether a request that got ``status`` (None: no answer at all) may be tried again."""
    if status is None or status in RETRYABLE_4XX:
        return True
    return 500 <= status <= 599 and status not in NEVER_RETRIED_5XX


def parse_retry_after(value: str | None, now: datetime.datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None.

    Garbage, ``nan`` and ``inf`` give None; a time in the past gives 0; anything
    past :data:`MAX_RETRY_AFTER` (a date in the year 99999999999 too) gives that cap.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        until = _seconds_until(value, now)  # an HTTP date; one past datetime's range is inf
        if until is None:
            return None
        seconds = until
    else:
        if not math.isfinite(seconds):  # "nan", "inf": garbage, not a wait
            return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def _seconds_until(value: str, now: datetime.datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    except OverflowError:  # a year past datetime's range: as far away as can be
        return math.inf
    if when is None:  # pragma: no cover - Python 3.10 returns None for some garbage
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    current = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        return (when - current).total_seconds()
    except OverflowError:  # pragma: no cover - datetime arithmetic at the edges of its range
        return math.inf


@dataclass
class RetryState:
    """How far one batch got: what :meth:`RetryPolicy.next_wait` needs to remember.

    Attributes:
        retries: retries decided so far (the next request carries ``X-Retry-Count: retries``).
        backoffs: retries decided by backoff; server-directed waits do not count.
        server_waited: seconds of server-directed waits decided so far.
    """

    retries: int = 0
    backoffs: int = 0
    server_waited: float = 0.0
    rng: random.Random | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, ``Retry-After`` obeyed, each within its own budget.

    Attributes:
        max_retry_time: seconds of backing off (time not spent in server-directed
            waits) after which a failing batch is given up.
        max_rate_limit_time: seconds of server-directed waits a batch may spend.
        base_delay: the first backoff, doubled on each further attempt.
        max_delay: the longest single backoff.
        max_retries: retries of a batch at most (None: only the budgets limit them).
    """

    max_retry_time: float = DEFAULT_MAX_RETRY_TIME
    max_rate_limit_time: float = DEFAULT_MAX_RATE_LIMIT_TIME
    base_delay: float = BASE_DELAY
    max_delay: float = MAX_DELAY
    max_retries: int | None = None

    def backoff(self, backoffs: int, rng: random.Random | None = None) -> float:
        """The jittered backoff before retry number ``backoffs + 1`` of the backoff kind."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(max(backoffs, 0), 64))
        # "Equal jitter": at least half the backoff, so a crowd of clients still spreads out.
        jitter: float = (rng or random).uniform(0, ceiling / 2)
        return ceiling / 2 + jitter

    def next_wait(
        self, state: RetryState, status: int | None, retry_after: str | None, elapsed: float
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up; records the decision in ``state``.

        Args:
            state: the batch's progress so far (updated when a retry is decided).
            status: the failed attempt's HTTP status, None for a network error or timeout.
            retry_after: the answer's ``Retry-After`` header.
            elapsed: seconds since the batch's first attempt started.
        """
        if not is_retryable(status):
            return None
        if self.max_retries is not None and state.retries >= self.max_retries:
            return None
        backoff = self.backoff(state.backoffs, state.rng)
        asked = parse_retry_after(retry_after)
        if asked is not None and asked > backoff:
            # Server-directed: its own budget, and the backoff does not grow meanwhile. An ask
            # longer than what is left is cut to it, for one last attempt as the budget ends.
            left = self.max_rate_limit_time - state.server_waited
            if left <= 0:
                return None
            wait = min(asked, left)
            state.server_waited += wait
        else:
            # No ask, or one shorter than the backoff ("Retry-After: 0"): the backoff is the floor.
            left = self.max_retry_time - (elapsed - state.server_waited)
            if left <= 0:
                return None
            # A backoff longer than what is left of the budget is cut to it: one last
            # attempt as the budget ends rather than giving up with time to spare.
            state.backoffs += 1
            wait = min(backoff, left)
        state.retries += 1
        return wait
