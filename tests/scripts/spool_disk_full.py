"""A spool whose file may not grow past a few kilobytes (RLIMIT_FSIZE): writes fail as on a full disk.

Usage: ``spool_disk_full.py SPOOL COUNT``. Prints the handler's stats as JSON after ``flush()``.
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import sys

from segment_logging import SegmentHandler

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))
handler = SegmentHandler(spool=sys.argv[1], flush_interval=0.05)
log = logging.getLogger("spooltest")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)
for index in range(int(sys.argv[2])):
    log.info(
        "DiskFull", extra={"segment": {"user_id": "u", "properties": {"index": index, "pad": "x" * 200}}}
    )
flushed = handler.flush(20)
print(json.dumps({"flushed": flushed, "stats": handler.stats()}), flush=True)
handler.close()
