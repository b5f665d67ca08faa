"""Four billiard (Celery's multiprocessing fork) Processes, then a pool whose workers are replaced
every few tasks.

billiard's children end with ``os._exit()``. Usage: ``billiard_pool.py TASKS``; every task and every
Process logs one event.
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
    context = billiard.get_context("fork")
    processes = [context.Process(target=task, args=(1000 + index,)) for index in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    pool = context.Pool(2, maxtasksperchild=5)
    assert pool.map(task, range(tasks)) == list(range(tasks))
    pool.close()
    pool.join()
