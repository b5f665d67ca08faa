"""Caller cost: what one logging call costs the thread that makes it, three ways side by side.

Run by ``run.py`` in one process, so the three subjects share every source of
noise: ``null`` (the call with a ``logging.NullHandler``, the logging module's
floor), ``ours`` (with SegmentHandler at its defaults, sending to the loopback
sink) and ``peer`` (``segment.analytics.Client.track()`` with the same event,
to the same sink). Each round times a block of ``--calls`` calls of each, in
an order that rotates from round to round; before a block the garbage
collector runs (it stays enabled during it, as in an application), and after
it the subject's background thread is drained outside the timed region. The
first round is a warm-up and is not reported. Per call, wall time
(``perf_counter``, what timeit reports) and the calling thread's own CPU time
(``thread_time``, which leaves out time spent waiting for the GIL while a
worker thread runs), and the block's wall time until its background thread
had sent everything (for ours: the calls plus the worker's catch-up; for the
peer it includes waits of up to its 0.5 s upload interval). Prints one JSON line.

Usage: ``python caller_cost.py --url URL [--calls N] [--rounds R] [--peer-site DIR]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

from _common import Sink, emit_json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--peer-site", default="", help="site-packages holding segment.analytics")
    args = parser.parse_args()
    if args.peer_site and args.peer_site not in sys.path:
        sys.path.append(args.peer_site)  # after ours: shared dependencies resolve to our environment's

    from _subjects import NullFloor, Ours, Peer

    ours = Ours(args.url)
    subjects: list[NullFloor | Ours | Peer] = [NullFloor(), ours, Peer(args.url)]
    results: dict[str, dict[str, list[float]]] = {
        s.name: {"wall_us": [], "cpu_us": [], "until_sent_us": []} for s in subjects
    }
    start = 0
    for round_ in range(args.rounds + 1):
        shift = round_ % len(subjects)
        for lib in subjects[shift:] + subjects[:shift]:
            gc.collect()
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            lib.loop(start, start + args.calls)
            wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
            lib.drain()
            drained = time.perf_counter() - wall0
            start += args.calls
            if round_:  # round 0 warms up
                results[lib.name]["wall_us"].append(wall / args.calls * 1e6)
                results[lib.name]["cpu_us"].append(cpu / args.calls * 1e6)
                results[lib.name]["until_sent_us"].append(drained / args.calls * 1e6)
    delivered = Sink(args.url).wait(2 * start // 3, timeout=30)
    emit_json(
        {
            "calls": args.calls,
            "rounds": args.rounds,
            "results": results,
            "sent_by_ours": ours.stats(),
            "sink_messages": delivered["messages"],
            "sink_unique_ids": delivered["unique_ids"],
        }
    )
    os._exit(0)


if __name__ == "__main__":
    main()
