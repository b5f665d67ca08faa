"""Events logged at exit: from an atexit hook registered before the handler, and through a MemoryHandler;
and ``atexit.register(handler.flush)``. Usage: ``exit_hooks.py``. Every event must arrive, without a
warning or an error.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers

log = logging.getLogger("app")
log.setLevel(logging.INFO)


@atexit.register
def last_words() -> None:  # registered before the handler exists: runs after the library's first hook
    log.info("FromAtexit", extra={"segment": {"user_id": "u"}})


from segment_logging import SegmentHandler  # noqa: E402 - after the hook, on purpose

segment = SegmentHandler(flush_interval=3600, shutdown_timeout=5)
buffered = logging.getLogger("buffered")
buffered.setLevel(logging.INFO)
buffered.propagate = False
# The MemoryHandler is older than the SegmentHandler: logging.shutdown() closes the
# SegmentHandler first, then flushes the MemoryHandler into it.
memory = logging.handlers.MemoryHandler(1000, target=None)
buffered.addHandler(memory)
log.addHandler(segment)
memory.setTarget(segment)
atexit.register(segment.flush)  # called by atexit with no caller frame above it

for index in range(50):
    log.info("Direct", extra={"segment": {"user_id": f"d{index}"}})
    buffered.info("Buffered", extra={"segment": {"user_id": f"b{index}"}})
