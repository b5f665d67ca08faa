"""logging.shutdown() on one thread while dictConfig() runs on another, Segment hanging. Prints the
names of the threads still running after about 1.5 s, or ``none``."""

from __future__ import annotations

import logging
import logging.config
import os
import sys
import threading
import time
from types import CodeType
from typing import Any


def config() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "segment": {
                "class": "segment_logging.SegmentHandler",
                "shutdown_timeout": 0.5,
                "flush_interval": 0.01,
            }
        },
        "root": {"handlers": ["segment"], "level": "INFO"},
    }


logging.config.dictConfig(config())
logging.getLogger("app").info("Held", extra={"segment": {"user_id": "u"}})
shutdown = threading.Thread(target=logging.shutdown, name="shutdown")
shutdown.start()


def waiting_in_shutdown() -> bool:
    """logging.shutdown() is on the thread's stack, and the thread is blocked in threading."""
    frame = sys._current_frames().get(shutdown.ident or 0)
    codes: list[CodeType] = []
    while frame is not None:
        codes.append(frame.f_code)
        frame = frame.f_back
    return logging.shutdown.__code__ in codes and codes[0].co_filename == threading.__file__


give_up = time.monotonic() + 3
while not waiting_in_shutdown() and time.monotonic() < give_up:
    time.sleep(0.005)  # sleep-ok: nothing signals that another thread is blocked in close()
reconfig = threading.Thread(target=logging.config.dictConfig, args=(config(),), name="dictConfig")
reconfig.start()
deadline = time.monotonic() + 1.5  # both finish in about shutdown_timeout unless deadlocked
for thread in (shutdown, reconfig):
    thread.join(max(0.0, deadline - time.monotonic()))
print(" ".join(t.name for t in (shutdown, reconfig) if t.is_alive()) or "none", flush=True)
os._exit(0)  # a deadlocked logging.shutdown() would hang the exit too
