"""``segment-logging drain PATH``: send what a spool holds, then exit.

For a cron job, a Kubernetes ``preStop`` hook or a sidecar: it sends the rows of
one source (the write key given, else ``$SEGMENT_WRITE_KEY``) to Segment, prints
what it sent and what is left, and exits with status 1 when something is left.
"""

from __future__ import annotations

import argparse
import logging
import os

SUMMARY = "send what a spool file holds to Segment and exit (status 1 when something is left)"
DESCRIPTION = (
    (__doc__ or SUMMARY)
    + """
Examples:

  segment-logging drain /var/lib/myapp/segment.db
  segment-logging drain /var/lib/myapp/segment.db --write-key "$KEY" --timeout 120
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The spool's path, and where and how long to send."""
    parser.add_argument("path", help="the spool file (the handler's spool= option)")
    parser.add_argument("--write-key", help="the source's write key (default: $SEGMENT_WRITE_KEY)")
    parser.add_argument("--host", help="Segment's API host (default: $SEGMENT_HOST, else api.segment.io)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to spend sending at most (default: 60)"
    )


def run(args: argparse.Namespace) -> int:
    """Send the spool's rows of the source; 0 when none is left."""
    from ._handler import SegmentHandler  # imported when the command runs: the command starts fast

    if not os.path.exists(args.path):
        print(f"segment-logging drain: no spool at {args.path}")
        return 1
    handler = SegmentHandler(
        args.write_key, host=args.host, spool=args.path, shutdown_timeout=min(args.timeout, 10.0)
    )
    logging.getLogger("segment_logging.drain").addHandler(
        handler
    )  # never logged to: kept alive, closed below
    try:
        handler.flush(args.timeout)
    finally:
        handler.close()
    stats = handler.stats()
    left = stats["spooled"]
    print(f"sent {stats['sent']}, failed {stats['failed']}, left {left} in {args.path}")
    return 1 if left or stats["failed"] else 0
