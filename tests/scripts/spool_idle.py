"""A process that logs one event through a spool, then nothing: it says ``idle`` once that event is
delivered and lives on until its stdin closes.

Usage: ``spool_idle.py SPOOL``.
"""

from __future__ import annotations

import logging
import sys

from segment_logging import SegmentHandler

handler = SegmentHandler(spool=sys.argv[1], shutdown_timeout=5.0)
log = logging.getLogger("spoolidle")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)
log.info("Idle", extra={"segment": {"user_id": "idle"}})
print("idle" if handler.flush(10) else f"not flushed: {handler.stats()}", flush=True)
sys.stdin.read()
