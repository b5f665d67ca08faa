"""Batching without logging (the Rust crate's API): Batcher, Batch, AutoBatcher, AsyncAutoBatcher."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from segment_logging import (
    Alias,
    AsyncAutoBatcher,
    AsyncHttpClient,
    AutoBatcher,
    BaseMessage,
    Batch,
    Batcher,
    DeliveryError,
    Group,
    HttpClient,
    Identify,
    MessageTooLarge,
    Page,
    Screen,
    Track,
    __version__,
)
from segment_logging._batch import MAX_BATCH_SIZE, MAX_MESSAGE_BYTES, encode_message
from segment_logging.testing import SegmentServer

LIBRARY = {"name": "segment-logging", "version": __version__}


@pytest.fixture
def make_auto(server: SegmentServer) -> Iterator[Callable[..., AutoBatcher]]:
    """Build AutoBatchers sending to ``server``; each is closed after the test."""
    made: list[AutoBatcher] = []

    def make(*, max_retry_time: float = 5.0, **batcher_options: Any) -> AutoBatcher:
        client = HttpClient(server.url, max_retry_time=max_retry_time)
        auto = AutoBatcher(client, Batcher(**batcher_options), server.write_key)
        made.append(auto)
        return auto

    yield make
    for auto in made:
        # A test that left a failing batch behind has already checked what it wanted.
        with contextlib.suppress(DeliveryError):
            auto.close()


def _track(index: int = 0, **fields: Any) -> Track:
    return Track(user_id=f"user-{index}", event="Example", properties={"i": index}, **fields)


def _track_of_size(size: int) -> Track:
    """A track whose encoded JSON is exactly ``size`` bytes (fixed id and timestamp)."""
    fixed = {"user_id": "u", "event": "E", "message_id": "m", "timestamp": 0.0}
    overhead = len(encode_message(Track(properties={"p": ""}, **fixed)))  # type: ignore[arg-type]
    return Track(properties={"p": "x" * (size - overhead)}, **fixed)  # type: ignore[arg-type]


# -- the six message types on the wire -------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        (
            Track(user_id="u1", event="Signup", properties={"plan": "pro"}),
            {"type": "track", "userId": "u1", "event": "Signup", "properties": {"plan": "pro"}},
        ),
        (
            Identify(user_id="u1", traits={"email": "ada@example.com"}),
            {"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com"}},
        ),
        (
            Page(anonymous_id="a1", name="Pricing", category="Docs", properties={"path": "/p"}),
            {"type": "page", "anonymousId": "a1", "name": "Pricing", "category": "Docs"},
        ),
        (
            Screen(user_id="u1", name="Settings", properties={"tab": 2}),
            {"type": "screen", "userId": "u1", "name": "Settings", "properties": {"tab": 2}},
        ),
        (
            Group(user_id="u1", group_id="acme", traits={"seats": 3}),
            {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"seats": 3}},
        ),
        (
            Alias(user_id="u1", previous_id="a1"),
            {"type": "alias", "userId": "u1", "previousId": "a1"},
        ),
    ],
    ids=["track", "identify", "page", "screen", "group", "alias"],
)
def test_each_message_type_arrives_with_spec_fields(
    server: SegmentServer,
    make_auto: Callable[..., AutoBatcher],
    message: BaseMessage,
    fields: dict[str, Any],
) -> None:
    """Each of the six types reaches Segment with camelCase fields, messageId, context.library and sentAt."""
    auto = make_auto()
    auto.push(message)
    auto.flush()
    [wire] = server.messages
    assert {key: wire[key] for key in fields} == fields
    assert wire["messageId"] == message.message_id
    assert wire["context"]["library"] == LIBRARY
    assert datetime.datetime.fromisoformat(wire["timestamp"]).tzinfo is not None
    [body] = server.batches()
    assert datetime.datetime.fromisoformat(body["sentAt"]).tzinfo is not None


# -- Batcher: pure batching rules --------------------------------------------------------------


@pytest.mark.parametrize("max_batch_size", [1, 3, MAX_BATCH_SIZE])
def test_push_hands_back_the_message_past_max_batch_size(max_batch_size: int) -> None:
    """Exactly max_batch_size messages are accepted (None); the next is handed back, the same object."""
    batcher = Batcher(max_batch_size=max_batch_size, max_batch_bytes=500_000)
    for index in range(max_batch_size):
        # Short ids keep 2,500 messages inside the byte budget, so the count cap is what stops them.
        assert batcher.push(Track(user_id="u", event="E", message_id=f"m{index}")) is None
    extra = _track()
    assert batcher.push(extra) is extra
    assert len(batcher) == max_batch_size


@pytest.mark.parametrize("context", [None, {"app": {"name": "shop"}}])
@pytest.mark.parametrize(("slack", "accepted"), [(0, True), (-1, False)])
def test_byte_budget_counts_the_whole_request_body(
    server: SegmentServer, context: dict[str, Any] | None, slack: int, accepted: bool
) -> None:
    """A message that brings the body, wrapper and context included, to exactly max_batch_bytes is
    accepted and the body sent is that size; one byte less of budget and it is handed back."""
    first, second = _track_of_size(20_000), _track_of_size(20_000)
    measure = Batcher(context, max_batch_bytes=500_000)
    measure.push(first)
    measure.push(second)
    exact = len(measure.into_batch().body())

    batcher = Batcher(context, max_batch_bytes=exact + slack)
    assert batcher.push(first) is None
    assert (batcher.push(second) is None) is accepted
    if accepted:
        batch = batcher.into_batch()
        assert len(batch.body()) == exact
        with HttpClient(server.url, gzip=False) as client:
            client.send(server.write_key, batch)
        assert server.requests[0].headers["content-length"] == str(exact)
        assert server.batches()[0].get("context") == context


@pytest.mark.parametrize(("size", "too_large"), [(MAX_MESSAGE_BYTES, False), (MAX_MESSAGE_BYTES + 1, True)])
def test_message_size_limit_is_32000_bytes(size: int, too_large: bool) -> None:
    """push() accepts a message of exactly 32,000 bytes encoded and raises MessageTooLarge one byte over."""
    batcher = Batcher()
    if too_large:
        with pytest.raises(MessageTooLarge, match="32,001 bytes"):
            batcher.push(_track_of_size(size))
        assert len(batcher) == 0
    else:
        assert batcher.push(_track_of_size(size)) is None


def test_batcher_recovers_after_message_too_large() -> None:
    """A message over 32 KB raises without counting toward the budget: a batch sized for exactly two
    messages still takes both around the rejected one."""
    first, second = _track_of_size(20_000), _track_of_size(20_000)
    measure = Batcher()
    measure.push(first)
    measure.push(second)
    batcher = Batcher(max_batch_bytes=len(measure.into_batch().body()))
    assert batcher.push(first) is None
    with pytest.raises(MessageTooLarge):
        batcher.push(_track_of_size(MAX_MESSAGE_BYTES + 1))
    assert batcher.push(second) is None
    assert [m["properties"] for m in batcher.into_batch().messages] == [
        first.properties,
        second.properties,
    ]


def test_into_batch_returns_the_payload_and_resets() -> None:
    """into_batch() gives the messages, the batcher's context and a fresh sentAt, and empties the batcher."""
    batcher = Batcher({"ip": "10.0.0.1"})
    batcher.push(_track(1))
    batcher.push(_track(2))
    batch = batcher.into_batch()
    assert len(batch) == 2
    assert len(batcher) == 0
    assert [m["userId"] for m in batch.messages] == ["user-1", "user-2"]
    body = json.loads(batch.body())
    assert body["batch"] == batch.messages
    assert body["context"] == {"ip": "10.0.0.1"}
    sent_at = datetime.datetime.fromisoformat(body["sentAt"])
    assert abs(sent_at - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(seconds=60)
    assert len(batcher.into_batch()) == 0


def test_push_stamps_a_timestamp_without_touching_the_message() -> None:
    """A message without a timestamp gets the time of push() on the wire; the message object keeps None,
    and a message with its own timestamp keeps it."""
    batcher = Batcher()
    before = datetime.datetime.now(datetime.timezone.utc)
    unstamped = _track()
    batcher.push(unstamped)
    batcher.push(_track(timestamp="2024-05-01T12:00:00Z"))
    wire = batcher.into_batch().messages
    stamped_at = datetime.datetime.fromisoformat(wire[0]["timestamp"])
    assert (
        before - datetime.timedelta(milliseconds=1)
        <= stamped_at
        <= datetime.datetime.now(datetime.timezone.utc)
    )
    assert unstamped.timestamp is None
    assert wire[1]["timestamp"] == "2024-05-01T12:00:00.000+00:00"


def test_batcher_context_is_copied() -> None:
    """The batch context is taken when the Batcher is made: later changes to the caller's dict do not leak."""
    context = {"ip": "10.0.0.1"}
    batcher = Batcher(context)
    context["ip"] = "changed"
    batcher.push(_track())
    assert json.loads(batcher.into_batch().body())["context"] == {"ip": "10.0.0.1"}


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_batch_size": MAX_BATCH_SIZE + 1}, "max_batch_size"),
        ({"max_batch_size": True}, "max_batch_size"),
        ({"max_batch_bytes": 500_001}, "max_batch_bytes"),
        ({"max_batch_bytes": MAX_MESSAGE_BYTES}, "max_batch_bytes"),
        ({"context": ["not", "a", "mapping"]}, "context"),
        ({"context": {"padding": "x" * 470_000}}, "context"),
    ],
)
def test_batcher_rejects_bad_options(options: dict[str, Any], name: str) -> None:
    """Out-of-range or mistyped options raise ValueError naming the option."""
    with pytest.raises(ValueError, match=name):
        Batcher(**options)


def test_push_rejects_what_is_not_a_message() -> None:
    """push() of a dict raises TypeError listing the message classes."""
    with pytest.raises(TypeError, match="Track, Identify"):
        Batcher().push({"type": "track"})  # type: ignore[arg-type]


def test_batch_repr_and_len() -> None:
    """A Batch reports its size; an empty one is falsy by len()."""
    batcher = Batcher()
    assert len(batcher.into_batch()) == 0
    batcher.push(_track())
    batch = batcher.into_batch()
    assert isinstance(batch, Batch)
    assert repr(batch).startswith("<Batch of 1 messages, ")


# -- AutoBatcher ------------------------------------------------------------------------------


def test_autobatcher_sends_a_full_batch_inline(
    server: SegmentServer, make_auto: Callable[..., AutoBatcher]
) -> None:
    """push() sends the full batch before buffering the message that did not fit; flush() sends the rest."""
    auto = make_auto(max_batch_size=3)
    for index in range(7):
        auto.push(_track(index))
    assert [len(batch["batch"]) for batch in server.batches()] == [3, 3]
    auto.flush()
    assert [len(batch["batch"]) for batch in server.batches()] == [3, 3, 1]
    assert [m["userId"] for m in server.messages] == [f"user-{i}" for i in range(7)]


def test_empty_flush_sends_nothing(server: SegmentServer, make_auto: Callable[..., AutoBatcher]) -> None:
    """flush() with nothing buffered makes no request, also right after a flush that sent."""
    auto = make_auto()
    auto.flush()
    assert server.requests == []
    auto.push(_track())
    auto.flush()
    auto.flush()
    assert len(server.requests) == 1


def test_autobatcher_retries_a_500(server: SegmentServer, make_auto: Callable[..., AutoBatcher]) -> None:
    """A 500 is retried with the same messageId until Segment accepts the batch."""
    auto = make_auto()
    message = _track()
    auto.push(message)
    server.fail_next(2, status=500)
    auto.flush()
    assert [request.status for request in server.requests] == [500, 500, 200]
    assert server.message_ids() == [message.message_id]


def test_batch_that_failed_to_send_is_kept(
    server: SegmentServer, make_auto: Callable[..., AutoBatcher]
) -> None:
    """When retries are spent, flush() raises DeliveryError and the next flush sends the same messages."""
    auto = make_auto(max_retry_time=0)
    message = _track()
    auto.push(message)
    server.fail_next(1, status=503)
    with pytest.raises(DeliveryError) as raised:
        auto.flush()
    assert raised.value.status == 503
    auto.flush()
    assert server.message_ids() == [message.message_id]


def test_batch_segment_rejects_is_dropped(
    server: SegmentServer, make_auto: Callable[..., AutoBatcher]
) -> None:
    """A batch answered with a non-retryable 4xx raises DeliveryError and is not sent again."""
    auto = make_auto()
    auto.push(_track())
    server.fail_next(1, status=400)
    with pytest.raises(DeliveryError) as raised:
        auto.flush()
    assert raised.value.status == 400
    auto.flush()
    assert len(server.requests) == 1


def test_push_whose_send_fails_does_not_buffer_the_message(
    server: SegmentServer, make_auto: Callable[..., AutoBatcher]
) -> None:
    """When the inline send of a full batch fails, push() raises and its message is not buffered;
    the full batch is kept and goes out on the next send."""
    auto = make_auto(max_batch_size=1, max_retry_time=0)
    kept, refused = _track(1), _track(2)
    auto.push(kept)
    server.fail_next(1, status=500)
    with pytest.raises(DeliveryError):
        auto.push(refused)
    auto.flush()
    assert server.message_ids() == [kept.message_id]


def test_handed_back_message_keeps_its_push_time(
    server: SegmentServer, make_auto: Callable[..., AutoBatcher]
) -> None:
    """The message that filled the batch is stamped when push() was called, not after the slow send."""
    auto = make_auto(max_batch_size=1)
    auto.push(_track(1))
    server.delay_next(1, seconds=0.5)
    called = datetime.datetime.now(datetime.timezone.utc)
    auto.push(_track(2))
    auto.flush()
    stamped = datetime.datetime.fromisoformat(server.messages[1]["timestamp"])
    assert stamped - called < datetime.timedelta(seconds=0.4)


def test_close_flushes_and_is_idempotent(server: SegmentServer) -> None:
    """close() sends what is buffered; a second close() is harmless; push() afterwards raises."""
    auto = AutoBatcher(HttpClient(server.url), Batcher(), server.write_key)
    auto.push(_track())
    auto.close()
    auto.close()
    assert len(server.messages) == 1
    with pytest.raises(RuntimeError, match="closed"):
        auto.push(_track())


def test_autobatcher_as_context_manager(server: SegmentServer) -> None:
    """Leaving a with block flushes."""
    with AutoBatcher(HttpClient(server.url), Batcher(), server.write_key) as auto:
        auto.push(_track())
    assert len(server.messages) == 1


def test_write_key_is_in_no_repr(server: SegmentServer) -> None:
    """Neither batcher's repr shows the write key."""
    key = "wk-secret-123"
    auto = AutoBatcher(HttpClient(server.url), Batcher(), key)
    async_auto = AsyncAutoBatcher(AsyncHttpClient(server.url), Batcher(), key)
    for text in (repr(auto), str(auto), repr(async_auto), str(async_auto)):
        assert key not in text
    assert "0 messages buffered" in repr(auto)


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda url: AutoBatcher(AsyncHttpClient(url), Batcher(), "k"), "client"),  # type: ignore[arg-type]
        (lambda url: AutoBatcher(HttpClient(url), object(), "k"), "batcher"),  # type: ignore[arg-type]
        (lambda url: AutoBatcher(HttpClient(url), Batcher(), ""), "write_key"),
        (lambda url: AsyncAutoBatcher(HttpClient(url), Batcher(), "k"), "client"),  # type: ignore[arg-type]
        (
            lambda url: AsyncAutoBatcher(AsyncHttpClient(url), Batcher(), "k", flush_interval=0),
            "flush_interval",
        ),
    ],
)
def test_auto_batchers_reject_bad_arguments(
    server: SegmentServer, build: Callable[[str], object], name: str
) -> None:
    """A wrong client or batcher, an empty write key or a bad flush_interval raise ValueError naming it."""
    with pytest.raises(ValueError, match=name):
        build(server.url)


# -- message classes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "field"),
    [
        (lambda: Track(event="E"), ValueError, "user_id or anonymous_id"),
        (lambda: Track(user_id="u", event=""), ValueError, "event"),
        (lambda: Track(user_id="u", event="E", properties=[1]), TypeError, "properties"),  # type: ignore[arg-type]
        (lambda: Identify(user_id="u", traits="x"), TypeError, "traits"),  # type: ignore[arg-type]
        (lambda: Page(user_id="u", name=3), TypeError, "name"),  # type: ignore[arg-type]
        (lambda: Screen(user_id="u", category=b"c"), TypeError, "category"),  # type: ignore[arg-type]
        (lambda: Group(user_id="u", group_id=""), ValueError, "group_id"),
        (lambda: Alias(user_id="u", previous_id=None), ValueError, "previous_id"),  # type: ignore[arg-type]
        (lambda: Track(user_id="u", event="E", context=1), TypeError, "context"),  # type: ignore[arg-type]
        (lambda: Track(user_id="u", event="E", integrations="x"), TypeError, "integrations"),  # type: ignore[arg-type]
        (lambda: Track(user_id="u", event="E", timestamp="soon"), ValueError, "timestamp"),
        (lambda: Track(user_id="u", event="E", message_id="m" * 101), ValueError, "message_id"),
    ],
)
def test_messages_validate_at_construction(
    build: Callable[[], BaseMessage], error: type[Exception], field: str
) -> None:
    """Building a message with a missing or mistyped field raises ValueError/TypeError naming the field."""
    with pytest.raises(error, match=field):
        build()


def test_messages_never_mutate_the_callers_dicts(
    server: SegmentServer, make_auto: Callable[..., AutoBatcher]
) -> None:
    """The caller's context and properties stay as given through push and send; context.library is added
    only on the wire, and changes made after construction do not reach the message."""
    context = {"ip": "10.0.0.1"}
    properties = {"plan": "pro"}
    message = Track(user_id="u1", event="Signup", properties=properties, context=context)
    properties["plan"] = "changed after construction"
    auto = make_auto()
    auto.push(message)
    auto.flush()
    assert context == {"ip": "10.0.0.1"}
    assert properties == {"plan": "changed after construction"}
    [wire] = server.messages
    assert wire["context"] == {"ip": "10.0.0.1", "library": LIBRARY}
    assert wire["properties"] == {"plan": "pro"}


# -- AsyncAutoBatcher -------------------------------------------------------------------------


def _async_auto(server: SegmentServer, **options: Any) -> AsyncAutoBatcher:
    client = AsyncHttpClient(server.url, max_retry_time=options.pop("max_retry_time", 5.0))
    batcher = Batcher(max_batch_size=options.pop("max_batch_size", 100))
    return AsyncAutoBatcher(client, batcher, server.write_key, **options)


def test_async_push_flush_aclose(server: SegmentServer) -> None:
    """Under asyncio.run, await push/flush delivers, an empty flush sends nothing, aclose is idempotent."""

    async def main() -> None:
        auto = _async_auto(server)
        await auto.flush()
        assert server.requests == []
        await auto.push(_track())
        await auto.flush()
        assert len(server.messages) == 1
        await auto.aclose()
        await auto.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await auto.push(_track())

    asyncio.run(main())
    assert len(server.requests) == 1


def test_async_full_batch_is_sent_inline(server: SegmentServer) -> None:
    """await push() sends the full batch before buffering the message that did not fit."""

    async def main() -> None:
        auto = _async_auto(server, max_batch_size=2)
        for index in range(3):
            await auto.push(_track(index))
        assert [len(batch["batch"]) for batch in server.batches()] == [2]
        await auto.aclose()

    asyncio.run(main())
    assert [len(batch["batch"]) for batch in server.batches()] == [2, 1]


def test_async_with_flushes_on_the_interval(server: SegmentServer) -> None:
    """Inside async with, a pushed message is delivered by the interval flush without any flush() call."""

    async def main() -> None:
        async with _async_auto(server, flush_interval=0.05) as auto:
            await auto.push(_track())
            assert await asyncio.to_thread(server.wait_for, 1, 5.0)

    asyncio.run(main())
    assert len(server.requests) == 1


def test_async_with_flushes_at_the_end_of_the_block(server: SegmentServer) -> None:
    """Leaving async with flushes what is buffered even when the interval has not come round."""

    async def main() -> None:
        async with _async_auto(server, flush_interval=60) as auto:
            await auto.push(_track())
            assert server.requests == []

    asyncio.run(main())
    assert len(server.messages) == 1


def test_async_send_does_not_block_the_loop(server: SegmentServer) -> None:
    """While a send waits on a slow Segment, other tasks on the loop keep running."""

    async def main() -> None:
        auto = _async_auto(server)
        await auto.push(_track())
        server.delay_next(1, seconds=0.5)
        flushing = asyncio.create_task(auto.flush())
        ran = asyncio.Event()
        asyncio.get_running_loop().call_soon(ran.set)
        await asyncio.wait_for(ran.wait(), 5)
        assert not flushing.done()
        await flushing
        await auto.aclose()

    asyncio.run(main())
    assert len(server.messages) == 1


def test_async_interval_and_push_sends_do_not_interleave(server: SegmentServer) -> None:
    """Concurrent pushes racing the interval flush deliver every message exactly once, in full batches."""

    async def main() -> None:
        async with _async_auto(server, flush_interval=0.001, max_batch_size=5) as auto:
            await asyncio.gather(*(auto.push(_track(index)) for index in range(60)))

    asyncio.run(main())
    assert sorted(m["userId"] for m in server.messages) == sorted(f"user-{i}" for i in range(60))
    assert all(len(batch["batch"]) <= 5 for batch in server.batches())


def test_async_interval_failure_is_reported_and_kept(
    server: SegmentServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed interval flush is reported as a warning and its batch goes out on a later interval."""

    async def main() -> None:
        async with _async_auto(server, flush_interval=0.05, max_retry_time=0) as auto:
            server.fail_next(1, status=503)
            await auto.push(_track())
            assert await asyncio.to_thread(server.wait_for, 1, 5.0)

    with caplog.at_level(logging.WARNING, logger="segment_logging"):
        asyncio.run(main())
    assert [request.status for request in server.requests] == [503, 200]
    assert any("1 messages kept for the next flush" in r.getMessage() for r in caplog.records)


class _FailsOnceTransport(httpx.AsyncBaseTransport):
    """A real httpx transport whose first request fails with an error that is not an httpx one."""

    def __init__(self) -> None:
        self._real = httpx.AsyncHTTPTransport()
        self._failed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self._failed:
            self._failed = True
            raise RuntimeError("broken transport")
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


class _Signal(logging.Handler):
    """Sets an Event when a record at ERROR or above arrives."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.set()


def test_async_unexpected_transport_error_is_retried(server: SegmentServer) -> None:
    """An exception that is not an httpx error, raised inside one attempt (a broken codec in a
    forked child, a custom transport's bug), is a retryable failure: the batch is delivered by
    the retry, and no error is reported."""
    signal = _Signal()
    reports = logging.getLogger("segment_logging")
    reports.addHandler(signal)
    client = AsyncHttpClient(server.url, transport=_FailsOnceTransport())

    async def main() -> None:
        async with AsyncAutoBatcher(client, Batcher(), server.write_key, flush_interval=0.01) as auto:
            await auto.push(_track())
            assert await asyncio.to_thread(server.wait_for, 1, 5.0)

    try:
        asyncio.run(main())
    finally:
        reports.removeHandler(signal)
    assert len(server.requests) == 1
    assert not signal.seen.is_set()


# -- hardening: options, absurd Retry-After, cancelled aclose, a second event loop ---------------


@pytest.mark.parametrize(
    ("build", "option"),
    [
        # Wrong types on purpose: callers without a type checker get a ValueError naming the option.
        (lambda: Batcher(max_batch_size=float("inf")), "max_batch_size"),  # type: ignore[arg-type]
        (lambda: Batcher(max_batch_bytes="big"), "max_batch_bytes"),  # type: ignore[arg-type]
        (
            lambda: AsyncAutoBatcher(
                AsyncHttpClient("http://127.0.0.1:1"), Batcher(), "k", flush_interval=float("inf")
            ),
            "flush_interval",
        ),
        (lambda: AutoBatcher(HttpClient("http://127.0.0.1:1"), Batcher(), ""), "write_key"),
    ],
)
def test_batching_classes_refuse_invalid_options(build: Callable[[], object], option: str) -> None:
    """Batcher, AutoBatcher and AsyncAutoBatcher refuse a bad option with a ValueError naming it."""
    with pytest.raises(ValueError, match=option):
        build()


def test_flush_survives_a_retry_after_date_past_year_9999(server: SegmentServer) -> None:
    """A Retry-After date in the year 99999999999 neither raises out of AutoBatcher.flush nor fails
    the batch: it is a long server-directed wait, cut to the rate-limit budget, then a retry."""
    server.fail_next(1, status=429, retry_after="Fri, 31 Dec 99999999999 23:59:59 GMT")
    auto = AutoBatcher(HttpClient(server.url, max_rate_limit_time=0.2), Batcher(), server.write_key)
    auto.push(_track())
    auto.flush()
    auto.close()
    assert len(server.messages) == 1


def test_async_aclose_cancelled_by_a_timeout_keeps_and_reports_the_buffer(
    server: SegmentServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An aclose() cancelled by asyncio.wait_for leaves what it could not send buffered, says so,
    and a later aclose() delivers it."""

    async def main() -> None:
        auto = _async_auto(server)
        await auto.push(_track())
        server.pause()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(auto.aclose(), 0.05)
        assert "still buffered" in caplog.text
        with pytest.raises(RuntimeError, match="closed"):
            await auto.push(_track(1))  # closed to new messages all the same
        server.resume()
        await auto.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await auto.flush()

    with caplog.at_level(logging.WARNING, logger="segment_logging"):
        asyncio.run(main())
    assert server.wait_for(1, 5.0)
    assert {m["userId"] for m in server.messages} == {"user-0"}  # once, or resent with its messageId
    assert len({m["messageId"] for m in server.messages}) == 1


def test_async_flush_after_a_cancelled_aclose_delivers(server: SegmentServer) -> None:
    """After a cancelled aclose(), flush() still delivers what it left buffered."""

    async def main() -> None:
        auto = _async_auto(server)
        await auto.push(_track())
        server.pause()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(auto.aclose(), 0.05)
        server.resume()
        await auto.flush()
        await auto.aclose()

    asyncio.run(main())
    # The cancelled request may have reached the server before it was given up: a resend then
    # carries the same messageId, which Segment de-duplicates.
    assert len({m["messageId"] for m in server.messages}) == 1


def test_async_batcher_works_from_a_second_event_loop(server: SegmentServer) -> None:
    """One AsyncAutoBatcher used by two asyncio.run() calls (async with in both) delivers from both."""
    auto = _async_auto(server, flush_interval=60)

    async def first() -> None:
        await auto.push(_track(0))
        await auto.flush()

    async def second() -> None:
        async with auto:
            await auto.push(_track(1))

    asyncio.run(first())
    asyncio.run(second())
    assert sorted(m["userId"] for m in server.messages) == ["user-0", "user-1"]
