"""Where the library reports trouble: the ``segment_logging`` logger, or stderr.

A common set-up puts SegmentHandler alone on the root logger. Records of the
``segment_logging`` logger would then reach only that handler, which ignores
them, and logging's last-resort handler would not step in because a handler
exists. So when no other handler would show a report, it goes to stderr the
way the last-resort handler writes it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from ._clock import monotonic

logger = logging.getLogger("segment_logging")

REPORT_EVERY = 10.0
"""Seconds between two reports of the same kind of trouble (drops, invalid events)."""


class RateLimit:
    """Lets one report through every ``interval`` seconds and counts the rest."""

    def __init__(self, interval: float = REPORT_EVERY) -> None:
        self.interval = interval
        self.last = -interval
        self.suppressed = 0

    def ready(self) -> tuple[bool, int]:
        """(whether to report now, how many were held back since the last report)."""
        now = monotonic()
        if now - self.last < self.interval:
            self.suppressed += 1
            return False, 0
        self.last, held, self.suppressed = now, self.suppressed, 0
        return True, held


def plural(count: int, noun: str) -> str:
    """``"1 message"``, ``"2 messages"``: for counts in reports."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _shown_elsewhere(level: int) -> bool:
    """Whether a handler that is not a SegmentHandler would handle a record at ``level``."""
    from ._handler import SegmentHandler

    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if not isinstance(handler, SegmentHandler) and level >= handler.level:
                return True
        current = current.parent if current.propagate else None
    return False


def report(level: int, message: str, *args: Any, exc_info: bool = False) -> None:
    """Log ``message % args`` on the ``segment_logging`` logger, falling back to stderr."""
    if not logger.isEnabledFor(level):
        return
    if _shown_elsewhere(level):
        logger.log(level, message, *args, exc_info=exc_info)
        return
    try:
        text = message % args if args else message
        if exc_info:
            import traceback

            text += "\n" + traceback.format_exc().rstrip()
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - stderr closed at exit: nothing more can be done
        pass


worker_threads: set[int] = set()
"""Idents of segment-logging's worker threads (added and removed by the core)."""

_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


class _QuietWorkers(logging.Filter):
    """Drops the per-request lines httpx and httpcore log from segment-logging's worker.

    Without it, an app logging at INFO prints "HTTP Request: POST .../v1/batch"
    for every batch. Requests the app makes itself with httpx are untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in worker_threads


_quiet = _QuietWorkers()


def quiet_http_loggers() -> None:
    """Install the filter on httpx's and httpcore's loggers (idempotent)."""
    for name in _HTTP_LOGGERS:
        http_logger = logging.getLogger(name)
        if _quiet not in http_logger.filters:
            http_logger.addFilter(_quiet)
