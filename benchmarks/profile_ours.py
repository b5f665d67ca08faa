"""Profile our side of the throughput burst: the caller's loop and the worker thread, with cProfile.

Not part of ``run.py``'s table; run it when changing the hot path::

    python benchmarks/profile_ours.py [--events 100000] [--top 25] [--gc-debug]

It starts the loopback sink in a subprocess, logs the burst with cProfile on
the calling thread, and with a second cProfile inside the worker thread (by
wrapping the thread's target, ``_worker._work``, in this process only), then prints both profiles sorted
by own time, plus the garbage collector's passes during the burst.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import subprocess
import sys
import time
import weakref
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    sink_process = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert sink_process.stdout is not None
    url = f"http://127.0.0.1:{sink_process.stdout.readline().strip()}"

    from _common import Sink
    from _subjects import Ours

    from segment_logging import _worker

    worker_profile = cProfile.Profile()
    original_work = _worker._work

    def profiled_work(ref: weakref.ReferenceType[_worker.EventQueue]) -> None:
        worker_profile.enable()
        try:
            original_work(ref)
        finally:
            worker_profile.disable()

    _worker._work = profiled_work  # the worker thread's target, looked up when the thread starts
    passes: list[tuple[int, float]] = []
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        else:
            passes.append((info["generation"], time.perf_counter() - started.pop()))

    sink = Sink(url)
    ours = Ours(url)
    caller_profile = cProfile.Profile()
    gc.callbacks.append(on_gc)
    began = time.monotonic()
    caller_profile.enable()
    ours.loop(0, args.events)
    caller_profile.disable()
    loop_done = time.monotonic()
    reached = sink.wait(args.events)["reached_at"]
    gc.callbacks.remove(on_gc)
    ours.handler.close()
    sink_process.stdin.close()  # type: ignore[union-attr]
    sink_process.wait()
    print(
        f"{args.events:,} events (under cProfile, so slower than in run.py): loop {loop_done - began:.2f} s, "
        f"acknowledged after {reached - began:.2f} s"
    )
    for generation in range(3):
        times = [seconds for gen, seconds in passes if gen == generation]
        if times:
            print(f"gc generation {generation}: {len(times)} passes, longest {max(times) * 1e3:.1f} ms")
    for title, profile in (("caller thread", caller_profile), ("worker thread", worker_profile)):
        print(f"\n===== {title}, by own time =====")
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
