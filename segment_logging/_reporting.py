"""What a queue tells the application about its problems, and how often.

Every problem goes to ``on_error`` when one is set, else to :func:`_diagnostics.report`
(the ``segment_logging`` logger, or stderr): drops and overflows rate-limited, each
kind of invalid event once with a running count of the rest, every failed batch.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from ._batch import decode_pieces
from ._diagnostics import RateLimit, plural, report
from ._errors import DeliveryError, InvalidMessage
from ._options import Settings

DISTINCT_PROBLEMS = 100
"""How many distinct kinds of invalid-event problem are each reported once; past it, only counts."""
_VALUES = re.compile(r"'[^']*'|\"[^\"]*\"|\b\d[\d,.]*\b")


def problem_kind(problem: str) -> str:
    """A problem's text without the values in it, so that one kind is reported once."""
    return _VALUES.sub("_", problem)[:200]


class Reporter:
    """The reports of one queue: rate limits, one report per kind of problem, ``on_error``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._on_error = settings.on_error
        self._drops = RateLimit()
        self._overflows = RateLimit()
        self._invalids = RateLimit()
        self._kept = RateLimit()
        self._kinds: set[str] = set()
        self._invalid_unreported = 0
        self._warned_closed = False
        self._timeout_reported = False
        self.forked()

    def forked(self) -> None:
        """Forget what was said once about the spool: a forked child says it for itself."""
        self._told_locked = False
        self._told_on_disk = False

    def dropped(self, dropped: int, *, closed: bool) -> None:
        """An event was refused: the queue was full (``dropped`` in all so far), or closed."""
        if closed:
            if not self._warned_closed:
                self._warned_closed = True
                report(
                    logging.WARNING,
                    "segment-logging: an event was logged after close(); it and any later ones are "
                    "dropped and counted in stats()['dropped']",
                )
            return
        due, held = self._drops.ready()
        if due:
            report(
                logging.WARNING,
                "segment-logging: the queue is full (max_queue_size=%d): events are being dropped "
                "(%d dropped in all, %d since the last report); Segment may be slow or unreachable",
                self._settings.max_queue_size,
                dropped,
                held + 1,
            )

    def overflowed(self, dropped: int) -> None:
        """An encoded event was dropped: the queue holds ``max_queue_bytes`` already."""
        due, held = self._overflows.ready()
        if due:
            report(
                logging.WARNING,
                "segment-logging: the queue holds max_queue_bytes (%d bytes): events are being dropped "
                "(%d dropped in all, %d since the last report); Segment may be slow or unreachable",
                self._settings.max_queue_bytes,
                dropped,
                held + 1,
            )

    def invalid(self, exc: InvalidMessage, name: str, origin: str, given: object, invalid: int) -> None:
        """An event could not become a message (``invalid`` in all so far); ``given`` is its metadata."""
        if self._on_error is not None:
            self._call_on_error(exc, [given])
            return
        kind = problem_kind(str(exc))
        if kind not in self._kinds and len(self._kinds) < DISTINCT_PROBLEMS:
            # Each kind of problem is shown once, however often it recurs.
            self._kinds.add(kind)
            report(
                logging.ERROR, "segment-logging: event %r from logger %r was not sent: %s", name, origin, exc
            )
            return
        self._invalid_unreported += 1
        due, _ = self._invalids.ready()
        if due:
            self.unreported_invalid(invalid)

    def unreported_invalid(self, invalid: int) -> None:
        """Report the invalid events not reported yet (their kinds were), if any."""
        if self._invalid_unreported:
            report(
                logging.ERROR,
                "segment-logging: %s not sent for problems already reported (%d invalid in all)",
                plural(self._invalid_unreported, "more invalid event"),
                invalid,
            )
            self._invalid_unreported = 0

    def failure(self, exc: DeliveryError, batch: list[bytes]) -> None:
        """A batch was given up (not reported again after :meth:`shutdown_ran_out` counted it)."""
        if self._on_error is not None:
            self._call_on_error(exc, decode_pieces(batch))
        elif not self._timeout_reported:
            report(logging.ERROR, "segment-logging: %s", exc)

    def spool_full(self, path: str, max_bytes: int, dropped: int, count: int) -> None:
        """``count`` encoded events were dropped: the spool holds ``spool_max_bytes`` already."""
        due, held = self._overflows.ready()
        if due:
            report(
                logging.WARNING,
                "segment-logging: the spool %s holds spool_max_bytes (%d bytes): new events are dropped "
                "until Segment accepts what it holds (%d dropped in all, %d since the last report); "
                "Segment may be slow or unreachable, or a burst larger than the spool came",
                path,
                max_bytes,
                dropped,
                held + count,
            )

    def kept(self, count: int, path: str, exc: DeliveryError) -> None:
        """A batch from the spool could not be delivered now: it stays on disk (rate-limited)."""
        due, held = self._kept.ready()
        if due:
            report(
                logging.WARNING,
                "segment-logging: %s not delivered yet, kept in the spool %s to be sent later: %s",
                plural(count, "message") + (f" (and {held} more batches)" if held else ""),
                path,
                exc,
            )

    def spool_unusable(self, exc: Exception) -> None:
        """The spool cannot be used (``exc`` names the file and why): memory only from now on."""
        report(
            logging.WARNING,
            "segment-logging: the spool cannot be used (%s); events are kept in memory only from now on",
            exc,
        )

    def spool_moved_aside(self, path: str, aside: str) -> None:
        """The spool at ``path`` was not a database: moved to ``aside``, a new one started."""
        report(
            logging.WARNING,
            "segment-logging: the spool %s was not a readable database: it was moved aside to %s "
            "and a new one started",
            path,
            aside,
        )

    def spool_locked(self, exc: Exception) -> None:
        """Another connection holds the spool's lock for now (reported once)."""
        if not self._told_locked:
            self._told_locked = True
            report(
                logging.WARNING,
                "segment-logging: the spool is locked by another connection (%s); events wait in memory "
                "and are stored once it is free (or sent from memory if the process ends first)",
                exc,
            )

    def left_on_disk(self, count: int, path: str, *, removed: bool) -> None:
        """At an ending: ``count`` events stay in the spool at ``path`` (reported once); lost with it
        when the file was ``removed`` or replaced while in use."""
        if self._told_on_disk:
            return
        self._told_on_disk = True
        if removed:
            report(
                logging.ERROR,
                "segment-logging: %s not delivered are lost: the spool %s that held them was removed "
                "or replaced while in use",
                plural(count, "event"),
                path,
            )
            return
        report(
            logging.WARNING,
            "segment-logging: %s not delivered yet stay in the spool %s (this process's, or of others "
            "using it): they will be sent later, by a process using it, the next one to start, or "
            "`python -m segment_logging drain %s`",
            plural(count, "event"),
            path,
            path,
        )

    def carry_on(self) -> None:
        """The process lives on after its exit began (see :meth:`EventQueue.carry_on`)."""
        self._timeout_reported = False

    def shutdown_ran_out(self, undelivered: int) -> None:
        """``shutdown_timeout`` passed with the worker still in a request (reported once)."""
        if not self._timeout_reported:
            self._timeout_reported = True
            report(
                logging.ERROR,
                "segment-logging: shutdown_timeout (%g s) ran out with %s not delivered",
                self._settings.shutdown_timeout,
                plural(undelivered, "event"),
            )

    def _call_on_error(self, exc: Exception, messages: list[Any]) -> None:
        assert self._on_error is not None
        try:
            self._on_error(exc, messages)
        except BaseException:  # noqa: BLE001 - a callback (even one raising SystemExit) must not stop delivery
            report(logging.ERROR, "segment-logging: on_error raised", exc_info=True)


def given_metadata(metadata: object, extra: Mapping[str, Any] | None) -> object:
    """What the caller gave as an event's metadata: the record's extra fields for ``segment=True``."""
    return extra if metadata is True else metadata
