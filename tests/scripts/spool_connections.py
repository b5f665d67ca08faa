"""Use spools every way a handler does (delivering, a corrupt file moved aside, a path that falls
back to memory), close the handlers, drop one without closing it, then collect garbage: Python
3.13+ warns about each SQLite connection left unclosed, and ``tests/test_spool.py`` checks that
none is, and that the dropped handler's worker thread ended.

Usage: ``spool_connections.py DIRECTORY``; prints ``workers left: N`` at the end.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading

from segment_logging import SegmentHandler

directory = sys.argv[1]
log = logging.getLogger("spoolconnections")
log.setLevel(logging.INFO)
log.propagate = False


def use(path: str, *, close: bool = True) -> None:
    handler = SegmentHandler(spool=path)
    log.addHandler(handler)
    log.info("Connections", extra={"segment": {"user_id": "u1"}})
    handler.flush(10)
    log.removeHandler(handler)
    if close:
        handler.close()


use(os.path.join(directory, "good.db"))
corrupt = os.path.join(directory, "corrupt.db")
with open(corrupt, "wb") as file:
    file.write(b"not a database, " * 512)
use(corrupt)
use(directory)  # a directory, not a file: memory only
use(os.path.join(directory, "dropped.db"), close=False)  # its worker waits to look at the spool again
gc.collect()
workers = [thread for thread in threading.enumerate() if thread.name == "segment-logging"]
for worker in workers:
    worker.join(10)
gc.collect()
print(f"workers left: {sum(worker.is_alive() for worker in workers)}", flush=True)
