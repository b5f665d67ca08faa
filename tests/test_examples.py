"""The examples run as a new user would run them: against the embedded fake Segment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
