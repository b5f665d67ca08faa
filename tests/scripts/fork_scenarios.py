"""Fork scenarios for ``tests/test_fork.py``: ``fork_scenarios.py NAME [FLUSH_INTERVAL]``.

Each scenario logs through one SegmentHandler (SEGMENT_HOST and SEGMENT_WRITE_KEY point it at
the test's fake Segment) and prints JSON lines, from every process, for the test to read. The
parent queues its events with a long ``flush_interval`` before forking: a child that re-sent
them would show up on the fake server as a second copy.
"""

from __future__ import annotations

import atexit
import json
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from segment_logging import SegmentHandler

handler = SegmentHandler(
    flush_interval=float(sys.argv[2]) if len(sys.argv) > 2 else 3600, shutdown_timeout=5, timeout=5
)
app = logging.getLogger("app")
app.addHandler(handler)
app.setLevel(logging.INFO)


def log(name: str, count: int, who: str) -> None:
    for i in range(count):
        app.info(name, extra={"segment": {"user_id": f"{who}-{i}"}})


def report(**fields: Any) -> None:
    """One JSON line, in one write: lines of a parent and its children never mix."""
    os.write(1, (json.dumps(fields) + "\n").encode())


def warm_up() -> None:
    """One event sent and flushed: the worker has built its connection pool, so a fork now
    cannot land in the middle of that (fork_at_once is the scenario that does)."""
    app.info("WarmUp", extra={"segment": {"user_id": "w"}})
    assert handler.flush(5)


def os_fork() -> None:
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


def fork_mid_request() -> None:
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


def _process_work(n: int) -> None:
    log("Worker", 5, f"w{n}")  # no flush: delivered as the process exits


def multiprocessing_process() -> None:
    warm_up()
    log("Parent", 20, "p")
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_process_work, args=(n,)) for n in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(20)
    report(exitcodes=[p.exitcode for p in processes], flushed=handler.flush(5), stats=handler.stats())


def _task(n: int) -> int:
    log("Task", 4, f"t{n}")
    return n


def multiprocessing_pool() -> None:
    warm_up()
    log("Parent", 20, "p")
    pool = multiprocessing.get_context("fork").Pool(2)
    results = pool.map(_task, range(6))
    pool.close()  # workers leave normally; `with Pool()` would terminate() them instead
    pool.join()
    report(results=results, flushed=handler.flush(5), stats=handler.stats())


def pre_fork() -> None:
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


def child_flush_nothing() -> None:
    warm_up()
    log("Parent", 5, "p")
    pid = os.fork()
    if pid == 0:
        report(who="child", flushed=handler.flush(), stats=handler.stats())
        os._exit(0)
    os.waitpid(pid, 0)
    handler.flush(5)


def fork_at_once() -> None:
    # No warm-up: fork while the new worker may still be building its first TLS context.
    log("Parent", 20, "p")
    pid = os.fork()
    if pid == 0:
        log("Child", 1, "c")
        report(flushed=handler.flush(1), sent=handler.stats()["sent"])  # stuck or not, it reports
        os._exit(0)
    os.waitpid(pid, 0)


def _atexit_child(refuse_threads: bool) -> None:
    warm_up()
    parent = os.getpid()

    def first_event_at_exit() -> None:
        if os.getpid() == parent:
            return
        if refuse_threads:

            def refuse(self: threading.Thread) -> None:
                raise RuntimeError("can't create new thread at interpreter shutdown")

            threading.Thread.start = refuse  # type: ignore[method-assign]  # as Python 3.12+ does at exit
        names = {t.name for t in threading.enumerate()}
        log("AtExit", 3, "x")
        started = {t.name for t in threading.enumerate()} - names
        report(who="child", started=sorted(started))

    atexit.register(first_event_at_exit)  # after the handler's hook: runs before it
    pid = os.fork()
    if pid == 0:
        sys.exit(0)  # the child's first event comes from its atexit hook
    report(who="parent", status=os.waitpid(pid, 0)[1])


def atexit_child_threads_refused() -> None:
    _atexit_child(refuse_threads=True)


def atexit_child() -> None:
    _atexit_child(refuse_threads=False)


SCENARIOS: dict[str, Callable[[], None]] = {
    scenario.__name__: scenario
    for scenario in (
        os_fork,
        fork_mid_request,
        multiprocessing_process,
        multiprocessing_pool,
        pre_fork,
        child_flush_nothing,
        fork_at_once,
        atexit_child_threads_refused,
        atexit_child,
    )
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]]()
