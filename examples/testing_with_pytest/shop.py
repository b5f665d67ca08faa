"""A small shop whose logging is configured at import, as in a real project's settings.

The handler sends to Segment with $SEGMENT_WRITE_KEY. In tests, conftest.py sets
SEGMENT_SEND=0, so importing this module needs no key and sends nothing, until a
test asks for the events with the ``segment_events`` fixture.
"""

from __future__ import annotations

import logging

from segment_logging import SegmentHandler

log = logging.getLogger("shop")
log.setLevel(logging.INFO)
log.addHandler(SegmentHandler())


def sign_up(user_id: str, email: str, plan: str) -> None:
    """Create the account (not shown), then tell Segment who signed up and on which plan."""
    segment = {"type": "identify", "user_id": user_id, "traits": {"email": email, "plan": plan}}
    log.info("Identify", extra={"segment": segment})
    log.info("Signup", extra={"segment": {"user_id": user_id, "properties": {"plan": plan}}})


def upgrade(user_id: str, plan: str, *, seats: int) -> None:
    """Move an account to another plan; a free plan is not an upgrade and sends nothing."""
    if plan == "free":
        return
    log.info("Upgraded", extra={"segment": True, "user_id": user_id, "plan": plan, "seats": seats})
