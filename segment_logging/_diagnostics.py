"""Where the library reports trouble: the ``segment_logging`` logger, or stderr.

A common set-up puts SegmentHandler alone on the root logger. Records of the
``segment_logging`` logger would then reach only that handler, which ignores
them, and logging's last-resort handler would not step in because a handler
exists. So when no other handler would show a report, it goes to stderr the
way the last-resort handler writes it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import traceback
from collections import deque
from typing import Any

from ._clock import monotonic
from ._sync import Wakeup

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


silent_handlers: tuple[type[logging.Handler], ...] = ()
"""Handler classes that never show a report (SegmentHandler registers itself at import)."""


def _shown_elsewhere(level: int) -> bool:
    """Whether a handler that shows records at once (not one of :data:`silent_handlers`, not a
    buffering handler) would handle a record at ``level``."""
    handlers_module = sys.modules.get("logging.handlers")
    # A MemoryHandler only holds a report back, until it is flushed into its target (perhaps us).
    buffering = (handlers_module.BufferingHandler,) if handlers_module is not None else ()
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if not isinstance(handler, silent_handlers + buffering) and level >= handler.level:
                return True
        current = current.parent if current.propagate else None
    return False


_MAX_SHOWN = 300
"""Characters of one value a report shows; a bad value can be megabytes long."""


def shorten(value: object, limit: int = _MAX_SHOWN) -> object:
    """``value`` as given, or its text cut to ``limit`` characters when longer."""
    if isinstance(value, BaseException):
        value = f"{value}"
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}... ({len(value):,} characters)"
    return value


_Report = tuple[int, str, tuple[Any, ...], Any]
_deferred: deque[_Report] = deque()
"""Reports made on a worker thread, waiting to be logged by the reporter thread or a flush()."""
_reporter: threading.Thread | None = None
_reporter_wake = Wakeup()
_emitting = threading.RLock()
"""Held while a deferred report is being logged, so flush() can wait for it (briefly). Reentrant:
a signal handler that flushes may interrupt a flush() of the same thread between its two calls."""
_REPORT_WAIT = 1.0
"""Seconds flush() waits for a report the reporter thread is logging (it may wait on a lock)."""


def report(level: int, message: str, *args: Any, exc_info: bool = False) -> None:
    """Log ``message % args`` on the ``segment_logging`` logger, falling back to stderr.

    Long values are cut (see :func:`shorten`). On a worker thread the report is
    deferred to the reporter thread: logging it there could wait on a handler's
    lock held by a thread that is itself waiting for that worker (a handler that
    calls ``flush()`` from its ``emit``).
    """
    if not _enabled(level):
        return
    shown = tuple(shorten(arg) for arg in args)
    error = sys.exc_info() if exc_info else None
    if threading.get_ident() in worker_threads:
        _deferred.append((level, message, shown, error))
        _wake_reporter()
        return
    _log(level, message, shown, error)


def _enabled(level: int) -> bool:
    """Whether a report at ``level`` is shown, by the logger's level (and ``logging.disable()``).

    Also when the logger is disabled: ``dictConfig`` and ``fileConfig`` disable every logger that
    exists before them unless told not to (``disable_existing_loggers``, true by default), and this
    one exists from the import. An application that set up its logging did not ask for the
    library's reports of lost events to vanish; it can still raise this logger's level.
    """
    if logger.disabled:
        return level >= logger.getEffectiveLevel() and level > logger.manager.disable
    return logger.isEnabledFor(level)


def _log(level: int, message: str, args: tuple[Any, ...], error: Any) -> None:
    if not logger.disabled and _shown_elsewhere(level):
        logger.log(level, message, *args, exc_info=error)
        return
    try:
        text = message % args if args else message
        if error is not None and error[0] is not None:
            text += "\n" + "".join(traceback.format_exception(*error)).rstrip()
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - stderr closed at exit: nothing more can be done
        pass


def flush_reports(wait: float = _REPORT_WAIT) -> None:
    """Log the deferred reports on this thread, after any the reporter thread is logging now."""
    if _emitting.acquire(timeout=wait):
        _emitting.release()
    _drain_reports()


def _drain_reports() -> None:
    while True:
        try:
            level, message, args, error = _deferred.popleft()
        except IndexError:
            return
        with contextlib.suppress(Exception):  # a broken handler must not stop the other reports
            _log(level, message, args, error)


def _wake_reporter() -> None:
    global _reporter
    if _reporter is None:
        thread = threading.Thread(target=_report_forever, name="segment-logging-reports", daemon=True)
        _reporter = thread
        try:
            thread.start()
        except RuntimeError:  # interpreter shutdown: flush()/close() log the reports instead
            return
    _reporter_wake.set()


def _report_forever() -> None:
    while True:
        _reporter_wake.wait()
        with _emitting:
            _drain_reports()


def reset_after_fork() -> None:
    """In a forked child: no reporter thread, no worker threads (``_lifecycle`` calls this)."""
    global _reporter, _emitting, _reporter_wake
    _reporter = None  # the parent's thread does not exist in the child
    _emitting = threading.RLock()
    _reporter_wake = Wakeup()
    worker_threads.clear()  # nor do its workers; their idents may be reused


worker_threads: set[int] = set()
"""Idents of segment-logging's worker threads (added and removed by the queue)."""

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
        # Logger filters run on the logging thread; record.thread is None with logThreads off.
        return threading.get_ident() not in worker_threads


_quiet = _QuietWorkers()


def quiet_http_loggers() -> None:
    """Install the filter on httpx's and httpcore's loggers (idempotent)."""
    for name in _HTTP_LOGGERS:
        http_logger = logging.getLogger(name)
        if _quiet not in http_logger.filters:
            http_logger.addFilter(_quiet)
