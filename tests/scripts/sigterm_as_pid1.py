"""Run as PID 1 of a PID namespace (``tests/test_lifecycle.py`` starts it under ``unshare``), as in a
container without an init: SIGTERM's default action does nothing there, so the process lives on
after the library's SIGTERM handler delivered and re-raised. What it logs afterwards must be
delivered as before, not failed at once for the exit deadline that SIGTERM set.

Prints ``alive PID`` after the signal, then ``flushed: True|False`` and the handler's stats as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import signal

from segment_logging import SegmentHandler

handler = SegmentHandler(shutdown_timeout=0)  # the deadline SIGTERM sets has passed at once
log = logging.getLogger("pid1")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)
log.info("Before", extra={"segment": {"user_id": "u"}})
handler.flush(10)
signal.raise_signal(signal.SIGTERM)  # the library's handler; the default action, ignored by PID 1
print("alive", os.getpid(), flush=True)
for n in range(10):
    log.info("After", extra={"segment": {"user_id": "u", "properties": {"n": n}}})
print("flushed:", handler.flush(10), flush=True)
print(json.dumps(handler.stats()), flush=True)
