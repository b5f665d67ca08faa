"""Log events into a spool while Segment is unreachable, say "spooled", then end as told.

Usage: ``spool_writer.py SPOOL COUNT ENDING`` with ENDING one of ``sigkill`` and ``sigterm``
(wait to be killed), ``os_exit``, ``exception`` or ``exit``. SEGMENT_HOST points at a
closed port. Prints ``spooled`` once ``stats()["spooled"]`` reaches COUNT.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from segment_logging import SegmentHandler
from segment_logging._clock import monotonic

spool, count, ending = sys.argv[1], int(sys.argv[2]), sys.argv[3]
handler = SegmentHandler(spool=spool, flush_interval=0.05, shutdown_timeout=1.0)
log = logging.getLogger("spooltest")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)

for index in range(count):
    log.info("Spooled", extra={"segment": {"user_id": f"u{index}", "properties": {"index": index}}})
# On disk within about a flush_interval: the worker stores what it drains, even between retries.
started = monotonic()
pause = threading.Event()
while handler.stats()["spooled"] < count and monotonic() - started < 10:
    pause.wait(0.01)
print("spooled" if handler.stats()["spooled"] == count else f"only {handler.stats()}", flush=True)
print(f"took {monotonic() - started:.3f}", flush=True)

if ending == "os_exit":
    os._exit(0)
if ending == "exception":
    raise RuntimeError("an uncaught exception")
if ending in ("sigkill", "sigterm"):
    threading.Event().wait(30)
    print("not stopped", flush=True)
