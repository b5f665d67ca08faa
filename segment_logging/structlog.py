"""structlog support: :class:`SegmentProcessor`, a processor on the same queue as SegmentHandler.

Put it in the chain after the processors that add the fields you want sent
(``merge_contextvars``, ``bind()``) and before the renderer::

    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        SegmentProcessor("YOUR_WRITE_KEY"),
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.processors.JSONRenderer(),
    ])

Events whose event dict carries ``segment`` are queued for Segment; the key is
removed, so renderers (and a SegmentHandler behind ``wrap_for_formatter``)
never see it. structlog itself is not imported at run time.
"""

from __future__ import annotations

import datetime
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from ._context import current as bound_context
from ._diagnostics import RateLimit, report
from ._handler import SegmentHandler
from ._options import Options, Settings
from ._structlog_events import STRUCTLOG_KEYS, structlog_fields
from ._values import capture_fields, capture_metadata
from ._worker import EventQueue

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger
    from typing_extensions import Unpack

__all__ = ["STRUCTLOG_KEYS", "SegmentProcessor"]


class SegmentProcessor:
    """A structlog processor that turns event dicts carrying ``segment`` into Segment messages.

    The ``segment`` value takes the same forms as for :class:`~segment_logging.SegmentHandler`:
    a mapping of snake_case fields, a message object, or ``True`` to derive a track
    from the event dict (``user_id``/``anonymous_id`` from its keys, every other key
    but :data:`STRUCTLOG_KEYS` as properties). The track event (or page name)
    defaults to structlog's ``event``. What :func:`segment_logging.bind` bound fills in
    the ids (and properties) the event leaves out. Calls never block on the network and never
    raise; invalid events are reported through ``on_error`` or the
    ``segment_logging`` logger, and logging goes on.

    Args:
        write_key: your Segment source's write key; defaults to ``$SEGMENT_WRITE_KEY``.
        handler: an existing SegmentHandler whose queue, worker and connections this
            processor shares (then pass no other argument: the handler's options apply).
        **options: the same keyword options as SegmentHandler (``host``,
            ``max_batch_size``, ``flush_interval``, ``on_error``, ``send``, ...).
            ``send=False`` (or ``$SEGMENT_SEND=0``) sends nothing and needs no write key.

    Raises:
        ValueError: no write key while sending, an option out of range (the message names it), or
            ``handler`` combined with a write key or options.
    """

    def __init__(
        self,
        write_key: str | None = None,
        *,
        handler: SegmentHandler | None = None,
        **options: Unpack[Options],
    ) -> None:
        if handler is None:
            self._queue = EventQueue(write_key, Settings.of("SegmentProcessor", options))
        elif not isinstance(handler, SegmentHandler):
            raise ValueError(f"handler must be a SegmentHandler, got {handler!r}")
        elif write_key is not None or options:
            given = ["write_key"] * (write_key is not None) + sorted(options)
            raise ValueError(
                f"handler= shares that handler's queue and its options; do not also pass {', '.join(given)}"
            )
        else:
            self._queue = handler._queue
        self._failure_reports = RateLimit()

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        """Queue the event if it carries ``segment``; return the event dict without that key.

        Returns:
            ``event_dict`` itself, minus ``segment``.
        """
        try:
            metadata = event_dict.pop("segment", None)
            if metadata is not None and metadata is not False:
                self._submit(logger, metadata, event_dict)
        except Exception:  # noqa: BLE001 - a processor must never raise into the app
            self._report_failure()
        return event_dict

    def _submit(self, logger: WrappedLogger, metadata: object, event_dict: EventDict) -> None:
        queue = self._queue
        if threading.get_ident() == queue.worker_ident:
            return  # an on_error callback logging events: never feed the worker its own reports
        # The worker reads the item later, while processors after this one change the
        # event dict: hand it copies (one level deep, as messages copy their mappings).
        bound = bound_context.get()  # segment_logging.bind(): merged under the event's own values
        if metadata is True:
            fields = structlog_fields(event_dict)
            extra: dict[str, Any] | None = capture_fields(
                fields if bound is None else bound.under_fields(fields)
            )
        else:
            extra = None
            merged = metadata if bound is None else bound.under_metadata(metadata)
            if type(merged) is dict:
                captured = capture_metadata(merged)
                metadata = merged.copy() if captured is metadata else captured
            else:
                metadata = merged
        event = event_dict.get("event")
        name = event if isinstance(event, str) else "" if event is None else str(event)
        created = _created(event_dict.get("timestamp"))
        queue.submit((metadata, name, created, _origin(logger, event_dict), extra))

    def _report_failure(self) -> None:
        try:
            due, held = self._failure_reports.ready()
            if due:
                more = f" ({held} more since the last report)" if held else ""
                report(
                    logging.ERROR,
                    "segment-logging: SegmentProcessor could not queue an event%s",
                    more,
                    exc_info=True,
                )
        except Exception:  # noqa: BLE001 - reporting is best effort; logging goes on
            pass

    def flush(self, timeout: float | None = None) -> bool:
        """Block until what was logged before the call is delivered or given up on.

        Args:
            timeout: seconds to wait at most; None waits as long as retries last.

        Returns:
            True when everything settled in time.
        """
        return self._queue.flush(timeout)

    def close(self) -> None:
        """Deliver what is queued within ``shutdown_timeout``, then stop. Idempotent.

        With ``handler=``, this closes the queue the handler shares. Closing is
        optional: every open queue delivers at interpreter exit.
        """
        self._queue.close()

    def stats(self) -> dict[str, int]:
        """Counts of messages: queued, sent, dropped, failed, retried and invalid."""
        return self._queue.stats()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._queue.host}>"


def _created(timestamp: object) -> float:
    """Epoch seconds of the event dict's timestamp if it is one already, else now.

    A number is passed on as it is (an int too large for a float included), so that
    the worker, which checks every timestamp against Segment's range, reports an
    out-of-range one (epoch milliseconds, say) as an invalid event with its value.
    """
    if isinstance(timestamp, datetime.datetime):
        try:
            return timestamp.timestamp()  # a naive datetime is local time, as in the messages
        except (OverflowError, ValueError, OSError):  # local time at the very ends of datetime's range
            return math.nan  # reported by the worker as an invalid timestamp
    if isinstance(timestamp, float | int) and not isinstance(timestamp, bool):
        return timestamp
    return time.time()


def _origin(logger: WrappedLogger, event_dict: EventDict) -> str:
    """The logger name for error reports: the ``logger`` key, else the wrapped logger's name."""
    name = event_dict.get("logger", getattr(logger, "name", ""))
    return name if isinstance(name, str) else ""
