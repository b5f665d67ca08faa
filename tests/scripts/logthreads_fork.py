"""With ``logging.logThreads = False``, a forked child's events are sent and httpx's lines stay quiet.

Prints one JSON line per process. Usage: ``logthreads_fork.py``.
"""

from __future__ import annotations

import json
import logging
import os

from segment_logging import SegmentHandler

logging.logThreads = False
handler = SegmentHandler(flush_interval=3600, shutdown_timeout=5)
log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.addHandler(handler)
http_lines: list[str] = []


class Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        http_lines.append(record.getMessage())


logging.getLogger("httpx").addHandler(Collect())
logging.getLogger("httpx").setLevel(logging.DEBUG)

pid = os.fork()
who = "child" if pid == 0 else "parent"
for index in range(5):
    log.info("Event", extra={"segment": {"user_id": f"{who}{index}"}})
flushed = handler.flush(5)
line = json.dumps({"who": who, "flushed": flushed, "stats": handler.stats(), "http": http_lines}) + "\n"
os.write(1, line.encode())  # one write of a short line: parent's and child's lines never mix
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
