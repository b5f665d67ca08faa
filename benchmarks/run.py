"""The benchmark suite in one command: our figures, the peer's, the floor, the targets (issue 11).

    python benchmarks/run.py            # the full run, about 5-8 minutes on 2 vCPU
    python benchmarks/run.py --quick    # fewer runs, for a quick look
    python benchmarks/run.py --json results.json
    python benchmarks/run.py --no-write # print only; do not rewrite the tables in the docs

It writes its table itself into ``README.md`` and ``docs/performance.md``, between
the markers ``<!-- benchmark-table:start -->`` and ``<!-- benchmark-table:end -->``
(in whichever of the two has them), with the commit, the versions of httpx,
orjson and structlog, and whether orjson was active.

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
import importlib.metadata
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


THROUGHPUT_SUBJECTS = {
    # name: (library, extra arguments of throughput.py)
    "ours": ("ours", []),
    "peer": ("peer", []),
    "null": ("null", []),
    "ours_stdlib": ("ours", ["--no-orjson"]),
    "peer_defaults": ("peer", ["--at-defaults"]),
}


def throughput(
    pythons: dict[str, str], env: dict[str, str], sink: SinkProcess, runs: int, events: int
) -> dict[str, list[dict[str, Any]]]:
    """Bursts of ``events`` calls per subject, interleaved, each in a fresh process after a warm-up."""
    names = list(THROUGHPUT_SUBJECTS)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for run in range(runs):
        shift = run % len(names)
        for name in names[shift:] + names[:shift]:
            lib, extra = THROUGHPUT_SUBJECTS[name]
            sink.sink.reset()
            cpu0 = sink.cpu()
            command = [pythons[lib], str(HERE / "throughput.py"), "--lib", lib, "--url", sink.url]
            result = run_json([*command, "--events", str(events), *extra], env)
            result["sink_cpu_s"] = sink.cpu() - cpu0
            results[name].append(result)
            say(
                f"throughput {name} run {run + 1}/{runs}: {result['cpu_us_per_event']:.2f} µs CPU per event, "
                f"{events / result['seconds']:,.0f} events/s, worst call {result['worst_ms']:.1f} ms, "
                f"{result['messages']:,} delivered"
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
    """The rows of issue 11's table (and the extra rows), and the notes printed under it."""
    rows: list[list[str]] = []
    notes: list[str] = []
    burst = results["throughput"]
    events = burst["ours"][0]["events"]

    cpu = {name: [r["cpu_us_per_event"] for r in runs] for name, runs in burst.items()}
    r_floor, r_peer = ratios(cpu["ours"], cpu["null"]), ratios(cpu["ours"], cpu["peer"])
    rows.append(
        [
            "Whole-process CPU per delivered event (caller + worker), µs",
            f"{median(cpu['ours']):.2f}",
            f"{median(cpu['peer']):.2f}",
            f"{median(cpu['null']):.2f}",
            f"{r_floor:.2f}x floor, {r_peer:.2f}x peer",
            "≤ 2.0x floor",
            verdict(r_floor <= 2.0),
        ]
    )
    rate = {
        name: [events / r["seconds"] if r["seconds"] else 0.0 for r in runs] for name, runs in burst.items()
    }
    lost = {name: [events - r["messages"] for r in runs] for name, runs in burst.items()}
    incomplete = [r for r in burst["ours"] if not delivered_all(r, events)]
    r_rate = ratios(rate["ours"], rate["peer"])
    rows.append(
        [
            f"End-to-end events/s, {events:,} events, first call to last accepted",
            f"{median(rate['ours']):,.0f}",
            f"{median(rate['peer']):,.0f}",
            "",
            f"{r_rate:.2f}x peer",
            "≥ 4x peer",
            verdict(r_rate >= 4 and not incomplete),
        ]
    )
    cost = results["caller_cost"]["results"]
    thread = {k: cost[k]["cpu_us"] for k in ("ours", "null", "peer")}
    r_thread = ratios(thread["ours"], thread["null"])
    rows.append(
        [
            "Calling thread's CPU per call, µs",
            f"{median(thread['ours']):.2f}",
            f"{median(thread['peer']):.2f}",
            f"{median(thread['null']):.2f}",
            f"{r_thread:.2f}x floor",
            "≤ 1.5x floor",
            verdict(r_thread <= 1.5),
        ]
    )
    wall = {k: cost[k]["wall_us"] for k in ("ours", "null", "peer")}
    rows.append(
        [
            "Wall time per call in a tight loop, µs",
            f"{median(wall['ours']):.2f}",
            f"{median(wall['peer']):.2f}",
            f"{median(wall['null']):.2f}",
            f"{ratios(wall['ours'], wall['null']):.2f}x floor",
            "",
            "",
        ]
    )
    worst = {name: [r["worst_ms"] for r in runs] for name, runs in burst.items()}
    rows.append(
        [
            f"Worst single call in a {events:,} burst at defaults, ms",
            f"{median(worst['ours']):.1f}",
            f"{median(worst['peer']):.1f}",
            f"{median(worst['null']):.1f}",
            "",
            "< 5 ms",
            verdict(median(worst["ours"]) < 5),
        ]
    )
    mem = results["memory"]
    mb = {lib: [r["delta_bytes"] / 1e6 for r in mem[lib]] for lib in ("ours", "peer")}
    r_mem = ratios(mb["ours"], mb["peer"])
    rows.append(
        [
            f"MB RSS for {mem['ours'][0]['events']:,} queued (Segment unreachable)",
            f"{median(mb['ours']):.1f}",
            f"{median(mb['peer']):.1f}",
            "",
            f"{r_mem:.2f}x peer",
            "≤ 0.2x peer",
            verdict(r_mem <= 0.2),
        ]
    )
    peer_lost = lost["peer_defaults"]
    rows.append(
        [
            f"Lost in a {events:,} burst at defaults",
            f"{max(lost['ours']):,}",
            f"{min(peer_lost):,}-{max(peer_lost):,}",
            "",
            "",
            "0",
            verdict(max(lost["ours"]) == 0 and not incomplete),
        ]
    )
    r_stdlib = ratios(cpu["ours_stdlib"], cpu["null"])
    rows.append(
        [
            "Whole-process CPU per event without orjson (stdlib json; PyPy's path), µs",
            f"{median(cpu['ours_stdlib']):.2f}",
            "",
            f"{median(cpu['null']):.2f}",
            f"{r_stdlib:.2f}x floor, {ratios(cpu['ours_stdlib'], cpu['peer']):.2f}x peer",
            "",
            "",
        ]
    )
    slog = results.get("structlog", {})
    if "ratio" in slog and "error" not in slog:
        rows.append(
            [
                "structlog chain with SegmentProcessor, µs per call (wall)",
                f"{slog['with_us']:.2f}",
                "",
                f"{slog['without_us']:.2f} (without)",
                f"{slog['ratio']:.2f}x",
                "",
                "",
            ]
        )
    elif slog:
        notes.append(f"structlog: {slog.get('error', 'no figures')}")
    leave = results.get("exit")
    if leave:
        exit_events = leave["ours"][0]["events"]
        seconds = {lib: [r["exit_seconds"] for r in leave[lib]] for lib in leave}
        delivered = {lib: [r["delivered"] for r in leave[lib]] for lib in leave}
        rows.append(
            [
                f"Exit with {exit_events:,} queued: last call to process gone, s (delivered)",
                f"{median(seconds['ours']):.2f} ({min(delivered['ours']):,})",
                f"{median(seconds['peer']):.2f} ({median(delivered['peer']):,.0f})",
                "",
                "",
                "",
                "",
            ]
        )

    for name, runs in burst.items():
        gc_longest = median(max(r["gc_longest_ms"]) for r in runs)
        requests = median(r["requests"] for r in runs)
        notes.append(
            f"{name}: {len(runs)} runs; CPU per event {', '.join(f'{c:.2f}' for c in cpu[name])} µs; "
            f"{median(rate[name]):,.0f} events/s; calling loop alone "
            f"{median(events / r['loop_seconds'] for r in runs):,.0f} calls/s; {requests:,.0f} requests; "
            f"delivered {min(events - x for x in lost[name]):,}-{max(events - x for x in lost[name]):,}; "
            f"worst call {', '.join(f'{w:.1f}' for w in worst[name])} ms; "
            f"longest GC pass {gc_longest:.1f} ms; "
            f"the sink's CPU {median(r['sink_cpu_s'] / r['seconds'] for r in runs if r['seconds']):.0%} "
            f"of one core; orjson active: {runs[0].get('orjson')}"
        )
    notes.append(
        f"caller cost: {results['caller_cost']['rounds']} interleaved rounds of "
        f"{results['caller_cost']['calls']:,} calls each in one process (thread_time of the calling thread; "
        f"wall time per call beside it); ours until its worker had sent the block: "
        f"{median(cost['ours']['until_sent_us']):.2f} µs per call"
    )
    for lib in ("ours", "peer", "ours_paced"):
        runs = mem[lib]
        notes.append(
            f"memory {lib}: {len(runs)} runs; {median(r['delta_bytes'] for r in runs) / 1e6:.1f} MB, "
            f"{median(r['per_event_bytes'] for r in runs):,.0f} bytes per event; queue at the end: "
            f"{runs[-1]['stats']}"
        )
    if incomplete:
        notes.append(f"ours did not deliver all {events:,} with unique ids in {len(incomplete)} runs")
    return rows, notes


def delivered_all(run: dict[str, Any], events: int) -> bool:
    return bool(run["messages"] == events and run["unique_ids"] == events and not run["rejected"])


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def markdown(rows: list[list[str]]) -> str:
    header = ["figure", "ours", "peer", "floor (NullHandler)", "ratio", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------


START_MARKER = "<!-- benchmark-table:start -->"
END_MARKER = "<!-- benchmark-table:end -->"
DOCUMENTS = {REPO / "README.md": False, REPO / "docs" / "performance.md": True}
"""Each document the table is written into, and whether it gets the notes too (the README, a front
page, only the table)."""


def provenance() -> dict[str, Any]:
    """The commit measured and the versions of what our code ran on."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    commit = found.stdout.strip() or "unknown"
    versions = {}
    for name in ("httpx", "orjson", "structlog"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"commit": commit + ("+changes" if dirty.stdout.strip() else ""), "versions": versions}


def table_block(results: dict[str, Any], rows: list[list[str]], notes: list[str]) -> str:
    """The text between the markers: how it was measured, the table, the notes."""
    versions = ", ".join(f"{name} {version}" for name, version in results["versions"].items())
    orjson = results["orjson_active"]
    lines = [
        f"Measured by `benchmarks/run.py` on {results['date']} at commit `{results['commit']}`: Python "
        f"{results['python']}, {results['machine']}; {versions}; orjson active: {'yes' if orjson else 'no'}; "
        f"peer: {results['peer']}; medians of {results['runs']} runs, each ratio the median of "
        "ratios of runs made side by side.",
        "",
        markdown(rows),
        "",
        *(f"- {note}" for note in notes),
    ]
    return "\n".join(lines)


def write_tables(full: str, short: str) -> list[Path]:
    """Replace what stands between the markers in each document that has them; the paths written."""
    written = []
    for path, with_notes in DOCUMENTS.items():
        block = full if with_notes else short
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        start, end = text.find(START_MARKER), text.find(END_MARKER)
        if start < 0 or end < start:
            continue
        updated = text[: start + len(START_MARKER)] + "\n" + block + "\n" + text[end:]
        if updated != text:
            path.write_text(updated, encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and calls (medians of 3, not 5)")
    parser.add_argument("--runs", type=int, help="runs per subject for throughput and memory")
    parser.add_argument("--peer-python", help="an interpreter that already has segment-analytics-python")
    parser.add_argument("--json", type=Path, help="also write every raw figure to this file")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite the tables in the docs")
    parser.add_argument("--skip-extras", action="store_true", help="leave out the structlog and exit rows")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    calls, rounds = (5_000, 5) if args.quick else (10_000, 9)
    structlog_calls, structlog_runs = (5_000, 5) if args.quick else (20_000, 7)

    started = time.monotonic()
    env = ensure_ours()
    peer_python, peer_site, peer_where = ensure_peer(args.peer_python, say)
    pythons = {"ours": sys.executable, "peer": peer_python, "null": sys.executable}
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} CPU, {platform.machine()}, {platform.system()} {platform.release()}",
        "date": datetime.date.today().isoformat(),
        "peer": f"segment-analytics-python 2.4.0 from {peer_where}",
        "runs": runs,
        **provenance(),
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
        if not args.skip_extras:
            results["exit"] = exit_time(pythons, env, sink, runs, 10_000)
    finally:
        sink.close()
    if not args.skip_extras:
        say("structlog (benchmarks/structlog_cost.py)")
        results["structlog"] = structlog_cost(env, structlog_calls, structlog_runs)
    results["orjson_active"] = bool(results["throughput"]["ours"][0].get("orjson"))
    results["seconds"] = time.monotonic() - started

    rows, notes = build_table(results)
    capacity = results["sink"]
    notes.append(
        "sink: one keep-alive client doing nothing else gets "
        + "; ".join(
            f"{c['requests_per_s']:,.0f} requests/s ({c['events_per_s']:,.0f} events/s) with {lib}-style "
            f"100-event bodies, {c['sink_cpu_us_per_request']:.0f} µs of sink CPU each"
            for lib, c in capacity.items()
        )
    )
    notes.append(f"the whole run took {results['seconds']:.0f} s")
    block = table_block(results, rows, notes)
    print()
    print(block)
    if not args.no_write:
        for path in write_tables(block, table_block(results, rows, [])):
            say(f"wrote the table into {path.relative_to(REPO)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
