"""A Celery app on the filesystem broker (no server needed), for a real prefork worker.

The folder comes from ``CELERY_TEST_DIR``. The handler sits on the app's own
logger, which Celery leaves alone (it replaces only the root logger's handlers).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery import Celery

from segment_logging import SegmentHandler

folder = Path(os.environ["CELERY_TEST_DIR"])
for name in ("queue", "processed", "results"):
    (folder / name).mkdir(parents=True, exist_ok=True)

app = Celery("celery_app")
app.conf.update(
    broker_url="filesystem://",
    broker_transport_options={
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
    },
    result_backend=f"file://{folder / 'results'}",
    broker_connection_retry_on_startup=True,
)

log = logging.getLogger("app.tasks")
log.setLevel(logging.INFO)
log.addHandler(SegmentHandler(flush_interval=int(os.environ.get("FLUSH_INTERVAL", "5")), shutdown_timeout=5))


@app.task
def signup(index: int) -> int:
    log.info("Signup", extra={"segment": {"user_id": f"u{index}"}})
    return index
