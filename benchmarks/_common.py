"""What every benchmark script shares: the event, the clocks, RSS, and talking to the sink.

Standard library only: the scripts for Segment's own library run in the peer's
virtualenv (``benchmarks/.peer``), where segment-logging is not installed.

Clocks: every timestamp that crosses a process boundary is ``time.monotonic()``,
which on Linux is ``CLOCK_MONOTONIC``, one clock for the whole machine.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

WRITE_KEY = "benchmark-write-key"
USER_ID = "user-8d3f2c"
EVENT = "Signup"


def properties(i: int) -> dict[str, Any]:
    """The six small properties of the benchmark event (hot loops spell the literal out inline)."""
    return {"plan": "pro", "seats": 3, "trial": False, "source": "ads", "amount": 19.99, "order": i}


def emit_json(payload: dict[str, Any]) -> None:
    """Hand a result to the orchestrator: one JSON line on stdout."""
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def closed_port() -> int:
    """A loopback port nothing listens on: bound, then closed, so connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def settle(
    probe: Callable[[], int], *, every: float = 0.1, stable_for: int = 5, timeout: float = 60.0
) -> int:
    """Poll ``probe`` until it returns the same value ``stable_for`` times in a row; return it."""
    deadline = time.monotonic() + timeout
    last, same = probe(), 0
    while time.monotonic() < deadline and same < stable_for:
        time.sleep(every)
        value = probe()
        same = same + 1 if value == last else 0
        last = value
    return last


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


class Sink:
    """The control side of the loopback sink started by ``_server.py``."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urllib.parse.urlsplit(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80

    def _call(self, method: str, path: str, timeout: float = 30.0) -> dict[str, Any]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, headers={"Content-Length": "0"})
            response = connection.getresponse()
            data = json.loads(response.read())
        finally:
            connection.close()
        if not isinstance(data, dict):
            raise RuntimeError(f"sink answered {data!r}")
        return data

    def reset(self) -> None:
        """Forget every message counted so far."""
        self._call("POST", "/reset")

    def stats(self) -> dict[str, Any]:
        """Counts so far: messages, unique_ids, requests, rejected, ..."""
        return self._call("GET", "/stats")

    def wait(self, count: int, timeout: float = 120.0) -> dict[str, Any]:
        """Block until ``count`` messages were acknowledged (or ``timeout``); ``reached_at`` says when."""
        return self._call("GET", f"/wait?count={count}&timeout={timeout}", timeout=timeout + 10)
