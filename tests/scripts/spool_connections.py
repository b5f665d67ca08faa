"""Use spools every way a handler does (delivering, a corrupt file moved aside, a path that falls
back to memory), close the handlers, then collect garbage: Python 3.13+ warns about each SQLite
connection left unclosed, and ``tests/test_spool.py`` checks that none is.

Usage: ``spool_connections.py DIRECTORY``; prints ``collected`` at the end.
"""

from __future__ import annotations

import gc
import logging
import os
import sys

from segment_logging import SegmentHandler

directory = sys.argv[1]
log = logging.getLogger("spoolconnections")
log.setLevel(logging.INFO)
log.propagate = False


def use(path: str) -> None:
    handler = SegmentHandler(spool=path)
    log.addHandler(handler)
    log.info("Connections", extra={"segment": {"user_id": "u1"}})
    handler.flush(10)
    log.removeHandler(handler)
    handler.close()


use(os.path.join(directory, "good.db"))
corrupt = os.path.join(directory, "corrupt.db")
with open(corrupt, "wb") as file:
    file.write(b"not a database, " * 512)
use(corrupt)
use(directory)  # a directory, not a file: memory only
gc.collect()
print("collected", flush=True)
