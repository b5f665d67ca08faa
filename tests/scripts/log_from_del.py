"""An object whose ``__del__`` logs an event is collected at interpreter exit, after logging shut down.

Usage: ``log_from_del.py``. The event cannot be sent any more: that must be said in one line, with no
"--- Logging error ---" traceback.
"""

from __future__ import annotations

import logging

from segment_logging import SegmentHandler

log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.addHandler(SegmentHandler())


class Late:
    def __del__(self) -> None:
        log.info("FromDel", extra={"segment": {"user_id": "u"}})


late = Late()
