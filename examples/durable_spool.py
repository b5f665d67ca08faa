"""Durable delivery: events a process logged before it was killed are sent by the next one.

Run it:  python examples/durable_spool.py        (Linux or macOS: it uses SIGKILL)

It runs twice, as a deploy would. The first run, a child process, logs three events while
Segment is unreachable: they reach the spool file, and then the process is killed with
SIGKILL, as the OOM killer would kill it. The second run, this process, only creates a
handler on the same spool: the events the first one left are delivered, each once, to a
fake Segment on 127.0.0.1 (this example never sends anything to Segment itself).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading

from _target import show_received

from segment_logging import SegmentHandler
from segment_logging.testing import SegmentServer


def unreachable() -> str:
    """A URL on this machine that nothing listens on: Segment is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def first_run(spool: str) -> None:
    """Log while Segment is down, wait until the events are on disk, then die of SIGKILL."""
    handler = SegmentHandler(host=unreachable(), spool=spool)  # the key: $SEGMENT_WRITE_KEY
    log = logging.getLogger("shop")
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    for user, plan in (("u1", "pro"), ("u2", "free"), ("u3", "team")):
        log.info("Signup", extra={"segment": {"user_id": user, "properties": {"plan": plan}}})
    pause = threading.Event()
    while handler.stats()["spooled"] < 3:  # on disk within about a flush_interval
        pause.wait(0.01)
    print(f"first run: {handler.stats()['spooled']} events in the spool; killed with SIGKILL now", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def second_run(spool: str) -> None:
    fake = SegmentServer().start()
    os.environ["SEGMENT_WRITE_KEY"] = fake.write_key  # rows are sent by processes of the same source
    first = subprocess.run([sys.executable, __file__, spool], check=False)
    print(f"first run ended by signal {signal.Signals(-first.returncode).name}")

    # The next process: nothing but a handler on the same spool.
    handler = SegmentHandler(host=fake.url, spool=spool)
    logging.getLogger("shop").addHandler(handler)
    handler.flush(10)  # also waits for what the spool held (at exit it would be sent too)
    left = handler.stats()["spooled"]
    handler.close()
    show_received(fake, "The fake Segment received", f" from the spool ({left} left in it)")


if __name__ == "__main__":
    if len(sys.argv) == 2:
        first_run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            second_run(os.path.join(directory, "segment.db"))
