"""SegmentHandler end to end: records in, batches out, through the fake Segment server."""

from __future__ import annotations

import logging
import logging.config
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Script, finish
from freezegun import freeze_time

from segment_logging import InvalidMessage, MessageTooLarge, SegmentHandler, Track
from segment_logging.testing import ErrorRecorder, SegmentServer

MakeHandler = Callable[..., SegmentHandler]


def _signup(user: str = "u1", **properties: Any) -> dict[str, Any]:
    return {"segment": {"user_id": user, "properties": properties or {"plan": "pro"}}}


# -- construction ------------------------------------------------------------------------


def test_write_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a write key or $SEGMENT_WRITE_KEY, construction fails naming write_key."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    with pytest.raises(ValueError, match="write_key"):
        SegmentHandler()


def test_write_key_from_environment(monkeypatch: pytest.MonkeyPatch, server: SegmentServer) -> None:
    """$SEGMENT_WRITE_KEY is used when no write_key is passed."""
    monkeypatch.setenv("SEGMENT_WRITE_KEY", server.write_key)
    handler = SegmentHandler(host=server.url)
    try:
        log = logging.getLogger("test.env")
        log.addHandler(handler)
        log.warning("Signup", extra=_signup())
        assert handler.flush(5)
        assert len(server.events("Signup")) == 1
    finally:
        logging.getLogger("test.env").removeHandler(handler)
        handler.close()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_batch_size", 0),
        ("max_batch_size", 2501),
        ("max_batch_bytes", 500_001),
        ("max_batch_bytes", 1000),
        ("flush_interval", 0),
        ("max_queue_size", 0),
        ("timeout", -1),
        ("shutdown_timeout", "soon"),
        ("gzip", "maybe"),
        ("on_error", 3),
        ("host", "ftp://example.com"),
        ("max_batch_size", 1.5),
        ("flush_interval", float("inf")),
        ("timeout", float("inf")),
        ("shutdown_timeout", float("inf")),
        ("max_retry_time", float("nan")),
        ("shutdown_timeout", "inf"),
        ("max_queue_bytes", 1000),
    ],
)
def test_bad_option_is_named(option: str, value: Any) -> None:
    """An option out of range fails at construction with a ValueError naming it."""
    with pytest.raises(ValueError, match=option):
        SegmentHandler("key", **{option: value})


def test_numeric_strings_are_accepted_for_config_files(make_handler: MakeHandler) -> None:
    """Numbers given as strings (INI or YAML configs) are converted."""
    handler = make_handler(max_batch_size="10", flush_interval="0.25")
    assert handler._queue.settings.max_batch_size == 10
    assert handler._queue.settings.flush_interval == 0.25


# -- from record to message -----------------------------------------------------------


def test_records_without_metadata_are_ignored(make_handler: MakeHandler, server: SegmentServer) -> None:
    """Plain log records produce nothing, so the handler can sit on the root logger."""
    handler = make_handler()
    log = logging.getLogger("test.plain")
    log.addHandler(handler)
    try:
        log.warning("just a log line")
        log.warning("Signup", extra=_signup())
        assert handler.flush(5)
    finally:
        log.removeHandler(handler)
    assert [m["event"] for m in server.messages] == ["Signup"]
    assert handler.stats()["sent"] == 1


def test_track_wire_form(make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger) -> None:
    """A track gets event, messageId, UTC timestamp and context.library; the request gets sentAt."""
    handler = make_handler()
    logger.addHandler(handler)
    context = {"ip": "10.0.0.1"}
    with freeze_time("2026-03-04 05:06:07.890"):
        logger.info(
            "Signup", extra={"segment": {"user_id": "u1", "properties": {"plan": "pro"}, "context": context}}
        )
    assert handler.flush(5)
    (message,) = server.messages
    assert message["type"] == "track"
    assert message["event"] == "Signup"
    assert message["userId"] == "u1"
    assert message["properties"] == {"plan": "pro"}
    assert message["timestamp"] == "2026-03-04T05:06:07.890+00:00"
    assert message["context"]["library"]["name"] == "segment-logging"
    assert message["context"]["ip"] == "10.0.0.1"
    assert context == {"ip": "10.0.0.1"}, "the caller's context must not be mutated"
    assert len(message["messageId"]) == 36
    (batch,) = server.batches()
    assert batch["sentAt"].endswith("+00:00")


def test_every_message_type_from_mapping(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """Mappings with `type` produce identify, page, screen, group and alias; objects pass through."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("Identify", extra={"segment": {"type": "identify", "user_id": "u", "traits": {"e": 1}}})
    logger.info("Home", extra={"segment": {"type": "page", "anonymous_id": "a"}})
    logger.info("Settings", extra={"segment": {"type": "screen", "user_id": "u"}})
    logger.info("Join", extra={"segment": {"type": "group", "user_id": "u", "group_id": "g"}})
    logger.info("Alias", extra={"segment": {"type": "alias", "user_id": "u", "previous_id": "a"}})
    logger.info("ignored", extra={"segment": Track(user_id="u", event="Object")})
    assert handler.flush(5)
    kinds = [
        (m["type"], m.get("name") or m.get("event") or m.get("groupId") or m.get("previousId"))
        for m in server.messages
    ]
    assert kinds == [
        ("identify", None),
        ("page", "Home"),
        ("screen", "Settings"),
        ("group", "g"),
        ("alias", "a"),
        ("track", "Object"),
    ]


def test_same_message_id_across_retries(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """A retried batch carries the same messageIds, so Segment can de-duplicate."""
    server.fail_next(1, status=503, retry_after="0")
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("Signup", extra=_signup())
    assert handler.flush(5)
    first, second = server.requests
    assert first.status == 503
    assert second.status == 200
    assert handler.stats()["retried"] == 1


# -- flush triggers ---------------------------------------------------------------------


def test_full_batch_goes_out_without_flush(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """Reaching max_batch_size sends the batch at once, long before the interval."""
    logger.addHandler(make_handler(max_batch_size=5, flush_interval=3600))
    for i in range(5):
        logger.info("Signup", extra=_signup(f"u{i}"))
    assert server.wait_for(5, timeout=5)
    assert len(server.batches()) == 1


def test_interval_sends_partial_batch(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """A partial batch goes out after flush_interval, with no flush() (the rule: test_backlog.py)."""
    logger.addHandler(make_handler(flush_interval=0.2, max_batch_size=100))
    logger.info("First", extra=_signup())
    assert server.wait_for(1, timeout=5)


def test_flush_delivers_what_was_logged_before(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """flush() returns True once everything logged before it is delivered."""
    handler = make_handler(flush_interval=3600)
    logger.addHandler(handler)
    for i in range(7):
        logger.info("Signup", extra=_signup(f"u{i}"))
    assert handler.flush(5)
    assert len(server.messages) == 7


def test_flush_with_nothing_queued_is_immediate(make_handler: MakeHandler, server: SegmentServer) -> None:
    """flush() with nothing queued returns True and sends no request."""
    assert make_handler().flush(1)
    assert server.requests == []


def test_batch_is_split_to_stay_under_byte_budget(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """Messages totalling over 500 KB go out in several requests, each under max_batch_bytes."""
    handler = make_handler(flush_interval=3600, gzip=False)
    logger.addHandler(handler)
    for i in range(40):
        logger.info("Big", extra=_signup(f"u{i}", blob="x" * 30_000))
    assert handler.flush(10)
    assert len(server.messages) == 40
    sizes = [int(r.headers["content-length"]) for r in server.requests]
    assert len(sizes) >= 3
    assert max(sizes) <= 475_000


def test_close_delivers_and_is_idempotent(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """close() delivers what is queued; a second close() is harmless."""
    handler = make_handler(flush_interval=3600)
    logger.addHandler(handler)
    logger.info("Signup", extra=_signup())
    handler.close()
    handler.close()
    assert len(server.messages) == 1


# -- retries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inject",
    [
        lambda s: s.fail_next(2, status=500),
        lambda s: s.fail_next(2, status=429, retry_after="0"),
        lambda s: s.drop_next(2),
    ],
    ids=["5xx", "429", "dropped-connection"],
)
def test_retried_until_delivered(
    inject: Callable[[SegmentServer], None],
    make_handler: MakeHandler,
    server: SegmentServer,
    logger: logging.Logger,
) -> None:
    """5xx, 429 and dropped connections are retried, and the batch then arrives once."""
    inject(server)
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("Signup", extra=_signup())
    assert handler.flush(10)
    assert len(server.messages) == 1
    assert len(server.requests) == 3
    assert handler.stats() | {"queued": 0} == {
        "queued": 0,
        "sent": 1,
        "dropped": 0,
        "failed": 0,
        "retried": 2,
        "invalid": 0,
        "spooled": 0,
    }


def test_400_is_not_retried(make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger) -> None:
    """A 400 is not retried; the batch goes to on_error and counts as failed."""
    server.fail_next(1, status=400)
    errors = ErrorRecorder()
    handler = make_handler(on_error=errors)
    logger.addHandler(handler)
    logger.info("Signup", extra=_signup())
    assert handler.flush(5)
    assert len(server.requests) == 1
    ((exc, messages),) = errors.calls
    assert "400" in str(exc)
    assert messages[0]["event"] == "Signup"
    assert handler.stats()["failed"] == 1


def test_retry_budget_gives_up_and_reports(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """Past max_retry_time a failing batch goes to on_error instead of being retried forever."""
    server.fail_next(1000, status=503, retry_after="0.05")
    errors = ErrorRecorder()
    handler = make_handler(on_error=errors, max_retry_time=0.3)
    logger.addHandler(handler)
    logger.info("Signup", extra=_signup())
    assert handler.flush(5)
    assert "retry budget" in str(errors.calls[0][0])
    assert handler.stats()["failed"] == 1


# -- bad input ---------------------------------------------------------------------------

BAD_INPUT = [
    ({"properties": {}}, "user_id or anonymous_id"),
    ({"type": "purchase", "user_id": "u"}, "unknown message type"),
    ({"user_id": "u", "properties": ["a"]}, "properties must be a mapping"),
    ({"type": "group", "user_id": "u"}, "group_id is required"),
    ({"user_id": "u", "properties": {"blob": "x" * 33_000}}, "Segment accepts at most 32,000"),
    ("not a mapping", "must be a mapping"),
]


@pytest.mark.parametrize(("metadata", "problem"), BAD_INPUT)
def test_bad_input_is_reported_and_others_still_go_out(
    metadata: Any, problem: str, make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """Invalid metadata goes to on_error naming the problem, without raising; other events are sent."""
    errors = ErrorRecorder()
    handler = make_handler(on_error=errors)
    logger.addHandler(handler)
    logger.info("Before", extra=_signup())
    logger.info("Bad", extra={"segment": metadata})
    logger.info("After", extra=_signup())
    assert handler.flush(5)
    assert [m["event"] for m in server.messages] == ["Before", "After"]
    ((exc, _),) = errors.calls
    assert isinstance(exc, InvalidMessage)
    assert problem in str(exc)
    assert handler.stats()["invalid"] == 1


def test_circular_properties_are_reported(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """A self-referencing properties dict is reported as circular, naming the field."""
    errors = ErrorRecorder()
    handler = make_handler(on_error=errors)
    logger.addHandler(handler)
    loop: dict[str, Any] = {}
    loop["me"] = loop
    logger.info("Loop", extra={"segment": {"user_id": "u", "properties": loop}})
    assert handler.flush(5)
    assert "properties contains a circular reference" in str(errors.calls[0][0])


def test_oversize_message_is_message_too_large(make_handler: MakeHandler, logger: logging.Logger) -> None:
    """A message over 32 KB is reported as MessageTooLarge."""
    errors = ErrorRecorder()
    handler = make_handler(on_error=errors)
    logger.addHandler(handler)
    logger.info("Big", extra=_signup(blob="x" * 40_000))
    assert handler.flush(5)
    assert isinstance(errors.calls[0][0], MessageTooLarge)


def test_bad_input_without_on_error_is_logged(
    make_handler: MakeHandler, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """Without on_error, invalid events are logged on `segment_logging`, naming logger and problem."""
    handler = make_handler()
    logger.addHandler(handler)
    with caplog.at_level(logging.ERROR, logger="segment_logging"):
        logger.info("Bad", extra={"segment": {"properties": {}}})
        assert handler.flush(5)
    (record,) = [r for r in caplog.records if r.name == "segment_logging"]
    assert "user_id or anonymous_id" in record.getMessage()
    assert logger.name in record.getMessage()


# -- threads, exit, secrets -----------------------------------------------------------------


def test_eight_threads_nothing_lost_or_duplicated(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """8 threads logging at once: every event arrives exactly once."""
    handler = make_handler()
    logger.addHandler(handler)
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        for i in range(500):
            logger.info("Signup", extra=_signup(f"t{n}-{i}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert handler.flush(10)
    users = sorted(m["userId"] for m in server.messages)
    assert users == sorted(f"t{n}-{i}" for n in range(8) for i in range(500))
    assert len(set(server.message_ids())) == 4000
    assert handler.stats()["sent"] == 4000


def test_delivery_at_interpreter_exit(script: Script, server: SegmentServer) -> None:
    """Events still queued at normal exit are delivered without any flush call."""
    status, _, stderr = finish(script("exit_delivery.py", "5"))
    assert status == 0, stderr
    assert len(server.messages) == 250
    assert len(set(server.message_ids())) == 250


def test_exit_is_bounded_when_segment_never_answers(script: Script, black_hole: str) -> None:
    """With Segment hanging, exit waits about shutdown_timeout, not the request timeout, and reports it."""
    started = time.monotonic()
    process = script(
        "exit_delivery.py", "0.5", extra_env={"SEGMENT_HOST": black_hole, "SEGMENT_WRITE_KEY": "key"}
    )
    status, _, stderr = finish(process)
    elapsed = time.monotonic() - started
    assert status == 0, stderr
    assert elapsed < 0.5 + 4, f"exit took {elapsed:.1f}s"
    assert "not delivered" in stderr
    assert "key" not in stderr.replace("segment", "")


def test_write_key_is_never_shown(
    server: SegmentServer, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """The write key appears in no repr and in no diagnostic the handler logs."""
    secret = "sk_live_0123456789abcdef"
    handler = SegmentHandler(secret, host=server.url, shutdown_timeout=1)
    logger.addHandler(handler)
    with caplog.at_level(logging.DEBUG):
        logger.info("Signup", extra=_signup())  # the server answers 401 to this key
        assert handler.flush(5)
    handler.close()
    shown = repr(handler) + str(handler) + repr(handler._queue) + repr(handler._queue._key) + caplog.text
    assert "401" in caplog.text
    assert secret not in shown


# -- dictConfig ---------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["class", "()"])
def test_dictconfig_with_every_option(style: str, server: SegmentServer) -> None:
    """The handler is configured from dictConfig with `class` or `()`, every option as a key."""
    errors = ErrorRecorder()
    entry: dict[str, Any] = {
        "level": "INFO",
        "write_key": server.write_key,
        "host": server.url,
        "max_batch_size": 50,
        "max_batch_bytes": 400_000,
        "flush_interval": 0.2,
        "max_queue_size": 1000,
        "gzip": False,
        "timeout": 3.0,
        "shutdown_timeout": 2.0,
        "max_retry_time": 10.0,
        "on_error": errors,
        "transport": None,
    }
    entry[style] = "segment_logging.SegmentHandler" if style == "class" else SegmentHandler
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"segment": entry},
            "loggers": {"test.dictconfig": {"handlers": ["segment"], "level": "INFO", "propagate": False}},
        }
    )
    log = logging.getLogger("test.dictconfig")
    (handler,) = log.handlers
    try:
        assert isinstance(handler, SegmentHandler)
        assert handler.level == logging.INFO
        assert handler._queue.settings.max_batch_size == 50
        log.info("Signup", extra=_signup())
        log.debug("Below level", extra=_signup())
        assert handler.flush(5)
        assert [m["event"] for m in server.messages] == ["Signup"]
        assert "content-encoding" not in server.requests[0].headers
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        log.handlers.clear()


def test_reports_are_shown_after_dictconfig_disabled_existing_loggers(
    make_handler: MakeHandler,
    server: SegmentServer,
    logger: logging.Logger,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """dictConfig and fileConfig disable every logger that exists before them unless told not to
    (disable_existing_loggers is true by default), the library's own among them: its reports of
    events it could not send still reach stderr."""
    library = logging.getLogger("segment_logging")
    library.disabled = True  # what dictConfig({"version": 1, ...}) does to it
    try:
        handler = make_handler()
        logger.addHandler(handler)
        logger.info("Bad", extra={"segment": {"properties": {"plan": "pro"}}})  # no user_id
        assert handler.flush(5)
    finally:
        library.disabled = False
    assert "user_id or anonymous_id" in capsys.readouterr().err


# -- found in review -----------------------------------------------------------------------------


def test_unknown_option_is_named_with_a_suggestion() -> None:
    """A misspelled option fails naming SegmentHandler, the option and the nearest valid one."""
    with pytest.raises(
        TypeError, match=r"SegmentHandler got an unknown option 'flush_intervall'.*'flush_interval'"
    ):
        SegmentHandler("key", flush_intervall=1)  # type: ignore[call-arg]


def test_host_with_a_path_is_refused() -> None:
    """host is the base URL: one ending in /v1/batch is refused at construction, naming host."""
    with pytest.raises(ValueError, match="host must be the API's base URL"):
        SegmentHandler("key", host="https://api.segment.io/v1/batch")


@pytest.mark.parametrize(
    ("text", "expected"), [("false", False), ("True", True), ("0", False), ("yes", True)]
)
def test_gzip_from_config_text(
    text: str, expected: bool, make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """gzip accepts true/false text, as INI and YAML configs give it: the request is compressed or not."""
    handler = make_handler(gzip=text)
    logger.addHandler(handler)
    logger.info("Signup", extra=_signup())
    assert handler.flush(5)
    (request,) = server.requests
    assert (request.headers.get("content-encoding") == "gzip") is expected


def test_two_handlers_for_one_source_send_once(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """Handlers for the same source on a logger and on its parent send an event once, not twice."""
    parent = logging.getLogger("test.twice")
    child = logging.getLogger("test.twice.child")
    child.setLevel(logging.INFO)
    first, second = make_handler(), make_handler()
    parent.addHandler(first)
    child.addHandler(second)
    try:
        child.info("Signup", extra=_signup())
        assert first.flush(5)
        assert second.flush(5)
    finally:
        parent.removeHandler(first)
        child.removeHandler(second)
    assert len(server.messages) == 1


def test_retries_of_a_failed_batch_are_counted(
    make_handler: MakeHandler, server: SegmentServer, logger: logging.Logger
) -> None:
    """stats()['retried'] counts the retries of a batch that was finally given up, too."""
    server.fail_next(1000, status=503, retry_after="0")
    handler = make_handler(on_error=ErrorRecorder(), max_retry_time=0.2)
    logger.addHandler(handler)
    logger.info("Signup", extra=_signup())
    assert handler.flush(5)
    stats = handler.stats()
    assert stats["failed"] == 1
    assert stats["retried"] == len(server.requests) - 1 > 0


def test_each_distinct_problem_is_reported(
    make_handler: MakeHandler, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """Different invalid events are each reported; a repeat of the same problem is summarised at close."""
    handler = make_handler()
    logger.addHandler(handler)
    with caplog.at_level(logging.ERROR, logger="segment_logging"):
        logger.info("NoUser", extra={"segment": {"properties": {}}})
        logger.info("Typo", extra={"segment": {"user_id": "u", "propertys": {}}})
        logger.info("NoUserAgain", extra={"segment": {"properties": {}}})
        assert handler.flush(5)
        handler.close()
    texts = [r.getMessage() for r in caplog.records if r.name == "segment_logging"]
    assert any("user_id or anonymous_id" in t for t in texts)
    assert any("'propertys'" in t for t in texts)
    assert any("1 more invalid event not sent" in t for t in texts)
