"""The application's SIGTERM handler flushes and exits while the main thread is logging.

Usage: ``sigterm_flush_exit.py``; prints "ready" once it logs in a loop.
"""

from __future__ import annotations

import logging
import signal
import sys

from segment_logging import SegmentHandler

handler = SegmentHandler(flush_interval=0.05, shutdown_timeout=5)
log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.addHandler(handler)


def stop(signum: int, frame: object) -> None:
    handler.flush(timeout=2)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
log.info("First", extra={"segment": {"user_id": "u"}})
print("ready", flush=True)
index = 0
while True:
    index += 1
    log.info("Loop", extra={"segment": {"user_id": f"u{index}"}})
