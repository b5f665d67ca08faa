"""Throughput and stalls: log a burst in a tight loop, until the sink acknowledged all of it.

Run by ``run.py`` in a fresh process per library and run; prints one JSON line.
Time runs from just before the first call to when the sink acknowledged the
request that brought its count to ``--events`` (the sink reports that instant
on the machine-wide monotonic clock). Every call is timed on its own, for the
worst stall. Usage: ``python throughput.py --lib ours|peer --url URL [--events N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from typing import Any

from _common import Sink, emit_json
from _subjects import subject

if "--no-orjson" in sys.argv:
    sys.modules["orjson"] = None  # type: ignore[assignment]  # import orjson now raises ImportError


class GcPauses:
    """The garbage collector's passes during the burst: how many, and the longest, per generation."""

    def __init__(self) -> None:
        self.began = 0.0
        self.count = [0, 0, 0]
        self.longest = [0.0, 0.0, 0.0]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.began = time.perf_counter()
            return
        generation = info["generation"]
        self.count[generation] += 1
        self.longest[generation] = max(self.longest[generation], time.perf_counter() - self.began)


def orjson_active(lib: str) -> bool:
    """Whether our JSON encoding runs on orjson in this process (False for the others)."""
    if lib != "ours":
        return False
    from segment_logging import _json

    return getattr(_json, "orjson", None) is not None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=("ours", "peer", "null"), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--cold", action="store_true", help="no warm-up event before the burst")
    parser.add_argument("--option", action="append", default=[], help="NAME=VALUE, an option of ours")
    parser.add_argument("--no-orjson", action="store_true", help="the standard library's json only")
    parser.add_argument(
        "--at-defaults",
        action="store_true",
        help="the peer at its own defaults (a 10,000-event queue): count what it delivers, not wait for all",
    )
    args = parser.parse_args()
    sink = Sink(args.url)
    options = {name: json.loads(value) for name, value in (o.split("=", 1) for o in args.option)}
    if args.at_defaults and args.lib == "peer":
        from _subjects import PEER_DEFAULT_QUEUE

        options["max_queue_size"] = PEER_DEFAULT_QUEUE
    lib = subject(args.lib, args.url, **options)
    if not args.cold and args.lib != "null":
        # One event delivered first, so lazy set-up (ours: the HTTP client and its imports) is
        # not timed; run.py reports the cold figure too.
        lib.loop(-1, 0)
        lib.drain()
        sink.wait(1, args.timeout)
        sink.reset()
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    cpu0 = time.process_time()
    began = time.monotonic()
    durations = lib.timed_loop(0, args.events)
    loop_done = time.monotonic()
    gc.callbacks.remove(pauses)
    if args.lib == "null":
        seen = {"reached_at": loop_done, "messages": args.events, "unique_ids": args.events}
        seen |= {"requests": 0, "rejected": 0, "body_bytes": 0}
    elif args.at_defaults:
        lib.drain()  # whatever it kept is sent now; what it dropped never will be
        seen = sink.stats()
        seen["reached_at"] = time.monotonic()
    else:
        seen = sink.wait(args.events, args.timeout)
    # The whole process (caller and worker): CPU from the first call until the last event was accepted.
    cpu = time.process_time() - cpu0
    reached = seen.get("reached_at")
    ordered = sorted(durations)
    emit_json(
        {
            "lib": args.lib,
            "orjson": orjson_active(args.lib),
            "events": args.events,
            "cold": args.cold,
            "loop_seconds": loop_done - began,
            "seconds": None if reached is None else reached - began,
            "cpu_us_per_event": cpu / args.events * 1e6,
            "worst_ms": ordered[-1] / 1e6,
            "p999_ms": ordered[int(len(ordered) * 0.999)] / 1e6,
            "p99_ms": ordered[int(len(ordered) * 0.99)] / 1e6,
            "over_1ms": sum(1 for d in durations if d > 1_000_000),
            "gc_passes": pauses.count,
            "gc_longest_ms": [seconds * 1e3 for seconds in pauses.longest],
            "messages": seen["messages"],
            "unique_ids": seen["unique_ids"],
            "requests": seen["requests"],
            "rejected": seen["rejected"],
            "body_bytes": seen["body_bytes"],
            "stats": lib.stats(),
        }
    )
    os._exit(0)  # the sink has everything; skip both libraries' exit hooks


if __name__ == "__main__":
    main()
