"""Reliability: outages, chaos, back-pressure, re-configuration, deadlocks, exact stats.

Everything goes over real HTTP on loopback to the fake Segment server, whose
fault injection plays the outage. Scenarios that change process-wide logging
state (``dictConfig``, ``logging.shutdown``) run in a subprocess, so a hang
there fails the test on its timeout instead of hanging the suite.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import Script, finish

from segment_logging import DeliveryError, InvalidMessage, SegmentHandler
from segment_logging.testing import ErrorRecorder, Fault, SegmentServer

MakeHandler = Callable[..., SegmentHandler]


def _event(n: int) -> dict[str, Any]:
    return {"segment": {"user_id": f"u{n}", "properties": {"n": n}}}


def _numbers(messages: list[dict[str, Any]]) -> list[int]:
    return sorted(m["properties"]["n"] for m in messages)


def _run_script(script: Script, name: str, timeout: float = 30) -> tuple[int, str, str]:
    """Run ``tests/scripts/NAME``; a hang fails the test through ``timeout``."""
    return finish(script(name), timeout=timeout)


# -- 1. outage and recovery ----------------------------------------------------------------------


def test_outage_then_recovery_delivers_every_event_once(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """Segment answers 500/503 for a second, then recovers: every event arrives once, none fails.

    How many attempts fall inside the second depends on the backoff's jitter and the machine's
    speed, so only the first answer (500) and the recovery (200) are certain."""
    handler = make_handler(max_batch_size=50, flush_interval=0.05, max_retry_time=10)
    logger.addHandler(handler)
    server.fail_for(1.0, statuses=(500, 503))
    for n in range(300):
        logger.info("Order", extra=_event(n))
    assert handler.flush(15)
    assert _numbers(server.messages) == list(range(300))
    assert len(set(server.message_ids())) == 300
    assert {500, 200} <= {r.status for r in server.requests}
    stats = handler.stats()
    assert stats["retried"] > 0
    assert {k: v for k, v in stats.items() if k != "retried"} == {
        "queued": 0,
        "sent": 300,
        "dropped": 0,
        "failed": 0,
        "invalid": 0,
        "spooled": 0,
    }


def test_outage_past_the_budget_goes_to_on_error_and_failed(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """An outage longer than max_retry_time: every event reaches on_error and stats()["failed"]."""
    errors = ErrorRecorder()
    handler = make_handler(max_batch_size=100, flush_interval=0.05, max_retry_time=0.4, on_error=errors)
    logger.addHandler(handler)
    server.fail_for(60, statuses=(503,))
    for n in range(40):
        logger.info("Order", extra=_event(n))
    assert handler.flush(10)
    assert _numbers(errors.messages) == list(range(40))
    assert all(isinstance(exc, DeliveryError) and exc.status == 503 for exc, _ in errors.calls)
    assert server.messages == []
    stats = handler.stats()
    assert (stats["sent"], stats["failed"], stats["dropped"], stats["queued"]) == (0, 40, 0, 0)


def test_outage_past_the_budget_without_on_error_is_logged(
    make_handler: MakeHandler,
    server: SegmentServer,
    logger: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without on_error, events given up on are reported at ERROR on the segment_logging logger."""
    handler = make_handler(flush_interval=0.05, max_retry_time=0.3)
    logger.addHandler(handler)
    server.fail_for(60, statuses=(500,))
    with caplog.at_level(logging.ERROR, logger="segment_logging"):
        for n in range(7):
            logger.info("Order", extra=_event(n))
        assert handler.flush(10)
    reports = [r for r in caplog.records if r.name == "segment_logging" and r.levelno == logging.ERROR]
    assert len(reports) == 1
    assert "7 messages not delivered" in reports[0].getMessage()
    assert "500" in reports[0].getMessage()
    assert handler.stats()["failed"] == 7


class BrokenTransport(httpx.BaseTransport):
    """A custom transport (proxies, mTLS...) failing with an error that is not httpx's."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("the transport broke")


def test_unexpected_transport_error_is_counted_and_reported(
    make_handler: MakeHandler, logger: logging.Logger
) -> None:
    """A transport raising an unexpected exception loses no event silently: the batch is counted in
    stats()["failed"] and handed to on_error."""
    errors = ErrorRecorder()
    handler = make_handler(
        transport=BrokenTransport(), flush_interval=0.01, max_retry_time=0.2, on_error=errors
    )
    logger.addHandler(handler)
    for n in range(3):
        logger.info("Order", extra=_event(n))
    assert handler.flush(5)
    stats = handler.stats()
    assert (stats["sent"], stats["failed"], stats["queued"]) == (0, 3, 0), stats
    assert _numbers(errors.messages) == [0, 1, 2]


# -- 2. chaos ------------------------------------------------------------------------------------------

CHAOS = (
    Fault(status=500),
    Fault(status=429, retry_after="0"),
    Fault(drop=True),
    Fault(delay=2.0),  # accepted after the client's 1 s timeout: Segment got it, the client never heard
)


def test_chaos_every_event_arrives_duplicates_share_message_id(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """20,000 events while 20% of requests fail (500, 429, dropped, too slow): all arrive, and
    any duplicate carries the same messageId as its original."""
    total = 20_000
    server.fail_next(1, status=500)  # one of each kind for certain, then a random 20%
    server.fail_next(1, status=429, retry_after="0")
    server.drop_next(1)
    server.delay_next(1, seconds=2.0)
    server.fail_randomly(0.2, seed=4, faults=CHAOS)
    handler = make_handler(max_batch_size=500, flush_interval=0.05, timeout=1.0, max_retry_time=30)
    logger.addHandler(handler)
    for n in range(total):
        logger.info("Chaos", extra={"segment": {"anonymous_id": "a", "properties": {"n": n}}})
    assert handler.flush(60)
    assert server.wait_idle(5)  # slow answers still being written when flush() returned

    ids_of: dict[int, set[str]] = {}
    numbers_of: dict[str, set[int]] = {}
    for message in list(server.messages):
        n, message_id = message["properties"]["n"], message["messageId"]
        ids_of.setdefault(n, set()).add(message_id)
        numbers_of.setdefault(message_id, set()).add(n)
    assert sorted(ids_of) == list(range(total))
    assert all(len(ids) == 1 for ids in ids_of.values())  # a resend reuses the messageId
    assert all(len(numbers) == 1 for numbers in numbers_of.values())  # a messageId is one event

    faults = Counter(r.fault for r in server.requests if r.fault is not None)
    assert set(faults) == set(CHAOS), faults  # every kind of failure really happened
    stats = handler.stats()
    assert (stats["sent"], stats["failed"], stats["dropped"]) == (total, 0, 0)
    assert stats["retried"] > 0


# -- 3. back-pressure --------------------------------------------------------------------------------


def test_full_queue_drops_counts_warns_once_and_never_blocks(
    make_handler: MakeHandler,
    server: SegmentServer,
    logger: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Segment hangs: the queue stays at max_queue_size, the rest is dropped and counted, one
    warning is logged for all of them, and the logging loop never blocks."""
    handler = make_handler(max_queue_size=100, max_batch_size=10, flush_interval=0.01, timeout=10)
    logger.addHandler(handler)
    server.pause()
    logger.info("Order", extra=_event(0))
    assert server.wait_for_held(1)  # the worker is stuck in a request that will not be answered

    def flood() -> None:
        for n in range(1, 5001):
            logger.info("Order", extra=_event(n))

    with caplog.at_level(logging.WARNING, logger="segment_logging"):
        app = threading.Thread(target=flood)
        app.start()
        app.join(10)
        assert not app.is_alive(), "logging blocked while Segment hung"
    stats = handler.stats()
    assert (stats["queued"], stats["dropped"]) == (100, 4901)
    warnings = [r for r in caplog.records if r.name == "segment_logging"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "queue is full (max_queue_size=100)" in warnings[0].getMessage()

    server.resume()
    assert handler.flush(10)
    assert len(server.messages) == 100
    stats = handler.stats()
    assert (stats["queued"], stats["sent"], stats["dropped"]) == (0, 100, 4901)


# -- 5. re-configuration ------------------------------------------------------------------------------


def test_dictconfig_again_closes_old_handler_which_still_delivers(
    script: Script, server: SegmentServer
) -> None:
    """A second dictConfig() closes the old handler without raising or hanging; what it held
    is still delivered, and the new handler takes over."""
    status, stdout, stderr = _run_script(script, "dictconfig_again.py")
    assert status == 0, stderr
    assert stdout.split() == ["True", "50", "50"]
    assert stderr == ""
    assert len(server.events("Before")) == len(server.events("After")) == 50
    assert len(set(server.message_ids())) == 100


def test_handler_removed_and_added_again_keeps_working(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """Removing the handler and adding it back (even twice) neither closes nor duplicates it."""
    handler = make_handler(flush_interval=0.05)
    logger.addHandler(handler)
    logger.info("First", extra=_event(1))
    logger.removeHandler(handler)
    logger.info("Unseen", extra=_event(2))
    logger.addHandler(handler)
    logger.addHandler(handler)
    logger.info("Second", extra=_event(3))
    assert handler.flush(5)
    assert [m["event"] for m in server.messages] == ["First", "Second"]


def test_logging_shutdown_twice_then_logging_again(script: Script, server: SegmentServer) -> None:
    """logging.shutdown() twice delivers once and does not raise or hang; records logged after
    it are dropped with a single warning (on stderr: no other handler would show it)."""
    status, stdout, stderr = _run_script(script, "shutdown_twice.py")
    assert status == 0, stderr
    assert stdout.split() == ["20", "3"]
    assert stderr.count("logged after close()") == 1, stderr
    assert stderr.count("\n") == 1, stderr
    assert len(server.events("Signup")) == 20
    assert server.events("Late") == []


def test_records_after_close_get_one_clear_warning(
    make_handler: MakeHandler,
    server: SegmentServer,
    logger: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Records logged after close() are dropped, counted, and reported by one warning."""
    handler = make_handler()
    logger.addHandler(handler)
    handler.close()
    with caplog.at_level(logging.WARNING, logger="segment_logging"):
        for n in range(5):
            logger.info("Late", extra=_event(n))
        assert handler.flush(1)  # returns at once, True: nothing is waiting
    handler.close()  # twice is harmless
    reports = [r for r in caplog.records if r.name == "segment_logging"]
    assert len(reports) == 1
    assert reports[0].levelno == logging.WARNING
    assert "logged after close()" in reports[0].getMessage()
    assert handler.stats()["dropped"] == 5
    assert server.requests == []


# -- 6. no deadlocks -------------------------------------------------------------------------------


def test_no_deadlock_under_debug_logging_with_segment_failing(script: Script, server: SegmentServer) -> None:
    """Root at DEBUG with the handler on it, httpx/httpcore at DEBUG, warnings captured, Segment
    failing: flush(), close() and dictConfig() from other threads all finish, and no record of
    httpx's or httpcore's (the handler's own traffic) is ever shipped."""
    server.fail_randomly(0.5, seed=6, faults=(Fault(status=500), Fault(drop=True)))
    status, stdout, stderr = _run_script(script, "no_deadlock.py", timeout=40)
    assert status == 0, stderr[-3000:]
    assert json.loads(stdout) == [], stderr[-3000:]
    assert "HTTP Request: POST" in stderr or "messages not delivered" in stderr
    assert server.wait_idle(5)
    shipped = Counter(m.get("properties", {}).get("logger", "app") for m in server.messages)
    assert shipped["app"] > 0  # the test did run traffic through a failing server
    assert not {name for name in shipped if name.split(".")[0] in ("httpx", "httpcore")}, shipped
    assert not [m for m in server.messages if m.get("event", "").startswith("HTTP Request")]


def test_logging_shutdown_racing_dictconfig_does_not_deadlock(script: Script, server: SegmentServer) -> None:
    """logging.shutdown() on one thread while dictConfig() runs on another, Segment hanging: both
    finish (close() must not wait on the worker while holding the handler's lock)."""
    server.pause()
    status, stdout, stderr = _run_script(script, "shutdown_races_dictconfig.py")
    assert status == 0, stderr
    assert stdout.split() == ["none"], stderr


class TagEverything(logging.Filter):
    """Makes every record an event: a record the library logs about itself would be shipped."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "segment", None) is None:
            record.segment = {"anonymous_id": "tagged", "properties": {"logger": record.name}}
        return True


def test_library_warnings_are_never_shipped(
    make_handler: MakeHandler,
    server: SegmentServer,
    logger: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A warning segment-logging logs on the app's thread (here: logged after close) never becomes
    an event, even for a handler whose filter turns every record into one."""
    closed = make_handler()
    catch_all = make_handler(flush_interval=0.01)
    catch_all.addFilter(TagEverything())
    library = logging.getLogger("segment_logging")
    library.addHandler(catch_all)  # as a catch-all on the root logger would see it
    try:
        logger.addHandler(closed)
        closed.close()
        with caplog.at_level(logging.WARNING, logger="segment_logging"):
            logger.info("Late", extra=_event(1))
        assert "logged after close()" in caplog.text  # the warning did reach the catch-all
        assert catch_all.flush(5)
    finally:
        library.removeHandler(catch_all)
    assert server.messages == []
    assert catch_all.stats()["sent"] == 0


# -- 10. exact stats -----------------------------------------------------------------------------------


def test_stats_are_exact_under_eight_threads(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """8 threads, a small queue, some invalid events and some rejected batches: every logged
    event is counted exactly once as sent, dropped, failed or invalid."""
    errors = ErrorRecorder()
    server.fail_next(2, status=400)  # rejected batches: failed at once, no retry
    server.fail_randomly(0.2, seed=10, faults=(Fault(status=400),))
    handler = make_handler(max_queue_size=200, max_batch_size=20, flush_interval=0.01, on_error=errors)
    logger.addHandler(handler)
    per_thread, threads = 2000, 8
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            bad = i % 10 == 0
            logger.info("Order", extra={"segment": {"user_id": None if bad else f"{t}-{i}"}})

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert handler.flush(20)
    stats = handler.stats()
    assert stats["queued"] == 0
    assert stats["sent"] + stats["dropped"] + stats["failed"] + stats["invalid"] == per_thread * threads
    assert min(stats["sent"], stats["dropped"], stats["failed"], stats["invalid"]) > 0, stats
    assert len(server.messages) == len(set(server.message_ids())) == stats["sent"]
    invalid = [e for e, _ in errors.calls if isinstance(e, InvalidMessage)]
    assert len(invalid) == stats["invalid"]
    assert len(errors.messages) == stats["failed"] + stats["invalid"]
