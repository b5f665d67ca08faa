"""Events through a QueueHandler with a formatter and a QueueListener the application never stops.

Usage: ``queue_chain.py COUNT``. Every event must arrive, named as logged (no formatter prefix, no
traceback), though the listener's thread dies with the process.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys

from segment_logging import SegmentHandler

records: queue.Queue[logging.LogRecord] = queue.Queue()
segment = SegmentHandler(flush_interval=3600, shutdown_timeout=5)
listener = logging.handlers.QueueListener(records, segment)
queue_handler = logging.handlers.QueueHandler(records)
queue_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.addHandler(queue_handler)
listener.start()

log.info("Server started")
for index in range(int(sys.argv[1])):
    log.info("Signup %s", "web", extra={"segment": {"user_id": f"u{index}"}})
try:
    raise RuntimeError("card declined")
except RuntimeError:
    log.exception("Checkout failed", extra={"segment": {"user_id": "u0"}})
# No listener.stop(): the application forgot it.
