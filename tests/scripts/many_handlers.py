"""Idle handlers cost no thread; a handler the application dropped lets its thread end.

Prints one JSON line: thread counts at each step. Usage: ``many_handlers.py COUNT``.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
import threading

from segment_logging import SegmentHandler


def workers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "segment-logging"]


count = int(sys.argv[1])
idle = [SegmentHandler(shutdown_timeout=1) for _ in range(count)]
after_idle = len(workers())

log = logging.getLogger("app")
log.setLevel(logging.INFO)
for index in range(10):
    used = SegmentHandler(shutdown_timeout=1)
    log.addHandler(used)
    log.info("Used", extra={"segment": {"user_id": f"u{index}"}})
    assert used.flush(5)
    log.removeHandler(used)
    del used
gc.collect()
for thread in workers():
    thread.join(5)
print(json.dumps({"after_idle": after_idle, "after_dropped": len(workers())}), flush=True)
