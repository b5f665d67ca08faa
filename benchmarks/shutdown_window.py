"""The window a server's stop leaves: events logged by requests while SIGTERM arrives.

For each ASGI set-up (``uvicorn``, ``uvicorn --workers 2``, gunicorn with
``UvicornWorker``), serve ``tests/scripts/asgi_app.py`` (flush interval one
hour: only the shutdown path delivers), keep four client threads requesting
without pause, send SIGTERM 0.5 s in, and compare the requests that were
answered (each logged one event before answering) with the events the fake
Segment received. Repeats ``--rounds`` times and prints the medians as JSON lines.

Usage: ``python benchmarks/shutdown_window.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from segment_logging.testing import SegmentServer

SCRIPTS = Path(__file__).resolve().parent.parent / "tests" / "scripts"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_round(kind: str) -> dict[str, float]:
    with SegmentServer() as sink:
        port = _free_port()
        env = {**os.environ, "SEGMENT_HOST": sink.url, "SEGMENT_WRITE_KEY": sink.write_key}
        server = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "serve_asgi.py"), kind, str(port)],
            cwd=SCRIPTS,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/warm-up", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        answered = [1]  # the warm-up
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(timeout=5) as client:
                index = 0
                while not stop.is_set():
                    index += 1
                    try:
                        if client.get(f"{url}/{threading.get_ident()}-{index}").status_code == 200:
                            answered.append(1)
                    except httpx.HTTPError:
                        if server.poll() is not None:
                            return

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        ended = time.monotonic()
        stop.set()
        for thread in threads:
            thread.join()
        received = len(sink.events("Request"))
        return {
            "answered": len(answered),
            "received": received,
            "lost": max(len(answered) - received, 0),
            "stop_seconds": ended - signalled,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for kind in ("uvicorn", "uvicorn-workers", "gunicorn"):
        rounds = [one_round(kind) for _ in range(args.rounds)]
        print(
            json.dumps(
                {
                    "server": kind,
                    "rounds": args.rounds,
                    "answered_median": statistics.median(r["answered"] for r in rounds),
                    "lost_median": statistics.median(r["lost"] for r in rounds),
                    "lost_max": max(r["lost"] for r in rounds),
                    "stop_seconds_median": round(statistics.median(r["stop_seconds"] for r in rounds), 3),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
