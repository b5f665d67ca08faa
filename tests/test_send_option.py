"""send=False and $SEGMENT_SEND=0: events validated, converted and counted, nothing sent, no key needed."""

from __future__ import annotations

import logging

import pytest

from segment_logging import SegmentHandler
from segment_logging.structlog import SegmentProcessor
from segment_logging.testing import ErrorRecorder, SegmentServer


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No write key and no SEGMENT_SEND in the environment."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.delenv("SEGMENT_SEND", raising=False)


def test_send_false_counts_events_and_sends_nothing(
    server: SegmentServer, logger: logging.Logger, no_key: None
) -> None:
    """With send=False and no write key, events are converted and counted as sent; no request is made."""
    handler = SegmentHandler(host=server.url, send=False)
    logger.addHandler(handler)
    try:
        logger.info("Signup", extra={"segment": {"user_id": "u1", "properties": {"plan": "pro"}}})
        logger.info("Upgraded", extra={"segment": True, "user_id": "u1", "plan": "team"})
        assert handler.flush(timeout=5)
        assert handler.stats() == {
            "queued": 0,
            "sent": 2,
            "dropped": 0,
            "failed": 0,
            "retried": 0,
            "invalid": 0,
            "spooled": 0,
        }
    finally:
        handler.close()
    assert server.requests == []


@pytest.mark.parametrize("value", ["0", "false", "no", "off", " False "])
def test_segment_send_0_in_the_environment_switches_sending_off(
    server: SegmentServer, logger: logging.Logger, no_key: None, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """$SEGMENT_SEND set to 0/false/no/off (any case) does what send=False does, for every handler."""
    monkeypatch.setenv("SEGMENT_SEND", value)
    handler = SegmentHandler(host=server.url)
    logger.addHandler(handler)
    logger.info("Signup", extra={"segment": {"user_id": "u1"}})
    assert handler.flush(timeout=5)
    handler.close()
    assert handler.stats()["sent"] == 1
    assert server.requests == []


def test_send_true_overrides_the_environment(
    server: SegmentServer, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """send=True given to the handler wins over $SEGMENT_SEND=0."""
    monkeypatch.setenv("SEGMENT_SEND", "0")
    handler = SegmentHandler(server.write_key, host=server.url, send=True)
    logger.addHandler(handler)
    logger.info("Signup", extra={"segment": {"user_id": "u1"}})
    assert handler.flush(timeout=5)
    handler.close()
    assert [m["event"] for m in server.messages] == ["Signup"]


def test_invalid_events_are_still_reported(logger: logging.Logger, no_key: None) -> None:
    """With send=False an invalid event is still found and reported, and counted as invalid."""
    errors = ErrorRecorder()
    handler = SegmentHandler(send=False, on_error=errors)
    logger.addHandler(handler)
    logger.info("Signup", extra={"segment": {"properties": {"plan": "pro"}}})
    assert handler.flush(timeout=5)
    handler.close()
    assert handler.stats()["invalid"] == 1
    assert "user_id or anonymous_id" in str(errors.calls[0][0])


def test_the_missing_key_error_says_how_to_send_nothing(no_key: None) -> None:
    """Without a write key while sending, the ValueError names write_key and the way to switch sending off."""
    with pytest.raises(ValueError, match="write_key is required") as raised:
        SegmentHandler()
    assert "send=False" in str(raised.value)
    assert "SEGMENT_SEND=0" in str(raised.value)


def test_a_bad_send_value_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch, no_key: None) -> None:
    """send and $SEGMENT_SEND take a bool or bool text; anything else is a ValueError naming it."""
    with pytest.raises(ValueError, match="send must be True or False"):
        SegmentHandler(send="sometimes")  # type: ignore[arg-type]
    monkeypatch.setenv("SEGMENT_SEND", "sometimes")
    with pytest.raises(ValueError, match="SEGMENT_SEND must be True or False"):
        SegmentHandler()


def test_send_false_as_text(logger: logging.Logger, no_key: None) -> None:
    """dictConfig from YAML or INI passes "false" as text: it switches sending off too."""
    handler = SegmentHandler(send="false")  # type: ignore[arg-type]
    logger.addHandler(handler)
    logger.info("Signup", extra={"segment": {"user_id": "u1"}})
    assert handler.flush(timeout=5)
    handler.close()
    assert handler.stats()["sent"] == 1


def test_the_structlog_processor_takes_send(server: SegmentServer, no_key: None) -> None:
    """SegmentProcessor(send=False) needs no key and sends nothing, and counts the event."""
    processor = SegmentProcessor(host=server.url, send=False)
    processor(None, "info", {"event": "Signup", "segment": {"user_id": "u1"}})
    assert processor.flush(timeout=5)
    processor.close()
    assert processor.stats()["sent"] == 1
    assert server.requests == []
