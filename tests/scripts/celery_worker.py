"""Run a prefork Celery worker for ``celery_app``: ``celery_worker.py MAX_TASKS_PER_CHILD``.

Prints "ready" when the worker is ready to consume; stop it with SIGTERM (warm shutdown).
"""

from __future__ import annotations

import sys

from celery.signals import worker_ready
from celery_app import app


@worker_ready.connect
def say_ready(**kwargs: object) -> None:
    stdout = sys.__stdout__  # Celery redirects sys.stdout to its logger
    assert stdout is not None
    stdout.write("ready\n")
    stdout.flush()


if __name__ == "__main__":
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            f"--max-tasks-per-child={sys.argv[1]}",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ]
    )
