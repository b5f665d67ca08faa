"""A handler whose spool cannot be used; prints flush()'s result and stats as JSON.

Usage: ``spool_bad_path.py SPOOL COUNT [FILE_SIZE_LIMIT]``. Run as another user when the test runs as
root, so that a read-only directory is read-only for it. With ``FILE_SIZE_LIMIT`` (bytes), no file may
grow past it (``RLIMIT_FSIZE``): writes fail as on a full disk.
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import sys

from segment_logging import SegmentHandler

if len(sys.argv) > 3:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
    limit = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
handler = SegmentHandler(spool=sys.argv[1], flush_interval=0.05)
log = logging.getLogger("spooltest")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)
for index in range(int(sys.argv[2])):
    log.info("BadPath", extra={"segment": {"user_id": "u", "properties": {"index": index, "pad": "x" * 200}}})
flushed = handler.flush(20)
print(json.dumps({"flushed": flushed, "stats": handler.stats()}), flush=True)
handler.close()
