"""segment_logging.contrib.flask with a real Flask app and its test client."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from conftest import framework_snippets
from flask import Flask, jsonify, request, session

import segment_logging
from segment_logging import SegmentHandler
from segment_logging.contrib.flask import SegmentContext
from segment_logging.testing import SegmentServer

MakeHandler = Callable[..., SegmentHandler]


def _app(logger: logging.Logger, context: Callable[[], Any] | None = None) -> Flask:
    """An app whose views log a segment=True event and answer with what is bound (factory style)."""
    app = Flask(__name__)
    app.secret_key = "test-only"
    both_inside = threading.Barrier(2, timeout=10)

    @app.post("/login/<user>")
    def login(user: str) -> Any:
        session["user_id"] = user
        return jsonify(segment_logging.bound())

    @app.get("/upgrade")
    def upgrade() -> Any:
        logger.info("Upgraded", extra={"segment": True, "plan": "team"})
        return jsonify(segment_logging.bound())

    @app.get("/checkout")
    def checkout() -> Any:
        both_inside.wait()  # two requests in the view at once
        logger.info("Checked out", extra={"segment": True})
        return jsonify(segment_logging.bound())

    extension = SegmentContext(context=context or (lambda: {"user_id": session.get("user_id")}))
    extension.init_app(app)
    return app


def test_session_user_is_bound_for_the_request_and_reset_after(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """The context function's user is bound while the request runs; the binding is gone once it ends."""
    handler = make_handler()
    logger.addHandler(handler)
    client = _app(logger).test_client()
    assert client.post("/login/u1").json == {}
    assert client.get("/upgrade").json == {"user_id": "u1"}
    assert segment_logging.bound() == {}, "the test client runs the app on this thread: the binding is reset"
    assert handler.flush(timeout=10)
    [message] = server.messages
    assert (message["userId"], message["properties"]) == ("u1", {"plan": "team"})


def test_a_context_function_can_read_the_request(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """The context function reads flask.request: a header becomes anonymous_id, the path a property."""
    handler = make_handler()
    logger.addHandler(handler)
    app = _app(
        logger, context=lambda: {"anonymous_id": request.headers["X-Anonymous-Id"], "path": request.path}
    )
    answer = app.test_client().get("/upgrade", headers={"X-Anonymous-Id": "a-1"}).json
    assert answer == {"anonymous_id": "a-1", "path": "/upgrade"}
    assert handler.flush(timeout=10)
    [message] = server.messages
    assert (message["anonymousId"], message["properties"]) == ("a-1", {"path": "/upgrade", "plan": "team"})


def test_threaded_requests_never_see_each_others_user(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """Two requests in the view at once, on two threads, each log and see only their own user."""
    handler = make_handler()
    logger.addHandler(handler)
    app = _app(logger)
    answers: dict[str, Any] = {}

    def request_as(user: str) -> None:
        client = app.test_client()
        client.post(f"/login/{user}")
        answers[user] = client.get("/checkout").json

    threads = [threading.Thread(target=request_as, args=(user,)) for user in ("u1", "u2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert answers == {"u1": {"user_id": "u1"}, "u2": {"user_id": "u2"}}
    assert handler.flush(timeout=10)
    assert sorted(m["userId"] for m in server.messages) == ["u1", "u2"]


def test_a_failing_context_function_is_reported_and_the_request_goes_on(
    make_handler: MakeHandler, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """A context function that raises never fails the request: it runs unbound and the error is reported."""

    def broken() -> dict[str, Any]:
        raise RuntimeError("no session store")

    logger.addHandler(make_handler())
    with caplog.at_level(logging.ERROR, logger="segment_logging"):
        response = _app(logger, context=broken).test_client().get("/upgrade")
    assert (response.status_code, response.json) == (200, {})
    [record] = [r for r in caplog.records if r.name == "segment_logging"]
    assert "SegmentContext (Flask) could not bind the context" in record.getMessage()


def test_the_readme_snippet_works(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """The README's Flask app binds the session's user_id for a view added to it."""
    [snippet] = framework_snippets("segment_logging.contrib.flask")
    namespace: dict[str, Any] = {"__name__": __name__}
    exec(snippet, namespace)
    app: Flask = namespace["app"]
    app.secret_key = "test-only"
    handler = make_handler()
    logger.addHandler(handler)

    @app.post("/login/<user>")
    def login(user: str) -> Any:
        session["user_id"] = user
        return jsonify(segment_logging.bound())

    @app.get("/upgrade")
    def upgrade() -> Any:
        logger.info("Upgraded", extra={"segment": True})
        return jsonify(segment_logging.bound())

    client = app.test_client()
    client.post("/login/u1")
    assert client.get("/upgrade").json == {"user_id": "u1"}
    assert handler.flush(timeout=10)
    assert [m["userId"] for m in server.messages] == ["u1"]
