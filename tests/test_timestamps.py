"""Out-of-range timestamps are invalid events on every path, never a batch Segment rejects whole."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from segment_logging import Batcher, InvalidMessage, SegmentHandler, Track
from segment_logging.structlog import SegmentProcessor
from segment_logging.testing import ErrorRecorder, SegmentServer

MakeHandler = Callable[..., SegmentHandler]
EPOCH_MILLISECONDS = int(time.time() * 1000)
MINUS_FIVE = datetime.timezone(datetime.timedelta(hours=-5))


def _only_problem(errors: ErrorRecorder) -> str:
    ((exc, _),) = errors.calls
    assert isinstance(exc, InvalidMessage)
    return str(exc)


@pytest.mark.parametrize(
    "timestamp",
    [
        EPOCH_MILLISECONDS,
        1e20,
        "0001-01-01T00:00:00+05:00",
        datetime.datetime(9999, 12, 31, 23, tzinfo=MINUS_FIVE),
    ],
    ids=["epoch-ms", "1e20", "year-0", "year-10000"],
)
def test_handler_metadata_timestamp_out_of_range_is_invalid(
    timestamp: object, make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """A `timestamp` in the metadata outside years 0001-9999 is one invalid event naming the field."""
    errors = ErrorRecorder()
    handler = make_handler(on_error=errors)
    logger.addHandler(handler)
    logger.info("Before", extra={"segment": {"user_id": "u1"}})
    logger.info("Bad", extra={"segment": {"user_id": "u1", "timestamp": timestamp}})
    logger.info("After", extra={"segment": {"user_id": "u1"}})
    assert handler.flush(5)
    assert [m["event"] for m in server.messages] == ["Before", "After"]
    assert _only_problem(errors).startswith("timestamp ")
    assert handler.stats()["invalid"] == 1


class _SetCreated(logging.Filter):
    """Dates records as a log receiver or a test might (``record.created`` set by hand)."""

    def __init__(self, created: float) -> None:
        super().__init__()
        self.created = created

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == "Bad":
            record.created = self.created
        return True


@pytest.mark.parametrize("created", [float(EPOCH_MILLISECONDS), float("nan"), -1e12], ids=repr)
def test_handler_record_time_out_of_range_is_invalid(
    created: float, make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """A record whose `created` is out of range is reported invalid; the rest of the batch is delivered."""
    errors = ErrorRecorder()
    handler = make_handler(on_error=errors)
    handler.addFilter(_SetCreated(created))
    logger.addHandler(handler)
    for event in ("Before", "Bad", "After"):
        logger.info(event, extra={"segment": {"user_id": "u1", "properties": {"p": 1}}})
    assert handler.flush(5)
    assert [m["event"] for m in server.messages] == ["Before", "After"]
    assert "out of range" in _only_problem(errors)
    assert handler.stats()["invalid"] == 1


@pytest.fixture
def errors() -> ErrorRecorder:
    """What on_error was given."""
    return ErrorRecorder()


@pytest.fixture
def processor(server: SegmentServer, errors: ErrorRecorder) -> Iterator[SegmentProcessor]:
    """A SegmentProcessor pointed at ``server``, closed after the test."""
    made = SegmentProcessor(server.write_key, host=server.url, shutdown_timeout=2.0, on_error=errors)
    yield made
    made.close()


@pytest.mark.parametrize(
    "timestamp",
    [
        EPOCH_MILLISECONDS,
        float(EPOCH_MILLISECONDS),
        10**400,
        float("inf"),
        datetime.datetime(9999, 12, 31, 23, tzinfo=MINUS_FIVE),
    ],
    ids=["epoch-ms", "epoch-ms-float", "huge-int", "inf", "year-10000"],
)
def test_structlog_timestamp_out_of_range_is_invalid(
    timestamp: object, processor: SegmentProcessor, server: SegmentServer, errors: ErrorRecorder
) -> None:
    """An event dict's `timestamp` outside years 0001-9999 is one invalid event, not a spoiled batch."""

    def log(event: str, **fields: Any) -> None:
        processor(None, "info", {"event": event, "segment": {"user_id": "u1"}, **fields})

    log("Before")
    log("Bad", timestamp=timestamp)
    log("After")
    assert processor.flush(5)
    assert [m["event"] for m in server.messages] == ["Before", "After"]
    problem = _only_problem(errors)
    assert problem.startswith("timestamp ")
    assert "out of range" in problem
    assert processor.stats()["invalid"] == 1


def test_structlog_epoch_milliseconds_are_named_as_such(
    processor: SegmentProcessor, server: SegmentServer, errors: ErrorRecorder
) -> None:
    """The report for a structlog timestamp in milliseconds shows the value and says what is wrong."""
    processor(None, "info", {"event": "E", "segment": {"user_id": "u1"}, "timestamp": EPOCH_MILLISECONDS})
    assert processor.flush(5)
    problem = _only_problem(errors)
    assert str(EPOCH_MILLISECONDS) in problem
    assert "epoch milliseconds?" in problem


def test_batcher_refuses_a_message_whose_time_went_out_of_range() -> None:
    """A message object whose timestamp was set out of range after construction is refused by push()
    with InvalidMessage naming the timestamp; the batcher stays usable."""
    batcher = Batcher()
    message = Track(user_id="u1", event="E")
    message.timestamp = datetime.datetime(9999, 12, 31, 23, tzinfo=MINUS_FIVE)
    with pytest.raises(InvalidMessage, match=r"^timestamp .* out of range"):
        batcher.push(message)
    assert len(batcher) == 0
    assert batcher.push(Track(user_id="u1", event="E")) is None
    assert len(batcher) == 1
