"""The root logger's only handler is a MemoryHandler in front of SegmentHandler; an event is logged
after close(). The library's report must reach stderr, not the buffer. Usage: ``memory_handler_only.py``."""

from __future__ import annotations

import logging
import logging.handlers

from segment_logging import SegmentHandler

segment = SegmentHandler(flush_interval=3600, shutdown_timeout=5)
memory = logging.handlers.MemoryHandler(1000, target=segment)
root = logging.getLogger()
root.setLevel(logging.INFO)
root.addHandler(memory)
segment.close()
logging.getLogger("app").info("Late", extra={"segment": {"user_id": "u"}})
memory.flush()
