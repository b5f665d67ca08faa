"""How events get out when the process ends: exit hooks, SIGTERM, signal handlers, fork and
multiprocessing children. Each scenario runs a script from ``tests/scripts`` in its own
interpreter, so a hang fails the test on its timeout instead of hanging the suite."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen

import httpx
import pytest
from conftest import SCRIPTS, Script, finish, wait_for_line

import segment_logging
from segment_logging import SegmentHandler
from segment_logging.structlog import SegmentProcessor
from segment_logging.testing import SegmentServer

needs_fork = pytest.mark.skipif(sys.platform == "win32", reason="needs fork and POSIX signals")


@needs_fork
@pytest.mark.parametrize("method", ["forkserver", "spawn"])
@pytest.mark.parametrize("shape", ["process", "pool"])
def test_children_of_forkserver_and_spawn_deliver(
    script: Script, server: SegmentServer, method: str, shape: str
) -> None:
    """Processes and a Pool (left with ``with``, which terminates its workers) under forkserver and
    spawn deliver every child's event, though children leave through os._exit()."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    status, _, stderr = finish(script("forkserver_children.py", method, shape), timeout=60)
    assert status == 0, stderr
    assert len(server.events("FromChild")) == (4 if shape == "process" else 8), stderr
    assert len(set(server.message_ids())) == len(server.messages)


@needs_fork
def test_sigterm_delivers_then_dies_of_sigterm(script: Script, server: SegmentServer) -> None:
    """A plain process stopped with SIGTERM delivers what it queued and still ends killed by SIGTERM."""
    process = script("sigterm.py", "300")
    wait_for_line(process, "ready")
    process.send_signal(signal.SIGTERM)
    status, stdout, stderr = finish(process)
    assert status == -signal.SIGTERM, stderr
    assert "not stopped" not in stdout
    assert len(server.events("BeforeSigterm")) == 300


def _unshare_works() -> bool:
    try:
        probe = subprocess.run([*_AS_PID_1, "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


_AS_PID_1 = ["unshare", "--user", "--map-root-user", "--pid", "--fork"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PID namespaces are Linux's")
def test_a_process_that_outlives_sigterm_as_pid_1_delivers_what_it_logs_afterwards(
    server: SegmentServer,
) -> None:
    """PID 1 in a container without an init ignores SIGTERM's default action, so it lives on after
    the library delivered and re-raised: the events it logs afterwards are delivered as before, not
    failed at once for the exit deadline the signal set."""
    if not _unshare_works():
        pytest.skip("this machine cannot start a process in a new PID namespace (unshare)")
    env = {**os.environ, "SEGMENT_HOST": server.url, "SEGMENT_WRITE_KEY": server.write_key}
    done = subprocess.run(
        [*_AS_PID_1, sys.executable, str(SCRIPTS / "sigterm_as_pid1.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["alive 1", "flushed: True"], done.stdout + done.stderr
    stats = json.loads(lines[2])
    assert (stats["sent"], stats["failed"]) == (11, 0), done.stderr
    assert len(server.events("After")) == 10


@needs_fork
def test_the_applications_sigterm_handler_wins(script: Script, server: SegmentServer) -> None:
    """A SIGTERM handler the application installs after configuring logging runs; its sys.exit()
    then delivers through the normal exit path."""
    process = script("sigterm.py", "20", "own-handler")
    wait_for_line(process, "ready")
    process.send_signal(signal.SIGTERM)
    status, stdout, stderr = finish(process)
    assert status == 3, stderr
    assert "own handler ran" in stdout
    assert len(server.events("BeforeSigterm")) == 20


@needs_fork
def test_logging_and_flushing_from_a_signal_handler_never_deadlocks(
    script: Script, server: SegmentServer
) -> None:
    """A handler firing every millisecond (every 20 under a tracer such as coverage) logs and flushes
    while the main thread logs: it finishes and every event from both arrives."""
    status, stdout, stderr = finish(script("signal_reentry.py", "20000"), timeout=60)
    assert status == 0, stderr
    result = json.loads(stdout)
    assert result["fired"] > 0
    assert result["flushed"] is True
    assert len(server.events("FromMain")) == 20000
    assert len(server.events("FromSignal")) == result["fired"], result["stats"]


@needs_fork
@pytest.mark.parametrize("attempt", range(8))
def test_sigterm_handler_that_flushes_and_exits_while_logging(
    script: Script, server: SegmentServer, attempt: int
) -> None:
    """The application's SIGTERM handler calls flush(timeout=2) and sys.exit(0) while the main thread is
    inside its logging calls: the process ends, every time."""
    process = script("sigterm_flush_exit.py")
    wait_for_line(process, "ready")
    process.send_signal(signal.SIGTERM)
    status, _, stderr = finish(process, timeout=20)
    assert status == 0, stderr
    assert server.events("First")


def test_events_logged_by_exit_hooks_and_memory_handlers_arrive(
    script: Script, server: SegmentServer
) -> None:
    """An atexit hook registered before the handler logs at exit, a MemoryHandler closed after the
    SegmentHandler flushes into it, and atexit.register(handler.flush) runs: everything arrives, with
    no "logged after close()" warning and no error."""
    status, _, stderr = finish(script("exit_hooks.py"))
    assert status == 0, stderr
    assert "after close" not in stderr, stderr
    assert "call stack is not deep enough" not in stderr, stderr  # atexit.register(handler.flush)
    assert len(server.events("FromAtexit")) == 1
    assert len(server.events("Direct")) == 50
    assert len(server.events("Buffered")) == 50


def test_idle_handlers_start_no_thread_and_dropped_ones_release_theirs(script: Script) -> None:
    """300 handlers that never saw an event own no thread; a used handler the application dropped
    lets its worker end."""
    status, stdout, stderr = finish(script("many_handlers.py", "300"))
    assert status == 0, stderr
    assert json.loads(stdout) == {"after_idle": 0, "after_dropped": 0}


@needs_fork
def test_fork_with_log_threads_off(script: Script, server: SegmentServer) -> None:
    """With logging.logThreads = False, a forked child sends its events (they are not mistaken for the
    library's own) and httpx's per-request lines from the worker stay quiet."""
    status, stdout, stderr = finish(script("logthreads_fork.py"))
    assert status == 0, stderr
    results = {line["who"]: line for line in map(json.loads, stdout.splitlines())}
    for who in ("parent", "child"):
        assert results[who]["flushed"] is True
        assert results[who]["stats"]["sent"] == 5
        assert results[who]["http"] == []
    assert len(server.events("Event")) == 10


def test_logging_from_del_at_interpreter_exit_is_reported_plainly(script: Script) -> None:
    """An event logged by a __del__ during interpreter teardown is reported in one line, not with a
    "--- Logging error ---" traceback."""
    status, _, stderr = finish(script("log_from_del.py"))
    assert status == 0, stderr
    assert "Logging error" not in stderr, stderr
    assert "logged after close()" in stderr


def test_flush_all_delivers_every_handler_and_processor(
    make_handler: Callable[..., SegmentHandler], server: SegmentServer, logger: logging.Logger
) -> None:
    """flush_all() flushes every live handler and processor at once and says whether all settled."""
    other_server = SegmentServer().start()
    first = make_handler(flush_interval=3600)
    second = make_handler(flush_interval=3600, host=other_server.url, write_key=other_server.write_key)
    processor = SegmentProcessor(server.write_key, host=server.url, flush_interval=3600)
    try:
        logger.addHandler(first)
        logger.addHandler(second)
        logger.info("Both", extra={"segment": {"user_id": "u"}})
        processor(None, "info", {"event": "Structured", "segment": {"user_id": "u"}})
        assert segment_logging.flush_all(timeout=5) is True
        assert len(server.events("Both")) == 1
        assert len(other_server.events("Both")) == 1
        assert len(server.events("Structured")) == 1
    finally:
        processor.close()
        second.close()
        other_server.stop()


def test_flush_all_times_out_when_segment_hangs(
    make_handler: Callable[..., SegmentHandler], server: SegmentServer, logger: logging.Logger
) -> None:
    """flush_all(timeout) returns False when Segment does not answer in time."""
    handler = make_handler()
    logger.addHandler(handler)
    server.pause()
    try:
        logger.info("Held", extra={"segment": {"user_id": "u"}})
        assert segment_logging.flush_all(timeout=0.3) is False
    finally:
        server.resume()


def test_shutdown_delivers_and_closes(
    make_handler: Callable[..., SegmentHandler], server: SegmentServer, logger: logging.Logger
) -> None:
    """shutdown() delivers what is queued and closes every queue; later events are dropped and counted."""
    handler = make_handler(flush_interval=3600)
    logger.addHandler(handler)
    logger.info("Before", extra={"segment": {"user_id": "u"}})
    assert segment_logging.shutdown(timeout=5) is True
    assert server.events("Before")
    logger.info("After", extra={"segment": {"user_id": "u"}})
    assert handler.stats()["dropped"] == 1


@needs_fork
def test_billiard_processes_and_pool_workers_deliver(script: Script, server: SegmentServer) -> None:
    """billiard Processes, and pool workers replaced after maxtasksperchild (all leave through
    os._exit), deliver every event."""
    pytest.importorskip("billiard")
    status, _, stderr = finish(script("billiard_pool.py", "40"), timeout=90)
    assert status == 0, stderr
    assert len(server.events("FromTask")) == 44
    assert len(set(server.message_ids())) == 44


@needs_fork
@pytest.mark.parametrize("max_tasks_per_child", ["10"])
def test_celery_prefork_worker_delivers_every_task_event(
    script: Script, server: SegmentServer, tmp_path: Path, max_tasks_per_child: str
) -> None:
    """A real Celery prefork worker: children replaced after --max-tasks-per-child, and the rest at warm
    shutdown (SIGTERM), deliver every task's event, though flush_interval is 5 s."""
    pytest.importorskip("celery")
    env = {"CELERY_TEST_DIR": str(tmp_path)}
    worker = script("celery_worker.py", max_tasks_per_child, extra_env=env)
    wait_for_line(worker, "ready", timeout=60)
    status, _, stderr = finish(script("celery_publish.py", "60", extra_env=env), timeout=90)
    assert status == 0, stderr
    worker.send_signal(signal.SIGTERM)
    status, _, stderr = finish(worker, timeout=60)
    assert status == 0, stderr
    assert len(server.events("Signup")) == 60, stderr
    assert len(set(server.message_ids())) == 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_serving(url: str, process: Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server ended: {process.communicate()[1]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            threading.Event().wait(0.05)  # the server is still starting: poll its port
    raise AssertionError(f"{url} not serving within {timeout} s")


@needs_fork
@pytest.mark.parametrize(
    ("server_kind", "signum"),
    [
        ("uvicorn", signal.SIGTERM),
        ("uvicorn", signal.SIGINT),
        ("uvicorn-workers", signal.SIGTERM),
        ("gunicorn", signal.SIGTERM),
    ],
)
def test_asgi_servers_deliver_what_was_logged_before_the_stop(
    script: Script, server: SegmentServer, server_kind: str, signum: int
) -> None:
    """uvicorn (one process or --workers 2) and gunicorn with UvicornWorker, stopped by SIGTERM or
    SIGINT as Docker, Kubernetes and systemd stop them: every event logged by a request before the
    signal arrives, with no code from the user."""
    pytest.importorskip("uvicorn")
    if server_kind == "gunicorn":
        pytest.importorskip("gunicorn")
    port = _free_port()
    process = script("serve_asgi.py", server_kind, str(port))
    url = f"http://127.0.0.1:{port}"
    _wait_until_serving(f"{url}/warm-up", process)
    with httpx.Client(timeout=10) as client:
        for index in range(50):
            assert client.get(f"{url}/{index}").status_code == 200
    process.send_signal(signum)
    status, _, stderr = finish(process, timeout=60)
    assert status in (0, -signal.SIGTERM, -signal.SIGINT, 128 + signum, 1), stderr
    requests = [m["userId"].split("-", 1)[1] for m in server.events("Request")]
    assert sorted(r for r in requests if r != "warm-up") == sorted(map(str, range(50))), stderr
    assert "warm-up" in requests  # (more than once if a first try was served but its answer lost)


def test_queue_handler_chain_keeps_event_names_and_loses_nothing_at_exit(
    script: Script, server: SegmentServer
) -> None:
    """Behind a QueueHandler with a formatter and a QueueListener never stopped: every event arrives at
    exit, named as logged (no timestamp prefix, no traceback)."""
    status, _, stderr = finish(script("queue_chain.py", "500"))
    assert status == 0, stderr
    assert len(server.events("Signup web")) == 500, stderr
    assert len(server.events("Checkout failed")) == 1
    assert {m["event"] for m in server.messages} == {"Signup web", "Checkout failed"}


def test_reports_reach_stderr_when_only_a_buffering_handler_would_take_them(script: Script) -> None:
    """With a MemoryHandler as the only other handler, the library's report goes to stderr at once
    instead of into the buffer (where it would be seen late, or never)."""
    status, _, stderr = finish(script("memory_handler_only.py"))
    assert status == 0, stderr
    assert "logged after close()" in stderr


@needs_fork
def test_django_runserver_stop_and_reload_lose_nothing_already_due(
    script: Script, server: SegmentServer, tmp_path: Path
) -> None:
    """Django's runserver with its autoreloader: events go out within flush_interval, so its SIGKILL of the
    serving child on a reload or a stop takes nothing older; a reload brings no "logged after close()"
    warning, and the new child sends its own events."""
    pytest.importorskip("django")
    port = _free_port()
    # Unmeasured: coverage's save at the old child's exit would widen the window in which runserver
    # still answers after the handler closed, and this test checks that no such warning appears.
    process = script("django_site.py", "runserver", f"127.0.0.1:{port}", measured=False)
    url = f"http://127.0.0.1:{port}/signup"
    _wait_until_serving(f"{url}/warm-up", process, timeout=60)
    with httpx.Client(timeout=10) as client:
        first_pid = client.get(f"{url}/0").text
        for index in range(1, 20):
            client.get(f"{url}/{index}")
        assert server.wait_for(21, 10)  # the warm-up and the 20, before anything stops
        (SCRIPTS / "django_site.py").touch()  # the autoreloader replaces the serving child
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if client.get(f"{url}/after-reload").text != first_pid:
                    break
            except httpx.TransportError:
                pass  # between the two children
            threading.Event().wait(0.2)
        else:
            raise AssertionError("runserver did not reload")
    assert server.wait_for(22, 10)
    process.send_signal(signal.SIGTERM)
    status, _, stderr = finish(process, timeout=30)
    assert status == 0, stderr
    assert "after close" not in stderr, stderr
    assert "Traceback" not in stderr, stderr


@needs_fork
def test_sigterm_with_segment_hanging_is_bounded_and_reported(
    script: Script, server: SegmentServer, black_hole: str
) -> None:
    """SIGTERM while Segment never answers: the process still dies of SIGTERM within about
    shutdown_timeout, and says what it could not deliver."""
    process = script("sigterm.py", "5", extra_env={"SEGMENT_HOST": black_hole, "SHUTDOWN_TIMEOUT": "1"})
    wait_for_line(process, "ready")
    process.send_signal(signal.SIGTERM)
    status, _, stderr = finish(process, timeout=20)
    assert status == -signal.SIGTERM, stderr
    # The exit's report, or the worker's (its request ran out of shutdown_timeout), or both.
    assert re.search(r"5 (events|messages) not delivered", stderr), stderr


def test_sigterm_with_segment_hanging_reports_every_lost_event(
    script: Script, server: SegmentServer, black_hole: str
) -> None:
    """Five handlers, Segment never answering: SIGTERM's own line and the workers' lines (a worker
    gives its batch up at the same deadline) together name every lost event (some may be named by
    both: a worker can give up between the count and the line)."""
    env = {"SEGMENT_HOST": black_hole, "SHUTDOWN_TIMEOUT": "1", "HANDLERS": "5"}
    process = script("sigterm.py", "20", extra_env=env)
    wait_for_line(process, "ready")
    process.send_signal(signal.SIGTERM)
    status, _, stderr = finish(process, timeout=20)
    assert status == -signal.SIGTERM, stderr
    counted = [int(n) for n in re.findall(r"(\d+) (?:events|messages) not delivered", stderr)]
    assert sum(counted) >= 5 * 20, stderr


def test_a_handler_dropped_right_after_logging_still_delivers(
    server: SegmentServer, new_logger: Callable[[], logging.Logger]
) -> None:
    """An application that logs and then drops its handler (no close()) while the worker is idle still
    has the event delivered, every time."""
    logger = new_logger()
    for attempt in range(20):
        handler = SegmentHandler(server.write_key, host=server.url, flush_interval=0.01)
        logger.addHandler(handler)
        logger.info("First", extra={"segment": {"user_id": f"u{attempt}"}})
        assert handler.flush(5)  # the worker is idle now
        logger.info("Last", extra={"segment": {"user_id": f"u{attempt}"}})
        logger.removeHandler(handler)
        del handler
    assert server.wait_for(40, 10)
    assert len(server.events("Last")) == 20
