"""logging.shutdown() twice, then logging again. Prints the handler's sent and dropped counts."""

from __future__ import annotations

import logging

from segment_logging import SegmentHandler

handler = SegmentHandler(flush_interval=3600, shutdown_timeout=5)
app = logging.getLogger("app")
app.addHandler(handler)
app.setLevel(logging.INFO)
for i in range(20):
    app.info("Signup", extra={"segment": {"user_id": f"u{i}"}})
logging.shutdown()
logging.shutdown()
for _ in range(3):
    app.info("Late", extra={"segment": {"user_id": "late"}})
print(handler.stats()["sent"], handler.stats()["dropped"])
