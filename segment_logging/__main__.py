"""``python -m segment_logging``: the same commands as ``segment-logging``."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
