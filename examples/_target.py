"""Where the examples send their events: your Segment source, or a fake one in the script.

With SEGMENT_WRITE_KEY set, events go to your source (SEGMENT_HOST picks the
region: https://events.eu1.segmentapis.com for EU workspaces). Without it, a
fake Segment (segment_logging.testing.SegmentServer) starts on 127.0.0.1 and the
examples print what it received.
"""

from __future__ import annotations

import json
import os

from segment_logging.testing import SegmentServer

SHOWN_FIELDS = ("type", "event", "userId", "properties", "traits")


def segment_target() -> tuple[str, str, SegmentServer | None]:
    """(write key, host, the fake server or None when sending to Segment)."""
    write_key = os.environ.get("SEGMENT_WRITE_KEY")
    if write_key:
        return write_key, os.environ.get("SEGMENT_HOST", "https://api.segment.io"), None
    fake = SegmentServer().start()
    return fake.write_key, fake.url, fake


def show_received(
    fake: SegmentServer | None, heading: str = "The fake Segment received", detail: str = ""
) -> None:
    """Print what the fake Segment accepted (a few fields of each message), then stop it."""
    if fake is None:
        print("Sent to Segment; check your source's debugger.")
        return
    print(f"{heading} {len(fake.messages)} events{detail}:")
    for message in fake.messages:
        print(" ", json.dumps({k: v for k, v in message.items() if k in SHOWN_FIELDS}))
    fake.stop()
