"""segment_logging.contrib.starlette with real Starlette apps: per-request binding and the lifespan flush."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from conftest import framework_snippets
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

import segment_logging
from segment_logging import SegmentHandler
from segment_logging.contrib.starlette import SegmentContextMiddleware
from segment_logging.testing import SegmentServer

MakeHandler = Callable[..., SegmentHandler]


class HeaderAuth(AuthenticationBackend):
    """Authenticates the user named in ``X-User`` (the test's stand-in for a session or a token)."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("x-user")
        return None if name is None else (AuthCredentials(["authenticated"]), SimpleUser(name))


def _app(logger: logging.Logger, **options: Any) -> Starlette:
    """An app whose endpoints log a segment=True event and answer with what is bound."""

    async def upgrade(request: Request) -> JSONResponse:
        logger.info("Upgraded", extra={"segment": True, "plan": "team"})
        return JSONResponse(segment_logging.bound())

    def sync_upgrade(request: Request) -> JSONResponse:  # run in Starlette's thread pool
        logger.info("Upgraded in a thread", extra={"segment": True})
        return JSONResponse(segment_logging.bound())

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        logger.info("Socket opened", extra={"segment": True})
        await websocket.send_json(segment_logging.bound())
        await websocket.close()

    return Starlette(
        routes=[Route("/upgrade", upgrade), Route("/sync", sync_upgrade), WebSocketRoute("/ws", socket)],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
            Middleware(SegmentContextMiddleware, **options),
        ],
    )


def test_authenticated_user_is_bound_for_the_request(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """By default request.user.identity is bound as user_id; an anonymous request binds nothing."""
    handler = make_handler()
    logger.addHandler(handler)
    client = TestClient(_app(logger))
    assert client.get("/upgrade", headers={"X-User": "u1"}).json() == {"user_id": "u1"}
    assert client.get("/upgrade").json() == {}
    assert handler.flush(timeout=10)
    [message] = server.messages  # the anonymous request's event has no id: reported, not sent
    assert (message["event"], message["userId"]) == ("Upgraded", "u1")
    assert message["properties"] == {"plan": "team"}
    assert handler.stats()["invalid"] == 1


def test_context_function_sees_the_request_and_reaches_the_thread_pool_and_websockets(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """An async context function's result is bound in sync endpoints (thread pool) and websockets too."""

    async def from_headers(connection: HTTPConnection) -> dict[str, Any]:
        return {"anonymous_id": connection.headers["x-anonymous-id"], "path": connection.url.path}

    handler = make_handler()
    logger.addHandler(handler)
    client = TestClient(_app(logger, context=from_headers))
    headers = {"X-Anonymous-Id": "a-1"}
    assert client.get("/sync", headers=headers).json() == {"anonymous_id": "a-1", "path": "/sync"}
    with client.websocket_connect("/ws", headers=headers) as websocket:
        assert websocket.receive_json() == {"anonymous_id": "a-1", "path": "/ws"}
    assert handler.flush(timeout=10)
    assert {(m["event"], m["anonymousId"], m["properties"]["path"]) for m in server.messages} == {
        ("Upgraded in a thread", "a-1", "/sync"),
        ("Socket opened", "a-1", "/ws"),
    }


def test_concurrent_requests_never_see_each_others_user(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """Two requests in flight at once on one event loop each log and see only their own user."""
    handler = make_handler()
    logger.addHandler(handler)
    inside: list[str] = []
    both_inside = asyncio.Event()

    async def wait_for_the_other(request: Request) -> JSONResponse:
        inside.append(request.user.identity)
        if len(inside) == 2:
            both_inside.set()
        await asyncio.wait_for(both_inside.wait(), timeout=10)
        logger.info("Checked out", extra={"segment": True})
        return JSONResponse(segment_logging.bound())

    app = Starlette(
        routes=[Route("/checkout", wait_for_the_other)],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
            Middleware(SegmentContextMiddleware),
        ],
    )

    async def main() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            responses = await asyncio.gather(
                *(client.get("/checkout", headers={"X-User": user}) for user in ("u1", "u2"))
            )
        return [response.json() for response in responses]

    assert asyncio.run(main()) == [{"user_id": "u1"}, {"user_id": "u2"}]
    assert handler.flush(timeout=10)
    assert sorted(m["userId"] for m in server.messages) == ["u1", "u2"]
    assert segment_logging.bound() == {}


def test_a_failing_context_function_is_reported_and_the_request_goes_on(
    make_handler: MakeHandler, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """A context function that raises never fails the request: it runs unbound and the error is reported."""

    def broken(connection: HTTPConnection) -> dict[str, Any]:
        raise KeyError("x-user")

    logger.addHandler(make_handler())
    with caplog.at_level(logging.ERROR, logger="segment_logging"):
        response = TestClient(_app(logger, context=broken)).get("/upgrade")
    assert (response.status_code, response.json()) == (200, {})
    [record] = [r for r in caplog.records if r.name == "segment_logging"]
    assert "SegmentContextMiddleware could not bind the context" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError


def test_lifespan_shutdown_delivers_what_is_queued(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """At lifespan shutdown the middleware flushes every handler before telling the server it is done."""
    handler = make_handler(flush_interval=60)
    logger.addHandler(handler)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        logger.info("Shutting down", extra={"segment": {"anonymous_id": "server"}})

    app = _app(logger)
    app.router.lifespan_context = lifespan
    with TestClient(app) as client:
        client.get("/upgrade", headers={"X-User": "u1"})
        assert server.messages == []  # held for the 60 s interval
    assert sorted(m["event"] for m in server.messages) == ["Shutting down", "Upgraded"]


def test_the_readme_snippets_work(
    make_handler: MakeHandler, logger: logging.Logger, server: SegmentServer
) -> None:
    """The README's Starlette apps, given routes and an auth backend, bind the user and the header's id."""
    first, second = framework_snippets("segment_logging.contrib.starlette")
    handler = make_handler()
    logger.addHandler(handler)

    async def upgrade(request: Request) -> JSONResponse:
        logger.info("Upgraded", extra={"segment": True})
        return JSONResponse(segment_logging.bound())

    routes = [Route("/upgrade", upgrade)]
    namespace: dict[str, Any] = {"routes": routes, "YourAuthBackend": HeaderAuth}
    exec(first, namespace)
    assert TestClient(namespace["app"]).get("/upgrade", headers={"X-User": "u1"}).json() == {"user_id": "u1"}
    namespace = {"app": Starlette(routes=routes)}
    exec(second, namespace)
    client = TestClient(namespace["app"])
    assert client.get("/upgrade", headers={"X-Anonymous-Id": "a-1"}).json() == {"anonymous_id": "a-1"}
    assert client.get("/upgrade").json() == {}
    assert handler.flush(timeout=10)
    assert [(m.get("userId"), m.get("anonymousId")) for m in server.messages] == [("u1", None), (None, "a-1")]
