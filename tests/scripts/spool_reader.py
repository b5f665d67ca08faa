"""Create a handler on a spool (nothing logged) and exit: its exit delivers what the spool holds.

Usage: ``spool_reader.py SPOOL [flush]``; with ``flush`` it calls ``flush()`` first and prints
its result and ``stats()`` as JSON.
"""

from __future__ import annotations

import json
import logging
import sys

from segment_logging import SegmentHandler

handler = SegmentHandler(spool=sys.argv[1], shutdown_timeout=5.0)
logging.getLogger("spooltest").addHandler(handler)
if sys.argv[2:] == ["flush"]:
    flushed = handler.flush(10)
    print(json.dumps({"flushed": flushed, "stats": handler.stats()}), flush=True)
