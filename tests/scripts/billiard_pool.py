"""A billiard (Celery's multiprocessing fork) pool whose workers are replaced every few tasks.

billiard's workers end with ``os._exit()``. Usage: ``billiard_pool.py TASKS``; every task logs one event.
"""

from __future__ import annotations

import logging
import os
import sys

import billiard

from segment_logging import SegmentHandler

log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.addHandler(SegmentHandler(flush_interval=3600, shutdown_timeout=5))


def task(index: int) -> int:
    log.info("FromTask", extra={"segment": {"user_id": f"{os.getpid()}-{index}"}})
    return index


if __name__ == "__main__":
    tasks = int(sys.argv[1])
    pool = billiard.get_context("fork").Pool(2, maxtasksperchild=5)
    assert pool.map(task, range(tasks)) == list(range(tasks))
    pool.close()
    pool.join()
