"""Finding (or installing) Segment's own library, the peer every ratio is measured against.

The peer, ``segment-analytics-python==2.4.0``, is installed into its own
virtualenv, ``benchmarks/.peer/`` (git-ignored), made with the running
interpreter, so it never touches your environment and its dependencies
(requests, urllib3, python-dateutil) never share a process with ours except in
the caller-cost script, which measures both side by side and appends the peer's
site-packages to ``sys.path``. Pass ``--peer-python`` to use an interpreter
that already has it. If a virtualenv cannot be made here (no ``venv``/``ensurepip``),
the peer is installed into the current environment with ``python -m pip``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PEER_REQUIREMENT = "segment-analytics-python==2.4.0"
PEER_VERSION = "2.4.0"
PEER_DIR = Path(__file__).resolve().parent / ".peer"

_PROBE = (
    "import os, segment.analytics.version as v, segment.analytics as a; "
    "print(v.VERSION); print(os.path.dirname(os.path.dirname(os.path.dirname(a.__file__))))"
)


def _probe(python: str) -> tuple[str, str] | None:
    """(version, site-packages) of the peer as ``python`` sees it, or None when it is missing."""
    result = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    version, site = result.stdout.split("\n")[:2]
    return version.strip(), site.strip()


def _pip_install(python: str) -> None:
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PEER_REQUIREMENT],
        check=True,
    )


def ensure_peer(explicit: str | None = None, log: object = print) -> tuple[str, str, str]:
    """(python, site-packages, where) for the peer, installing it first if needed.

    Raises:
        RuntimeError: it could not be found or installed.
    """
    say = log if callable(log) else print
    if explicit:
        found = _probe(explicit)
        if found is None:
            raise RuntimeError(f"{explicit} cannot import segment.analytics")
        return explicit, found[1], f"--peer-python {explicit}"
    python = str(PEER_DIR / "bin" / "python")
    found = _probe(python) if Path(python).exists() else None
    if found is None or found[0] != PEER_VERSION:
        say(f"installing {PEER_REQUIREMENT} into {PEER_DIR} (once)")
        try:
            if not Path(python).exists():
                subprocess.run([sys.executable, "-m", "venv", str(PEER_DIR)], check=True)
            _pip_install(python)
            found = _probe(python)
        except (OSError, subprocess.CalledProcessError) as exc:
            say(f"could not make {PEER_DIR} ({exc}); using the current environment")
            found = None
        if found is None:
            python = sys.executable
            found = _probe(python)
            if found is None or found[0] != PEER_VERSION:
                say(f"installing {PEER_REQUIREMENT} into the current environment ({sys.executable})")
                _pip_install(python)
                found = _probe(python)
    if found is None:
        raise RuntimeError(f"could not install {PEER_REQUIREMENT}")
    where = "benchmarks/.peer" if python != sys.executable else "the current environment"
    return python, found[1], where
