"""Log events that wait for a long flush interval, say "ready", then wait to be stopped.

Usage: ``sigterm.py COUNT [own-handler]``. With ``own-handler`` the application
installs its own SIGTERM handler after configuring logging (it exits with 3). ``$HANDLERS``
handlers (default 1), each with a write key of its own, each queue every event.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from segment_logging import SegmentHandler

log = logging.getLogger("app")
log.setLevel(logging.INFO)
for n in range(int(os.environ.get("HANDLERS", "1"))):  # each one (a source of its own) queues every event
    log.addHandler(
        SegmentHandler(
            f"{os.environ['SEGMENT_WRITE_KEY']}-{n}" if n else None,
            flush_interval=3600,
            shutdown_timeout=float(os.environ.get("SHUTDOWN_TIMEOUT", "5")),
        )
    )

if sys.argv[2:] == ["own-handler"]:

    def stop(signum: int, frame: object) -> None:
        print("own handler ran", flush=True)
        sys.exit(3)

    signal.signal(signal.SIGTERM, stop)

for index in range(int(sys.argv[1])):
    log.info("BeforeSigterm", extra={"segment": {"user_id": f"u{index}"}})
print("ready", flush=True)
threading.Event().wait(30)
print("not stopped", flush=True)
