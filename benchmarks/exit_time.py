"""Exit: log a backlog with a live sink, then leave the interpreter normally, without a flush.

Run by ``run.py`` in a fresh process per library and run. Prints one JSON line
with the monotonic instant of the last call, then falls off the end of the
script; ``run.py`` times the process's exit and counts what the sink received.
Usage: ``python exit_time.py --lib ours|peer --url URL [--events N]``.
"""

from __future__ import annotations

import argparse
import time

from _common import emit_json
from _subjects import subject

parser = argparse.ArgumentParser()
parser.add_argument("--lib", choices=("ours", "peer"), required=True)
parser.add_argument("--url", required=True)
parser.add_argument("--events", type=int, default=10_000)
args = parser.parse_args()
lib = subject(args.lib, args.url)
lib.loop(0, args.events)
emit_json({"lib": args.lib, "events": args.events, "last_call_at": time.monotonic(), "stats": lib.stats()})
