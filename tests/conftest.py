"""Shared fixtures: a fake Segment server per test, and handlers that are always closed."""

from __future__ import annotations

import itertools
import logging
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from doc_blocks import all_blocks
from hypothesis import settings

from segment_logging import SegmentHandler
from segment_logging.testing import SegmentServer

# Property tests judge results, not speed: on a shared 2-core machine (and under coverage) one
# example can take longer than Hypothesis's default 200 ms deadline without anything being wrong.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")


@pytest.fixture
def server() -> Iterator[SegmentServer]:
    """A fake Segment on a random loopback port."""
    with SegmentServer() as srv:
        yield srv


@pytest.fixture
def make_handler(server: SegmentServer) -> Iterator[Callable[..., SegmentHandler]]:
    """Build SegmentHandlers pointed at ``server``; each is closed after the test."""
    made: list[SegmentHandler] = []

    def make(**options: Any) -> SegmentHandler:
        options.setdefault("host", server.url)
        options.setdefault("shutdown_timeout", 2.0)
        handler = SegmentHandler(options.pop("write_key", server.write_key), **options)
        made.append(handler)
        return handler

    yield make
    for handler in made:
        handler.close()


_names = itertools.count()


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A fresh, non-propagating logger at INFO with no handlers."""
    log = logging.getLogger(f"test.logger{next(_names)}")
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)


SCRIPTS = Path(__file__).parent / "scripts"
"""Programs the tests run in their own interpreter: exit, signals and fork need a process of their own."""


Script = Callable[..., "subprocess.Popen[str]"]
"""The ``script`` fixture: start ``tests/scripts/NAME`` with arguments (and ``extra_env=``)."""


@pytest.fixture
def script(server: SegmentServer) -> Iterator[Script]:
    """Start ``tests/scripts/NAME`` with SEGMENT_HOST and SEGMENT_WRITE_KEY pointing at ``server``.

    Returns a started ``Popen`` (text mode, stdout and stderr piped); the test
    decides how to stop it. Every process still running at the end is killed.
    """
    started: list[subprocess.Popen[str]] = []
    env = {**os.environ, "SEGMENT_HOST": server.url, "SEGMENT_WRITE_KEY": server.write_key}
    env.pop("PYTHONWARNINGS", None)

    def start(
        name: str, *args: str, extra_env: dict[str, str] | None = None, measured: bool = True
    ) -> subprocess.Popen[str]:
        process_env = {**env, **(extra_env or {})}
        if not measured:
            # Out of coverage's reach (CI measures the interpreters the tests start): for a test
            # about timing at exit, which coverage's own save at exit stretches.
            process_env.pop("COVERAGE_PROCESS_CONFIG", None)
            process_env.pop("COVERAGE_PROCESS_START", None)
        process = subprocess.Popen(
            [sys.executable, "-W", "ignore:This process:DeprecationWarning", str(SCRIPTS / name), *args],
            stdin=subprocess.PIPE,  # for a script the test talks to; closed by communicate()
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=process_env,
            cwd=SCRIPTS,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def finish(process: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    """Wait for ``process`` (a hang fails the test at ``timeout``): (status, stdout, stderr)."""
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def wait_for_line(process: subprocess.Popen[str], expected: str, timeout: float = 30) -> None:
    """Read ``process``'s stdout until the line ``expected`` (fails on end of output or timeout)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"ended before printing {expected!r}: {process.communicate()[1]}")
        if line.strip() == expected:
            return
    raise AssertionError(f"no {expected!r} within {timeout} s")


def framework_snippets(module: str) -> list[str]:
    """The docs' blocks marked ``<!-- test: framework MODULE -->`` for ``module``, in order.

    tests/test_docs.py runs the ``run`` blocks; these need a framework app around them,
    so the tests of each ``segment_logging.contrib`` module run them.
    """
    return [block.code for block in all_blocks() if block.kind == "framework" and block.arg == module]


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A loopback port that accepts TCP connections but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def new_logger() -> Iterator[Callable[[], logging.Logger]]:
    """Make a non-propagating logger inside the test, where pytest attaches no capture handler
    (pytest's handler formats and keeps every record it sees)."""
    made: list[logging.Logger] = []

    def make() -> logging.Logger:
        # A name never used before: pytest attaches its capture handler to every logger that
        # exists when a test starts, so a logger of an earlier test would keep records alive.
        log = logging.getLogger(f"test.fresh{next(_names)}")
        log.setLevel(logging.INFO)
        log.propagate = False
        made.append(log)
        return log

    yield make
    for log in made:
        for handler in list(log.handlers):
            log.removeHandler(handler)
        log.filters.clear()
