"""Exceptions raised or reported by segment-logging.

The tree::

    SegmentLoggingError
    ├── InvalidMessage (also ValueError): event metadata Segment would reject
    │   └── MessageTooLarge: one message over Segment's 32 KB limit
    └── DeliveryError: a batch that was rejected or could not be delivered
"""

from __future__ import annotations


class SegmentLoggingError(Exception):
    """Root of every exception segment-logging raises or reports."""


class InvalidMessage(SegmentLoggingError, ValueError):
    """Event metadata that cannot become a valid Segment message."""


class MessageTooLarge(InvalidMessage):
    """A single message whose encoded JSON is over Segment's 32 KB limit."""


class DeliveryError(SegmentLoggingError):
    """A batch was rejected by Segment, or could not be delivered in time.

    Attributes:
        status: the last HTTP status received, or None when no answer came.
        attempts: how many requests were made for the batch.
    """

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
