"""The benchmark suite in one command: prints the table of our figures, the peer's, and the targets.

    python benchmarks/run.py            # the full run, about 2-3 minutes on 2 vCPU
    python benchmarks/run.py --quick    # fewer runs, for a quick look
    python benchmarks/run.py --json results.json

"ours" is this checkout's ``segment_logging`` (the scripts run with the
repository first on ``PYTHONPATH``); "peer" is Segment's own library,
``segment-analytics-python==2.4.0``, which the suite installs on first use into
``benchmarks/.peer/``, a virtualenv of its own (see ``_peer.py``). Every
measurement that needs isolation runs in a fresh process; the loopback
Segment sink (``_server.py``) runs in a process of its own too, and its own
capacity is measured and printed first. Figures are medians over the runs; a
ratio is the median of the ratios of runs made side by side (interleaved), not
the ratio of two medians.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import gzip
import http.client
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _common import WRITE_KEY, Sink, median, properties  # noqa: E402 - after the path is set
from _peer import ensure_peer  # noqa: E402

OUR_DEPENDENCIES = {"httpx": "httpx>=0.24", "structlog": "structlog>=23.1"}


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- environments -----------------------------------------------------------------------


def ensure_ours() -> dict[str, str]:
    """The environment our scripts run in: this checkout first on the path, its dependencies installed."""
    missing = [spec for name, spec in OUR_DEPENDENCIES.items() if importlib.util.find_spec(name) is None]
    if missing:
        say(f"installing {', '.join(missing)} into the current environment ({sys.executable})")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("SEGMENT_HOST", None)
    env.pop("SEGMENT_WRITE_KEY", None)
    return env


def run_json(command: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> dict[str, Any]:
    """Run a script; return the JSON object on the last line of its output."""
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    data = json.loads(lines[-1])
    if not isinstance(data, dict):
        raise RuntimeError(f"{command} printed {lines[-1]!r}")
    return data


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SinkProcess:
    """The loopback sink in a process of its own; it exits when our end of its stdin closes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "_server.py"), "--write-key", WRITE_KEY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().strip()
        self.sink = Sink(f"http://127.0.0.1:{port}")
        self.url = self.sink.url

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


# -- the measurements ---------------------------------------------------------------------


def sample_body(style: str, count: int = 100) -> tuple[bytes, dict[str, str]]:
    """A request body shaped like one library's: ours compact and gzipped, the peer's spaced and plain."""
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    messages = [
        {
            "type": "track",
            "userId": "user-8d3f2c",
            "event": "Signup",
            "properties": properties(i),
            "context": {"library": {"name": style, "version": "0"}},
            "timestamp": stamp,
            "messageId": str(uuid.uuid4()),
        }
        for i in range(count)
    ]
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    if style == "ours":
        body = json.dumps({"batch": messages, "sentAt": stamp}, separators=(",", ":")).encode()
        headers["Content-Encoding"] = "gzip"
        return gzip.compress(body, 1), headers
    return json.dumps({"batch": messages, "sentAt": stamp, "writeKey": WRITE_KEY}).encode(), headers


def sink_capacity(sink: SinkProcess, seconds: float) -> dict[str, Any]:
    """Requests/s the sink answers for one keep-alive client doing nothing else, and its CPU per request."""
    results = {}
    for style in ("ours", "peer"):
        body, headers = sample_body(style)
        connection = http.client.HTTPConnection("127.0.0.1", int(sink.url.rsplit(":", 1)[1]))
        count, cpu0, began = 0, sink.cpu(), time.perf_counter()
        while time.perf_counter() - began < seconds:
            connection.request("POST", "/v1/batch", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"the sink answered {response.status} to a well-formed batch")
            count += 1
        elapsed, cpu = time.perf_counter() - began, sink.cpu() - cpu0
        connection.close()
        results[style] = {
            "requests_per_s": count / elapsed,
            "events_per_s": count * 100 / elapsed,
            "sink_cpu_us_per_request": cpu / count * 1e6,
            "body_bytes": len(body),
        }
    sink.sink.reset()
    return results


def caller_cost(env: dict[str, str], url: str, peer_site: str, calls: int, rounds: int) -> dict[str, Any]:
    command = [sys.executable, str(HERE / "caller_cost.py"), "--url", url, "--calls", str(calls)]
    command += ["--rounds", str(rounds)]
    if peer_site:
        command += ["--peer-site", peer_site]
    return run_json(command, env)


def throughput(
    pythons: dict[str, str], env: dict[str, str], sink: SinkProcess, runs: int, events: int
) -> dict[str, list[dict[str, Any]]]:
    """Warm runs (one event delivered before the burst) for the table, cold ones for a note."""
    results: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": [], "ours_cold": [], "peer_cold": []}
    for run in range(runs):
        for lib in ("ours", "peer") if run % 2 == 0 else ("peer", "ours"):
            for cold in (False, True):
                sink.sink.reset()
                cpu0 = sink.cpu()
                command = [pythons[lib], str(HERE / "throughput.py"), "--lib", lib, "--url", sink.url]
                command += ["--events", str(events), *(["--cold"] if cold else [])]
                result = run_json(command, env)
                result["sink_cpu_s"] = sink.cpu() - cpu0
                results[lib + "_cold" * cold].append(result)
                say(
                    f"throughput {lib}{' cold' * cold} run {run + 1}/{runs}: "
                    f"{events / result['seconds']:,.0f} events/s, worst call {result['worst_ms']:.1f} ms"
                )
    return results


def memory(
    pythons: dict[str, str], env: dict[str, str], runs: int, events: int
) -> dict[str, list[dict[str, Any]]]:
    """The table's runs, and ours paced (the encoded queue alone) for a note."""
    results: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": [], "ours_paced": []}
    for run in range(runs):
        for lib in ("ours", "peer", "ours_paced") if run % 2 == 0 else ("peer", "ours", "ours_paced"):
            name = lib.split("_")[0]
            command = [pythons[name], str(HERE / "memory.py"), "--lib", name, "--events", str(events)]
            result = run_json(command + ["--paced"] * lib.endswith("_paced"), env)
            results[lib].append(result)
            say(f"memory {lib} run {run + 1}/{runs}: {result['delta_bytes'] / 1e6:.1f} MB")
    return results


def exit_time(
    pythons: dict[str, str], env: dict[str, str], sink: SinkProcess, runs: int, events: int
) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": []}
    for run in range(runs):
        for lib in ("ours", "peer") if run % 2 == 0 else ("peer", "ours"):
            sink.sink.reset()
            command = [pythons[lib], str(HERE / "exit_time.py"), "--lib", lib, "--url", sink.url]
            with tempfile.TemporaryFile("w+") as errors:
                process = subprocess.Popen(
                    [*command, "--events", str(events)],
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                    env=env,
                )
                assert process.stdout is not None
                line = process.stdout.readline()
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                exited = time.monotonic()
                if not line:
                    errors.seek(0)
                    raise RuntimeError(f"exit_time.py --lib {lib} failed:\n{errors.read()[-3000:]}")
            result = json.loads(line)
            result["exit_seconds"] = exited - result["last_call_at"]
            result["delivered"] = sink.sink.stats()["messages"]
            results[lib].append(result)
            say(
                f"exit {lib} run {run + 1}/{runs}: {result['exit_seconds']:.2f} s, "
                f"{result['delivered']:,}/{events:,} delivered"
            )
    return results


STRUCTLOG_LINES = {
    "without_us": r"chain without SegmentProcessor:\s*([\d.]+)",
    "with_us": r"chain with SegmentProcessor:\s*([\d.]+)",
    "ratio": r"ratio:\s*([\d.]+)x",
    "runs": r"structlog \S+, (\d+) runs",
    "cpu_without_us": r"without: ([\d.]+) µs, with: [\d.]+ µs",
    "cpu_with_us": r"without: [\d.]+ µs, with: ([\d.]+) µs",
    "cpu_ratio": r"without: [\d.]+ µs, with: [\d.]+ µs, ratio ([\d.]+)x",
}


def structlog_cost(env: dict[str, str], calls: int, runs: int) -> dict[str, Any]:
    """Run ``structlog_cost.py`` (another script here, with its own fake Segment); read its figures."""
    script = HERE / "structlog_cost.py"
    if not script.exists():
        return {"error": "benchmarks/structlog_cost.py is missing"}
    command = [sys.executable, str(script), "--calls", str(calls), "--runs", str(runs)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    figures: dict[str, Any] = {"output": result.stdout}
    for key, pattern in STRUCTLOG_LINES.items():
        found = re.search(pattern, result.stdout)
        if found:
            figures[key] = float(found.group(1))
    if result.returncode != 0 or "ratio" not in figures:
        figures["error"] = f"structlog_cost.py failed ({result.returncode}): {result.stderr[-1500:]}"
    return figures


# -- the table ----------------------------------------------------------------------------


def ratios(ours: list[float], theirs: list[float]) -> float:
    return median(a / b for a, b in zip(ours, theirs, strict=True))


def build_table(results: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    rows: list[list[str]] = []
    notes: list[str] = []

    cost = results["caller_cost"]["results"]
    ours_wall, null_wall, peer_wall = (cost[k]["wall_us"] for k in ("ours", "null", "peer"))
    r_null, r_peer = ratios(ours_wall, null_wall), ratios(ours_wall, peer_wall)
    rows.append(
        [
            "1",
            "Caller cost, µs per call",
            f"{median(ours_wall):.2f}",
            f"{median(null_wall):.2f} (NullHandler)",
            f"{r_null:.2f}x",
            "≤ 1.5x",
            verdict(r_null <= 1.5),
        ]
    )
    rows.append(
        [
            "1",
            "Caller cost, µs per call",
            f"{median(ours_wall):.2f}",
            f"{median(peer_wall):.2f} (peer track())",
            f"{r_peer:.2f}x",
            "≤ 0.25x",
            verdict(r_peer <= 0.25),
        ]
    )
    cpu = {k: median(cost[k]["cpu_us"]) for k in ("ours", "null", "peer")}
    notes.append(
        f"1: {results['caller_cost']['rounds']} interleaved rounds of "
        f"{results['caller_cost']['calls']:,} calls each; "
        f"the caller's own CPU per call (thread_time, the worker's share of the GIL left out): "
        f"ours {cpu['ours']:.2f} µs, NullHandler {cpu['null']:.2f} µs "
        f"({ratios(cost['ours']['cpu_us'], cost['null']['cpu_us']):.2f}x), peer {cpu['peer']:.2f} µs "
        f"({ratios(cost['ours']['cpu_us'], cost['peer']['cpu_us']):.2f}x); ours until its worker had sent "
        f"the block: {median(cost['ours']['until_sent_us']):.2f} µs per call"
    )

    burst = results["throughput"]
    events = burst["ours"][0]["events"]
    rate = {lib: [events / r["seconds"] if r["seconds"] else 0.0 for r in burst[lib]] for lib in burst}
    lost = {lib: [r for r in burst[lib] if not delivered_all(r, events)] for lib in burst}
    r_rate = ratios(rate["ours"], rate["peer"])
    rows.append(
        [
            "2",
            f"Throughput, events/s ({events:,} logged, until acknowledged)",
            f"{median(rate['ours']):,.0f}",
            f"{median(rate['peer']):,.0f} (peer)",
            f"{r_rate:.2f}x",
            "≥ 4x",
            verdict(r_rate >= 4 and not lost["ours"]),
        ]
    )
    for lib in ("ours", "peer"):
        runs = burst[lib]
        loop = median(r["loop_seconds"] for r in runs)
        sink_share = median(r["sink_cpu_s"] / r["seconds"] for r in runs if r["seconds"])
        notes.append(
            f"2 {lib}: {len(runs)} runs; logging loop alone {events / loop:,.0f} calls/s; "
            f"{median(r['requests'] for r in runs):,.0f} requests; all {events:,} acknowledged with unique "
            f"messageIds in {len(runs) - len(lost[lib])}/{len(runs)} runs; the sink's CPU during the run: "
            f"{sink_share:.0%} of one core"
        )
    notes.append(
        f"2 cold (no warm-up event, so start-up costs such as our worker building its HTTP client "
        f"fall inside the burst): ours {median(rate['ours_cold']):,.0f}, peer "
        f"{median(rate['peer_cold']):,.0f} events/s, {ratios(rate['ours_cold'], rate['peer_cold']):.2f}x; "
        f"worst call ours {median(r['worst_ms'] for r in burst['ours_cold']):.1f} ms, peer "
        f"{median(r['worst_ms'] for r in burst['peer_cold']):.1f} ms; all delivered: "
        f"ours {not lost['ours_cold']}, peer {not lost['peer_cold']}"
    )

    mem = results["memory"]
    mb = {lib: [r["delta_bytes"] / 1e6 for r in mem[lib]] for lib in ("ours", "peer")}
    r_mem = ratios(mb["ours"], mb["peer"])
    mem_events = mem["ours"][0]["events"]
    rows.append(
        [
            "3",
            f"Memory held by {mem_events:,} queued events, MB of RSS",
            f"{median(mb['ours']):.1f}",
            f"{median(mb['peer']):.1f} (peer)",
            f"{r_mem:.3f}x",
            "≤ 0.5x",
            verdict(r_mem <= 0.5),
        ]
    )
    for lib in ("ours", "peer", "ours_paced"):
        runs = mem[lib]
        notes.append(
            f"3 {lib}: {len(runs)} runs; {median(r['delta_bytes'] for r in runs) / 1e6:.1f} MB, "
            f"{median(r['per_event_bytes'] for r in runs):,.0f} bytes per event "
            f"(from the first tenth to the end: {median(r['slope_bytes'] for r in runs):,.0f}); "
            f"queue at the end: {runs[-1]['stats']}"
        )

    worst = {lib: [r["worst_ms"] for r in burst[lib]] for lib in burst}
    rows.append(
        [
            "4",
            f"Worst single call during the {events:,} burst, ms",
            f"{median(worst['ours']):.1f}",
            f"{median(worst['peer']):.1f} (peer)",
            "",
            "< 5 ms",
            verdict(median(worst["ours"]) < 5),
        ]
    )
    for lib in ("ours", "peer"):
        runs = burst[lib]
        gc_longest = [max(r["gc_longest_ms"]) for r in runs]
        notes.append(
            f"4 {lib}: worst per run {', '.join(f'{w:.1f}' for w in worst[lib])} ms; p99.9 "
            f"{median(r['p999_ms'] for r in runs) * 1e3:.0f} µs; calls over 1 ms "
            f"{median(r['over_1ms'] for r in runs):.0f}; longest garbage-collector pass "
            f"{median(gc_longest):.1f} ms (median over runs)"
        )

    slog = results["structlog"]
    if "error" in slog:
        rows.append(["5", "structlog chain, µs per call", "n/a", "n/a", "", "≤ 1.5x", "n/a"])
        notes.append(f"5: {slog['error']}")
    else:
        rows.append(
            [
                "5",
                "structlog chain with SegmentProcessor, µs per call",
                f"{slog['with_us']:.2f}",
                f"{slog['without_us']:.2f} (without)",
                f"{slog['ratio']:.2f}x",
                "≤ 1.5x",
                verdict(slog["ratio"] <= 1.5),
            ]
        )
        notes.append(
            f"5: from benchmarks/structlog_cost.py, median of {slog.get('runs', 0):.0f} runs, one chain "
            f"measured after the other; the calling thread's own CPU per call: without "
            f"{slog.get('cpu_without_us', 0):.2f} µs, with {slog.get('cpu_with_us', 0):.2f} µs "
            f"({slog.get('cpu_ratio', 0):.2f}x)"
        )

    leave = results["exit"]
    exit_events = leave["ours"][0]["events"]
    seconds = {lib: [r["exit_seconds"] for r in leave[lib]] for lib in leave}
    delivered = {lib: [r["delivered"] for r in leave[lib]] for lib in leave}
    all_delivered = all(d == exit_events for d in delivered["ours"])
    rows.append(
        [
            "6",
            f"Exit with {exit_events:,} queued: last call to process gone, s",
            f"{median(seconds['ours']):.2f} ({min(delivered['ours']):,} delivered)",
            f"{median(seconds['peer']):.2f} (peer, {median(delivered['peer']):,.0f} delivered)",
            "",
            "< 1 s, all delivered",
            verdict(median(seconds["ours"]) < 1 and all_delivered),
        ]
    )
    notes.append(
        f"6: {len(seconds['ours'])} runs; delivered per run: "
        f"ours {delivered['ours']}, peer {delivered['peer']}"
    )
    return rows, notes


def delivered_all(run: dict[str, Any], events: int) -> bool:
    return bool(run["messages"] == events and run["unique_ids"] == events and not run["rejected"])


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def markdown(rows: list[list[str]]) -> str:
    header = ["#", "Measure", "ours", "baseline", "ratio", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and calls (medians of 3, not 5)")
    parser.add_argument("--runs", type=int, help="runs per library for throughput, memory and exit")
    parser.add_argument("--peer-python", help="an interpreter that already has segment-analytics-python")
    parser.add_argument("--json", type=Path, help="also write every raw figure to this file")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    calls, rounds = (5_000, 5) if args.quick else (10_000, 9)
    structlog_calls, structlog_runs = (5_000, 5) if args.quick else (20_000, 7)

    started = time.monotonic()
    env = ensure_ours()
    peer_python, peer_site, peer_where = ensure_peer(args.peer_python, say)
    pythons = {"ours": sys.executable, "peer": peer_python}
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} CPU, {platform.machine()}, {platform.system()} {platform.release()}",
        "date": datetime.date.today().isoformat(),
        "peer": f"segment-analytics-python 2.4.0 from {peer_where}",
        "runs": runs,
    }
    sink = SinkProcess(env)
    try:
        say(f"sink at {sink.url}; measuring its capacity")
        results["sink"] = sink_capacity(sink, 1.0 if args.quick else 2.0)
        say("caller cost")
        site = peer_site if peer_python != sys.executable else ""
        results["caller_cost"] = caller_cost(env, sink.url, site, calls, rounds)
        results["throughput"] = throughput(pythons, env, sink, runs, 100_000)
        results["memory"] = memory(pythons, env, runs, 100_000)
        results["exit"] = exit_time(pythons, env, sink, runs, 10_000)
    finally:
        sink.close()
    say("structlog (benchmarks/structlog_cost.py)")
    results["structlog"] = structlog_cost(env, structlog_calls, structlog_runs)
    results["seconds"] = time.monotonic() - started

    rows, notes = build_table(results)
    capacity = results["sink"]
    print(
        f"\nsegment-logging benchmarks: Python {results['python']}, {results['machine']}, {results['date']}; "
        f"peer: {results['peer']}; medians of {runs} runs\n"
    )
    print(markdown(rows))
    print()
    for note in notes:
        print(f"- {note}")
    print(
        "- sink: one keep-alive client doing nothing else gets "
        + "; ".join(
            f"{c['requests_per_s']:,.0f} requests/s ({c['events_per_s']:,.0f} events/s) with {lib}-style "
            f"100-event bodies, {c['sink_cpu_us_per_request']:.0f} µs of sink CPU each"
            for lib, c in capacity.items()
        )
    )
    print(f"- the whole run took {results['seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
