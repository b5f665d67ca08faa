"""A handler whose spool cannot be used (the path is given); prints flush()'s result and stats as JSON.

Usage: ``spool_bad_path.py SPOOL COUNT``. Run as another user when the test runs as root, so that a
read-only directory is read-only for it.
"""

from __future__ import annotations

import json
import logging
import sys

from segment_logging import SegmentHandler

handler = SegmentHandler(spool=sys.argv[1], flush_interval=0.05)
log = logging.getLogger("spooltest")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)
for index in range(int(sys.argv[2])):
    log.info("BadPath", extra={"segment": {"user_id": "u", "properties": {"index": index}}})
flushed = handler.flush(10)
print(json.dumps({"flushed": flushed, "stats": handler.stats()}), flush=True)
handler.close()
