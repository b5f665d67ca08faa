"""The pytest plugin (segment_server, segment_events and its assertions), run in pytester's inner sessions."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Script, finish
from doc_blocks import all_blocks

from segment_logging import SegmentHandler
from segment_logging.testing import SegmentEvents, SegmentServer

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "testing_with_pytest"

# The app under test configures its handler at import, for the real host (here a second fake
# Segment standing in for it, so a test can see that nothing reached it).
APP = """
import logging
import os

from segment_logging import SegmentHandler

handler = SegmentHandler("real-key", host=os.environ["REAL_SEGMENT"], shutdown_timeout=2, {options})
log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)


def signup(user_id, plan):
    log.info("Signup", extra={{"segment": {{"user_id": user_id, "properties": {{"plan": plan}}}}}})
"""


@pytest.fixture
def real_segment(monkeypatch: pytest.MonkeyPatch) -> Iterator[SegmentServer]:
    """A fake Segment standing in for the real one the app was configured with."""
    with SegmentServer("real-key") as real:
        monkeypatch.setenv("REAL_SEGMENT", real.url)
        yield real


@pytest.fixture
def app(pytester: pytest.Pytester, real_segment: SegmentServer) -> Iterator[None]:
    """An ``app`` module in the inner session, with its handler; closed afterwards."""
    yield from _app(pytester, "")


def _app(pytester: pytest.Pytester, options: str) -> Iterator[None]:
    pytester.makepyfile(app=APP.format(options=options))
    pytester.syspathinsert()
    yield
    log = logging.getLogger("app")
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner session, without hypothesis's plugin (its summary costs seconds per session)."""
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


def test_segment_server_points_the_environment_at_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """segment_server sets SEGMENT_HOST and SEGMENT_WRITE_KEY, unsets SEGMENT_SEND; all restored after."""
    pytester.makepyfile(
        """
        import os

        def test_env(segment_server):
            assert os.environ["SEGMENT_HOST"] == segment_server.url
            assert os.environ["SEGMENT_WRITE_KEY"] == segment_server.write_key
            assert "SEGMENT_SEND" not in os.environ
            assert segment_server.url.startswith("http://127.0.0.1:")

        def test_after():
            assert os.environ.get("SEGMENT_HOST") != "gone"
            assert os.environ["SEGMENT_SEND"] == "0"
        """
    )
    monkeypatch.setenv("SEGMENT_SEND", "0")
    _run(pytester).assert_outcomes(passed=2)


def test_a_handler_built_in_the_test_sends_to_segment_server(pytester: pytest.Pytester) -> None:
    """A SegmentHandler built with no arguments during the test reaches segment_server."""
    pytester.makepyfile(
        """
        import logging
        from segment_logging import SegmentHandler

        def test_it(segment_server):
            handler = SegmentHandler()
            log = logging.getLogger("inner")
            log.addHandler(handler)
            log.warning("Signup", extra={"segment": {"user_id": "u1"}})
            handler.close()
            log.removeHandler(handler)
            assert segment_server.events("Signup")[0]["userId"] == "u1"
        """
    )
    _run(pytester).assert_outcomes(passed=1)


def test_segment_events_captures_an_already_configured_handler(
    pytester: pytest.Pytester, app: None, real_segment: SegmentServer
) -> None:
    """A handler built at import for the real host sends to the fake during the test, and nothing else."""
    pytester.makepyfile(
        """
        import app

        def test_signup(segment_events):
            app.signup("u1", "pro")
            segment_events.assert_tracked("Signup", user_id="u1", properties={"plan": "pro"})
            assert len(segment_events.tracked("Signup")) == 1
        """
    )
    _run(pytester).assert_outcomes(passed=1)
    assert real_segment.requests == []


def test_segment_events_restores_the_configured_host_afterwards(
    pytester: pytest.Pytester, app: None, real_segment: SegmentServer
) -> None:
    """After a test with segment_events, the handler sends to its own host again."""
    pytester.makepyfile(
        """
        import app

        def test_1_captured(segment_events):
            app.signup("u1", "pro")
            segment_events.assert_tracked("Signup", user_id="u1")

        def test_2_not_captured():
            app.signup("u2", "team")
            assert app.handler.flush(5)
        """
    )
    _run(pytester).assert_outcomes(passed=2)
    assert [m["userId"] for m in real_segment.messages] == ["u2"]


def test_events_queued_before_the_test_are_not_sent_nor_shown(
    pytester: pytest.Pytester, app: None, real_segment: SegmentServer
) -> None:
    """What the app queued before segment_events started goes to the fake, then is forgotten."""
    pytester.makepyfile(
        """
        import app

        app.signup("u0", "at-import")

        def test_clean_slate(segment_events):
            segment_events.assert_nothing_sent()
        """
    )
    _run(pytester).assert_outcomes(passed=1)
    assert real_segment.requests == []


def test_segment_events_captures_a_send_false_handler(
    pytester: pytest.Pytester, real_segment: SegmentServer
) -> None:
    """A handler configured with send=False (and no write key) still delivers to segment_events."""
    for _ in _app(pytester, "send=False"):
        pytester.makepyfile(
            """
            import app

            def test_signup(segment_events):
                app.signup("u1", "pro")
                segment_events.assert_tracked("Signup", properties={"plan": "pro"})
            """
        )
        _run(pytester).assert_outcomes(passed=1)
    assert real_segment.requests == []


def test_segment_events_captures_a_structlog_processor(
    pytester: pytest.Pytester, real_segment: SegmentServer
) -> None:
    """A SegmentProcessor configured in structlog's chain at import is captured like a handler."""
    pytest.importorskip("structlog", reason="the structlog extra is not installed")
    pytester.makepyfile(
        """
        import os
        import structlog
        from segment_logging.structlog import SegmentProcessor

        processor = SegmentProcessor("real-key", host=os.environ["REAL_SEGMENT"])
        structlog.configure(processors=[processor, structlog.processors.KeyValueRenderer()])

        def test_identify(segment_events):
            structlog.get_logger().info("Identified", segment={"type": "identify", "user_id": "u7",
                                                               "traits": {"plan": "pro", "seats": 3}})
            segment_events.assert_identified("u7", traits={"plan": "pro"})

        def teardown_module():
            structlog.reset_defaults()
            processor.close()
        """
    )
    _run(pytester).assert_outcomes(passed=1)
    assert real_segment.requests == []


def test_a_failed_assertion_shows_the_closest_events_and_the_field_that_differs(
    pytester: pytest.Pytester, app: None
) -> None:
    """assert_tracked's failure lists what was sent, closest first, with each differing field."""
    pytester.makepyfile(
        """
        import app

        def test_wrong_plan(segment_events):
            app.signup("u1", "free")
            app.signup("u9", "pro")
            segment_events.assert_tracked("Signup", user_id="u1", properties={"plan": "pro"})
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "no message with type='track', event='Signup', userId='u1', properties={'plan': 'pro'}" in output
    assert "2 message(s) were sent; the closest:" in output
    assert "properties.plan: expected 'pro', got 'free'" in output
    assert "userId: expected 'u1', got 'u9'" in output


def test_a_failed_assertion_names_invalid_events(pytester: pytest.Pytester, app: None) -> None:
    """When the event was invalid (never sent), the failure says so instead of only 'nothing was sent'."""
    pytester.makepyfile(
        """
        import app

        def test_no_user(segment_events):
            app.signup(None, "pro")
            segment_events.assert_tracked("Signup")
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "nothing was sent" in output
    assert "1 event(s) were invalid and not sent" in output


def test_assert_nothing_sent_fails_listing_what_was_sent(pytester: pytest.Pytester, app: None) -> None:
    """assert_nothing_sent fails with the messages that reached the fake Segment."""
    pytester.makepyfile(
        """
        import app

        def test_quiet(segment_events):
            app.signup("u1", "pro")
            segment_events.assert_nothing_sent()
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected nothing sent, but 1 request(s) reached the fake Segment:*"])
    result.stdout.fnmatch_lines(['*"event": "Signup"*"userId": "u1"*'])


def test_assert_identified_fails_on_a_track(pytester: pytest.Pytester, app: None) -> None:
    """assert_identified does not take a track for an identify; the failure shows the track."""
    pytester.makepyfile(
        """
        import app

        def test_identify(segment_events):
            app.signup("u1", "pro")
            segment_events.assert_identified("u1")
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*type: expected 'identify', got 'track'*"])


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    """With -p no:segment_logging the fixtures do not exist."""
    pytester.makepyfile(
        """
        def test_it(segment_events):
            pass
        """
    )
    result = _run(pytester, "-p", "no:segment_logging")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'segment_events' not found*"])


def test_segment_events_works_without_pytest(server: SegmentServer) -> None:
    """SegmentEvents is a context manager too (unittest, scripts): it captures and restores."""
    with SegmentServer("other-key") as real:
        handler = SegmentHandler("other-key", host=real.url, shutdown_timeout=2)
        log = logging.getLogger("test.capture.plain")
        log.addHandler(handler)
        try:
            with SegmentEvents(server) as events:
                log.warning("Signup", extra={"segment": {"user_id": "u1"}})
                assert events.assert_tracked("Signup")["userId"] == "u1"
            log.warning("Later", extra={"segment": {"user_id": "u2"}})
            assert handler.flush(5)
        finally:
            log.removeHandler(handler)
            handler.close()
        assert [m["event"] for m in real.messages] == ["Later"]


def test_the_docs_test_examples_pass(pytester: pytest.Pytester) -> None:
    """Every block the docs mark ``<!-- test: pytest -->`` passes as a test file, each of its tests."""
    examples = [block for block in all_blocks() if block.kind == "pytest"]
    assert examples
    pytester.makepyfile(**{f"test_docs_example_{n}": block.code for n, block in enumerate(examples)})
    _run(pytester).assert_outcomes(passed=sum(block.code.count("\ndef test_") for block in examples))


def test_the_example_test_suite_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/testing_with_pytest (app configured at import, conftest, tests) passes as a user runs it."""
    for name in ("SEGMENT_WRITE_KEY", "SEGMENT_HOST", "SEGMENT_SEND"):
        # setenv first, so the undo restores the state before the test even when the variable
        # was unset (delenv of an unset one records nothing): the example's conftest sets one.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for path in EXAMPLE.glob("*.py"):
        pytester.makepyfile(**{path.stem: path.read_text()})
    pytester.syspathinsert()
    try:
        _run(pytester).assert_outcomes(passed=3)
    finally:
        log = logging.getLogger("shop")
        for handler in list(log.handlers):
            log.removeHandler(handler)
            handler.close()


def test_a_failure_says_when_delivery_had_not_finished(server: SegmentServer, logger: logging.Logger) -> None:
    """When the fake Segment hangs past flush_timeout, the failure says events were still on their way."""
    handler = SegmentHandler(server.write_key, host=server.url, shutdown_timeout=2)
    logger.addHandler(handler)
    try:
        with SegmentEvents(server, flush_timeout=0.2) as events:
            server.pause()
            logger.info("Signup", extra={"segment": {"user_id": "u1"}})
            with pytest.raises(AssertionError, match=r"still being delivered after flush_timeout \(0.2 s\)"):
                events.assert_tracked("Signup")
            server.resume()
            events.assert_tracked("Signup", user_id="u1")
    finally:
        server.resume()
        logger.removeHandler(handler)
        handler.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_a_forked_child_stays_redirected(
    script: Script, server: SegmentServer, real_segment: SegmentServer
) -> None:
    """A child forked during a captured test (multiprocessing, a pre-fork server) sends to the fake too."""
    status, _, stderr = finish(script("redirected_fork.py", real_segment.url), timeout=60)
    assert status == 0, stderr
    assert sorted(m["event"] for m in server.messages) == ["Child", "Parent"]
    assert real_segment.requests == []
