"""What the logging call captures on the caller's thread (``_values``)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

from segment_logging import SegmentHandler
from segment_logging._values import capture_metadata, captured_track, restore
from segment_logging.testing import SegmentServer


def test_a_plain_track_is_captured_as_a_tuple_the_collector_stops_tracking() -> None:
    """A track of ids, a name and properties becomes a plain tuple of str and bytes: after one
    collection the garbage collector no longer walks it, nor the queue item holding it."""
    captured = capture_metadata({"user_id": "u", "event": "E", "properties": {"plan": "pro", "n": [1, 2]}})
    track = captured_track(captured)
    assert track is not None
    assert track[1:] == ("u", None, "E", b'{"plan":"pro","n":[1,2]}')
    item = (captured, "E", 0.0, "origin", None)
    gc.collect()
    assert not gc.is_tracked(captured)
    assert not gc.is_tracked(item)


def test_restore_gives_back_the_mapping() -> None:
    """restore() turns a captured track back into the mapping it came from (for reports and on_error)."""
    metadata = {"anonymous_id": 7, "properties": {"a": {"b": None}}}
    assert restore(capture_metadata(metadata)) == metadata
    assert restore(metadata) is metadata


def test_other_events_stay_mappings() -> None:
    """Only plain tracks are captured as tuples: other types, other fields, odd ids or properties stay
    mappings, validated and reported by the worker as before."""
    for metadata in (
        {"type": "identify", "user_id": "u", "traits": {"a": 1}},
        {"user_id": "u", "properties": {"a": 1}, "context": {"ip": "1.2.3.4"}},
        {"user_id": ["not", "an", "id"], "properties": {}},
        {"user_id": "u", "properties": ["not", "a", "mapping"]},
        {"user_id": "u", "event": 3},
    ):
        assert captured_track(capture_metadata(metadata)) is None, metadata


def test_a_cycle_in_properties_is_left_to_the_worker() -> None:
    """Properties that cannot be encoded are not captured as JSON: the worker reports them by field."""
    properties: dict[str, Any] = {}
    properties["self"] = properties
    captured = capture_metadata({"user_id": "u", "properties": properties})
    assert captured_track(captured) is None


def test_properties_changed_after_the_call_are_sent_as_logged(
    make_handler: Callable[..., SegmentHandler], server: SegmentServer, logger: logging.Logger
) -> None:
    """A track's properties are captured by the call: changing the dict afterwards changes nothing sent."""
    handler = make_handler(flush_interval=3600)
    logger.addHandler(handler)
    properties: dict[str, Any] = {"plan": "pro", "tags": ["a"]}
    logger.info("Signup", extra={"segment": {"user_id": "u", "properties": properties}})
    properties["plan"] = "free"
    properties["tags"].append("b")
    assert handler.flush(5)
    assert [m["properties"] for m in server.messages] == [{"plan": "pro", "tags": ["a"]}]


def test_an_invalid_captured_track_reaches_on_error_as_a_mapping(
    make_handler: Callable[..., SegmentHandler], server: SegmentServer, logger: logging.Logger
) -> None:
    """A track without an id is reported to on_error with the mapping that was logged, properties decoded."""
    seen: list[tuple[Exception, list[Any]]] = []
    handler = make_handler(on_error=lambda exc, messages: seen.append((exc, messages)))
    logger.addHandler(handler)
    logger.info("Nobody", extra={"segment": {"properties": {"a": 1}}})
    assert handler.flush(5)
    assert server.messages == []
    assert [messages for _, messages in seen] == [[{"properties": {"a": 1}}]]
    assert "user_id or anonymous_id" in str(seen[0][0])
