"""The durable spool's cost: end-to-end events/s and memory, spool on a local disk vs memory only vs the peer.

``python benchmarks/spool.py [--runs 5] [--events 100000] [--peer-python PY]`` prints a table of medians.

* **End to end**: a burst of ``--events`` logged in a tight loop, timed until the loopback sink
  acknowledged the last of them (as ``throughput.py``). Ours twice, with ``spool=`` a file in a
  fresh temporary directory (``--dir``, default the system's temporary directory, a local disk
  here) and without; the peer (segment-analytics-python 2.4) through ``throughput.py``.
* **Memory**: the resident memory a backlog of ``--events`` holds while Segment is unreachable
  (as ``memory.py``): with a spool the backlog is on disk, not in memory.

Every run is a fresh process; the order of the subjects alternates between runs, and the
figures are medians, since the machine may be shared. The goal (issue 10): with the spool on,
at least 1.5 times the peer's end-to-end rate. The script says whether it was met.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _common import WRITE_KEY, Sink, closed_port, emit_json, median, rss_bytes, settle  # noqa: E402
from _peer import ensure_peer  # noqa: E402

GOAL = 1.5
"""With the spool on, ours end to end at least this many times the peer's rate."""


def say(message: str) -> None:
    print(f"[spool bench] {message}", file=sys.stderr, flush=True)


# -- one run, in a process of its own ------------------------------------------------------


def child_throughput(url: str, events: int, spool: str | None) -> None:
    from _subjects import Ours

    lib = Ours(url, spool=spool) if spool else Ours(url)
    sink = Sink(url)
    lib.loop(-1, 0)  # one event delivered first: lazy set-up is not timed (as throughput.py)
    lib.drain()
    sink.wait(1, 60)
    sink.reset()
    began = time.monotonic()
    lib.loop(0, events)
    loop_done = time.monotonic()
    seen = sink.wait(events, 300)
    reached = seen.get("reached_at")
    emit_json(
        {
            "loop_seconds": loop_done - began,
            "seconds": None if reached is None else reached - began,
            "messages": seen["messages"],
            "unique_ids": seen["unique_ids"],
            "peak_rss": rss_bytes(),
            "stats": lib.stats(),
        }
    )
    os._exit(0)  # the sink has everything


def child_memory(events: int, spool: str | None) -> None:
    from _subjects import Ours

    url = f"http://127.0.0.1:{closed_port()}"
    options: dict[str, Any] = {"shutdown_timeout": 0}
    lib = Ours(url, spool=spool, **options) if spool else Ours(url, **options)

    def settled() -> int:
        deadline = time.monotonic() + 120
        # Encoded (and, with a spool, stored): the state a backlog stays in while Segment is down.
        while (lib.intake() or (spool and lib.stats()["queued"])) and time.monotonic() < deadline:
            time.sleep(0.02)
        return settle(rss_bytes, every=0.05, stable_for=4, timeout=20)

    before = settled()
    lib.loop(0, events)
    after = settled()
    emit_json({"delta_bytes": after - before, "stats": lib.stats()})
    os._exit(0)


# -- the orchestrator ----------------------------------------------------------------------------


def run_json(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(lines[-1])
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--dir", help="where the spool files go (default: the temporary directory)")
    parser.add_argument("--peer-python", help="an interpreter that already has segment-analytics-python")
    parser.add_argument("--child", choices=("throughput", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--spool", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "throughput":
        child_throughput(args.url, args.events, args.spool)
    if args.child == "memory":
        child_memory(args.events, args.spool)

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    for name in ("SEGMENT_HOST", "SEGMENT_WRITE_KEY", "SEGMENT_SPOOL"):
        env.pop(name, None)
    peer_python, _, peer_where = ensure_peer(args.peer_python, say)
    sink_process = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py"), "--write-key", WRITE_KEY],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert sink_process.stdout is not None
    assert sink_process.stdin is not None
    url = f"http://127.0.0.1:{sink_process.stdout.readline().strip()}"
    sink = Sink(url)
    rates: dict[str, list[float]] = {"spool": [], "memory only": [], "peer": []}
    memory: dict[str, list[float]] = {"spool": [], "memory only": [], "peer": []}
    me = [sys.executable, str(Path(__file__).resolve())]
    try:
        for run in range(args.runs):
            order = ["spool", "memory only", "peer"]
            order = order[run % 3 :] + order[: run % 3]
            for subject in order:
                folder = tempfile.mkdtemp(prefix="segment-spool-bench-", dir=args.dir)
                spool = str(Path(folder) / "segment.db")
                try:
                    sink.reset()
                    if subject == "peer":
                        events = ["--events", str(args.events)]
                        command = [peer_python, str(HERE / "throughput.py"), "--lib", "peer", "--url", url]
                        result = run_json([*command, *events], env)
                        memory_result = run_json(
                            [peer_python, str(HERE / "memory.py"), "--lib", "peer", *events], env
                        )
                    else:
                        extra = ["--events", str(args.events)] + (
                            ["--spool", spool] if subject == "spool" else []
                        )
                        result = run_json([*me, "--child", "throughput", "--url", url, *extra], env)
                        memory_result = run_json([*me, "--child", "memory", *extra], env)
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                if result["seconds"] is None or result["unique_ids"] < args.events:
                    raise RuntimeError(f"{subject}: not everything arrived: {result}")
                rates[subject].append(args.events / result["seconds"])
                memory[subject].append(memory_result["delta_bytes"] / 1e6)
                say(
                    f"run {run + 1}/{args.runs} {subject}: {rates[subject][-1]:,.0f} events/s, "
                    f"backlog of {args.events:,} holds {memory[subject][-1]:.1f} MB"
                )
    finally:
        sink_process.stdin.close()
        sink_process.wait(10)

    print(
        f"\nMedians of {args.runs} runs, {args.events:,} events; "
        f"peer: segment-analytics-python 2.4 ({peer_where})"
    )
    print()
    print("| subject | end to end (events/s) | vs peer | memory held by the backlog, Segment down |")
    print("|---|---|---|---|")
    peer_rate = median(rates["peer"])
    for subject in ("spool", "memory only", "peer"):
        rate = median(rates[subject])
        print(f"| {subject} | {rate:,.0f} | {rate / peer_rate:.2f}x | {median(memory[subject]):.1f} MB |")
    ratio = median(rates["spool"]) / peer_rate
    verdict = "met" if ratio >= GOAL else "MISSED"
    print(
        f"\nGoal: with the spool on, at least {GOAL}x the peer's rate end to end: {verdict} ({ratio:.2f}x)."
    )


if __name__ == "__main__":
    main()
