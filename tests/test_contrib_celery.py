"""segment_logging.contrib.celery with a real Celery app and worker: the binding crosses publish -> task."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery, signals
from celery.contrib.testing.worker import start_worker
from celery.worker import state
from conftest import framework_snippets

import segment_logging
from segment_logging import SegmentHandler, bind
from segment_logging.contrib.celery import HEADER, propagate_context
from segment_logging.testing import SegmentServer

MakeHandler = Callable[..., SegmentHandler]
log = logging.getLogger("test.celery.tasks")


def _app() -> Celery:
    """A Celery app on the in-memory broker."""
    app = Celery("segment_logging_tests", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.broker_transport_options = {"polling_interval": 0.01}  # the default 1 s per message is slow
    return app


class Rendezvous:
    """Makes the next ``parties`` tasks that call ``meet()`` wait for each other (tasks running at once)."""

    barrier = threading.Barrier(1)

    @classmethod
    def expect(cls, parties: int) -> None:
        cls.barrier = threading.Barrier(parties, timeout=20)


@pytest.fixture(scope="module")
def worker_app() -> Iterator[Celery]:
    """One worker for the module (starting and stopping one costs seconds): two threads, json messages."""
    app = _app()

    @app.task(name="checkout")
    def checkout(meet: bool) -> dict[str, Any]:
        if meet:
            Rendezvous.barrier.wait()
        log.info("Checked out", extra={"segment": True})
        return segment_logging.bound()

    @app.task(name="wake")
    def wake() -> None:
        return None

    propagate_context()
    # Connected, setup_logging keeps Celery from configuring logging (the root logger's level, the
    # multiprocessing logger), which would change what the rest of the suite sees.
    signals.setup_logging.connect(_keep_logging_as_it_is, weak=False)
    environment = dict(os.environ)
    try:
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=20):
            yield app
            # The worker's loop reads the stop flag between waits for a message (2 s each), and
            # waits once more after reading it: two messages end both waits at once.
            state.should_terminate = 0
            wake.delay()
            wake.delay()
    finally:
        signals.setup_logging.disconnect(_keep_logging_as_it_is)
        for name in set(os.environ) - set(environment):  # Celery's log settings for its children
            del os.environ[name]


def _keep_logging_as_it_is(**kwargs: Any) -> None:
    return None


@pytest.fixture
def handler(make_handler: MakeHandler) -> Iterator[SegmentHandler]:
    made = make_handler()
    log.addHandler(made)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield made
    log.removeHandler(made)


@pytest.fixture(autouse=True)
def _propagating() -> None:
    propagate_context()


def _results(app: Celery, bindings: list[dict[str, Any]], *, meet: bool) -> list[Any]:
    """Publish one checkout per binding (published inside bind(**binding)), and the tasks' answers."""
    task = app.tasks["checkout"]
    results = []
    for binding in bindings:
        with bind(**binding):
            results.append(task.delay(meet))
    return [result.get(timeout=20, interval=0.01) for result in results]


def test_the_binding_crosses_from_publisher_to_task(
    worker_app: Celery, handler: SegmentHandler, server: SegmentServer
) -> None:
    """A task published inside bind() runs bound in the worker, with values JSON cannot hold as text."""
    order = uuid.UUID(int=7)
    assert _results(worker_app, [{"user_id": "u1", "plan": "team", "order": order}], meet=False) == [
        {"user_id": "u1", "plan": "team", "order": str(order)}
    ]
    assert handler.flush(timeout=10)
    [message] = server.messages
    assert message["userId"] == "u1"
    assert message["properties"] == {"plan": "team", "order": str(order)}


def test_concurrent_tasks_never_see_each_others_binding(
    worker_app: Celery, handler: SegmentHandler, server: SegmentServer
) -> None:
    """Two tasks running at once see their publisher's binding; later unbound tasks on both threads, none."""
    Rendezvous.expect(2)
    assert _results(worker_app, [{"user_id": "u1"}, {"user_id": "u2"}], meet=True) == [
        {"user_id": "u1"},
        {"user_id": "u2"},
    ]
    Rendezvous.expect(2)  # both worker threads ran a bound task: each must have been reset
    assert _results(worker_app, [{}, {}], meet=True) == [{}, {}]
    assert handler.flush(timeout=10)
    assert sorted(m["userId"] for m in server.messages) == ["u1", "u2"]  # the unbound events had no id


def test_the_header_is_written_only_when_something_is_bound() -> None:
    """Publishing writes the segment_logging_context header with JSON-ready values, and none when unbound."""
    app = _app()
    app.conf.task_default_queue = "never-consumed"  # published only: the module's worker must not take it
    seen: list[dict[str, Any]] = []

    @app.task(name="noop")
    def noop() -> None:
        return None

    def keep(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        seen.append(dict(headers or {}))

    signals.before_task_publish.connect(keep, weak=False)  # after ours: it sees what ours wrote
    try:
        noop.delay()
        with bind(anonymous_id="a-1", order=uuid.UUID(int=7)):
            noop.delay()
    finally:
        signals.before_task_publish.disconnect(keep)
    assert HEADER not in seen[0]
    assert seen[1][HEADER] == {"anonymous_id": "a-1", "order": str(uuid.UUID(int=7))}


def test_eager_tasks_run_in_the_callers_binding(handler: SegmentHandler, server: SegmentServer) -> None:
    """A task applied eagerly runs in the caller's context, already bound, and leaves it as it was."""
    app = _app()

    @app.task(name="eager")
    def eager() -> dict[str, Any]:
        log.info("Ran eagerly", extra={"segment": True})
        return segment_logging.bound()

    with bind(user_id="u1"):
        assert eager.apply().get() == {"user_id": "u1"}
        assert segment_logging.bound() == {"user_id": "u1"}
    assert handler.flush(timeout=10)
    assert [m["userId"] for m in server.messages] == ["u1"]


def test_the_readme_snippet_propagates() -> None:
    """The README's Celery set-up writes the binding into the headers of the tasks it publishes."""
    [snippet] = framework_snippets("segment_logging.contrib.celery")
    namespace: dict[str, Any] = {"BROKER_URL": "memory://"}
    exec(snippet, namespace)
    app: Celery = namespace["app"]
    app.conf.task_default_queue = "never-consumed"
    seen: list[dict[str, Any]] = []

    def keep(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        seen.append(dict(headers or {}))

    @app.task(name="shop.charge")
    def charge() -> None:
        return None

    signals.before_task_publish.connect(keep, weak=False)
    try:
        with bind(user_id="u1"):
            charge.delay()
    finally:
        signals.before_task_publish.disconnect(keep)
    assert seen[0][HEADER] == {"user_id": "u1"}
