"""dictConfig() twice with a SegmentHandler on the root: the second closes the first while holding
logging's lock. Prints ``new.flush(5)``, the old handler's sent count and the new one's."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from segment_logging import SegmentHandler


def config() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "segment": {
                "class": "segment_logging.SegmentHandler",
                "flush_interval": 3600,
                "shutdown_timeout": 5,
            }
        },
        "root": {"handlers": ["segment"], "level": "INFO"},
    }


app = logging.getLogger("app")
logging.config.dictConfig(config())
old = logging.getLogger().handlers[0]
assert isinstance(old, SegmentHandler)
for i in range(50):
    app.info("Before", extra={"segment": {"user_id": f"u{i}"}})
logging.config.dictConfig(config())  # closes `old` while holding logging's lock
new = logging.getLogger().handlers[0]
assert isinstance(new, SegmentHandler)
assert new is not old
for i in range(50):
    app.info("After", extra={"segment": {"user_id": f"u{i}"}})
old.close()  # already closed: waits for its worker to finish delivering
print(new.flush(5), old.stats()["sent"], new.stats()["sent"])
