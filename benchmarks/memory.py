"""Memory: resident memory held by a backlog of queued events while Segment is unreachable.

Run by ``run.py`` in a fresh process per library and run; prints one JSON line.
The host is a loopback port that refuses connections, so nothing is delivered
and everything logged stays queued (ours retries its first batch for
``max_retry_time``, 60 s; the peer its first 100 events ten times). RSS is read
from /proc/self/statm once it has settled: before the first event, after the
first tenth of the events and after all of them. For ours, "settled" also
waits for the worker to have encoded the backlog (its intake empty), which is
the state the queue stays in. With ``--paced`` the events come in blocks of
1,000, each encoded before the next is logged, so the unencoded backlog never
grows: what remains is what the encoded queue itself holds.
Usage: ``python memory.py --lib ours|peer [--events N] [--paced]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

from _common import closed_port, emit_json, rss_bytes, settle
from _subjects import subject


def settled_intake(lib: object, every: float = 0.02) -> None:
    deadline = time.monotonic() + 60
    while lib.intake() and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(every)


def settled_rss(lib: object) -> int:
    settled_intake(lib)
    gc.collect()
    return settle(rss_bytes, every=0.05, stable_for=4, timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=("ours", "peer"), required=True)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--paced", action="store_true", help="log in blocks of 1,000, each encoded first")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{closed_port()}"
    options = {"shutdown_timeout": 0} if args.lib == "ours" else {}
    lib = subject(args.lib, url, **options)
    before = settled_rss(lib)
    tenth = args.events // 10
    lib.loop(0, tenth)
    at_tenth = settled_rss(lib)
    if args.paced:
        for start in range(tenth, args.events, 1_000):
            lib.loop(start, min(start + 1_000, args.events))
            settled_intake(lib, every=0.001)
    else:
        lib.loop(tenth, args.events)
    after = settled_rss(lib)
    emit_json(
        {
            "lib": args.lib,
            "events": args.events,
            "paced": args.paced,
            "rss_before": before,
            "rss_tenth": at_tenth,
            "rss_after": after,
            "delta_bytes": after - before,
            "per_event_bytes": (after - before) / args.events,
            "slope_bytes": (after - at_tenth) / (args.events - tenth),
            "stats": lib.stats(),
        }
    )
    os._exit(0)  # nothing can be delivered: do not wait on either library's exit path


if __name__ == "__main__":
    main()
