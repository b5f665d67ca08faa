"""SegmentHandler: the stdlib logging front end of the queue."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

from . import _diagnostics
from ._compat import (
    HANDLE_RETURNS_RECORD,
    check_level,
    flush_called_by_logging_shutdown,
    live_handlers,
    released,
)
from ._context import current as bound_context
from ._diagnostics import worker_threads
from ._encoding import unformatted
from ._options import Options, RawEvent, Settings
from ._structlog_events import structlog_fields
from ._values import capture_fields, capture_metadata
from ._worker import EventQueue

if TYPE_CHECKING:
    from typing_extensions import Unpack

_last_record = threading.local()
"""Per thread: a weak reference to the last record a SegmentHandler saw, and the sources that queued it."""

# Attributes every LogRecord has; `segment=True` takes properties from the others.
RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "segment",
    "_segment_logging_message",  # KEPT_MESSAGE
}

REPORTS_LOGGER = "segment_logging"
"""The logger the library reports its own trouble on; its records never become events."""
_REPORTS_PREFIX = REPORTS_LOGGER + "."


class SegmentHandler(logging.Handler):
    """Turns log records that carry Segment metadata into Segment messages.

    A record carries metadata in its ``segment`` attribute
    (``extra={"segment": {...}}``): a mapping of snake_case fields, a message
    object, or ``True`` to derive a track from the record's extra attributes.
    Other records are ignored cheaply, so the handler can sit on the root logger.
    What :func:`segment_logging.bind` bound on the logging thread fills in the ids
    (and properties) the event leaves out.

    Args:
        write_key: your Segment source's write key; defaults to ``$SEGMENT_WRITE_KEY``.
        level: the handler's level, as for any handler.
        host: Segment's API host; defaults to ``$SEGMENT_HOST``, else ``https://api.segment.io``
            (EU workspaces: ``https://events.eu1.segmentapis.com``).
        max_batch_size: messages per request, 1 to 2,500 (default 2,500: sized by the backlog).
        max_batch_bytes: cap on a request body in bytes, at most 500,000 (default 475,000).
        flush_interval: seconds a message may wait before its batch goes out (default 0.5).
        max_queue_size: events waiting at most; past it new ones are dropped and
            counted (default 100,000).
        max_queue_bytes: encoded bytes waiting at most; past it new ones are dropped
            and counted (default 64,000,000).
        gzip: compress request bodies (default True).
        timeout: seconds for each whole request, answer included (default 10).
        shutdown_timeout: the longest ``close()`` or exit waits to deliver (default 5).
        max_retry_time: seconds of backing off after which a failing batch is given up
            (default 60).
        max_rate_limit_time: seconds a batch may spend in waits the server asked for with
            ``Retry-After``, each capped at 300 (default 60).
        max_retries: retries of a batch at most (default None: only the two budgets limit them).
        path: what follows ``host`` in the endpoint's URL (default ``/v1/batch``); ``host``
            may carry a path prefix for a Segment-compatible endpoint served under one.
        oauth_client_id: with ``oauth_client_key`` and ``oauth_key_id``, authenticate with
            OAuth 2.0 bearer tokens (Segment's beta; needs ``segment-logging[oauth]``).
        oauth_client_key: the OAuth client's RSA private key, PEM text (never shown anywhere).
        oauth_key_id: the key's id at Segment.
        oauth_auth_server: defaults to Segment's auth server for the host's region.
        oauth_scope: the scope asked for (default ``tracking_api:write``).
        on_error: ``callable(exception, messages)`` for messages that were rejected,
            invalid or not delivered; without it they are reported on the
            ``segment_logging`` logger.
        transport: an httpx transport, for proxies, custom TLS and tests.
        send: False to send nothing: events are still validated, converted, counted
            in ``stats()["sent"]`` and invalid ones reported, but nothing leaves the
            process and no write key is needed (tests, CI, local development).
            Defaults to ``$SEGMENT_SEND`` (``0``/``false`` to switch off), else True.
        spool: a file (str or ``os.PathLike``) where events wait until Segment accepts
            them, so a crash, a kill or a long outage loses nothing on disk; defaults to
            ``$SEGMENT_SPOOL``, else None (memory only). See docs/durable-delivery.md.
        spool_max_bytes: the spool file's cap (256 MB); past it new events are dropped.
        spool_max_age: seconds an event may wait in the spool (12 hours); past it, it fails.

    Raises:
        ValueError: no write key while sending, or an option out of range (the message names it).
    """

    def __init__(
        self,
        write_key: str | None = None,
        *,
        level: int | str = logging.NOTSET,
        **options: Unpack[Options],
    ) -> None:
        settings = Settings.of("SegmentHandler", options)
        if not isinstance(level, int | str):
            raise ValueError(f"level must be a level name or number, got {level!r}")
        check_level(level)  # raises before a queue exists
        self._queue = EventQueue(write_key, settings)
        self._queue.closed_by_logging = True  # logging.shutdown() closes it, after the exit flushes
        keep_messages_through_queues()
        # A second SegmentHandler for the same source on a record's path (one on
        # "app", one on the root) must not send it again under a new messageId.
        self._token = (self._queue.host, self._queue.write_key_token)
        super().__init__(level)

    flushOnClose = False  # noqa: N815 - the stdlib name logging.shutdown() reads
    """Python 3.12+: ``logging.shutdown()`` calls only ``close()``, which delivers within
    ``shutdown_timeout`` (a ``flush()`` could wait out the retry budget first)."""

    def handle(self, record: logging.LogRecord) -> Any:
        """Filter and emit without the handler lock: the queue is thread-safe, and not
        taking the lock keeps ``flush()``/``close()`` out of logging's deadlocks."""
        original = record
        if self.filters:
            result = self.filter(record)
            if not result:
                return result
            if isinstance(result, logging.LogRecord):
                record = result  # a filter's copy (Python 3.12+): the same event as the original
        self._emit(record, original)
        return record if HANDLE_RETURNS_RECORD else True

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record's event, if it has one. Never raises, never does I/O."""
        self._emit(record, record)

    def _emit(self, record: logging.LogRecord, original: logging.LogRecord) -> None:
        try:
            item = self._item(record, original)
            if item is not None:
                self._queue.submit(item)
        except Exception:  # noqa: BLE001 - logging must never raise into the app
            self.handleError(record)

    def _item(self, record: logging.LogRecord, original: logging.LogRecord) -> RawEvent | None:
        attributes = record.__dict__
        metadata = attributes.get("segment")
        event_dict: dict[str, Any] | None = None
        if metadata is None:
            # The structlog bridge (ProcessorFormatter.wrap_for_formatter): msg is the event dict.
            message = record.msg
            if type(message) is not dict:
                return None
            event_dict = message
            metadata = event_dict.get("segment")
            if metadata is None:
                return None
        if metadata is False or self._own(record) or self._already_queued(original):
            return None
        # Only now, for an event this handler will queue, the work that costs.
        bound = bound_context.get()  # segment_logging.bind(): merged under the event's own values
        extra: dict[str, Any] | None = None
        if metadata is True:
            if event_dict is not None:
                fields = structlog_fields(event_dict)
            else:
                fields = {k: v for k, v in attributes.items() if k not in RECORD_ATTRIBUTES}
            extra = capture_fields(fields if bound is None else bound.under_fields(fields))
        elif bound is not None:
            metadata = bound.under_metadata(metadata)
        if event_dict is not None:
            name = str(event_dict.get("event", ""))
        else:
            name = attributes.get(KEPT_MESSAGE) or _logged_message(record)
        return (capture_metadata(metadata), name, record.created, record.name or "", extra)

    def _own(self, record: logging.LogRecord) -> bool:
        """The library's own traffic, or what it reports about itself: never shipped."""
        name = record.name
        if isinstance(name, str) and (name == REPORTS_LOGGER or name.startswith(_REPORTS_PREFIX)):
            return True
        # The logging thread, not record.thread: that is None with logging.logThreads off.
        return threading.get_ident() in worker_threads

    def _already_queued(self, record: logging.LogRecord) -> bool:
        """Whether another handler for the same source queued this record already.

        The handlers of one record run one after another on the logging thread;
        remembering the last record per thread avoids marking the user's record.
        The reference is weak, so a large record is not kept alive by it.
        """
        seen = _last_record
        last = getattr(seen, "record", None)
        if last is not None and last() is record:
            if self._token in seen.tokens:
                return True
            seen.tokens += (self._token,)
        else:
            seen.record, seen.tokens = weakref.ref(record), (self._token,)
        return False

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Block until what was logged before the call is delivered or given up on.

        Args:
            timeout: seconds to wait at most; None waits as long as retries last.

        Returns:
            True when everything settled in time.
        """
        if timeout is None and flush_called_by_logging_shutdown():
            # logging.shutdown() calls flush() then close(); close() alone delivers the
            # same within shutdown_timeout, where flush() could wait out the retry budget.
            self.close()
            return True
        return self._queue.flush(timeout)

    def close(self) -> None:
        """Deliver what is queued within ``shutdown_timeout``, then stop. Idempotent."""
        with released(self.lock):
            self._queue.close()
        super().close()

    def stats(self) -> dict[str, int]:
        """Counts of messages: queued, sent, dropped, failed, retried and invalid."""
        return self._queue.stats()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} {self._queue.host} ({level})>"


_diagnostics.silent_handlers = (SegmentHandler,)

KEPT_MESSAGE = "_segment_logging_message"
"""Record attribute: an event's message as logged, kept by :class:`_KeepMessage` before a
``QueueHandler`` replaces ``msg`` with its formatted line."""
_TRACEBACK_MARKERS = ("\nTraceback (most recent call last):", "\nStack (most recent call last):")


def _logged_message(record: logging.LogRecord) -> str:
    """``msg % args`` of the record as logged, also for a record a QueueHandler already formatted."""
    msg = record.msg
    if record.args is None and isinstance(msg, str) and record.__dict__.get("message") is msg:
        # QueueHandler.prepare() replaced msg with the formatted line and set args to None.
        keep_messages_through_queues()  # exact for the records that follow
        return _unformat(record, str(msg))
    try:
        return record.getMessage()
    except Exception as exc:  # noqa: BLE001 - "%d" % "x": the worker decides, and counts it
        return unformatted(str(msg), exc)


def _unformat(record: logging.LogRecord, line: str) -> str:
    """The message inside ``line``, the formatted text of ``record`` by one of the QueueHandlers."""
    for marker in _TRACEBACK_MARKERS:
        line = line.split(marker, 1)[0]
    for formatter in _queue_formatters():
        try:
            probe = logging.makeLogRecord({**record.__dict__, "message": "\x00", "exc_text": None})
            prefix, _, suffix = formatter.formatMessage(probe).partition("\x00")
        except Exception:  # noqa: BLE001 - a formatter that needs what the copy lacks: try the next
            continue
        if line.startswith(prefix) and line.endswith(suffix) and len(line) >= len(prefix) + len(suffix):
            return line[len(prefix) : len(line) - len(suffix)]
    _report_formatted_once()
    return line


def _queue_formatters() -> list[logging.Formatter]:
    return [handler.formatter or logging.Formatter() for handler in _queue_handlers()]


def _queue_handlers() -> list[logging.Handler]:
    """Every live ``QueueHandler`` (none while ``logging.handlers`` was never imported)."""
    handlers_module = sys.modules.get("logging.handlers")
    if handlers_module is None:
        return []
    return [handler for handler in live_handlers() if isinstance(handler, handlers_module.QueueHandler)]


class _KeepMessage(logging.Filter):
    """On a ``QueueHandler``: keep an event's message as logged, before the handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        attributes = record.__dict__
        if "segment" in attributes and KEPT_MESSAGE not in attributes:
            with contextlib.suppress(Exception):  # a message that cannot be formatted is handled later
                attributes[KEPT_MESSAGE] = record.getMessage()
        return True


_keep_message = _KeepMessage()


def keep_messages_through_queues() -> None:
    """Put :class:`_KeepMessage` on every ``QueueHandler`` in the process (idempotent).

    ``QueueHandler.prepare()`` turns a record's message into the formatted line
    (a timestamp and level in front, a traceback behind) before the listener
    hands it to SegmentHandler; the event's name must be the message as logged.
    """
    for handler in _queue_handlers():
        if _keep_message not in handler.filters:
            handler.addFilter(_keep_message)


_reported_formatted = False


def _report_formatted_once() -> None:
    global _reported_formatted
    if not _reported_formatted:
        _reported_formatted = True
        _diagnostics.report(
            logging.WARNING,
            "segment-logging: an event reached SegmentHandler already formatted by a handler in front of "
            "it (a QueueHandler whose formatter could not be undone), so its name may carry that "
            "formatting; name the event in its metadata (event=...) or put SegmentHandler before the queue",
        )
