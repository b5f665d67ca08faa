"""The queue under hostile conditions: callbacks that raise, concurrent invalid events during a flush,
bounded memory, frozen clocks, and handlers that flush from inside logging."""

from __future__ import annotations

import copy
import gc
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable

import pytest
from freezegun import freeze_time

from segment_logging import SegmentHandler
from segment_logging.testing import ErrorRecorder, SegmentServer

MakeHandler = Callable[..., SegmentHandler]


def _reports(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "segment_logging"]


def test_on_error_raising_system_exit_does_not_stop_delivery(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """An on_error callback that raises SystemExit is reported; the worker goes on delivering."""

    def leave(exc: Exception, messages: object) -> None:
        sys.exit(1)

    handler = make_handler(on_error=leave)
    logger.addHandler(handler)
    server.fail_next(1, status=400)
    logger.info("Rejected", extra={"segment": {"user_id": "u"}})
    assert handler.flush(5)
    for n in range(20):
        logger.info("After", extra={"segment": {"user_id": f"u{n}"}})
    assert handler.flush(5)
    assert len(server.events("After")) == 20
    assert handler.stats()["failed"] == 1
    assert "segment-logging: on_error raised" in _reports(caplog)


def test_flush_is_false_while_earlier_events_wait_though_invalid_ones_settle(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """flush() answers for what was logged before it: invalid events logged meanwhile by another thread
    (settled at once, while the worker waits to retry) do not make it report a delivery that has not
    happened."""
    handler = make_handler(on_error=ErrorRecorder(), max_retry_time=30)
    logger.addHandler(handler)
    server.fail_for(1.5, statuses=(503,))
    logger.info("Waiting", extra={"segment": {"user_id": "u"}})
    assert server.wait_for_requests(1)
    stop = threading.Event()

    def log_invalid() -> None:
        while not stop.is_set():
            logger.info("Invalid", extra={"segment": {"properties": {}}})

    thread = threading.Thread(target=log_invalid)
    thread.start()
    try:
        assert handler.flush(timeout=0.5) is False
    finally:
        stop.set()
        thread.join()
    assert handler.flush(10)
    assert server.events("Waiting")


def test_flushes_that_time_out_leave_nothing_behind(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """flush(timeout=0) after every event while Segment fails keeps no marker per call."""
    handler = make_handler(max_retry_time=30)
    logger.addHandler(handler)
    server.fail_for(1.5, statuses=(503,))
    for n in range(3000):
        logger.info("Each", extra={"segment": {"user_id": f"u{n}"}})
        handler.flush(timeout=0)
    gc.collect()
    assert sum(type(obj).__name__.lstrip("_") == "Flush" for obj in gc.get_objects()) <= 2
    assert handler.flush(10)


def test_max_queue_bytes_drops_counts_and_reports(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """Past max_queue_bytes of encoded events, new ones are dropped, counted and reported once."""
    handler = make_handler(max_queue_bytes=40_000, flush_interval=3600)
    logger.addHandler(handler)
    server.pause()
    try:
        for n in range(100):
            logger.info("Big", extra={"segment": {"user_id": f"u{n}", "properties": {"blob": "x" * 1000}}})
        assert handler.flush(timeout=0.5) is False
        stats = handler.stats()
        assert 0 < stats["dropped"] < 100
        assert stats["queued"] + stats["dropped"] == 100
    finally:
        server.resume()
    assert handler.flush(10)
    assert handler.stats()["sent"] == 100 - handler.stats()["dropped"]
    assert sum("max_queue_bytes" in text for text in _reports(caplog)) == 1


def test_close_ends_a_request_that_hangs_at_its_deadline_and_counts_the_batch(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """A request sent before close() (so with only its own 30 s timeout) hangs: close() ends it at
    shutdown_timeout, and the worker itself gives the batch up, counted, rather than staying in it."""
    handler = make_handler(timeout=30, shutdown_timeout=1)
    logger.addHandler(handler)
    server.pause()
    try:
        logger.info("Hung", extra={"segment": {"user_id": "u"}})
        assert handler.flush(timeout=0.2) is False
        assert server.wait_for_held(1)
        started = time.monotonic()
        handler.close()
        assert time.monotonic() - started < 1 + 1  # a generous slack on a loaded machine
        settled = threading.Event()
        while handler.stats()["queued"] and time.monotonic() - started < 5:  # the worker's last step
            settled.wait(0.01)
        stats = handler.stats()
        assert (stats["queued"], stats["failed"], stats["sent"]) == (0, 1, 0)
    finally:
        server.resume()


def test_frozen_clock_does_not_stop_flushes_or_retries(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """Under freezegun, flush(timeout) returns, a 503 is retried, and timestamps follow the frozen clock."""
    handler = make_handler(max_retry_time=5)
    logger.addHandler(handler)
    with freeze_time("2020-02-02 12:00:00"):
        server.fail_next(2, status=503)
        logger.info("Frozen", extra={"segment": {"user_id": "u"}})
        assert handler.flush(timeout=5)
        assert handler.flush(timeout=0.1)  # nothing queued: immediate
    (event,) = server.events("Frozen")
    assert event["timestamp"].startswith("2020-02-02T12:00:00")
    assert handler.stats()["retried"] == 2


def test_flush_from_another_handlers_emit_does_not_deadlock(
    make_handler: MakeHandler, server: SegmentServer
) -> None:
    """A handler that flushes the SegmentHandler from its own emit (flush on ERROR), on a logger that
    also receives the library's reports: the worker reports while that handler's lock is held, and the
    flush still completes."""
    root = logging.getLogger()
    segment = make_handler(flush_interval=0.01)
    seen: list[str] = []
    flushed: list[bool] = []

    class FlushOnError(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())
            if record.getMessage() == "Boom":
                server.resume()  # the worker now reports the invalid events, under this handler's lock
                flushed.append(segment.flush(timeout=5))

    flusher = FlushOnError()
    root.addHandler(flusher)
    root.addHandler(segment)
    old_level = root.level
    root.setLevel(logging.INFO)
    app = logging.getLogger("test.worker.flushing")
    try:
        server.pause()
        app.info("First", extra={"segment": {"user_id": "u"}})
        assert server.wait_for_held(1)  # the worker is inside a request
        for n in range(20):
            app.info("Invalid", extra={"segment": {"properties": {"n": n}}})
        app.error("Boom")
        assert segment.flush(5)  # and the reports the worker made meanwhile are out
    finally:
        server.resume()
        root.removeHandler(flusher)
        root.removeHandler(segment)
        root.setLevel(old_level)
    assert flushed == [True]
    assert server.events("First")
    assert any("was not sent" in text for text in seen)


def test_kinds_of_problem_are_reported_once_with_values_cut(
    make_handler: MakeHandler, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """Three bad values of one kind make one report, summarised later; a megabyte value is cut."""
    handler = make_handler()
    logger.addHandler(handler)
    for n in range(3):
        logger.info("Bad", extra={"segment": {"user_id": "u", "timestamp": f"never-{n}-" + "x" * 1_000_000}})
    assert handler.flush(5)
    handler.close()
    reports = _reports(caplog)
    assert sum("was not sent" in text for text in reports) == 1
    assert any("(3 invalid in all)" in text for text in reports), reports
    assert sum(map(len, reports)) < 5_000


@pytest.mark.parametrize("with_event", [True, False])
def test_record_whose_formatting_fails_is_sent_or_counted(
    make_handler: MakeHandler,
    server: SegmentServer,
    new_logger: Callable[[], logging.Logger],
    caplog: pytest.LogCaptureFixture,
    with_event: bool,
) -> None:
    """log.info("Paid %d", "x"): sent when the metadata names the event, else counted as invalid with a
    report that says the message could not be formatted."""
    handler = make_handler()
    logger = new_logger()
    logger.addHandler(handler)
    metadata = {"user_id": "u", "event": "Paid"} if with_event else {"user_id": "u"}
    logger.info("Paid %d", "x", extra={"segment": metadata})
    assert handler.flush(5)
    if with_event:
        assert server.events("Paid")
        assert handler.stats()["sent"] == 1
    else:
        assert handler.stats()["invalid"] == 1
        assert any("could not be formatted" in text for text in _reports(caplog))


@pytest.mark.skipif(sys.version_info < (3, 12), reason="filters return records since Python 3.12")
def test_filter_returning_a_copy_still_sends_once(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """Two SegmentHandlers for one source, one behind a filter that returns copy.copy(record): one message."""
    first = make_handler()
    second = make_handler()
    # mypy checks against 3.10's stubs, where a filter returns a bool; returning a record is 3.12+.
    second.addFilter(lambda record: copy.copy(record))  # type: ignore[arg-type,return-value]
    logger.addHandler(first)
    logger.addHandler(second)
    logger.info("Once", extra={"segment": {"user_id": "u"}})
    assert first.flush(5)
    assert second.flush(5)
    assert len(server.events("Once")) == 1


def test_record_without_a_name_is_sent(make_handler: MakeHandler, server: SegmentServer) -> None:
    """A record built by logging.makeLogRecord() without a name (a socket-log receiver) is still an event."""
    handler = make_handler()
    handler.handle(logging.makeLogRecord({"msg": "Received", "segment": {"user_id": "u"}}))
    assert handler.flush(5)
    assert server.events("Received")


def test_last_record_is_not_kept_alive(
    make_handler: MakeHandler, new_logger: Callable[[], logging.Logger]
) -> None:
    """After a logging call, the handler keeps no reference to the record (a large payload is freed)."""
    handler = make_handler()
    logger = new_logger()
    logger.addHandler(handler)
    records: list[weakref.ref[logging.LogRecord]] = []

    def remember(record: logging.LogRecord) -> bool:
        records.append(weakref.ref(record))
        return True

    logger.addFilter(remember)
    logger.info("Big", extra={"segment": {"user_id": "u"}, "payload": "x" * 1_000_000})
    assert handler.flush(5)
    gc.collect()
    assert records[0]() is None


def test_level_error_leaves_no_worker_behind() -> None:
    """SegmentHandler("key", level="BOGUS") raises before building anything."""
    before = threading.active_count()
    with pytest.raises(ValueError, match="BOGUS"):
        SegmentHandler("key", level="BOGUS")
    assert threading.active_count() == before


def test_a_slow_value_does_not_hold_other_events(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """A property whose __str__ blocks delays only the logging call that passed it: events logged
    meanwhile by other threads are delivered, and so is the slow one once its value converts."""
    handler = make_handler()
    logger.addHandler(handler)
    entered, release = threading.Event(), threading.Event()

    class Slow:
        def __str__(self) -> str:
            entered.set()
            release.wait(10)
            return "slow"

    slow_thread = threading.Thread(
        target=lambda: logger.info(
            "SlowOne", extra={"segment": {"user_id": "s", "properties": {"v": Slow()}}}
        )
    )
    slow_thread.start()
    try:
        assert entered.wait(5)
        for n in range(100):
            logger.info("Fast", extra={"segment": {"user_id": f"u{n}"}})
        assert handler.flush(timeout=5)
        assert len(server.events("Fast")) == 100
    finally:
        release.set()
        slow_thread.join()
    assert handler.flush(5)
    (slow,) = server.events("SlowOne")
    assert slow["properties"] == {"v": "slow"}


def test_max_queue_bytes_holds_while_a_request_hangs(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """While a request waits on a server that does not answer, the worker keeps encoding what arrives,
    so max_queue_bytes still bounds the queue: past it, events are dropped and counted."""
    handler = make_handler(timeout=10, max_queue_bytes=200_000, flush_interval=0.01)
    logger.addHandler(handler)
    server.pause()
    try:
        logger.info("First", extra={"segment": {"user_id": "u"}})
        assert server.wait_for_held(1)  # the worker is inside that request now
        for n in range(400):
            logger.info("Big", extra={"segment": {"user_id": f"u{n}", "properties": {"blob": "x" * 5_000}}})
        settled = threading.Event()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not settled.wait(0.05):  # a condition, polled
            # Both at once: the caller may still be adding while the worker drops (it encodes
            # the properties of a track itself), so the first drop can come before the last append.
            polled = handler.stats()
            if polled["dropped"] > 0 and (polled["queued"] - 1) * 5_000 <= 200_000:
                settled.set()
        stats = handler.stats()
        assert stats["dropped"] > 0, stats
        assert (stats["queued"] - 1) * 5_000 <= 200_000, stats  # what waits fits the bound
    finally:
        server.resume()
    assert handler.flush(10)
