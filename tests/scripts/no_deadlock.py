"""Root at DEBUG with the handler on it, httpx/httpcore at DEBUG, warnings captured; two threads
log while others call flush(), close() and dictConfig(). Prints the names of the threads still
stuck after 15 s, as a JSON list (empty when nothing deadlocked)."""

from __future__ import annotations

import json
import logging
import logging.config
import threading
import warnings
from typing import Any


class TagEverything(logging.Filter):
    """Makes every record an event, so httpx's or httpcore's records would be shipped if let in
    (segment_logging's own warnings: see test_library_warnings_are_never_shipped)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "segment", None) is None and record.name != "segment_logging":
            record.segment = {"anonymous_id": "tagged", "properties": {"logger": record.name}}
        return True


def config() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"tag": {"()": TagEverything}},
        "handlers": {
            "segment": {
                "class": "segment_logging.SegmentHandler",
                "filters": ["tag"],
                "flush_interval": 0.01,
                "max_batch_size": 20,
                "max_retry_time": 0.3,
                "timeout": 1,
                "shutdown_timeout": 0.5,
            },
            "stderr": {"class": "logging.StreamHandler", "level": "DEBUG"},
        },
        "loggers": {"httpx": {"level": "DEBUG"}, "httpcore": {"level": "DEBUG"}},
        "root": {"handlers": ["segment", "stderr"], "level": "DEBUG"},
    }


logging.config.dictConfig(config())
logging.captureWarnings(True)
first = logging.getLogger().handlers[0]
app = logging.getLogger("app")
stop = threading.Event()


def produce(worker: int) -> None:
    for i in range(3000):
        if stop.is_set():
            break
        app.info("AppEvent", extra={"segment": {"user_id": f"{worker}-{i}"}})
        if i == 100:
            warnings.warn("app warning", stacklevel=1)


producers = [threading.Thread(target=produce, args=(w,)) for w in range(2)]
for thread in producers:
    thread.start()
calls = [
    threading.Thread(target=first.flush, args=(2,), name="flush"),
    threading.Thread(target=logging.config.dictConfig, args=(config(),), name="dictConfig"),
    threading.Thread(target=first.close, name="close"),
]
for thread in calls:
    thread.start()
for thread in calls:
    thread.join(15)
stuck = [thread.name for thread in calls if thread.is_alive()]
stop.set()
for thread in producers:
    thread.join(15)
stuck += ["producer" for thread in producers if thread.is_alive()]
print(json.dumps(stuck), flush=True)
