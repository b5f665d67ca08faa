"""Fork and interpreter exit: no event sent twice across a fork, none lost at exit.

Every scenario runs in a fresh interpreter (``sys.executable -c script``), so
pytest's own threads play no part in the fork, and a hang fails the test on the
subprocess timeout instead of hanging the suite. Parents queue their events
with a long ``flush_interval`` before forking: a child that re-sent them would
show up on the fake server as a second copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from segment_logging.testing import SegmentServer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")

PRELUDE = """
    import json, logging, os, sys, threading
    from segment_logging import SegmentHandler
    key, url = sys.argv[1], sys.argv[2]
    handler = SegmentHandler(key, host=url, flush_interval=3600, shutdown_timeout=5, timeout=5)
    app = logging.getLogger("app")
    app.addHandler(handler)
    app.setLevel(logging.INFO)

    def log(name, count, who):
        for i in range(count):
            app.info(name, extra={"segment": {"user_id": f"{who}-{i}"}})

    def report(**fields):
        print(json.dumps(fields), flush=True)

    def warm_up():
        # One event sent and flushed: the worker has built its connection pool, so a fork
        # now cannot land in the middle of that (see test_fork_right_after_creating_the_handler).
        app.info("WarmUp", extra={"segment": {"user_id": "w"}})
        assert handler.flush(5)
"""


# Python 3.12+ warns on every fork of a process with threads (ours has the worker).
QUIET_FORK = ["-W", "ignore:This process:DeprecationWarning"]


def _run(script: str, server: SegmentServer, timeout: float = 30) -> list[dict[str, Any]]:
    """Run PRELUDE + ``script``; returns the JSON lines it printed (from every process)."""
    source = textwrap.dedent(PRELUDE) + textwrap.dedent(script)
    done = subprocess.run(
        [sys.executable, *QUIET_FORK, "-c", source, server.write_key, server.url],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _names(server: SegmentServer) -> list[str]:
    return [m["event"] for m in server.messages]


def _count(server: SegmentServer, name: str) -> int:
    return len(server.events(name))


# -- 4. fork --------------------------------------------------------------------------------------

OS_FORK = """
    warm_up()
    log("Parent", 20, "p")
    pid = os.fork()
    if pid == 0:
        log("Child", 10, "c")
        flushed = handler.flush()  # no timeout: a dead inherited worker would hang it forever
        report(who="child", flushed=flushed, stats=handler.stats())
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    report(who="parent", status=status, flushed=handler.flush(5), stats=handler.stats())
"""


def test_os_fork_child_sends_only_its_own_events(server: SegmentServer) -> None:
    """After os.fork() the child delivers its own events with a fresh worker, flush() in it
    returns, and the parent's queued events are sent once, by the parent."""
    child, parent = _run(OS_FORK, server)
    assert child["flushed"] is True
    assert (child["stats"]["sent"], child["stats"]["queued"]) == (10, 0)
    assert parent["status"] == 0
    assert parent["flushed"] is True
    assert parent["stats"]["sent"] == 21
    # The child sent none of the parent's events: they come once, after the child's.
    assert _names(server) == ["WarmUp"] + ["Child"] * 10 + ["Parent"] * 20
    assert len(set(server.message_ids())) == 31


FORK_MID_REQUEST = """
    warm_up()
    report(who="parent", step="ready")
    sys.stdin.readline()  # the test hangs the server now
    log("Parent", 3, "p")
    sys.stdin.readline()  # the test says when the parent's worker is stuck in its request
    pid = os.fork()
    if pid == 0:
        log("Child", 2, "c")
        report(who="child", step="logged")
        flushed = handler.flush()  # the inherited connection pool is locked by the parent's request
        report(who="child", flushed=flushed, stats=handler.stats())
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    report(who="parent", status=status, flushed=handler.flush(5), stats=handler.stats())
"""


def test_fork_while_parent_request_in_flight(server: SegmentServer) -> None:
    """A fork while the parent's worker is inside a request (holding httpx's pool lock): the
    child's flush() still returns and delivers; each side's events arrive once."""
    source = (textwrap.dedent(PRELUDE) + textwrap.dedent(FORK_MID_REQUEST)).replace(
        "flush_interval=3600", "flush_interval=0.01"
    )
    process = subprocess.Popen(
        [sys.executable, *QUIET_FORK, "-c", source, server.write_key, server.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        assert json.loads(process.stdout.readline()) == {"who": "parent", "step": "ready"}
        server.pause()
        process.stdin.write("log\n")
        process.stdin.flush()
        assert server.wait_for_held(1)
        process.stdin.write("fork\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline()) == {"who": "child", "step": "logged"}
        server.resume()
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        server.resume()
    assert process.returncode == 0, err
    child, parent = (json.loads(line) for line in out.splitlines())
    assert (child["flushed"], child["stats"]["sent"]) == (True, 2)
    assert (parent["status"], parent["flushed"], parent["stats"]["sent"]) == (0, True, 4)
    assert (_count(server, "Parent"), _count(server, "Child")) == (3, 2)


MULTIPROCESSING_PROCESS = """
    import multiprocessing

    def work(n):
        log("Worker", 5, f"w{n}")  # no flush: delivered as the process exits

    if __name__ == "__main__":
        warm_up()
        log("Parent", 20, "p")
        context = multiprocessing.get_context("fork")
        processes = [context.Process(target=work, args=(n,)) for n in range(3)]
        for p in processes:
            p.start()
        for p in processes:
            p.join(20)
        report(exitcodes=[p.exitcode for p in processes], flushed=handler.flush(5), stats=handler.stats())
"""


def test_multiprocessing_fork_process_delivers_at_exit(server: SegmentServer) -> None:
    """multiprocessing "fork" Processes deliver what their target logged when it returns, and
    never the parent's queued events."""
    (parent,) = _run(MULTIPROCESSING_PROCESS, server)
    assert parent["exitcodes"] == [0, 0, 0]
    assert parent["flushed"] is True
    assert parent["stats"]["sent"] == 21
    assert (_count(server, "Worker"), _count(server, "Parent")) == (15, 20)
    assert len(set(server.message_ids())) == 36


MULTIPROCESSING_POOL = """
    import multiprocessing

    def work(n):
        log("Task", 4, f"t{n}")
        return n

    if __name__ == "__main__":
        warm_up()
        log("Parent", 20, "p")
        pool = multiprocessing.get_context("fork").Pool(2)
        results = pool.map(work, range(6))
        pool.close()  # workers leave normally; `with Pool()` would terminate() them instead
        pool.join()
        report(results=results, flushed=handler.flush(5), stats=handler.stats())
"""


def test_multiprocessing_fork_pool_delivers_when_closed(server: SegmentServer) -> None:
    """A "fork" Pool that is closed and joined delivers every task's events, once."""
    (parent,) = _run(MULTIPROCESSING_POOL, server)
    assert parent["results"] == list(range(6))
    assert parent["flushed"] is True
    assert (_count(server, "Task"), _count(server, "Parent")) == (24, 20)
    assert len(set(server.message_ids())) == 45


PRE_FORK = """
    # gunicorn's shape: the master configures logging (the handler lives on the root
    # logger), forks workers, and each worker leaves through sys.exit().
    app.removeHandler(handler)
    logging.getLogger().addHandler(handler)
    warm_up()
    log("Master", 10, "m")
    workers = []
    for w in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                log("Request", 5, f"w{w}")
                sys.exit(0)
            finally:
                logging.getLogger("app").info("worker exiting")  # gunicorn logs here too
        workers.append(pid)
    statuses = [os.waitpid(pid, 0)[1] for pid in workers]
    report(statuses=statuses, flushed=handler.flush(5), stats=handler.stats())
"""


def test_prefork_workers_deliver_on_sys_exit(server: SegmentServer) -> None:
    """gunicorn-style pre-fork: workers forked from a master that holds the handler deliver
    their own events when they sys.exit(), and never the master's."""
    (master,) = _run(PRE_FORK, server)
    assert master["statuses"] == [0, 0, 0]
    assert master["flushed"] is True
    assert master["stats"]["sent"] == 11
    assert (_count(server, "Request"), _count(server, "Master")) == (15, 10)
    assert len(set(server.message_ids())) == 26


CHILD_FLUSH_NOTHING = """
    warm_up()
    log("Parent", 5, "p")
    pid = os.fork()
    if pid == 0:
        report(who="child", flushed=handler.flush(), stats=handler.stats())
        os._exit(0)
    os.waitpid(pid, 0)
    handler.flush(5)
"""


def test_flush_in_child_with_nothing_of_its_own(server: SegmentServer) -> None:
    """flush() in a child that logged nothing returns True at once: the parent's queue is not its."""
    (child,) = _run(CHILD_FLUSH_NOTHING, server)
    assert child["flushed"] is True
    assert child["stats"]["queued"] == 0
    assert _count(server, "Parent") == 5


FORK_AT_ONCE = """
    # No warm-up: fork while the new worker may still be building its first TLS context.
    log("Parent", 20, "p")
    pid = os.fork()
    if pid == 0:
        log("Child", 1, "c")
        report(flushed=handler.flush(1), sent=handler.stats()["sent"])  # stuck or not, it reports
        os._exit(0)
    os.waitpid(pid, 0)
"""


def test_fork_right_after_creating_the_handler(server: SegmentServer) -> None:
    """Forking immediately after creating the handler (gunicorn's preload does): the child's
    flush() delivers, it does not hang."""
    assert _run(FORK_AT_ONCE, server) == [{"flushed": True, "sent": 1}]
    assert _count(server, "Child") == 1


# -- 7. threads at shutdown -------------------------------------------------------------------------

ATEXIT_CHILD = """
    warm_up()
    import atexit
    parent = os.getpid()

    def first_event_at_exit():
        if os.getpid() == parent:
            return
        if REFUSE_THREADS:
            def refuse(self):
                raise RuntimeError("can't create new thread at interpreter shutdown")
            threading.Thread.start = refuse  # what Python 3.12+ does once exit has begun
        names = {t.name for t in threading.enumerate()}
        log("AtExit", 3, "x")
        started = {t.name for t in threading.enumerate()} - names
        report(who="child", started=sorted(started))

    atexit.register(first_event_at_exit)  # after the handler's hook: runs before it
    pid = os.fork()
    if pid == 0:
        sys.exit(0)  # the child's first event comes from its atexit hook
    report(who="parent", status=os.waitpid(pid, 0)[1])
"""


def test_first_event_from_atexit_in_child_when_threads_are_refused(server: SegmentServer) -> None:
    """A fork child whose first event is logged from an atexit hook, with thread starts refused
    as Python 3.12+ refuses them during shutdown: the events are still delivered."""
    child, parent = _run(ATEXIT_CHILD.replace("REFUSE_THREADS", "True"), server)
    assert parent["status"] == 0
    assert child["started"] == []
    assert _count(server, "AtExit") == 3


def test_worker_is_never_started_from_an_atexit_hook(server: SegmentServer) -> None:
    """Whatever the Python version, an event logged from an atexit hook in a fork child does not
    start a worker thread; the events are delivered on the exiting thread."""
    child, parent = _run(ATEXIT_CHILD.replace("REFUSE_THREADS", "False"), server)
    assert parent["status"] == 0
    assert _count(server, "AtExit") == 3
    assert child["started"] == []
