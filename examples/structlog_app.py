"""segment-logging with structlog: Segment events from structlog calls, through SegmentProcessor.

Run it:  python examples/structlog_app.py

With SEGMENT_WRITE_KEY set, the events go to your Segment source (set SEGMENT_HOST
for an EU workspace). Without it, they go to a fake Segment running inside this
script, and what it received is printed at exit.
"""

from __future__ import annotations

import atexit

import structlog
from _target import segment_target, show_received

from segment_logging.structlog import SegmentProcessor

write_key, host, fake = segment_target()


# atexit runs hooks last-registered-first. segment-logging registers its own hook
# (deliver what is queued) when the processor is created, below, so this one,
# registered earlier, runs after delivery.
atexit.register(show_received, fake)  # prints what the fake Segment got

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        SegmentProcessor(write_key, host=host),  # after the fields it needs, before the renderer
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.processors.JSONRenderer(),
    ]
)
log = structlog.get_logger()

# Ordinary log lines stay log lines; only events with `segment` become Segment events.
log.info("Server started", port=8000)

# A mapping of snake_case fields; the track's event name is structlog's event.
log.info("Signup", segment={"user_id": "u1", "properties": {"plan": "pro", "seats": 3}})
log.info("Identify", segment={"type": "identify", "user_id": "u1", "traits": {"email": "ada@example.com"}})

# segment=True: the user id and properties come from the event dict itself
# (bound values, contextvars and the call's keywords), minus structlog's bookkeeping.
structlog.contextvars.bind_contextvars(request_id="r-17")
log.bind(user_id="u1").info("Upgraded", plan="team", segment=True)
structlog.contextvars.clear_contextvars()

# Nothing to flush by hand: queued events are delivered when the interpreter exits.
