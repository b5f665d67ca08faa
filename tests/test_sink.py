"""The dev sink: one line per event, rejected batches with Segment's reason, the live page's data."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from segment_logging import SegmentHandler
from segment_logging._sink import KEPT, Sink, describe

MakeSink = Callable[..., tuple[Sink, io.StringIO]]


@pytest.fixture
def make_sink() -> Iterator[MakeSink]:
    """Start sinks on a free loopback port, writing to a buffer; each is stopped after the test."""
    made: list[Sink] = []

    def make(**options: object) -> tuple[Sink, io.StringIO]:
        out = io.StringIO()
        sink = Sink(port=0, out=out, **options).start()  # type: ignore[arg-type]
        made.append(sink)
        return sink, out

    yield make
    for sink in made:
        sink.stop()


def _send(sink: Sink, logger: logging.Logger, *events: dict[str, object], key: str = "any-key") -> None:
    handler = SegmentHandler(key, host=sink.url, shutdown_timeout=2)
    logger.addHandler(handler)
    try:
        for event in events:
            logger.info(str(event.pop("name", "")), extra={"segment": event})
        assert handler.flush(5)
    finally:
        logger.removeHandler(handler)
        handler.close()


def _post(sink: Sink, body: object, key: str | None = "any-key") -> int:
    auth = (key, "") if key is not None else None
    return httpx.post(f"{sink.url}/v1/batch", json=body, auth=auth).status_code


def test_one_plain_line_per_event(make_sink: MakeSink, logger: logging.Logger) -> None:
    """Each event is one line: time, type, name, user and its first properties; no colour off a TTY."""
    sink, out = make_sink()
    _send(
        sink,
        logger,
        {"name": "Signup", "user_id": "u1", "properties": {"plan": "pro", "seats": 3}},
        {"type": "identify", "anonymous_id": "a-7", "traits": {"email": "ann@example.com"}},
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("track     Signup                   user u1  plan=pro seats=3")
    assert lines[1].endswith("identify                           anon a-7  email=ann@example.com")
    assert "\x1b[" not in out.getvalue()


def test_colour_when_asked(make_sink: MakeSink, logger: logging.Logger) -> None:
    """With colour on (as on a terminal), the type is coloured."""
    sink, out = make_sink(color=True)
    _send(sink, logger, {"name": "Signup", "user_id": "u1"})
    assert "\x1b[32mtrack   \x1b[0m" in out.getvalue()


def test_a_terminal_gets_colour_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default, colour follows isatty() and $NO_COLOR."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Sink(port=0, out=Terminal())._color
    assert not Sink(port=0, out=io.StringIO())._color
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Sink(port=0, out=Terminal())._color


def test_many_properties_are_cut_short() -> None:
    """A line shows four properties and counts the rest; long values are cut."""
    line = describe(
        {
            "type": "track",
            "event": "E",
            "userId": "u",
            "properties": {"a": 1, "b": 2, "c": 3, "d": "x" * 60, "e": 5},
        }
    )
    assert line.endswith("a=1 b=2 c=3 d=" + "x" * 39 + "… (+1 more)")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {"batch": [{"type": "track", "event": "Signup"}], "sentAt": "2026-01-01T00:00:00Z"},
            "400 batch[0]: userId or anonymousId is required [track 'Signup'] (1 message)",
        ),
        (
            {
                "batch": [
                    {"type": "track", "event": "Ok", "userId": "u1"},
                    {"type": "track", "event": "Big", "userId": "u2", "properties": {"blob": "x" * 33_000}},
                ],
                "sentAt": "2026-01-01T00:00:00Z",
            },
            "over 32000 [track 'Big', user u2] (2 messages)",
        ),
        ({"batch": [{"type": "identify", "userId": "u1"}]}, "400 body has no sentAt"),
    ],
    ids=["missing-user", "over-32-kb", "no-sentAt"],
)
def test_rejected_batches_are_shown_with_the_reason(make_sink: MakeSink, body: object, reason: str) -> None:
    """A batch Segment would reject gets a 400 and a REJECTED line naming the problem and the message."""
    sink, out = make_sink()
    assert _post(sink, body) == 400
    (line,) = out.getvalue().splitlines()
    assert "REJECTED" in line
    assert line.endswith(reason)


def test_any_write_key_is_accepted_by_default(make_sink: MakeSink) -> None:
    """Without --write-key any key is fine, but one is still required, as by Segment."""
    sink, out = make_sink()
    batch = {"batch": [{"type": "track", "event": "E", "userId": "u"}], "sentAt": "2026-01-01T00:00:00Z"}
    assert _post(sink, batch, key="whatever") == 200
    assert _post(sink, batch, key=None) == 401
    assert (
        out.getvalue()
        .splitlines()[1]
        .endswith("REJECTED  401 no write key: send it as the HTTP Basic user name")
    )


def test_a_write_key_given_rejects_others(make_sink: MakeSink, logger: logging.Logger) -> None:
    """With write_key, another key gets 401 and a REJECTED line; the key itself is never printed."""
    sink, out = make_sink(write_key="s3cret-key")
    batch = {"batch": [{"type": "track", "event": "E", "userId": "u"}], "sentAt": "2026-01-01T00:00:00Z"}
    assert _post(sink, batch, key="wrong") == 401
    _send(sink, logger, {"name": "Signup", "user_id": "u1"}, key="s3cret-key")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("REJECTED  401 invalid write key")
    assert "Signup" in lines[1]
    assert "s3cret-key" not in out.getvalue()


def test_the_page_data_lists_events_after_a_sequence_number(
    make_sink: MakeSink, logger: logging.Logger
) -> None:
    """GET /events?after=N gives the entries after N (full messages and rejections) and the last number."""
    sink, _ = make_sink()
    _send(sink, logger, {"name": "One", "user_id": "u1"}, {"name": "Two", "user_id": "u2"})
    _post(sink, {"batch": [{"type": "track", "event": "Bad"}], "sentAt": "2026-01-01T00:00:00Z"})
    data = httpx.get(f"{sink.url}/events?after=1").json()
    assert data["last"] == 3
    assert [entry["seq"] for entry in data["events"]] == [2, 3]
    assert data["events"][0]["message"]["event"] == "Two"
    assert data["events"][0]["message"]["messageId"]
    assert data["events"][1]["rejected"].startswith("batch[0]: userId or anonymousId is required")


def test_the_page_is_served_without_anything_from_elsewhere(
    make_sink: MakeSink,
) -> None:
    """GET / is one self-contained HTML page: no script, style or font from another origin."""
    sink, _ = make_sink()
    response = httpx.get(sink.url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<script>" in response.text
    assert "src=" not in response.text
    assert "http://" not in response.text
    assert "https://" not in response.text
    assert httpx.get(sink.url + "/nope").status_code == 404


def test_the_sink_keeps_only_the_latest_events(make_sink: MakeSink) -> None:
    """Memory stays bounded: the page's data holds the latest KEPT entries, and the server keeps nothing."""
    sink, _ = make_sink()
    batch = [{"type": "track", "event": f"E{i}", "userId": "u"} for i in range(KEPT + 5)]
    assert _post(sink, {"batch": batch, "sentAt": "2026-01-01T00:00:00Z"}) == 200
    events = httpx.get(f"{sink.url}/events").json()["events"]
    assert len(events) == KEPT
    assert events[0]["message"]["event"] == "E5"
    assert sink.server.messages == []
    assert json.dumps(events[-1]["message"]).count(f"E{KEPT + 4}") == 1


def test_the_sink_listens_on_the_port_asked(logger: logging.Logger) -> None:
    """Sink(port=N) listens on exactly that port (8765 by default)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Sink(port=port, out=io.StringIO()) as sink:
        assert sink.url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{sink.url}/events").json() == {"events": [], "last": 0}
    assert Sink(out=io.StringIO()).server._port == 8765


def test_a_closed_output_does_not_stop_the_page(logger: logging.Logger) -> None:
    """When the terminal output is gone (piped into `head`), events still reach the live page."""
    out = io.StringIO()
    out.close()
    with Sink(port=0, out=out) as sink:
        _send(sink, logger, {"name": "Signup", "user_id": "u1"})
        events = httpx.get(f"{sink.url}/events").json()["events"]
    assert [entry["message"]["event"] for entry in events] == ["Signup"]


@pytest.mark.parametrize(
    ("host", "status"),
    [("evil.example", 403), ("evil.example:8765", 403), ("localhost:8765", 200), ("127.0.0.1", 200)],
)
def test_the_page_answers_only_to_this_machines_names(make_sink: MakeSink, host: str, status: int) -> None:
    """The page and its data refuse a foreign Host header (DNS rebinding from another web page)."""
    sink, _ = make_sink()
    for path in ("/", "/events"):
        assert httpx.get(sink.url + path, headers={"Host": host}).status_code == status
