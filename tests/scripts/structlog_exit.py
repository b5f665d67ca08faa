"""A structlog app that configures SegmentProcessor, logs and exits without flushing.

SEGMENT_HOST and SEGMENT_WRITE_KEY point the processor at the test's fake Segment.
"""

from __future__ import annotations

import structlog

from segment_logging.structlog import SegmentProcessor

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        SegmentProcessor(flush_interval=60),
        structlog.processors.JSONRenderer(),
    ]
)
log = structlog.get_logger()
for number in range(3):
    log.info("Signup", segment={"user_id": f"u{number}"})
log.bind(user_id="u9").info("Upgraded", plan="team", segment=True)
