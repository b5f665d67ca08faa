"""What structlog's event dicts mean to the library, for the processor and the stdlib bridge alike.

Only names: nothing here imports structlog, which is an optional extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STRUCTLOG_KEYS = frozenset(
    {
        "event",
        "segment",
        "level",
        "log_level",
        "level_number",
        "timestamp",
        "logger",
        "logger_name",
        "exc_info",
        "exception",
        "stack_info",
        "stack",
        "positional_args",
        "_record",
        "_from_structlog",
        "_logger",
        "_name",
    }
)
"""structlog's own bookkeeping: never sent as properties by ``segment=True``."""


def structlog_fields(event_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a structlog event dict that ``segment=True`` turns into properties."""
    return {key: value for key, value in event_dict.items() if key not in STRUCTLOG_KEYS}
