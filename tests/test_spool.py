"""The durable spool (issue 10): each promise, and the ``drain`` command.

Scenarios that end a process run a script from ``tests/scripts`` (``spool_*.py``) in its own
interpreter; the others use a handler in the test, with the fake Segment on loopback.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import SCRIPTS, Script, finish, wait_for_line
from freezegun import freeze_time

from segment_logging import SegmentHandler
from segment_logging._spool import Spool, SpoolError, SpoolGone, source_token
from segment_logging.testing import SegmentServer

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
    """Events in a spool file, read with a connection of the test's own."""
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COALESCE(SUM(events), 0) FROM batches").fetchone()[0])


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
    assert handler.flush(5)
    assert handler.stats()["failed"] == 0


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


@pytest.mark.parametrize("frozen_at", ["2020-01-01", "2040-01-01"])
def test_time_frozen_by_the_application_does_not_age_the_spool(
    make_handler: MakeHandler, server: SegmentServer, spool: Path, log: logging.Logger, frozen_at: str
) -> None:
    """An application's test that freezes time (freezegun) years away still has its events sent
    from the spool, not failed as too old: the spool's clock is the real one (rows are shared with
    other processes); the events' own timestamps follow the frozen clock."""
    server.fail_next(1, status=503)
    with freeze_time(frozen_at):
        handler = make_handler(spool=spool, max_retry_time=0.1, flush_interval=0.05)
        log_events(log, handler, 5)
        assert server.wait_for_requests(1)  # failed: the batch waits in the spool, stamped then
    assert server.wait_for(5, timeout=15), handler.stats()  # retried once time runs again
    assert handler.flush(10)
    assert handler.stats()["failed"] == 0
    assert delivered_indexes(server) == Counter(range(5))
    assert all(event["timestamp"].startswith(frozen_at[:4]) for event in server.events())


def test_rows_older_than_spool_max_age_are_never_sent_even_from_a_dead_holder(spool: Path) -> None:
    """A row past spool_max_age is not leased (expire() fails and reports it), also when the
    process that held it died with its lease on."""
    store = Spool(path=str(spool), source=source_token("key"), max_age=60)
    store.open()
    try:
        store.store([b'{"i":1}'], max_size=100, max_bytes=500_000)
        assert store.lease(max_size=100, max_bytes=500_000)
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        with sqlite3.connect(spool) as db:  # spooled 61 s ago by a process that died holding it
            host, namespace, _, tag = db.execute("SELECT owner FROM batches").fetchone()[0].split("/")
            db.execute(
                "UPDATE batches SET created = created - 61, owner = ?",
                (f"{host}/{namespace}/{gone.pid}/{tag}",),
            )
        other = Spool(path=str(spool), source=source_token("key"), max_age=60)
        other.open()
        try:
            assert other.expire() == [b'{"i":1}']  # the sweep takes over the dead holder's rows
            assert other.lease(max_size=100, max_bytes=500_000) == []
        finally:
            other.close()
    finally:
        store.close()


@pytest.mark.parametrize("ending", ["close", "flush"])
def test_a_batch_segment_refused_is_not_tried_again_before_its_backoff(
    make_handler: MakeHandler, server: SegmentServer, spool: Path, log: logging.Logger, ending: str
) -> None:
    """A 429 whose Retry-After (30 s) is longer than what a close() or a flush(2) has left: the
    batch stays on disk, and neither sends from the spool again and again until its time is up
    (each attempt would be refused the same way: it was hundreds of requests a second)."""
    server.fail_next(10_000, status=429, retry_after="30")
    handler = make_handler(spool=spool, shutdown_timeout=2)
    log_events(log, handler, 10)
    assert server.wait_for_requests(1)
    if ending == "close":
        handler.close()
    else:
        assert not handler.flush(2)
    assert len(server.requests) <= 2
    assert rows(spool) == 10
    assert handler.stats()["failed"] == 0


# -- promise 3: exit never waits on a dead Segment --------------------------------------------


@needs_posix
@pytest.mark.parametrize("ending", ["exit", "sigterm"])
@pytest.mark.parametrize("segment", ["refusing", "hanging"])
def test_exit_takes_at_most_shutdown_timeout_and_leaves_events_on_disk(
    script: Script, spool: Path, black_hole: str, ending: str, segment: str
) -> None:
    """A normal exit or a SIGTERM, with Segment refusing connections or never answering, ends
    within shutdown_timeout (1 s); the events stay on disk, none counted failed, and the report
    says they will be sent later (also when the worker is stuck in a request at the end)."""
    host = closed_port_url() if segment == "refusing" else black_hole
    writer = script("spool_writer.py", str(spool), "25", ending, extra_env={"SEGMENT_HOST": host})
    wait_for_line(writer, "spooled", timeout=20)
    started = time.monotonic()
    if ending == "sigterm":
        writer.send_signal(signal.SIGTERM)
    status, _, stderr = finish(writer)
    assert time.monotonic() - started < 2.5
    assert status == (-signal.SIGTERM if ending == "sigterm" else 0), stderr
    assert stderr.count("25 events not delivered yet stay in the spool") == 1, stderr
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


@needs_posix
@pytest.mark.parametrize("holder_state", ["reaped", "zombie"])
def test_rows_of_a_dead_holder_are_taken_over_at_once_when_nothing_else_is_free(
    spool: Path, holder_state: str
) -> None:
    """A process that finds no free row looks for dead holders then, not up to a second later: a
    survivor's exit that comes just after another process died must not leave the dead one's rows.
    A holder that ended but was not reaped yet by its parent (a zombie) is dead too."""
    source = source_token("key")
    holder, survivor = Spool(path=str(spool), source=source), Spool(path=str(spool), source=source)
    holder.open()
    survivor.open()
    try:
        holder.store([b'{"i":1}', b'{"i":2}'], max_size=100, max_bytes=500_000)
        assert holder.lease(max_size=100, max_bytes=500_000)
        assert survivor.lease(max_size=100, max_bytes=500_000) == []  # held by a live process
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        if holder_state == "zombie" and sys.platform == "linux":
            os.waitid(os.P_PID, gone.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped: its pid stays
        else:
            gone.wait()  # its pid is no process's now
        with sqlite3.connect(spool) as db:
            host, namespace, _, tag = db.execute("SELECT owner FROM batches").fetchone()[0].split("/")
            db.execute("UPDATE batches SET owner = ?", (f"{host}/{namespace}/{gone.pid}/{tag}",))
        taken = survivor.lease(max_size=100, max_bytes=500_000)  # at once: no second went by
        assert [piece for batch in taken for piece in batch.pieces] == [b'{"i":1}', b'{"i":2}']
        gone.wait()
    finally:
        holder.close()
        survivor.close()


@needs_posix
def test_a_live_process_that_logs_nothing_sends_rows_left_by_another(
    script: Script, server: SegmentServer, spool: Path
) -> None:
    """A process that went idle with an empty spool still looks at it every few seconds
    (SPOOL_POLL): rows another process leaves behind and dies are delivered while it lives."""
    idle = script("spool_idle.py", str(spool))
    wait_for_line(idle, "idle")
    writer = script(
        "spool_writer.py", str(spool), "20", "sigkill", extra_env={"SEGMENT_HOST": closed_port_url()}
    )
    wait_for_line(writer, "spooled", timeout=20)
    writer.kill()
    finish(writer)
    assert server.wait_for(21, timeout=30), server.messages
    assert idle.poll() is None  # delivered by the live process, not by its exit
    assert Counter(event["properties"]["index"] for event in server.events("Spooled")) == Counter(range(20))
    status, _, stderr = finish(idle)
    assert status == 0, stderr
    assert rows(spool) == 0


def test_a_batch_delivered_before_a_failed_one_is_deleted_when_that_one_is_given_back(spool: Path) -> None:
    """Two batches leased together, the first delivered (its delete deferred), the second failing:
    giving the second back deletes the first at once, so it cannot outlive its lease while this
    process waits to retry (and be sent again by another live process)."""
    store = Spool(path=str(spool), source=source_token("key"))
    store.open()
    try:
        store.store([b'{"i":1}', b'{"i":2}'], max_size=1, max_bytes=500_000)
        first, second = store.lease(max_size=1, max_bytes=500_000, batches=2)
        store.delete(first)
        store.release(second.ids)
        with sqlite3.connect(spool) as db:
            assert db.execute("SELECT body, lease_until FROM batches").fetchall() == [(b'{"i":2}', 0)]
    finally:
        store.close()


# -- promise 5: fork ------------------------------------------------------------------------------


@needs_posix
def test_forked_children_use_connections_of_their_own_and_nothing_is_sent_twice(
    script: Script, server: SegmentServer, spool: Path
) -> None:
    """A parent logs, forks three children that log and deliver through the same spool, and logs
    again: every event of every process is delivered exactly once (a child sends none of the
    parent's in-memory events, and no connection is shared)."""
    status, stdout, stderr = finish(script("spool_fork.py", str(spool), "3", "40"), timeout=60)
    assert status == 0, stderr
    assert "children [0, 0, 0] flushed True" in stdout
    ids = server.message_ids()
    assert len(ids) == len(set(ids))
    names = Counter(event["userId"] for event in server.events())
    assert names == dict.fromkeys(("parent-before", "parent-after", "child0", "child1", "child2"), 40)
    assert "Traceback" not in stderr


# -- promise 6: a bad disk ----------------------------------------------------------------------


def run_bad_path(
    path: Path, server: SegmentServer, *, prefix: tuple[str, ...] = ()
) -> tuple[dict[str, Any], str]:
    env = {**os.environ, "SEGMENT_HOST": server.url, "SEGMENT_WRITE_KEY": server.write_key}
    done = subprocess.run(
        [*prefix, sys.executable, str(SCRIPTS / "spool_bad_path.py"), str(path), "5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_a_directory_as_the_spool_path_falls_back_to_memory(
    make_handler: MakeHandler, server: SegmentServer, tmp_path: Path, log: logging.Logger
) -> None:
    """A directory given as the spool: events are delivered from memory, one warning names the
    path and why, nothing raises into the application."""
    result, stderr = run_bad_path(tmp_path, server)
    assert result["flushed"] is True
    assert result["stats"]["sent"] == 5
    assert stderr.count("the spool cannot be used") == 1
    assert str(tmp_path) in stderr
    assert "memory only" in stderr


@needs_posix
def test_a_read_only_directory_falls_back_to_memory(server: SegmentServer, tmp_path: Path) -> None:
    """A spool in a directory the process may not write (when the tests run as root, the script
    runs without the capability that lets root ignore permissions): delivered from memory,
    reported once."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a read-only directory is writable")
        caps = "-dac_override,-dac_read_search"
        prefix = (setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}")
    try:
        result, stderr = run_bad_path(directory / "segment.db", server, prefix=prefix)
    finally:
        directory.chmod(0o755)
    assert result["stats"]["sent"] == 5
    assert stderr.count("the spool cannot be used") == 1
    assert "segment.db" in stderr
    assert not (directory / "segment.db").exists()


@needs_posix
def test_a_full_disk_falls_back_to_memory(script: Script, server: SegmentServer, spool: Path) -> None:
    """Writes to the spool fail once the file may not grow (RLIMIT_FSIZE, as on a full disk):
    every event is still delivered, from memory, and the fall-back is reported once."""
    status, stdout, stderr = finish(script("spool_bad_path.py", str(spool), "600", "64000"), timeout=60)
    assert status == 0, stderr
    result = json.loads(stdout)
    assert result["flushed"] is True
    assert result["stats"]["sent"] + result["stats"]["spooled"] == 600
    assert stderr.count("the spool cannot be used") == 1
    assert len(set(server.message_ids())) == result["stats"]["sent"]


def test_sqlite_reporting_a_full_database_is_a_spool_error(spool: Path) -> None:
    """SQLITE_FULL (made real with PRAGMA max_page_count) comes out of store() as a SpoolError
    that names the file, which the queue answers by falling back to memory."""
    small = Spool(path=str(spool), source=source_token("key"), max_page_count=8)
    small.open()
    with pytest.raises(SpoolError, match="full") as caught:
        small.store([b'{"type":"track"}' + b" " * 500] * 100, max_size=1, max_bytes=500_000)
    assert str(spool) in str(caught.value)
    small.close()


def test_a_corrupt_spool_is_moved_aside_not_deleted(
    make_handler: MakeHandler,
    server: SegmentServer,
    spool: Path,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A spool file that is not a database is renamed with a timestamp (kept, for inspection),
    a new spool is started in its place and events are delivered; one warning says so."""
    garbage = b"this is not a SQLite database" * 100
    spool.write_bytes(garbage)
    handler = make_handler(spool=spool, flush_interval=0.05)
    log_events(log, handler, 3)
    assert handler.flush(10)
    assert handler.stats()["sent"] == 3
    aside = [p for p in spool.parent.iterdir() if p.name.startswith("segment.db.corrupt-")]
    assert len(aside) == 1
    assert aside[0].read_bytes() == garbage
    assert rows(spool) == 0
    handler.close()
    assert caplog.text.count("moved aside to") == 1


def test_a_spool_locked_by_another_connection_for_a_while_stays_in_use(
    make_handler: MakeHandler,
    server: SegmentServer,
    spool: Path,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A lock held longer than SQLite's busy timeout (an operator's sqlite3 shell, a backup) is
    waited out: the events wait in memory, are stored and sent once it is free, the spool stays
    in use (no fall-back to memory), and one warning says so."""
    handler = make_handler(spool=spool, flush_interval=0.05)
    log_events(log, handler, 3)
    assert handler.flush(10)
    with sqlite3.connect(spool, isolation_level=None) as db:
        db.execute("BEGIN EXCLUSIVE")
        log_events(log, handler, 3, name="During")
        assert not handler.flush(3)  # past the 2 s busy timeout: still in memory
        db.execute("COMMIT")
    db.close()
    assert handler.flush(10)
    assert len(server.events("During")) == 3
    log_events(log, handler, 2, name="After")
    assert handler.flush(10)
    assert handler.stats()["spooled"] == 0
    assert len(server.events("After")) == 2
    handler.close()
    assert caplog.text.count("locked by another connection") == 1
    assert "cannot be used" not in caplog.text


def test_closing_while_another_connection_locks_the_spool_sends_from_memory(
    make_handler: MakeHandler, server: SegmentServer, spool: Path, log: logging.Logger
) -> None:
    """An ending cannot wait for a lock: close() (as at exit) sends what waits in memory as a
    handler without a spool would, within shutdown_timeout."""
    handler = make_handler(spool=spool, flush_interval=0.05, shutdown_timeout=3)
    log_events(log, handler, 1)
    assert handler.flush(10)
    with sqlite3.connect(spool, isolation_level=None) as db:
        db.execute("BEGIN EXCLUSIVE")
        log_events(log, handler, 20, name="Locked")
        handler.close()
        db.execute("COMMIT")
    db.close()
    assert len(server.events("Locked")) == 20
    assert handler.stats()["failed"] == 0


def test_a_spool_file_removed_while_in_use_gives_its_events_back_to_memory(
    make_handler: MakeHandler,
    server: SegmentServer,
    spool: Path,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Someone deletes the spool file while Segment is down: the handler notices (within about a
    second), reads the events back from the file it still has open, keeps them in memory with the
    later ones, says so once, and delivers them all when Segment is back."""
    server.fail_for(3600)
    handler = make_handler(spool=spool, flush_interval=0.05)
    log_events(log, handler, 10)
    pause = threading.Event()
    while handler.stats()["spooled"] < 10:
        pause.wait(0.01)
    for path in spool.parent.glob(f"{spool.name}*"):
        path.unlink()
    later = 0
    while handler.stats()["spooled"]:  # noticed at the next transaction a second after the last look
        log_events(log, handler, 1, name="Later")
        later += 1
        pause.wait(0.1)
    server.fail_for(0)
    assert handler.flush(15)
    assert Counter(event["properties"]["index"] for event in server.events("Spooled")) == Counter(range(10))
    assert len(server.events("Later")) == later
    assert handler.stats()["failed"] == 0
    assert "removed or replaced while in use" in caplog.text
    assert not spool.exists()


def test_a_flush_waits_for_the_batch_in_flight_from_a_spool_file_removed_meanwhile(
    make_handler: MakeHandler, server: SegmentServer, spool: Path, log: logging.Logger
) -> None:
    """The file goes while its only batch is being retried: that batch is not read back (it is in
    hand), so it counts as queued again, and a flush waits until Segment takes it."""
    server.fail_for(3600)
    handler = make_handler(spool=spool, flush_interval=0.05)
    log_events(log, handler, 10)
    assert server.wait_for_requests(1)  # leased and in flight, failing
    for path in spool.parent.glob(f"{spool.name}*"):
        path.unlink()
    pause = threading.Event()
    while handler.stats()["spooled"]:  # noticed while the batch waits to be retried
        pause.wait(0.05)
    assert handler.stats()["queued"] == 10
    server.fail_for(0)
    assert handler.flush(15)
    assert Counter(event["properties"]["index"] for event in server.events("Spooled")) == Counter(range(10))
    assert handler.stats()["queued"] == 0


def test_a_flush_begun_before_the_spool_file_was_removed_waits_for_what_it_held(
    make_handler: MakeHandler, server: SegmentServer, spool: Path, log: logging.Logger
) -> None:
    """A flush waits for ten batches on disk while Segment is down; the file is removed: the flush
    does not return True until every event read back from it is delivered."""
    server.fail_for(3600)
    handler = make_handler(spool=spool, flush_interval=0.05, max_batch_size=10)
    log_events(log, handler, 100)
    pause = threading.Event()
    while handler.stats()["spooled"] < 100:
        pause.wait(0.01)
    seen: list[tuple[bool, int]] = []

    def flush() -> None:
        done = handler.flush(30)
        seen.append((done, len(server.events("Spooled"))))

    flusher = threading.Thread(target=flush)
    flusher.start()
    for path in spool.parent.glob(f"{spool.name}*"):
        path.unlink()
    while handler.stats()["spooled"]:
        pause.wait(0.05)
    server.fail_for(0)
    flusher.join(40)
    assert seen == [(True, 100)]
    assert handler.stats()["queued"] == 0


def test_two_processes_with_a_removed_spool_open_read_back_each_row_once(spool: Path) -> None:
    """Two spools (two processes) have the file open when it is removed: each reads back the rows
    it takes under a lease in one transaction, so no row comes back to both."""
    source = source_token("key")
    first, second = Spool(path=str(spool), source=source), Spool(path=str(spool), source=source)
    first.open()
    second.open()
    try:
        first.store([b'{"i":%d}' % i for i in range(6)], max_size=2, max_bytes=500_000)
        for path in spool.parent.glob(f"{spool.name}*"):
            path.unlink()
        read_back: list[bytes] = []
        for store in (first, second):
            store._checked = -1e9  # as a second after the last look
            with pytest.raises(SpoolGone) as gone:
                store.check_file()
            read_back += [piece for _, pieces in gone.value.rows for piece in pieces]
        assert sorted(read_back) == sorted(b'{"i":%d}' % i for i in range(6))
    finally:
        first.close()
        second.close()


def test_spool_handlers_leave_no_connection_or_thread_behind(script: Script, tmp_path: Path) -> None:
    """Spools used every way (delivering, moved aside, fallen back, dropped without close()) leave
    no connection for the garbage collector (Python 3.13+ warns about one; pyproject ignores that
    warning for Django's connections, not for ours), and a dropped handler's worker ends."""
    process = script(
        "spool_connections.py", str(tmp_path), extra_env={"PYTHONWARNINGS": "always::ResourceWarning"}
    )
    status, stdout, stderr = finish(process)
    assert status == 0, stderr
    assert stdout.strip() == "workers left: 0"
    assert "unclosed database" not in stderr
    assert "moved aside" in stderr  # the corrupt file was met (and reported)


# -- promise 7: hygiene -------------------------------------------------------------------------


def test_the_spool_file_is_private_and_holds_the_messages_but_never_the_write_key(
    spool: Path, script: Script
) -> None:
    """The file (and its WAL) is created 0600; rows are the messages as sent (JSON) with a source
    token from which the key cannot be read; the write key appears in no file of the spool."""
    writer = script(
        "spool_writer.py", str(spool), "5", "sigkill", extra_env={"SEGMENT_HOST": closed_port_url()}
    )
    wait_for_line(writer, "spooled", timeout=20)
    writer.kill()
    finish(writer)
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600
    for companion in spool.parent.glob("segment.db-*"):
        assert stat.S_IMODE(companion.stat().st_mode) == 0o600, companion
    key = "test-write-key"
    for file in spool.parent.glob("segment.db*"):
        assert key.encode() not in file.read_bytes(), file
    with sqlite3.connect(spool) as db:
        found = db.execute("SELECT source, events, body FROM batches ORDER BY id").fetchall()
    assert {source for source, _, _ in found} == {source_token(key)}
    messages = [json.loads(line) for _, _, body in found for line in body.splitlines()]
    assert sum(count for _, count, _ in found) == len(messages)
    assert [m["properties"]["index"] for m in messages] == list(range(5))
    assert all(m["type"] == "track" and m["event"] == "Spooled" and m["messageId"] for m in messages)


def test_two_sources_share_a_spool_and_each_sends_only_its_own(
    spool: Path, new_logger: Callable[[], logging.Logger]
) -> None:
    """Two handlers with different write keys on one spool file: each Segment gets only the
    events of its own source."""
    with SegmentServer(write_key="key-one") as one, SegmentServer(write_key="key-two") as two:
        first = SegmentHandler("key-one", host=one.url, spool=spool, flush_interval=0.05)
        second = SegmentHandler("key-two", host=two.url, spool=spool, flush_interval=0.05)
        try:
            log_events(new_logger(), first, 4, name="One")
            log_events(new_logger(), second, 6, name="Two")
            assert first.flush(10)
            assert second.flush(10)
        finally:
            first.close()
            second.close()
        assert [e["event"] for e in one.events()] == ["One"] * 4
        assert [e["event"] for e in two.events()] == ["Two"] * 6


# -- promise 8 and the options --------------------------------------------------------------------


def test_the_worker_thread_opens_the_spool_never_the_logging_call(
    make_handler: MakeHandler, spool: Path, log: logging.Logger
) -> None:
    """The sqlite3 connection is made on the worker thread (audit event ``sqlite3.connect``)."""
    threads: list[int] = []

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if event == "sqlite3.connect" and str(spool) in str(args):
            threads.append(threading.get_ident())

    sys.addaudithook(audit)
    handler = make_handler(spool=spool, flush_interval=0.05)
    log_events(log, handler, 3)
    assert handler.flush(10)
    assert threads
    assert threading.get_ident() not in threads


def test_a_closed_handler_never_opens_its_spool_again(
    make_handler: MakeHandler, server: SegmentServer, spool: Path, log: logging.Logger
) -> None:
    """logging.shutdown() flushes handlers the application closed already: a second close() or a
    flush() after close() neither recreates a spool file that was removed nor reports about it."""
    handler = make_handler(spool=spool)
    log_events(log, handler, 2)
    handler.close()
    assert len(server.events("Spooled")) == 2
    for path in spool.parent.glob(f"{spool.name}*"):
        path.unlink()
    handler.close()
    handler.flush()
    assert not list(spool.parent.glob(f"{spool.name}*"))


def test_past_spool_max_bytes_new_events_are_dropped_and_counted(
    make_handler: MakeHandler,
    server: SegmentServer,
    spool: Path,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Segment failing, a spool at spool_max_bytes drops new events: counted in dropped,
    reported; dropped + spooled accounts for every event, and what fit was kept (a batch larger
    than the room left is cut, not dropped whole)."""
    server.fail_for(30)
    handler = make_handler(spool=spool, spool_max_bytes=60_000, flush_interval=0.05, shutdown_timeout=0.5)
    log.addHandler(handler)
    for index in range(400):
        log.info("Big", extra={"segment": {"user_id": "u", "properties": {"index": index, "pad": "x" * 300}}})
    handler.flush(3)
    stats = handler.stats()
    assert stats["dropped"] > 0
    assert stats["spooled"] > 50  # 60 KB of about 350-byte events, less the pages SQLite needs
    assert stats["dropped"] + stats["spooled"] == 400
    handler.close()
    assert "holds spool_max_bytes (60000 bytes)" in caplog.text


def test_a_relative_spool_path_means_the_directory_current_at_construction(
    make_handler: MakeHandler,
    server: SegmentServer,
    tmp_path: Path,
    log: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """spool="segment.db" is one file for the process and its children, whatever directory they
    change to later; reports name it in full."""
    (tmp_path / "first").mkdir()
    (tmp_path / "later").mkdir()
    monkeypatch.chdir(tmp_path / "first")
    handler = make_handler(spool="segment.db")
    monkeypatch.chdir(tmp_path / "later")
    log_events(log, handler, 3)  # the worker opens the file now, after the change of directory
    assert handler.flush(10)
    assert delivered_indexes(server) == Counter(range(3))
    assert (tmp_path / "first" / "segment.db").exists()
    assert not (tmp_path / "later" / "segment.db").exists()


def test_segment_spool_is_the_fallback(
    monkeypatch: pytest.MonkeyPatch, make_handler: MakeHandler, spool: Path, log: logging.Logger
) -> None:
    """$SEGMENT_SPOOL names the spool when the option is not given."""
    monkeypatch.setenv("SEGMENT_SPOOL", str(spool))
    handler = make_handler(flush_interval=0.05)
    log_events(log, handler, 2)
    assert handler.flush(10)
    assert spool.exists()


def test_dictconfig_takes_the_spool_options_as_text(server: SegmentServer, spool: Path) -> None:
    """dictConfig (values as text, as from YAML or INI) takes spool, spool_max_bytes and spool_max_age."""
    import logging.config

    name = f"spooltest.dictconfig{id(spool)}"
    logging.config.dictConfig(
        {
            "version": 1,
            "incremental": False,
            "disable_existing_loggers": False,
            "handlers": {
                "segment": {
                    "class": "segment_logging.SegmentHandler",
                    "write_key": server.write_key,
                    "host": server.url,
                    "spool": str(spool),
                    "spool_max_bytes": "1000000",
                    "spool_max_age": "3600",
                }
            },
            "loggers": {name: {"handlers": ["segment"], "level": "INFO", "propagate": False}},
        }
    )
    handler = logging.getLogger(name).handlers[0]
    assert isinstance(handler, SegmentHandler)
    try:
        logging.getLogger(name).info("Configured", extra={"segment": {"user_id": "u"}})
        assert handler.flush(10)
        assert [e["event"] for e in server.events()] == ["Configured"]
        assert spool.exists()
    finally:
        logging.getLogger(name).removeHandler(handler)
        handler.close()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("spool", 3),
        ("spool", ""),
        ("spool_max_bytes", 0),
        ("spool_max_age", float("inf")),
        ("spool_max_age", 0),
    ],
)
def test_bad_spool_options_are_refused_at_once(option: str, value: object) -> None:
    """A bad spool option is a ValueError naming it, at construction."""
    with pytest.raises(ValueError, match=option):
        SegmentHandler("key", **{option: value})  # type: ignore[arg-type]


# -- the drain command -------------------------------------------------------------------------


def drain(spool: Path, server: SegmentServer, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "segment_logging",
            "drain",
            str(spool),
            "--write-key",
            server.write_key,
            "--host",
            server.url,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_posix
def test_drain_sends_what_a_spool_holds_and_exits_zero(
    script: Script, server: SegmentServer, spool: Path
) -> None:
    """``python -m segment_logging drain PATH`` delivers the leftovers, prints what it sent and
    what is left, and exits 0 when nothing is left."""
    writer = script(
        "spool_writer.py", str(spool), "12", "os_exit", extra_env={"SEGMENT_HOST": closed_port_url()}
    )
    wait_for_line(writer, "spooled", timeout=20)
    finish(writer)
    done = drain(spool, server)
    assert done.returncode == 0, done.stderr
    assert "sent 12, failed 0, left 0" in done.stdout
    assert delivered_indexes(server) == Counter(range(12))


@needs_posix
def test_drain_exits_non_zero_when_something_is_left(
    script: Script, server: SegmentServer, spool: Path
) -> None:
    """With Segment failing, drain gives up at --timeout, says how many are left, exits 1, and
    the rows stay on disk."""
    writer = script(
        "spool_writer.py", str(spool), "7", "os_exit", extra_env={"SEGMENT_HOST": closed_port_url()}
    )
    wait_for_line(writer, "spooled", timeout=20)
    finish(writer)
    server.fail_for(60)
    done = drain(spool, server, "--timeout", "1")
    assert done.returncode == 1
    assert "sent 0, failed 0, left 7" in done.stdout
    assert rows(spool) == 7


def test_drain_keeps_to_its_timeout_when_segment_never_answers(spool: Path, black_hole: str) -> None:
    """--timeout bounds the whole command, also with a request that never gets an answer."""
    store = Spool(path=str(spool), source=source_token("key"))
    store.open()
    store.store(
        [b'{"type":"track","event":"E","userId":"u","messageId":"m1"}'], max_size=100, max_bytes=500_000
    )
    store.close()
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "segment_logging",
            "drain",
            str(spool),
            "--write-key",
            "key",
            "--host",
            black_hole,
            "--timeout",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < 2 + 3  # the interpreter's start and exit, on a slow machine
    assert done.returncode == 1
    assert "sent 0, failed 0, left 1" in done.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_drain_stops_at_once_when_told_to_and_says_what_is_left(
    spool: Path, server: SegmentServer, signum: signal.Signals
) -> None:
    """A sidecar's drain gets SIGTERM (or a person presses Ctrl-C) while Segment holds its request:
    it ends within a moment, not at --timeout, the rows stay in the file, and the summary says so."""
    store = Spool(path=str(spool), source=source_token(server.write_key))
    store.open()
    store.store(
        [b'{"type":"track","event":"E","userId":"u","messageId":"m1"}'], max_size=100, max_bytes=500_000
    )
    store.close()
    server.pause()
    command = [sys.executable, "-m", "segment_logging", "drain", str(spool), "--write-key", server.write_key]
    process = subprocess.Popen(
        [*command, "--host", server.url, "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.wait_for_held(1, timeout=30)
        told = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        server.resume()
    assert time.monotonic() - told < 5  # the interpreter's exit, on a slow machine
    assert process.returncode == 1, err
    assert out.startswith(f"stopped by {signum.name}: sent 0, failed 0, left 1 in"), out
    assert "Traceback" not in err
    assert rows(spool) == 1


def test_drain_says_what_other_sources_left_and_exits_one(spool: Path, server: SegmentServer) -> None:
    """Rows of another write key are not sent (they are not this source's), and not hidden: the
    command names them and exits 1, since the file is not empty."""
    store = Spool(path=str(spool), source=source_token("another-key"))
    store.open()
    store.store([b'{"i":1}', b'{"i":2}'], max_size=100, max_bytes=500_000)
    store.close()
    done = drain(spool, server)
    assert done.returncode == 1
    assert "sent 0, failed 0, left 0 in" in done.stdout
    assert "2 events of other sources (other write keys) are left as they are" in done.stdout
    assert rows(spool) == 2


@pytest.mark.parametrize("case", ["directory", "no key", "corrupt"])
def test_drain_refuses_what_cannot_work_with_a_plain_message(tmp_path: Path, case: str) -> None:
    """A directory, a missing write key or a file that is not a spool: one line on stderr, no
    traceback, a non-zero status, and the file left as it was."""
    spool = tmp_path / "segment.db"
    garbage = b"not a database " * 100
    if case == "directory":
        spool.mkdir()
    else:
        spool.write_bytes(garbage)
    env = {k: v for k, v in os.environ.items() if k != "SEGMENT_WRITE_KEY"}
    key = [] if case == "no key" else ["--write-key", "key"]
    done = subprocess.run(
        [sys.executable, "-m", "segment_logging", "drain", str(spool), *key, "--host", closed_port_url()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == (1 if case == "corrupt" else 2), done.stderr
    assert "Traceback" not in done.stderr
    expected = {"directory": "is a directory", "no key": "no write key", "corrupt": "not a readable spool"}
    assert expected[case] in done.stderr
    if case != "directory":
        assert spool.read_bytes() == garbage
    assert [path.name for path in tmp_path.iterdir()] == ["segment.db"]


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--timeout", "-1", "argument --timeout: must be a finite number of seconds, at least 0; got '-1'"),
        ("--timeout", "nan", "argument --timeout: must be a finite number of seconds, at least 0; got 'nan'"),
        ("--timeout", "soon", "argument --timeout: not a number of seconds: 'soon'"),
        ("--host", "ftp://127.0.0.1:1", "host must be an http:// or https:// URL"),
        ("--host", "http://user:hunter2@127.0.0.1:1", "host must not carry credentials"),
        ("--host", "", "--host is empty"),  # not Segment's own host: an unset "$HOST" sends nowhere
        ("--write-key", " ", "--write-key is empty"),
    ],
)
def test_drain_refuses_bad_options_naming_them(spool: Path, option: str, value: str, expected: str) -> None:
    """A bad --timeout or --host: status 2 and one line that names it, no traceback, no secret, and
    the spool's rows left as they were."""
    store = Spool(path=str(spool), source=source_token("key"))
    store.open()
    store.store([b'{"i":1}'], max_size=100, max_bytes=500_000)
    store.close()
    done = subprocess.run(
        [sys.executable, "-m", "segment_logging", "drain", str(spool), "--write-key", "key", option, value],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert rows(spool) == 1


def test_the_structlog_processor_takes_the_spool_option(server: SegmentServer, spool: Path) -> None:
    """SegmentProcessor(spool=...) spools and delivers like the handler."""
    from segment_logging.structlog import SegmentProcessor

    processor = SegmentProcessor(server.write_key, host=server.url, spool=spool, flush_interval=0.05)
    try:
        processor(None, "info", {"event": "Structured", "segment": {"user_id": "u"}})
        assert processor.flush(10)
        assert [e["event"] for e in server.events()] == ["Structured"]
        assert spool.exists()
        assert processor.stats()["spooled"] == 0
    finally:
        processor.close()


@pytest.mark.parametrize(("max_size", "expected"), [(100, [7]), (3, [3, 3, 1]), (2, [2, 2, 2, 1])])
def test_small_stored_batches_are_sent_together_within_the_batch_limits(
    spool: Path, max_size: int, expected: list[int]
) -> None:
    """Rows stored one event at a time (a trickle) are leased as few requests as the batching
    rules allow: max_size events, whole rows only."""
    store = Spool(path=str(spool), source=source_token("key"))
    store.open()
    try:
        for index in range(7):
            store.store([b'{"i":%d}' % index], max_size=max_size, max_bytes=500_000)
        taken = store.lease(max_size=max_size, max_bytes=500_000, batches=10)
        assert [len(batch.pieces) for batch in taken] == expected
        assert [piece for batch in taken for piece in batch.pieces] == [b'{"i":%d}' % i for i in range(7)]
        assert store.count == 7
    finally:
        store.close()
