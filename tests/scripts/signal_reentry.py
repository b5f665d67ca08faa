"""A signal handler that logs events and flushes, firing every millisecond while the main thread logs.

Each signal lands somewhere inside the main thread's own logging calls, so
sooner or later inside the library's locks. The script must finish (the test's
timeout catches a deadlock) and every event must be sent.
Usage: ``signal_reentry.py ITERATIONS``.
"""

from __future__ import annotations

import json
import logging
import signal

from segment_logging import SegmentHandler

handler = SegmentHandler(flush_interval=0.05, shutdown_timeout=5)
log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.addHandler(handler)
fired = 0


def on_alarm(signum: int, frame: object) -> None:
    global fired
    fired += 1
    log.info("FromSignal", extra={"segment": {"user_id": f"s{fired}"}})
    if fired % 10 == 0:
        handler.flush(timeout=2)


def main() -> None:
    import sys

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    for index in range(int(sys.argv[1])):
        log.info("FromMain", extra={"segment": {"user_id": f"m{index}"}})
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    flushed = handler.flush(timeout=10)
    print(json.dumps({"fired": fired, "flushed": flushed, "stats": handler.stats()}), flush=True)


if __name__ == "__main__":
    main()
