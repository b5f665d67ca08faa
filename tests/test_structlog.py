"""SegmentProcessor and the structlog -> stdlib bridge, end to end through the fake Segment server."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import Script, finish

pytest.importorskip("structlog", reason="the structlog extra is not installed")

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from segment_logging import InvalidMessage, SegmentHandler, Track
from segment_logging.structlog import STRUCTLOG_KEYS, SegmentProcessor
from segment_logging.testing import ErrorRecorder, SegmentServer

MakeProcessor = Callable[..., SegmentProcessor]
MakeHandler = Callable[..., SegmentHandler]


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """Every test starts and ends with structlog's defaults and empty contextvars."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def make_processor(server: SegmentServer) -> Iterator[MakeProcessor]:
    """Build SegmentProcessors pointed at ``server``; each is closed after the test."""
    made: list[SegmentProcessor] = []

    def make(**options: Any) -> SegmentProcessor:
        options.setdefault("host", server.url)
        options.setdefault("shutdown_timeout", 2.0)
        processor = SegmentProcessor(options.pop("write_key", server.write_key), **options)
        made.append(processor)
        return processor

    yield make
    for processor in made:
        processor.close()


@pytest.fixture
def output() -> io.StringIO:
    """Where the configured structlog chain writes its rendered lines."""
    return io.StringIO()


def _configure(
    processor: Processor,
    output: io.StringIO,
    *,
    before: tuple[Processor, ...] = (),
    after: tuple[Processor, ...] = (),
    min_level: int = logging.INFO,
) -> None:
    """The README's chain, with ``processor`` between the context and the renderer."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            *before,
            processor,
            *after,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=structlog.PrintLoggerFactory(output),
        cache_logger_on_first_use=False,
    )


def _lines(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


# -- construction ------------------------------------------------------------------------


def test_write_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a write key or $SEGMENT_WRITE_KEY, construction fails naming write_key."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    with pytest.raises(ValueError, match="write_key"):
        SegmentProcessor()


def test_bad_option_is_named() -> None:
    """An option out of range fails at construction with a ValueError naming it, as for the handler."""
    with pytest.raises(ValueError, match="max_batch_size"):
        SegmentProcessor("key", max_batch_size=0)


def test_handler_with_options_is_rejected(make_handler: MakeHandler) -> None:
    """handler= takes the handler's options: also passing a write key or an option is a ValueError."""
    handler = make_handler()
    with pytest.raises(ValueError, match="write_key, gzip"):
        SegmentProcessor("key", handler=handler, gzip=False)


def test_handler_must_be_a_segment_handler() -> None:
    """handler= accepts only a SegmentHandler."""
    with pytest.raises(ValueError, match="handler must be a SegmentHandler"):
        SegmentProcessor(handler=logging.StreamHandler())  # type: ignore[arg-type]


def test_bookkeeping_keys_are_the_handlers() -> None:
    """segment_logging.structlog exposes the one list of excluded keys the handler's bridge uses too."""
    from segment_logging import _structlog_events

    assert STRUCTLOG_KEYS is _structlog_events.STRUCTLOG_KEYS
    assert {"event", "level", "timestamp", "logger", "exc_info", "stack_info", "segment"} <= STRUCTLOG_KEYS


# -- the processor call ------------------------------------------------------------------


def test_events_without_segment_pass_through_untouched(make_processor: MakeProcessor) -> None:
    """An event dict without ``segment`` comes back as the same, unchanged object."""
    processor = make_processor()
    event_dict = {"event": "hello", "user_id": "u1"}
    assert processor(None, "info", event_dict) is event_dict
    assert event_dict == {"event": "hello", "user_id": "u1"}
    assert processor.stats()["queued"] == 0


def test_segment_false_is_removed_and_sends_nothing(make_processor: MakeProcessor) -> None:
    """``segment=False`` is dropped from the dict, and nothing is queued."""
    processor = make_processor()
    event_dict = {"event": "hello", "segment": False}
    assert processor(None, "info", event_dict) == {"event": "hello"}
    assert processor.flush(5)
    assert processor.stats()["sent"] == 0


def test_mapping_form_becomes_a_track(
    make_processor: MakeProcessor, server: SegmentServer, output: io.StringIO
) -> None:
    """``segment={...}`` sends a track named after structlog's ``event``."""
    processor = make_processor()
    _configure(processor, output)
    structlog.get_logger().info("Signup", segment={"user_id": "u1", "properties": {"plan": "pro"}})
    assert processor.flush(5)
    [event] = server.events("Signup")
    assert event["userId"] == "u1"
    assert event["properties"] == {"plan": "pro"}


def test_mapping_form_with_a_type(
    make_processor: MakeProcessor, server: SegmentServer, output: io.StringIO
) -> None:
    """A mapping with ``type`` sends that message type (here an identify with traits)."""
    processor = make_processor()
    _configure(processor, output)
    structlog.get_logger().info(
        "Identify", segment={"type": "identify", "user_id": "u1", "traits": {"email": "ada@example.com"}}
    )
    assert processor.flush(5)
    [message] = server.messages
    assert message["type"] == "identify"
    assert message["traits"] == {"email": "ada@example.com"}


def test_message_object_form(
    make_processor: MakeProcessor, server: SegmentServer, output: io.StringIO
) -> None:
    """``segment=Track(...)`` sends that message as built."""
    processor = make_processor()
    _configure(processor, output)
    message = Track(user_id="u7", event="Checkout", properties={"total": 12.5})
    structlog.get_logger().info("checkout done", segment=message)
    assert processor.flush(5)
    [event] = server.events("Checkout")
    assert event["userId"] == "u7"
    assert event["properties"] == {"total": 12.5}


def test_segment_true_takes_bound_fields(
    make_processor: MakeProcessor, server: SegmentServer, output: io.StringIO
) -> None:
    """``segment=True`` takes user_id from bind() and properties from the rest, minus bookkeeping."""
    processor = make_processor()
    _configure(processor, output)
    structlog.get_logger().bind(user_id="u1").info("Upgraded", plan="team", segment=True)
    assert processor.flush(5)
    [event] = server.events("Upgraded")
    assert event["userId"] == "u1"
    assert event["properties"] == {"plan": "team"}


def test_segment_true_takes_contextvars(
    make_processor: MakeProcessor, server: SegmentServer, output: io.StringIO
) -> None:
    """``segment=True`` sees what bind_contextvars() bound, merged earlier in the chain."""
    processor = make_processor()
    _configure(processor, output)
    structlog.contextvars.bind_contextvars(anonymous_id="a-42", request_id="r1")
    structlog.get_logger().info("Viewed", page="/pricing", segment=True)
    assert processor.flush(5)
    [event] = server.events("Viewed")
    assert event["anonymousId"] == "a-42"
    assert "userId" not in event
    assert event["properties"] == {"request_id": "r1", "page": "/pricing"}


def test_rendered_line_has_no_segment_key(make_processor: MakeProcessor, output: io.StringIO) -> None:
    """The renderer after the processor never prints ``segment``; the rest of the line is intact."""
    processor = make_processor()
    _configure(processor, output)
    structlog.get_logger().info("Signup", plan="pro", segment={"user_id": "u1"})
    [line] = _lines(output)
    assert "segment" not in line
    assert line["event"] == "Signup"
    assert line["plan"] == "pro"


def test_capture_logs_shows_the_dict_that_continues(make_processor: MakeProcessor) -> None:
    """Under capture_logs, the event dict after the processor has every key but ``segment``."""
    processor = make_processor()
    with structlog.testing.capture_logs(processors=[processor]) as logs:
        structlog.get_logger().info("Signup", plan="pro", segment={"user_id": "u1"})
    assert logs == [{"event": "Signup", "plan": "pro", "log_level": "info"}]
    assert processor.flush(5)
    assert processor.stats()["sent"] == 1


def test_later_processors_do_not_change_what_is_sent(
    make_processor: MakeProcessor, server: SegmentServer, output: io.StringIO
) -> None:
    """Processors after this one mutate the event dict; the queued event keeps the values at the call."""

    def scribble(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict["user_id"] = "someone-else"
        event_dict["plan"] = "changed"
        event_dict["event"] = "Renamed"
        return event_dict

    processor = make_processor()
    _configure(processor, output, after=(scribble,))
    structlog.get_logger().info("Upgraded", user_id="u1", plan="team", segment=True)
    assert processor.flush(5)
    [event] = server.messages
    assert (event["event"], event["userId"], event["properties"]) == ("Upgraded", "u1", {"plan": "team"})


@pytest.mark.parametrize(
    "timestamp",
    [
        1_700_000_000.25,
        datetime.datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=datetime.timezone.utc),
    ],
    ids=["epoch", "datetime"],
)
def test_event_dict_timestamp_is_used_when_it_is_a_moment(
    make_processor: MakeProcessor, server: SegmentServer, output: io.StringIO, timestamp: object
) -> None:
    """A ``timestamp`` already in the event dict as epoch seconds or a datetime dates the message."""

    def stamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict["timestamp"] = timestamp
        return event_dict

    processor = make_processor()
    _configure(processor, output, before=(stamp,))
    structlog.get_logger().info("Signup", segment={"user_id": "u1"})
    assert processor.flush(5)
    assert server.messages[0]["timestamp"] == "2023-11-14T22:13:20.250+00:00"


def test_text_timestamp_is_ignored_for_the_time_of_the_call(
    make_processor: MakeProcessor, server: SegmentServer, output: io.StringIO
) -> None:
    """An already-rendered (str) timestamp is not parsed: the message is dated at the call."""
    processor = make_processor()
    _configure(processor, output, before=(structlog.processors.TimeStamper(fmt="%H:%M"),))
    before = datetime.datetime.now(datetime.timezone.utc)
    structlog.get_logger().info("Signup", segment={"user_id": "u1"})
    assert processor.flush(5)
    sent = datetime.datetime.fromisoformat(server.messages[0]["timestamp"])
    assert abs(sent - before) < datetime.timedelta(seconds=5)


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "problem"),
    [
        ({"properties": {"plan": "pro"}}, "user_id or anonymous_id"),
        ({"user_id": "u1", "properties": ["plan", "pro"]}, "properties must be a mapping"),
        ({"user_id": "u1", "colour": "red"}, "unknown key 'colour'"),
        ("yes", "must be a mapping, a message object or True"),
    ],
    ids=["no-user-id", "properties-not-a-mapping", "unknown-key", "not-a-mapping"],
)
def test_bad_input_is_reported_and_logging_goes_on(
    make_processor: MakeProcessor,
    server: SegmentServer,
    output: io.StringIO,
    segment: object,
    problem: str,
) -> None:
    """Invalid metadata goes to on_error; the line is still logged and later events still arrive."""
    errors = ErrorRecorder()
    processor = make_processor(on_error=errors)
    _configure(processor, output)
    log = structlog.get_logger()
    log.info("Broken", segment=segment)
    log.info("Signup", segment={"user_id": "u1"})
    assert processor.flush(5)
    assert [line["event"] for line in _lines(output)] == ["Broken", "Signup"]
    assert [m["event"] for m in server.messages] == ["Signup"]
    [(exc, _)] = errors.calls
    assert isinstance(exc, InvalidMessage)
    assert problem in str(exc)
    assert processor.stats()["invalid"] == 1


def test_a_failure_inside_the_processor_is_reported_not_raised(
    make_processor: MakeProcessor, output: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    """An event that cannot be queued (its str() raises) is reported on segment_logging; logging goes on."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    processor = make_processor()
    _configure(processor, output)
    with caplog.at_level(logging.ERROR, logger="segment_logging"):
        structlog.get_logger().info(Unprintable(), segment={"user_id": "u1"})
    assert len(_lines(output)) == 1
    [record] = [r for r in caplog.records if r.name == "segment_logging"]
    assert "SegmentProcessor could not queue an event" in record.getMessage()
    assert record.exc_info is not None
    assert processor.stats()["queued"] == 0


def test_events_after_close_are_dropped_without_raising(
    make_processor: MakeProcessor, output: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    """After close() (twice is harmless), events are counted as dropped with one warning; logging goes on."""
    processor = make_processor()
    _configure(processor, output)
    processor.close()
    processor.close()
    with caplog.at_level(logging.WARNING, logger="segment_logging"):
        structlog.get_logger().info("Late", segment={"user_id": "u1"})
        structlog.get_logger().info("Later", segment={"user_id": "u1"})
    assert [line["event"] for line in _lines(output)] == ["Late", "Later"]
    assert processor.stats()["dropped"] == 2
    assert sum("after close()" in r.getMessage() for r in caplog.records) == 1


# -- logger flavours -----------------------------------------------------------------------


def test_async_logger_methods(
    make_processor: MakeProcessor, server: SegmentServer, output: io.StringIO
) -> None:
    """``await log.ainfo(...)`` (run in an executor by structlog) queues the event, contextvars included."""
    processor = make_processor()
    _configure(processor, output)

    async def main() -> None:
        structlog.contextvars.bind_contextvars(user_id="u9")
        await structlog.get_logger().ainfo("Signup", plan="pro", segment=True)

    asyncio.run(main())
    assert processor.flush(5)
    [event] = server.events("Signup")
    assert (event["userId"], event["properties"]) == ("u9", {"plan": "pro"})


def test_filtering_bound_logger_skips_filtered_levels(
    make_processor: MakeProcessor, server: SegmentServer, output: io.StringIO
) -> None:
    """With make_filtering_bound_logger(WARNING), info events never reach the processor; warnings do."""
    processor = make_processor()
    _configure(processor, output, min_level=logging.WARNING)
    log = structlog.get_logger()
    log.info("Quiet", segment={"user_id": "u1"})
    log.warning("Loud", segment={"user_id": "u1"})
    assert processor.flush(5)
    assert [m["event"] for m in server.messages] == ["Loud"]


# -- the stdlib side -------------------------------------------------------------------------


def test_stdlib_extra_segment_true(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """The handler's ``extra={"segment": True, ...}`` takes user_id and properties from the extras."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("Upgraded", extra={"segment": True, "user_id": "u1", "plan": "pro"})
    assert handler.flush(5)
    [event] = server.events("Upgraded")
    assert (event["userId"], event["properties"]) == ("u1", {"plan": "pro"})


def _configure_bridge(*processors: Processor) -> None:
    """structlog -> stdlib: the event dict travels to logging's handlers as ``record.msg``."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            *processors,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _console(stream: io.StringIO) -> logging.Handler:
    console = logging.StreamHandler(stream)
    console.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ]
        )
    )
    return console


def test_bridge_delivers_once_with_formatters_set(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger, output: io.StringIO
) -> None:
    """Behind wrap_for_formatter, SegmentHandler delivers once, even with a ProcessorFormatter on it."""
    handler = make_handler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=structlog.processors.JSONRenderer()))
    logger.addHandler(_console(output))
    logger.addHandler(handler)
    _configure_bridge()
    log = structlog.get_logger(logger.name)
    log.info("Signup", segment={"user_id": "u1", "properties": {"plan": "pro"}})
    log.info("Upgraded", user_id="u2", plan="team", segment=True)
    assert handler.flush(5)
    assert [(m["event"], m["userId"], m["properties"]) for m in server.messages] == [
        ("Signup", "u1", {"plan": "pro"}),
        ("Upgraded", "u2", {"plan": "team"}),
    ]
    assert [line["event"] for line in _lines(output)] == ["Signup", "Upgraded"]


def test_both_paths_deliver_once(
    make_handler: MakeHandler, server: SegmentServer, output: io.StringIO
) -> None:
    """SegmentProcessor(handler=h) before wrap_for_formatter plus h on the root logger: one delivery each.

    The processor sends structlog's events and removes ``segment``, so the handler
    skips them; plain stdlib records with ``extra={"segment": ...}`` still go through
    the handler.
    """
    handler = make_handler()
    root = logging.getLogger()
    console = _console(output)
    old_level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(console)
    root.addHandler(handler)
    try:
        _configure_bridge(SegmentProcessor(handler=handler))
        structlog.get_logger("test.both").info("Signup", segment={"user_id": "u1"})
        structlog.get_logger("test.both").info("Upgraded", user_id="u1", plan="team", segment=True)
        logging.getLogger("test.both.stdlib").info("Paid", extra={"segment": {"user_id": "u1"}})
        assert handler.flush(5)
    finally:
        root.removeHandler(handler)
        root.removeHandler(console)
        root.setLevel(old_level)
    assert sorted(m["event"] for m in server.messages) == ["Paid", "Signup", "Upgraded"]
    structlog_lines = [line for line in _lines(output) if line.get("logger") == "test.both"]
    assert [line["event"] for line in structlog_lines] == ["Signup", "Upgraded"]
    assert all("segment" not in line for line in structlog_lines)


def test_processor_shares_the_handlers_queue(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """SegmentProcessor(handler=h) feeds h's queue: one flush, one set of counters for both paths."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("FromLogging", extra={"segment": {"user_id": "u1"}})  # starts the handler's worker
    processor = SegmentProcessor(handler=handler)
    threads_before = sum(t.name == "segment-logging" for t in threading.enumerate())
    processor(None, "info", {"event": "FromStructlog", "segment": {"user_id": "u1"}})
    assert processor.flush(5)
    assert sorted(m["event"] for m in server.messages) == ["FromLogging", "FromStructlog"]
    assert processor.stats() == handler.stats()
    assert handler.stats()["sent"] == 2
    assert sum(t.name == "segment-logging" for t in threading.enumerate()) == threads_before


# -- exit and the example ---------------------------------------------------------------------


def test_delivery_at_interpreter_exit(script: Script, server: SegmentServer) -> None:
    """A script that configures the processor, logs and exits without flushing still delivers."""
    status, _, stderr = finish(script("structlog_exit.py"), timeout=60)
    assert status == 0, stderr
    assert server.wait_for(4, timeout=5)
    assert sorted(m["userId"] for m in server.messages) == ["u0", "u1", "u2", "u9"]
