"""One of several processes logging a burst into a shared spool.

Usage: ``spool_burst.py SPOOL NAME COUNT GO``. Prints ``spooled K`` lines as its events reach the
disk (or Segment), ``done`` after the burst, then waits until the file GO exists and exits (its
exit delivers what is left, its own or a dead process's).
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from segment_logging import SegmentHandler

spool, name, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
handler = SegmentHandler(spool=spool, flush_interval=0.05, shutdown_timeout=10.0)
log = logging.getLogger("spooltest")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)
pause = threading.Event()
for index in range(count):
    log.info("Burst", extra={"segment": {"user_id": name, "properties": {"index": index}}})
    if index % 100 == 99:
        stats = handler.stats()
        # Logged and no longer in memory: on disk (or already delivered) by now.
        print(f"spooled {index + 1 - stats['queued'] - stats['dropped']}", flush=True)
        pause.wait(0.002)
print("done", flush=True)
while not os.path.exists(go):
    pause.wait(0.01)
