"""The examples run as a new user would run them: against the embedded fake Segment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SEGMENT_WRITE_KEY"}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=60, env=env
    )


def test_quickstart_delivers_at_exit() -> None:
    """quickstart.py, with no write key, delivers its events to the fake Segment at exit and prints them."""
    done = _run("quickstart.py")
    assert done.returncode == 0, done.stderr
    assert "The fake Segment received 3 events" in done.stdout
    assert '"event": "Signup"' in done.stdout
    assert '"type": "identify"' in done.stdout
    assert "HTTP Request" not in done.stderr, "httpx's per-batch lines must not reach the console"


def test_structlog_app_delivers_at_exit() -> None:
    """examples/structlog_app.py, with no write key, delivers to its embedded fake Segment and prints it."""
    pytest.importorskip("structlog", reason="the structlog extra is not installed")
    done = _run("structlog_app.py")
    assert done.returncode == 0, done.stderr
    assert "The fake Segment received 3 events" in done.stdout
    assert '"event": "Signup"' in done.stdout
    assert '"properties": {"plan": "team", "request_id": "r-17"}' in done.stdout
    assert '"segment"' not in done.stdout.split("The fake Segment")[0], "rendered lines must not show segment"


def test_seed_api_example_runs() -> None:
    """seed_api.py, with no write key, delivers the crate README's track and the hand-batched ones."""
    done = _run("seed_api.py")
    assert done.returncode == 0, done.stderr
    assert "The fake Segment received 11 events in 4 requests of [1, 4, 4, 2]" in done.stdout
    assert '"userId": "user-1", "event": "Example", "properties": {"foo": "bar"}' in done.stdout


def test_async_app_example_runs() -> None:
    """async_app.py, with no write key, delivers three events by the interval flush and one at the end."""
    done = _run("async_app.py")
    assert done.returncode == 0, done.stderr
    assert "Delivered by the interval flush, while the app kept running: 3 events" in done.stdout
    assert "Delivered in all, the last when the async with block ended: 4 events" in done.stdout
    assert '"userId": "user-3", "event": "Order Completed"' in done.stdout


def test_starlette_app_example_binds_each_request_user() -> None:
    """starlette_app.py, with no write key: each request's user is bound; events arrive by shutdown."""
    done = _run("starlette_app.py")
    assert done.returncode == 0, done.stderr
    assert "u1 upgraded to team; bound during the request: {'user_id': 'u1'}" in done.stdout
    assert "The fake Segment received 2 events by the time the app had shut down" in done.stdout
    assert '"userId": "u2", "event": "Upgraded", "properties": {"plan": "pro"}' in done.stdout
    assert done.stderr == ""


@pytest.mark.skipif(sys.platform == "win32", reason="the example kills its first run with SIGKILL")
def test_durable_spool_example_delivers_what_a_killed_process_left() -> None:
    """durable_spool.py: a child logs while Segment is down and is SIGKILLed; the next process, with
    only a handler on the same spool, delivers its three events."""
    done = _run("durable_spool.py")
    assert done.returncode == 0, done.stderr
    assert "first run: 3 events in the spool; killed with SIGKILL now" in done.stdout
    assert "first run ended by signal SIGKILL" in done.stdout
    assert "The fake Segment received 3 events from the spool (0 left in it)" in done.stdout
    assert '"userId": "u3", "event": "Signup", "properties": {"plan": "team"}' in done.stdout
    assert done.stderr == ""
