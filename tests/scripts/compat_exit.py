"""What ``segment_logging._compat`` sees of interpreter exit.

Usage: ``compat_exit.py``. Prints ``running False`` while the program runs, then ``at exit True``
from an atexit hook (threading's shutdown has run by then).
"""

from __future__ import annotations

import atexit

from segment_logging._compat import interpreter_shutting_down


def _at_exit() -> None:
    print("at exit", interpreter_shutting_down(), flush=True)


atexit.register(_at_exit)
print("running", interpreter_shutting_down(), flush=True)
