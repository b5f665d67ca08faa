"""segment-logging quickstart: Segment events from ordinary logging calls.

Run it:  python examples/quickstart.py

With SEGMENT_WRITE_KEY set, the events go to your Segment source (set SEGMENT_HOST
for an EU workspace). Without it, they go to a fake Segment running inside this
script, and what it received is printed at exit.
"""

from __future__ import annotations

import atexit
import logging
import logging.config

from _target import segment_target, show_received

write_key, host, fake = segment_target()


# atexit runs hooks last-registered-first. segment-logging registers its own hook
# (deliver what is queued) when it is first configured, below, so this one,
# registered earlier, runs after delivery.
atexit.register(show_received, fake)  # prints what the fake Segment got

logging.config.dictConfig(
    {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "console": {"class": "logging.StreamHandler", "level": "INFO"},
            "segment": {
                "class": "segment_logging.SegmentHandler",
                "level": "INFO",
                "write_key": write_key,
                "host": host,
            },
        },
        "root": {"level": "INFO", "handlers": ["console", "segment"]},
    }
)

log = logging.getLogger("shop")

# Ordinary log lines stay log lines; only records with `segment` become events.
log.info("Server started")

log.info(
    "Identify",
    extra={"segment": {"type": "identify", "user_id": "u1", "traits": {"email": "ada@example.com"}}},
)
log.info("Signup", extra={"segment": {"user_id": "u1", "properties": {"plan": "pro", "seats": 3}}})
log.info("Signup", extra={"segment": {"user_id": "u2", "properties": {"plan": "free"}}})

# Nothing to flush by hand: queued events are delivered when the interpreter exits.
