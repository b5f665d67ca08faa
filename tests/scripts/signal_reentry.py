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
import sys

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


def traced() -> bool:
    """Whether a tracer (coverage, a debugger) is on: it makes each alarm's logging call slower."""
    monitoring = getattr(sys, "monitoring", None)
    return sys.gettrace() is not None or (
        monitoring is not None and monitoring.get_tool(monitoring.COVERAGE_ID) is not None
    )


def main() -> None:
    signal.signal(signal.SIGALRM, on_alarm)
    # Under a tracer a handler's call outlasts a millisecond, and alarms that fire back to back
    # would starve the main thread (a livelock of the test's making): fire less often then.
    interval = 0.02 if traced() else 0.001
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
    for index in range(int(sys.argv[1])):
        log.info("FromMain", extra={"segment": {"user_id": f"m{index}"}})
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    flushed = handler.flush(timeout=10)
    print(json.dumps({"fired": fired, "flushed": flushed, "stats": handler.stats()}), flush=True)


if __name__ == "__main__":
    main()
