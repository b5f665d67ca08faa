"""Children of a forkserver (or spawn) context each log events; they leave through os._exit().

The handler is configured at import, as an application's logging set-up is, so
each child builds its own when it imports this module as ``__mp_main__``.
Usage: ``forkserver_children.py forkserver|spawn process|pool`` with ``SEGMENT_HOST`` and
``SEGMENT_WRITE_KEY`` set.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from multiprocessing.context import ForkServerContext, SpawnContext

from segment_logging import SegmentHandler

log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.addHandler(SegmentHandler(flush_interval=3600, shutdown_timeout=5))


def child(index: int) -> int:
    log.info("FromChild", extra={"segment": {"user_id": f"{os.getpid()}-{index}"}})
    return index


def main() -> None:
    method, shape = sys.argv[1], sys.argv[2]
    context: ForkServerContext | SpawnContext
    if method == "forkserver":
        context = multiprocessing.get_context("forkserver")
    else:
        context = multiprocessing.get_context("spawn")
    if shape == "process":
        processes = [context.Process(target=child, args=(index,)) for index in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        assert all(process.exitcode == 0 for process in processes)
    else:
        with context.Pool(2) as pool:  # leaving the block terminates the workers (SIGTERM)
            assert pool.map(child, range(8)) == list(range(8))


if __name__ == "__main__":
    main()
