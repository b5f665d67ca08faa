"""A handler configured for the "real" Segment (``redirected_fork.py REAL_URL``), redirected to the
fake one (SEGMENT_HOST, SEGMENT_WRITE_KEY) as the pytest plugin's ``segment_events`` does; then a
fork. Exits 0 when the child's flush() delivered."""

from __future__ import annotations

import logging
import os
import sys

from segment_logging import SegmentHandler

handler = SegmentHandler("real-key", host=sys.argv[1], shutdown_timeout=5, timeout=5)
log = logging.getLogger("app")
log.addHandler(handler)
log.setLevel(logging.INFO)
restore = handler._queue.redirect(os.environ["SEGMENT_HOST"], os.environ["SEGMENT_WRITE_KEY"])
log.info("Parent", extra={"segment": {"user_id": "p"}})
assert handler.flush(5)
pid = os.fork()
if pid == 0:
    log.info("Child", extra={"segment": {"user_id": "c"}})
    os._exit(0 if handler.flush(5) else 1)
_, status = os.waitpid(pid, 0)
restore()
handler.close()
sys.exit(os.waitstatus_to_exitcode(status))
