"""Log into a spool, fork children that log and deliver too, then deliver the parent's.

Usage: ``spool_fork.py SPOOL CHILDREN COUNT``. Each process logs COUNT events named after it.
"""

from __future__ import annotations

import logging
import os
import sys

from segment_logging import SegmentHandler

spool, children, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
handler = SegmentHandler(spool=spool, flush_interval=0.05, shutdown_timeout=5.0)
log = logging.getLogger("spooltest")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)


def burst(name: str) -> None:
    for index in range(count):
        log.info("Forked", extra={"segment": {"user_id": name, "properties": {"index": index}}})


burst("parent-before")  # in memory or on disk when the children are forked
pids = []
for number in range(children):
    pid = os.fork()
    if pid == 0:
        burst(f"child{number}")
        ok = handler.flush(10)
        handler.close()
        os._exit(0 if ok else 1)
    pids.append(pid)
burst("parent-after")
statuses = [os.waitpid(pid, 0)[1] for pid in pids]
print("children", statuses, "flushed", handler.flush(10), flush=True)
