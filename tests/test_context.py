"""segment_logging.bind(): context both front ends merge under each event, per thread and per asyncio task."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import logging.handlers
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import segment_logging
from segment_logging import SegmentHandler, Track, bind, bound, clear_bound, unbind
from segment_logging.structlog import SegmentProcessor
from segment_logging.testing import SegmentServer

MakeHandler = Callable[..., SegmentHandler]


@pytest.fixture(autouse=True)
def _nothing_bound() -> Iterator[None]:
    """Every test starts and ends with nothing bound."""
    clear_bound()
    yield
    clear_bound()


def _deliver(handler: SegmentHandler, server: SegmentServer) -> list[dict[str, Any]]:
    assert handler.flush(timeout=10)
    return server.messages


# -- the API -----------------------------------------------------------------------------


def test_bind_as_context_manager_applies_inside_the_block_only(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """Inside `with bind(...)` a segment=True event takes the bound id and properties; after it, nothing."""
    handler = make_handler()
    logger.addHandler(handler)
    with bind(user_id="u1", plan="team") as binding:
        assert bound() == {"user_id": "u1", "plan": "team"}
        logger.info("Upgraded", extra={"segment": True, "seats": 3})
    assert bound() == {}
    assert repr(binding) == "<Binding reset>"
    [message] = _deliver(handler, server)
    assert message["userId"] == "u1"
    assert message["properties"] == {"plan": "team", "seats": 3}


def test_plain_bind_and_reset(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """bind() takes effect at once; reset() restores what was bound before; a second reset() does nothing."""
    handler = make_handler()
    logger.addHandler(handler)
    binding = bind(anonymous_id="a-1")
    assert repr(binding) == "<Binding active>"
    logger.info("Viewed", extra={"segment": True})
    binding.reset()
    binding.reset()
    assert bound() == {}
    [message] = _deliver(handler, server)
    assert message["anonymousId"] == "a-1"
    assert "userId" not in message


def test_nested_bind_adds_and_replaces_and_reset_restores() -> None:
    """A nested bind replaces the ids it names and adds properties; its reset restores the outer binding."""
    with bind(user_id="u1", anonymous_id="a-1", plan="pro", region="eu"):
        with bind(user_id=7, plan="team"):
            assert bound() == {"user_id": "7", "anonymous_id": "a-1", "plan": "team", "region": "eu"}
        assert bound() == {"user_id": "u1", "anonymous_id": "a-1", "plan": "pro", "region": "eu"}


def test_unbind_and_clear_bound() -> None:
    """unbind() removes the named ids and properties (unknown names ignored); clear_bound() removes all."""
    with bind(user_id="u1", anonymous_id="a-1", plan="pro", region="eu"):
        unbind("anonymous_id", "region", "not-bound")
        assert bound() == {"user_id": "u1", "plan": "pro"}
        unbind("user_id", "plan")
        assert bound() == {}
        bind(user_id="u2")
        clear_bound()
        assert bound() == {}
    assert bound() == {}


def test_ids_are_validated_when_bound() -> None:
    """bind() refuses an id that is neither a str nor an int, naming the field; 0 is a valid id."""
    with pytest.raises(TypeError, match="user_id must be a str or an int"):
        bind(user_id=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="anonymous_id"):
        bind(anonymous_id=True)
    with bind(user_id=0):
        assert bound() == {"user_id": "0"}


def test_reset_from_another_context_raises() -> None:
    """A Binding belongs to the context bind() ran in: resetting it elsewhere is a ValueError."""
    binding = bind(user_id="u1")
    try:
        with pytest.raises(ValueError, match="different Context"):
            contextvars.Context().run(binding.reset)
    finally:
        binding.reset()


def test_public_names() -> None:
    """bind, unbind, clear_bound, bound and Binding are importable from segment_logging."""
    assert segment_logging.Binding.__module__ == "segment_logging"
    assert isinstance(segment_logging.bind(), segment_logging.Binding)


# -- how a binding meets an event ------------------------------------------------------------


def test_explicit_ids_win_and_keep_their_own_identity(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """An event naming either id keeps its identity: no bound id is added, not even the other one."""
    handler = make_handler()
    logger.addHandler(handler)
    with bind(user_id="u1", anonymous_id="a-1"):
        logger.info("A", extra={"segment": True, "user_id": "admin"})
        logger.info("B", extra={"segment": {"anonymous_id": "a-2"}})
        logger.info("C", extra={"segment": {"user_id": None}})  # None names nobody: the bound ids fill in
    a, b, c = sorted(_deliver(handler, server), key=lambda m: m["event"])
    assert (a.get("userId"), a.get("anonymousId")) == ("admin", None)
    assert (b.get("userId"), b.get("anonymousId")) == (None, "a-2")
    assert (c.get("userId"), c.get("anonymousId")) == ("u1", "a-1")


def test_event_properties_win_over_bound_ones(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """Bound properties merge under the event's own (segment=True or a mapping): the event's keys win."""
    handler = make_handler()
    logger.addHandler(handler)
    metadata = {"user_id": "u1", "properties": {"plan": "enterprise"}}
    with bind(plan="team", request_id="r-1"):
        logger.info("A", extra={"segment": True, "user_id": "u1", "plan": "pro"})
        logger.info("B", extra={"segment": metadata})
    a, b = sorted(_deliver(handler, server), key=lambda m: m["event"])
    assert a["properties"] == {"plan": "pro", "request_id": "r-1"}
    assert b["properties"] == {"plan": "enterprise", "request_id": "r-1"}
    assert metadata == {"user_id": "u1", "properties": {"plan": "enterprise"}}, "the caller's dict is kept"


def test_message_types_take_ids_and_only_track_page_screen_take_properties(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """identify, group and alias take the bound ids, not the properties (never traits); pages take both."""
    handler = make_handler()
    logger.addHandler(handler)
    with bind(user_id="u1", request_id="r-1"):
        logger.info("Pricing", extra={"segment": {"type": "page"}})
        logger.info("Home", extra={"segment": {"type": "screen", "properties": {"tab": "feed"}}})
        logger.info("Identify", extra={"segment": {"type": "identify", "traits": {"email": "a@example.com"}}})
        logger.info("Joined", extra={"segment": {"type": "group", "group_id": "acme"}})
        logger.info("Merged", extra={"segment": {"type": "alias", "previous_id": "a-42"}})
    by_type = {m["type"]: m for m in _deliver(handler, server)}
    assert {m["userId"] for m in by_type.values()} == {"u1"}
    assert by_type["page"]["properties"] == {"request_id": "r-1"}
    assert by_type["screen"]["properties"] == {"request_id": "r-1", "tab": "feed"}
    assert by_type["identify"]["traits"] == {"email": "a@example.com"}
    assert by_type["group"]["traits"] == {}
    assert "properties" not in by_type["alias"]


def test_message_objects_are_sent_as_built(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """A Track(...) object is complete as built: the binding adds nothing to it."""
    handler = make_handler()
    logger.addHandler(handler)
    with bind(anonymous_id="a-1", request_id="r-1"):
        logger.info("Signup", extra={"segment": Track(user_id="u1", event="Signup")})
    [message] = _deliver(handler, server)
    assert "anonymousId" not in message
    assert message["properties"] == {}


def test_a_binding_alone_makes_an_event_valid(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """segment=True with no id in the call is valid when an id is bound (it would be reported otherwise)."""
    handler = make_handler()
    logger.addHandler(handler)
    with bind(user_id="u1"):
        logger.info("Upgraded", extra={"segment": True})
    [message] = _deliver(handler, server)
    assert message["userId"] == "u1"
    assert handler.stats()["invalid"] == 0


def test_bound_values_are_captured_on_the_calling_thread(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """Bound values JSON cannot hold are converted by the logging call, like the event's own values."""
    converted_on: list[int] = []

    class Cart:
        def __str__(self) -> str:
            converted_on.append(threading.get_ident())
            return "cart-3"

    handler = make_handler()
    logger.addHandler(handler)
    order = uuid.UUID(int=5)
    with bind(user_id="u1", order=order, cart=Cart()):
        logger.info("A", extra={"segment": True})
        logger.info("B", extra={"segment": {"event": "B"}})
    messages = sorted(_deliver(handler, server), key=lambda m: m["event"])
    assert [m["properties"] for m in messages] == [{"order": str(order), "cart": "cart-3"}] * 2
    assert converted_on == [threading.get_ident()] * 2


def test_structlog_processor_reads_the_binding(make_handler: MakeHandler, server: SegmentServer) -> None:
    """SegmentProcessor merges the binding the same way: ids when the event names none, properties under."""
    pytest.importorskip("structlog", reason="the structlog extra is not installed")
    import structlog

    processor = SegmentProcessor(server.write_key, host=server.url, shutdown_timeout=2.0)
    structlog.configure(processors=[processor, structlog.processors.KeyValueRenderer()])
    log = structlog.get_logger()
    try:
        with bind(user_id="u1", plan="team"):
            log.info("A", segment=True, seats=3)
            log.info("B", segment={"user_id": "u2", "properties": {"plan": "pro"}})
            log.info("C", segment={"type": "identify", "traits": {"email": "a@example.com"}})
        assert processor.flush(timeout=10)
    finally:
        structlog.reset_defaults()
        processor.close()
    a, b, c = sorted(server.messages, key=lambda m: m.get("event", "~"))
    assert (a["userId"], a["properties"]) == ("u1", {"plan": "team", "seats": 3})
    assert (b["userId"], b["properties"]) == ("u2", {"plan": "pro"})
    assert (c["type"], c["userId"], c["traits"]) == ("identify", "u1", {"email": "a@example.com"})


# -- isolation --------------------------------------------------------------------------------


def test_threads_never_see_each_others_binding(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """Two threads bound at the same time, logging interleaved, each send only their own user."""
    handler = make_handler()
    logger.addHandler(handler)
    both_bound = threading.Barrier(2, timeout=10)

    def request(user: str) -> None:
        with bind(user_id=user, who=user):
            both_bound.wait()
            for n in range(20):
                logger.info("Step", extra={"segment": True, "n": n})
            both_bound.wait()

    threads = [threading.Thread(target=request, args=(user,)) for user in ("u1", "u2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    messages = _deliver(handler, server)
    assert len(messages) == 40
    assert all(m["userId"] == m["properties"]["who"] for m in messages)
    assert bound() == {}


def test_asyncio_tasks_never_see_each_others_binding(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """Two tasks bound at the same time on one loop, switching between logging calls, keep their own users."""
    handler = make_handler()
    logger.addHandler(handler)

    async def request(user: str, turn: asyncio.Event, other: asyncio.Event) -> None:
        with bind(user_id=user):
            for n in range(5):
                await turn.wait()
                turn.clear()
                logger.info("Step", extra={"segment": True, "n": n})
                other.set()

    async def main() -> None:
        first, second = asyncio.Event(), asyncio.Event()
        first.set()
        await asyncio.gather(request("u1", first, second), request("u2", second, first))

    asyncio.run(main())
    messages = _deliver(handler, server)
    assert [m["userId"] for m in messages] == ["u1", "u2"] * 5
    assert bound() == {}


def test_behind_a_queue_listener_the_binding_travels_only_on_the_record(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """The README's QueueHandler note: the listener's thread has nothing bound; a filter on the
    QueueHandler that copies bound() onto the record carries it."""
    handler = make_handler()
    listener = logging.handlers.QueueListener(queue.SimpleQueue(), handler)
    queue_handler = logging.handlers.QueueHandler(listener.queue)
    logger.addHandler(queue_handler)
    listener.start()
    try:
        with bind(user_id="u1", plan="team"):
            logger.info("Lost", extra={"segment": True})

            def copy_bound(record: logging.LogRecord) -> bool:
                for key, value in bound().items():
                    if not hasattr(record, key):
                        setattr(record, key, value)
                return True

            queue_handler.addFilter(copy_bound)
            logger.info("Carried", extra={"segment": True, "plan": "pro"})
    finally:
        listener.stop()
    [message] = _deliver(handler, server)  # "Lost" had no id on the listener's thread: reported, not sent
    assert (message["event"], message["userId"], message["properties"]) == ("Carried", "u1", {"plan": "pro"})
    assert handler.stats()["invalid"] == 1


def test_invalid_metadata_under_a_binding_is_still_reported_as_invalid(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """Merging never trips over bad metadata (an unhashable type, properties that are not a mapping)."""
    handler = make_handler()
    logger.addHandler(handler)
    with bind(user_id="u1", plan="team"):
        logger.info("A", extra={"segment": {"type": ["track"]}})
        logger.info("B", extra={"segment": {"properties": ["not", "a", "mapping"]}})
        logger.info("C", extra={"segment": 42})
    assert handler.flush(timeout=10)
    assert handler.stats()["invalid"] == 3
    assert server.messages == []
