"""Per-call cost of SegmentProcessor in a realistic structlog chain, next to the same chain without it.

Run it:  python benchmarks/structlog_cost.py [--calls 20000] [--runs 7]

Both chains are merge_contextvars, add_log_level, TimeStamper(fmt="iso") and
JSONRenderer, writing to /dev/null; one has SegmentProcessor between
add_log_level and TimeStamper, pointed at a fake Segment (SegmentServer) that runs
in a child process, as the real one is remote: its JSON parsing and checks do not
compete for this process's GIL. Each run times ``--calls`` calls of
``log.info("Signup", segment={...})`` with timeit; the median of ``--runs`` runs is
printed. The processor's worker thread (encoding, batching, sending) runs during
the timed calls, so the "with" figure includes its share of the GIL, as an
application would see it; the queue is flushed between runs, outside the timing.
The calling thread's own CPU time per call is printed too: it leaves out the
worker's share. Last, the "until delivered" line times the same calls plus the flush that waits
until the fake Segment has accepted every event.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import time
import timeit
from multiprocessing.connection import Connection
from typing import Any

import structlog

from segment_logging.structlog import SegmentProcessor
from segment_logging.testing import SegmentServer

PROPERTIES = {"plan": "pro", "seats": 3, "trial": False, "source": "ads", "region": "eu", "price": 12.5}


def _serve(conn: Connection) -> None:
    """In the child: run a SegmentServer; answer "count" with what it accepted since the last count."""
    with SegmentServer() as server:
        conn.send((server.write_key, server.url))
        while conn.recv() == "count":
            with server._lock:
                count = len(server.messages)
                server.messages.clear()
                server.requests.clear()
            conn.send(count)


def _chain(middle: list[Any], devnull: Any) -> Any:
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        *middle,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.processors.JSONRenderer(),
    ]
    return structlog.wrap_logger(
        structlog.WriteLogger(devnull),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    ).bind()  # the bound logger itself, not the lazy proxy


def _median_per_call(log: Any, calls: int, runs: int, between: Any = None) -> tuple[float, float]:
    """Medians over ``runs`` of (wall-clock seconds, this thread's CPU seconds) per call."""

    def call() -> None:
        log.info("Signup", segment={"user_id": "u1", "properties": PROPERTIES})

    timeit.Timer(call).timeit(1000)  # warm up
    if between is not None:
        between()
    wall, cpu = [], []
    for _ in range(runs):
        wall_start, cpu_start = time.perf_counter(), time.thread_time()
        timeit.Timer(call).timeit(calls)
        wall.append((time.perf_counter() - wall_start) / calls)
        cpu.append((time.thread_time() - cpu_start) / calls)
        if between is not None:
            between()
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per timed run")
    parser.add_argument("--runs", type=int, default=7, help="timed runs; the median is reported")
    args = parser.parse_args()

    parent_end, child_end = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(target=_serve, args=(child_end,), daemon=True)
    child.start()
    write_key, url = parent_end.recv()
    accepted = 0

    def flush_and_count() -> None:
        nonlocal accepted
        processor.flush(60)
        parent_end.send("count")
        accepted += parent_end.recv()

    with open(os.devnull, "w") as devnull:
        processor = SegmentProcessor(write_key, host=url)
        plain = _chain([], devnull)
        with_segment = _chain([processor], devnull)

        without, without_cpu = _median_per_call(plain, args.calls, args.runs)
        with_, with_cpu = _median_per_call(with_segment, args.calls, args.runs, between=flush_and_count)

        start = time.perf_counter()
        for _ in range(args.calls):
            with_segment.info("Signup", segment={"user_id": "u1", "properties": PROPERTIES})
        settled = processor.flush(60)
        delivered = (time.perf_counter() - start) / args.calls
        flush_and_count()
        stats = processor.stats()
        processor.close()
    parent_end.send("stop")
    child.join(10)

    print(f"structlog {structlog.__version__}, {args.runs} runs of {args.calls:,} calls, median per call:")
    print(f"  chain without SegmentProcessor: {without * 1e6:7.2f} µs")
    print(f"  chain with SegmentProcessor:    {with_ * 1e6:7.2f} µs")
    print(f"  ratio:                          {with_ / without:7.2f}x  (+{(with_ - without) * 1e6:.2f} µs)")
    print("  CPU time of the calling thread alone (the worker's encoding and sending excluded):")
    cpu_ratio = with_cpu / without_cpu
    print(f"    without: {without_cpu * 1e6:.2f} µs, with: {with_cpu * 1e6:.2f} µs, ratio {cpu_ratio:.2f}x")
    print(f"  with, until delivered (calls + flush): {delivered * 1e6:.2f} µs per event (settled: {settled})")
    print(f"  processor stats: {stats}; the fake Segment accepted {accepted:,}")


if __name__ == "__main__":
    main()
