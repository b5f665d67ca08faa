"""``segment-logging drain PATH``: send what a spool holds, then exit.

For a cron job, a Kubernetes ``preStop`` hook or a sidecar: it sends the rows of
one source (the write key given, else ``$SEGMENT_WRITE_KEY``) to Segment, prints
what it sent and what is left, and exits with status 1 when something is left.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sqlite3
import sys
from typing import TYPE_CHECKING

from ._spool import source_token

if TYPE_CHECKING:
    from ._handler import SegmentHandler

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
        "--timeout", type=_seconds, default=60.0, help="seconds to spend sending at most (default: 60)"
    )


def _seconds(text: str) -> float:
    """``--timeout``: a finite number of seconds, at least 0 (argparse names the option)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, at least 0; got {text!r}")
    return seconds


def run(args: argparse.Namespace) -> int:
    """Send the spool's rows of the source within ``--timeout``: 0 when the file is left empty,
    1 when something is left (or failed), 2 when the arguments cannot work."""
    stopped_by: list[str] = []
    handlers: list[SegmentHandler] = []

    def stop(signum: int, frame: object) -> None:
        # A sidecar's SIGTERM, or Ctrl-C: end now; the rest stays in the file, and the summary says so.
        stopped_by.append(signal.Signals(signum).name)
        for handler in handlers:
            handler._queue.cut_short()

    # From the start to the summary line: a signal at any point ends the command the same way.
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _drain(args, stopped_by, handlers)
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


def _drain(args: argparse.Namespace, stopped_by: list[str], handlers: list[SegmentHandler]) -> int:
    from ._handler import SegmentHandler  # imported when the command runs: the command starts fast

    path = os.path.abspath(args.path)
    if os.path.isdir(path):
        print(f"segment-logging drain: {path} is a directory, not a spool file", file=sys.stderr)
        return 2
    if not os.path.exists(path):
        print(f"segment-logging drain: no spool at {path}")
        return 1
    # As the handler reads it (a key's spaces are part of it: the rows' source is derived from it).
    write_key = args.write_key if args.write_key is not None else os.environ.get("SEGMENT_WRITE_KEY", "")
    if args.write_key is not None and not args.write_key.strip():
        print("segment-logging drain: --write-key is empty", file=sys.stderr)
        return 2
    if not write_key.strip():
        print(
            "segment-logging drain: no write key: pass --write-key or set $SEGMENT_WRITE_KEY", file=sys.stderr
        )
        return 2
    if args.host is not None and not args.host.strip():
        # Not the default host: an unset variable in `--host "$HOST"` must not send to Segment itself.
        print("segment-logging drain: --host is empty", file=sys.stderr)
        return 2
    source = source_token(write_key)
    try:
        counts(path, source)
    except sqlite3.Error as exc:  # not a database: left as it is, for a person to look at
        print(f"segment-logging drain: {path} is not a readable spool ({exc}); nothing sent", file=sys.stderr)
        return 1
    # close() delivers what the file holds within shutdown_timeout, the whole --timeout.
    try:
        handler = SegmentHandler(write_key, host=args.host, spool=path, shutdown_timeout=args.timeout)
    except ValueError as exc:  # a --host that is not a URL (the message masks any password)
        print(f"segment-logging drain: {exc}", file=sys.stderr)
        return 2
    handlers.append(handler)
    if stopped_by:
        handler._queue.cut_short()  # told to stop while the handler was being made
    handler.close()
    stats = handler.stats()
    try:
        mine, others = counts(path, source)
    except sqlite3.Error:
        mine, others = stats["spooled"], 0
    print(
        (f"stopped by {stopped_by[0]}: " if stopped_by else "")
        + f"sent {stats['sent']}, failed {stats['failed']}, left {mine} in {path}"
        + (f"; {others} events of other sources (other write keys) are left as they are" if others else "")
    )
    return 1 if mine or others or stats["failed"] else 0


def counts(path: str, source: str) -> tuple[int, int]:
    """Events in the spool file at ``path``: of ``source``, and of other sources.

    Raises:
        sqlite3.Error: the file is not a readable spool.
    """
    with contextlib.closing(sqlite3.connect(path)) as db:
        mine, others = db.execute(
            "SELECT COALESCE(SUM(CASE WHEN source = ? THEN events END), 0), "
            "COALESCE(SUM(CASE WHEN source != ? THEN events END), 0) FROM batches",
            (source, source),
        ).fetchone()
    return int(mine), int(others)
