"""250 events queued with a long flush_interval, then a normal exit: ``exit_delivery.py SHUTDOWN_TIMEOUT``.

SEGMENT_HOST and SEGMENT_WRITE_KEY name the endpoint; the request timeout is ten times the
shutdown timeout, so that only shutdown_timeout can bound the exit.
"""

from __future__ import annotations

import logging
import sys

from segment_logging import SegmentHandler

wait = float(sys.argv[1])
handler = SegmentHandler(flush_interval=3600, shutdown_timeout=wait, timeout=wait * 10)
logging.getLogger().addHandler(handler)
for i in range(250):
    logging.getLogger("app").warning("Signup", extra={"segment": {"user_id": f"u{i}"}})
print("logged", flush=True)
