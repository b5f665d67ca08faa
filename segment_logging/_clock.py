"""The clock the library's own intervals, deadlines and backoff run on.

Applications freeze time in their tests (freezegun, time-machine). Event
timestamps should follow the frozen clock, since that is what such a test
asserts, but the library's waits must not: a frozen ``time.monotonic()`` would
make ``flush(timeout=2)`` wait forever and spend a retry budget in one attempt.

freezegun replaces ``time.monotonic`` in the ``time`` module and in every module
attribute that holds it, so the real function is kept where it does not look:
inside a tuple. If time was already frozen when this module was imported, the
real function is taken from freezegun itself.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def _real(current: Callable[[], float], name: str) -> Callable[[], float]:
    if getattr(current, "__module__", "") == "freezegun.api":
        real = getattr(sys.modules.get("freezegun.api"), name, None)
        if callable(real):
            return real  # type: ignore[no-any-return]
    return current


_REAL = (_real(time.monotonic, "real_monotonic"), _real(time.time, "real_time"))


def monotonic() -> float:
    """Seconds from an arbitrary start, unaffected by time-freezing libraries."""
    return _REAL[0]()


def wall() -> float:
    """Seconds since the epoch, unaffected by time-freezing libraries: for the spool, whose rows
    several processes compare (a row stamped with a frozen date would look hours old, or new)."""
    return _REAL[1]()
