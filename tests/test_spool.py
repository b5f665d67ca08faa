"""The durable spool (issue 10): each promise, and the ``drain`` command.

Scenarios that end a process run a script from ``tests/scripts`` (``spool_*.py``) in its own
interpreter; the others use a handler in the test, with the fake Segment on loopback.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest
from conftest import SCRIPTS, finish, wait_for_line

from segment_logging import SegmentHandler
from segment_logging._spool import Spool, SpoolError, source_token
from segment_logging.testing import SegmentServer

Script = Callable[..., "Popen[str]"]
MakeHandler = Callable[..., SegmentHandler]
needs_posix = pytest.mark.skipif(sys.platform == "win32", reason="needs fork and POSIX signals")


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connections are refused (Segment unreachable)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def rows(path: Path) -> int:
    """Rows in a spool file, read with a connection of the test's own."""
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "segment.db"


@pytest.fixture
def log(new_logger: Callable[[], logging.Logger]) -> logging.Logger:
    return new_logger()


def log_events(log: logging.Logger, handler: SegmentHandler, count: int, name: str = "Spooled") -> None:
    log.addHandler(handler)
    for index in range(count):
        log.info(name, extra={"segment": {"user_id": f"u{index}", "properties": {"index": index}}})


def delivered_indexes(server: SegmentServer) -> Counter[int]:
    return Counter(event["properties"]["index"] for event in server.events())


# -- promise 1: kill -9, SIGTERM, os._exit, an uncaught exception -------------------------------


@needs_posix
@pytest.mark.parametrize("ending", ["sigkill", "sigterm", "os_exit", "exception"])
def test_events_on_disk_survive_the_process_and_the_next_one_delivers_them(
    script: Script, server: SegmentServer, spool: Path, ending: str
) -> None:
    """With Segment unreachable, logged events reach the disk within about a flush_interval; after
    the process dies (SIGKILL, SIGTERM, os._exit, an uncaught exception), a new process that only
    creates a handler on the same spool delivers every one exactly once, at its exit."""
    writer = script(
        "spool_writer.py", str(spool), "50", ending, extra_env={"SEGMENT_HOST": closed_port_url()}
    )
    wait_for_line(writer, "spooled", timeout=20)
    if ending == "sigkill":
        writer.kill()
    elif ending == "sigterm":
        writer.send_signal(signal.SIGTERM)
    status, _, stderr = finish(writer)
    assert status != 0 or ending == "os_exit", stderr
    assert rows(spool) == 50

    status, _, stderr = finish(script("spool_reader.py", str(spool)))
    assert status == 0, stderr
    assert delivered_indexes(server) == Counter(range(50))
    assert len(set(server.message_ids())) == 50
    assert rows(spool) == 0


def test_the_first_burst_is_on_disk_within_about_a_flush_interval(script: Script, spool: Path) -> None:
    """stats()['spooled'] reaches the count logged within a few flush_intervals (0.05 s), while the
    worker is busy retrying a Segment that refuses connections."""
    writer = script(
        "spool_writer.py", str(spool), "20", "exit", extra_env={"SEGMENT_HOST": closed_port_url()}
    )
    wait_for_line(writer, "spooled", timeout=20)
    assert writer.stdout is not None
    took = float(writer.stdout.readline().split()[1])
    assert took < 1.0
    finish(writer)


def test_flush_of_a_new_process_waits_for_what_it_took_over(
    script: Script, server: SegmentServer, spool: Path
) -> None:
    """A new process's flush() (nothing logged by it) returns once the leftovers are delivered."""
    writer = script(
        "spool_writer.py", str(spool), "30", "os_exit", extra_env={"SEGMENT_HOST": closed_port_url()}
    )
    wait_for_line(writer, "spooled", timeout=20)
    finish(writer)
    status, stdout, stderr = finish(script("spool_reader.py", str(spool), "flush"))
    assert status == 0, stderr
    result = json.loads(stdout)
    assert result["flushed"] is True
    assert result["stats"]["spooled"] == 0
    assert result["stats"]["sent"] == 30
    assert delivered_indexes(server) == Counter(range(30))


# -- promise 2: a long outage -----------------------------------------------------------------


def test_a_failing_batch_is_not_given_up_after_max_retry_time(
    make_handler: MakeHandler, server: SegmentServer, spool: Path, log: logging.Logger
) -> None:
    """With a spool, a batch still failing after max_retry_time stays and is retried with the
    policy's backoff until Segment accepts it (without a spool it would be given up)."""
    server.fail_next(3, status=503)
    handler = make_handler(spool=spool, max_retry_time=0.1, flush_interval=0.05)
    log_events(log, handler, 5)
    assert server.wait_for(5, timeout=15)
    assert handler.flush(5)
    assert handler.stats()["sent"] == 5
    assert handler.stats()["failed"] == 0
    assert len(server.requests) == 4


def test_retry_after_is_obeyed_for_a_spooled_batch(
    make_handler: MakeHandler, server: SegmentServer, spool: Path, log: logging.Logger
) -> None:
    """A 429 with Retry-After: 1 is waited out (and not counted against max_retry_time)."""
    seen: list[float] = []
    server.add_listener(lambda request: seen.append(time.monotonic()))
    server.fail_next(1, status=429, retry_after="1")
    handler = make_handler(spool=spool, max_retry_time=0.1, flush_interval=0.05)
    log_events(log, handler, 3)
    assert server.wait_for(3, timeout=15)
    assert seen[1] - seen[0] >= 0.95
    assert handler.flush(5) and handler.stats()["failed"] == 0


def test_a_long_outage_then_recovery_delivers_everything(
    make_handler: MakeHandler, server: SegmentServer, spool: Path, log: logging.Logger
) -> None:
    """An outage far longer than max_retry_time (here 40 times it), events logged all along, then
    recovery: every event is delivered once, none failed or dropped."""
    server.fail_for(2.0, statuses=(503, 500, 502))
    handler = make_handler(spool=spool, max_retry_time=0.05, flush_interval=0.05, shutdown_timeout=10)
    log.addHandler(handler)
    for index in range(60):
        log.info("Outage", extra={"segment": {"user_id": "u", "properties": {"index": index}}})
        threading.Event().wait(0.02)  # spread over the outage, as an application would log
    assert server.wait_for(60, timeout=30)
    assert handler.flush(10)
    assert delivered_indexes(server) == Counter(range(60))
    stats = handler.stats()
    assert (stats["sent"], stats["failed"], stats["dropped"], stats["spooled"]) == (60, 0, 0, 0)


def test_events_older_than_spool_max_age_are_failed_and_reported(
    make_handler: MakeHandler, server: SegmentServer, spool: Path, log: logging.Logger
) -> None:
    """Past spool_max_age (injected short: 0.3 s) events still undelivered are deleted, counted
    as failed and reported through on_error with the messages."""
    server.fail_for(30)
    reported: list[tuple[Exception, list[Any]]] = []
    done = threading.Event()

    def on_error(exc: Exception, messages: list[Any]) -> None:
        reported.append((exc, messages))
        if sum(len(m) for _, m in reported) >= 4:
            done.set()

    handler = make_handler(spool=spool, spool_max_age=0.3, flush_interval=0.05, on_error=on_error)
    log_events(log, handler, 4)
    assert done.wait(15)
    assert "spool_max_age" in str(reported[0][0])
    assert sorted(m["properties"]["index"] for _, ms in reported for m in ms) == [0, 1, 2, 3]
    assert handler.stats()["failed"] == 4
    assert handler.stats()["spooled"] == 0


# -- promise 3: exit never waits on a dead Segment --------------------------------------------


@needs_posix
def test_exit_takes_at_most_shutdown_timeout_and_leaves_events_on_disk(script: Script, spool: Path) -> None:
    """A normal exit with Segment unreachable ends within shutdown_timeout (1 s); the events stay
    on disk, none counted failed, and the report says they will be sent later."""
    writer = script(
        "spool_writer.py", str(spool), "25", "exit", extra_env={"SEGMENT_HOST": closed_port_url()}
    )
    wait_for_line(writer, "spooled", timeout=20)
    started = time.monotonic()
    status, _, stderr = finish(writer)
    assert time.monotonic() - started < 2.5
    assert status == 0, stderr
    assert "25 events not delivered yet stay in the spool" in stderr
    assert "will be sent later" in stderr
    assert "not delivered:" not in stderr  # nothing reported as failed
    assert rows(spool) == 25


# -- promise 4: many processes, one spool ---------------------------------------------------------


@needs_posix
def test_four_processes_share_a_spool_and_one_is_killed_mid_burst(
    script: Script, server: SegmentServer, spool: Path
) -> None:
    """Four processes log bursts into one spool and one is SIGKILLed mid-burst: every event of the
    survivors is delivered, every event the dead one got onto disk is delivered by a survivor,
    the spool ends empty, and duplicates (if any) carry the same messageId and content."""
    count = 500
    go = spool.parent / "go"
    victim = script("spool_burst.py", str(spool), "p0", "100000", str(go))
    survivors = [script("spool_burst.py", str(spool), f"p{n}", str(count), str(go)) for n in (1, 2, 3)]
    assert victim.stdout is not None
    on_disk = 0
    while on_disk < 200:
        line = victim.stdout.readline()
        assert line.startswith("spooled"), line
        on_disk = int(line.split()[1])
    victim.kill()
    finish(victim)
    for survivor in survivors:
        assert survivor.stdout is not None
        # readline, not wait_for_line: "done" may sit in the buffer behind the progress lines
        while (line := survivor.stdout.readline()) and line.strip() != "done":
            assert line.startswith("spooled"), line
        assert line.strip() == "done", finish(survivor)
    go.touch()
    statuses = [finish(survivor, timeout=60) for survivor in survivors]
    assert all(status == 0 for status, _, _ in statuses), statuses
    assert rows(spool) == 0

    by_id: dict[str, dict[str, Any]] = {}
    for event in server.events():
        previous = by_id.setdefault(event["messageId"], event)
        assert previous == event  # a duplicate is the same message, same messageId
    per_process = Counter(event["userId"] for event in by_id.values())
    for name in ("p1", "p2", "p3"):
        indexes = {e["properties"]["index"] for e in by_id.values() if e["userId"] == name}
        assert indexes == set(range(count)), name
    assert per_process["p0"] >= on_disk  # every event it had on disk (or sent) when it said so
