"""Log events that wait for a long flush interval, say "ready", then wait to be stopped.

Usage: ``sigterm.py COUNT [own-handler]``. With ``own-handler`` the application
installs its own SIGTERM handler after configuring logging (it exits with 3).
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
log.addHandler(
    SegmentHandler(flush_interval=3600, shutdown_timeout=float(os.environ.get("SHUTDOWN_TIMEOUT", "5")))
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
