"""Batching rules: limits over the whole request body, and when a batch is due."""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest

from segment_logging import InvalidMessage, MessageTooLarge, SegmentHandler, Track
from segment_logging._batch import (
    DEFAULT_BATCH_SIZE,
    ENCODE_EVERY,
    MAX_BATCH_SIZE,
    MAX_MESSAGE_BYTES,
    WRAPPER_BYTES,
    body_size,
    build_body,
    encode_captured,
    encode_context,
    encode_message,
    encode_wire,
    fits,
    is_due,
    take_batch,
    wake_worker,
)
from segment_logging._json import dumps_stdlib
from segment_logging._messages import format_timestamp, from_metadata
from segment_logging._values import capture_metadata, captured_track, restore
from segment_logging.testing import SegmentServer


def _track_of_size(size: int) -> Track:
    """A track whose encoded JSON is exactly ``size`` bytes."""
    base = Track(user_id="u", event="E", message_id="m", properties={"p": ""})
    overhead = len(encode_message(base, 0.0))
    return Track(user_id="u", event="E", message_id="m", properties={"p": "x" * (size - overhead)})


@pytest.mark.parametrize("size", [MAX_MESSAGE_BYTES - 1, MAX_MESSAGE_BYTES])
def test_message_at_limit_is_accepted(size: int) -> None:
    """A message of exactly 32,000 bytes encoded is accepted."""
    assert len(encode_message(_track_of_size(size), 0.0)) == size


def test_message_over_limit_is_rejected() -> None:
    """One byte over 32,000 raises MessageTooLarge naming the size."""
    with pytest.raises(MessageTooLarge, match="32,001 bytes"):
        encode_message(_track_of_size(MAX_MESSAGE_BYTES + 1), 0.0)


def test_body_size_matches_built_body() -> None:
    """body_size() counts the wrapper, commas and context exactly as build_body() writes them."""
    pieces = [b'{"a":1}', b'{"b":22}', b"{}"]
    context = encode_context({"ip": "1.2.3.4"})
    body = build_body(pieces, format_timestamp(0.0), context)
    assert len(body) == body_size(sum(map(len, pieces)), len(pieces), context)
    parsed = json.loads(body)
    assert parsed["batch"] == [{"a": 1}, {"b": 22}, {}]
    assert parsed["context"] == {"ip": "1.2.3.4"}
    assert parsed["sentAt"] == "1970-01-01T00:00:00.000+00:00"


@pytest.mark.parametrize(("extra", "expected"), [(0, True), (1, False)])
def test_byte_budget_boundary(extra: int, expected: bool) -> None:
    """A piece fits when the body comes to exactly max_bytes, not one byte more."""
    max_bytes = 1000
    piece = b"x" * (max_bytes - WRAPPER_BYTES - 10 - 1 + extra)
    assert fits(1, 10, piece, max_size=100, max_bytes=max_bytes) is expected


@pytest.mark.parametrize(("count", "expected"), [(99, True), (100, False)])
def test_count_boundary(count: int, expected: bool) -> None:
    """A batch holds at most max_size messages."""
    assert fits(count, 0, b"{}", max_size=100, max_bytes=500_000) is expected


def test_take_batch_splits_to_stay_under_budget() -> None:
    """take_batch() stops before the byte budget and leaves the rest queued, in order."""
    pending = deque([b"a" * 400, b"b" * 400, b"c" * 400])
    first = take_batch(pending, max_size=100, max_bytes=WRAPPER_BYTES + 801)
    assert first == [b"a" * 400, b"b" * 400]
    assert list(pending) == [b"c" * 400]


def test_is_due_triggers() -> None:
    """Due when full by count or bytes, when the interval passed, or when urgent; never when empty."""
    common: dict[str, Any] = {"max_size": 10, "max_bytes": 10_000, "interval": 0.5}
    assert not is_due(count=0, pieces_bytes=0, oldest=None, now=9, urgent=True, **common)
    assert is_due(count=10, pieces_bytes=10, oldest=0, now=0, urgent=False, **common)
    assert is_due(count=1, pieces_bytes=10_000, oldest=0, now=0, urgent=False, **common)
    assert not is_due(count=1, pieces_bytes=10, oldest=0, now=0.49, urgent=False, **common)
    assert is_due(count=1, pieces_bytes=10, oldest=0, now=0.5, urgent=False, **common)
    assert is_due(count=1, pieces_bytes=10, oldest=0, now=0, urgent=True, **common)


GREEK = "αβγδεζηθικλμνξοπρστυφχψω" * 625  # 15,000 letters, 30,000 bytes in UTF-8


def test_non_ascii_message_is_sized_in_utf8_on_both_paths() -> None:
    """15,000 Greek letters make a message of about 30 KB, accepted, and the stdlib path writes the same."""
    wire = Track(user_id="u", event="E", message_id="m", properties={"text": GREEK}).to_dict(0.0)
    piece = encode_wire(wire)
    assert 30_000 < len(piece) < MAX_MESSAGE_BYTES
    assert dumps_stdlib(wire) == piece


def test_non_ascii_message_over_the_limit_counts_bytes_not_characters() -> None:
    """16,000 two-byte letters (32,000 bytes) are over the limit once the rest of the message is added."""
    with pytest.raises(MessageTooLarge, match=r"^track message is 32,\d{3} bytes"):
        encode_message(Track(user_id="u", event="E", properties={"t": "é" * 16_000}), 0.0)


def test_colliding_property_keys_are_invalid_naming_the_field() -> None:
    """Properties whose keys collide once written as JSON text are refused, naming `properties`."""
    message = Track(user_id="u", event="E", properties={"counts": {1: "a", "1": "b"}})
    with pytest.raises(InvalidMessage, match=r"^properties has keys 1 and '1', both '1' in JSON"):
        encode_message(message, 0.0)


def test_non_ascii_message_is_delivered(
    make_handler: Callable[..., SegmentHandler], server: SegmentServer, logger: logging.Logger
) -> None:
    """A 30 KB message of Greek text, under the limit in UTF-8, reaches Segment."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("Greek", extra={"segment": {"user_id": "u", "properties": {"text": GREEK}}})
    assert handler.flush(5)
    assert [m["properties"]["text"] for m in server.messages] == [GREEK]


@pytest.mark.parametrize(
    ("unencoded", "pending", "max_size", "expected"),
    [
        (ENCODE_EVERY - 1, 0, MAX_BATCH_SIZE, False),
        (ENCODE_EVERY, 0, MAX_BATCH_SIZE, True),
        (1, 49, 50, True),
        (1, 48, 50, False),
    ],
)
def test_wake_worker_per_hundred_unencoded_or_a_full_batch(
    unencoded: int, pending: int, max_size: int, expected: bool
) -> None:
    """A waiting worker wakes for every ENCODE_EVERY unencoded events, or once a batch is full by count."""
    assert wake_worker(unencoded=unencoded, pending=pending, max_size=max_size) is expected


def test_default_batch_size_is_segments_limit() -> None:
    """Batches are sized by the backlog by default: max_batch_size defaults to Segment's 2,500."""
    assert DEFAULT_BATCH_SIZE == MAX_BATCH_SIZE == 2_500
    handler = SegmentHandler("k", send=False)
    try:
        assert handler._queue.max_batch_size == DEFAULT_BATCH_SIZE
    finally:
        handler.close()


def test_a_backlog_goes_out_in_requests_as_large_as_the_byte_budget(
    make_handler: Callable[..., SegmentHandler], server: SegmentServer, logger: logging.Logger
) -> None:
    """1,000 events queued before a flush go out in one request at the defaults, not ten of 100."""
    handler = make_handler(flush_interval=3600)
    logger.addHandler(handler)
    for i in range(1_000):
        logger.info("Backlog", extra={"segment": {"user_id": "u", "properties": {"order": i}}})
    assert handler.flush(10)
    assert [len(batch["batch"]) for batch in server.batches()] == [1_000]
    assert [m["properties"]["order"] for m in server.messages] == list(range(1_000))


@pytest.mark.parametrize(
    "metadata",
    [
        {"user_id": "u", "properties": {"plan": "pro", "seats": 3, "amount": 19.99, "text": 'αβγ "q"'}},
        {"anonymous_id": 42, "event": "Named", "properties": {"nested": {"a": [1, 2, {"b": None}]}}},
        {"user_id": "u", "properties": {"tricky": '"properties":{}', "empty": {}}},
        {"user_id": "u"},
        {"user_id": "u", "properties": None},
    ],
)
def test_a_captured_track_encodes_to_the_bytes_of_the_full_path(metadata: dict[str, object]) -> None:
    """A track captured on the caller (properties already JSON) is spliced into exactly the message the
    full path writes, whatever the properties hold."""
    captured = capture_metadata(metadata)
    assert captured_track(captured) is not None
    piece = encode_captured(captured, "Signup", 0.0)
    assert piece is not None
    full = json.loads(encode_message(from_metadata(metadata, "Signup"), 0.0))
    spliced = json.loads(piece)
    message_id = spliced.pop("messageId")
    assert full.pop("messageId")
    assert spliced == full
    assert piece == dumps_stdlib({**spliced, "messageId": message_id})


def test_a_captured_track_over_the_limit_is_too_large() -> None:
    """The 32 KB limit holds for a captured track: it is checked after the properties are spliced in."""
    captured = capture_metadata({"user_id": "u", "properties": {"blob": "x" * MAX_MESSAGE_BYTES}})
    with pytest.raises(MessageTooLarge, match="Segment accepts at most 32,000"):
        encode_captured(captured, "Big", 0.0)


def test_an_invalid_captured_track_is_left_to_the_full_path() -> None:
    """A captured track without any id is not encoded by the splice: the full path reports it by field."""
    captured = capture_metadata({"properties": {"a": 1}})
    assert encode_captured(captured, "Nobody", 0.0) is None
    with pytest.raises(InvalidMessage, match="user_id or anonymous_id"):
        from_metadata(restore(captured), "Nobody")
