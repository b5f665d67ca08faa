"""Fork and interpreter exit: no event sent twice across a fork, none lost at exit.

Every scenario runs in a fresh interpreter (``tests/scripts/fork_scenarios.py``), so
pytest's own threads play no part in the fork, and a hang fails the test on the
subprocess timeout instead of hanging the suite. Parents queue their events
with a long ``flush_interval`` before forking: a child that re-sent them would
show up on the fake server as a second copy.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from conftest import Script, finish

from segment_logging.testing import SegmentServer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")


def _run(script: Script, scenario: str, timeout: float = 30) -> list[dict[str, Any]]:
    """Run ``tests/scripts/fork_scenarios.py SCENARIO``; the JSON lines it printed (from every process)."""
    status, stdout, stderr = finish(script("fork_scenarios.py", scenario), timeout=timeout)
    assert status == 0, stderr
    assert stderr == "", stderr
    return [json.loads(line) for line in stdout.splitlines()]


def _names(server: SegmentServer) -> list[str]:
    return [m["event"] for m in server.messages]


def _count(server: SegmentServer, name: str) -> int:
    return len(server.events(name))


# -- 4. fork --------------------------------------------------------------------------------------


def test_os_fork_child_sends_only_its_own_events(script: Script, server: SegmentServer) -> None:
    """After os.fork() the child delivers its own events with a fresh worker, flush() in it
    returns, and the parent's queued events are sent once, by the parent."""
    child, parent = _run(script, "os_fork")
    assert child["flushed"] is True
    assert (child["stats"]["sent"], child["stats"]["queued"]) == (10, 0)
    assert parent["status"] == 0
    assert parent["flushed"] is True
    assert parent["stats"]["sent"] == 21
    # The child sent none of the parent's events: they come once, after the child's.
    assert _names(server) == ["WarmUp"] + ["Child"] * 10 + ["Parent"] * 20
    assert len(set(server.message_ids())) == 31


def test_fork_while_parent_request_in_flight(script: Script, server: SegmentServer) -> None:
    """A fork while the parent's worker is inside a request (holding httpx's pool lock): the
    child's flush() still returns and delivers; each side's events arrive once."""
    process = script("fork_scenarios.py", "fork_mid_request", "0.01")
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


def test_multiprocessing_fork_process_delivers_at_exit(script: Script, server: SegmentServer) -> None:
    """multiprocessing "fork" Processes deliver what their target logged when it returns, and
    never the parent's queued events."""
    (parent,) = _run(script, "multiprocessing_process")
    assert parent["exitcodes"] == [0, 0, 0]
    assert parent["flushed"] is True
    assert parent["stats"]["sent"] == 21
    assert (_count(server, "Worker"), _count(server, "Parent")) == (15, 20)
    assert len(set(server.message_ids())) == 36


def test_multiprocessing_fork_pool_delivers_when_closed(script: Script, server: SegmentServer) -> None:
    """A "fork" Pool that is closed and joined delivers every task's events, once."""
    (parent,) = _run(script, "multiprocessing_pool")
    assert parent["results"] == list(range(6))
    assert parent["flushed"] is True
    assert (_count(server, "Task"), _count(server, "Parent")) == (24, 20)
    assert len(set(server.message_ids())) == 45


def test_prefork_workers_deliver_on_sys_exit(script: Script, server: SegmentServer) -> None:
    """gunicorn-style pre-fork: workers forked from a master that holds the handler deliver
    their own events when they sys.exit(), and never the master's."""
    (master,) = _run(script, "pre_fork")
    assert master["statuses"] == [0, 0, 0]
    assert master["flushed"] is True
    assert master["stats"]["sent"] == 11
    assert (_count(server, "Request"), _count(server, "Master")) == (15, 10)
    assert len(set(server.message_ids())) == 26


def test_flush_in_child_with_nothing_of_its_own(script: Script, server: SegmentServer) -> None:
    """flush() in a child that logged nothing returns True at once: the parent's queue is not its."""
    (child,) = _run(script, "child_flush_nothing")
    assert child["flushed"] is True
    assert child["stats"]["queued"] == 0
    assert _count(server, "Parent") == 5


def test_fork_right_after_creating_the_handler(script: Script, server: SegmentServer) -> None:
    """Forking immediately after creating the handler (gunicorn's preload does): the child's
    flush() delivers, it does not hang."""
    assert _run(script, "fork_at_once") == [{"flushed": True, "sent": 1}]
    assert _count(server, "Child") == 1


# -- 7. threads at shutdown -------------------------------------------------------------------------


def test_first_event_from_atexit_in_child_when_threads_are_refused(
    script: Script, server: SegmentServer
) -> None:
    """A fork child whose first event is logged from an atexit hook, with thread starts refused
    as Python 3.12+ refuses them during shutdown: the events are still delivered."""
    child, parent = _run(script, "atexit_child_threads_refused")
    assert parent["status"] == 0
    assert child["started"] == []
    assert _count(server, "AtExit") == 3


def test_worker_is_never_started_from_an_atexit_hook(script: Script, server: SegmentServer) -> None:
    """Whatever the Python version, an event logged from an atexit hook in a fork child does not
    start a worker thread; the events are delivered on the exiting thread."""
    child, parent = _run(script, "atexit_child")
    assert parent["status"] == 0
    assert _count(server, "AtExit") == 3
    assert child["started"] == []
