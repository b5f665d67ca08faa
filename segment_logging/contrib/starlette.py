"""Starlette and FastAPI: bind who the user is for each request, and flush at shutdown.

Add the middleware inside Starlette's ``AuthenticationMiddleware`` (after it in
the ``middleware=[...]`` list), or pass ``context=`` to read the user from
elsewhere (a header, a cookie, a session)::

    app = Starlette(routes=..., middleware=[
        Middleware(AuthenticationMiddleware, backend=MyBackend()),
        Middleware(SegmentContextMiddleware),
    ])

Every log call made while the request is handled (endpoint, background tasks,
streaming the body, sync endpoints run in the thread pool) sees the binding;
concurrent requests never see each other's. This is a pure ASGI middleware, so
it adds no task and no copy of the context per request.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio.to_thread
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._context import Binding, bind_from, report_glue_failure
from .._lifecycle import flush_all

__all__ = ["ContextFunction", "SegmentContextMiddleware", "authenticated_user"]

ContextFunction = Callable[[HTTPConnection], Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None]
"""Given the request (or websocket), the keyword arguments for ``bind()``, or None to bind nothing."""


def authenticated_user(connection: HTTPConnection) -> dict[str, Any] | None:
    """``{"user_id": request.user.identity}`` for a user ``AuthenticationMiddleware`` authenticated."""
    user = connection.scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return {"user_id": user.identity}


class SegmentContextMiddleware:
    """ASGI middleware that binds what ``context`` returns for each HTTP request and websocket.

    Args:
        app: the ASGI app to wrap.
        context: a function (or coroutine function) of the request returning
            ``bind()``'s keyword arguments (``user_id``, ``anonymous_id``,
            properties) or None; defaults to :func:`authenticated_user`. If it
            raises, or returns what ``bind()`` refuses, the request goes on
            unbound and the problem is reported (rate-limited) on the
            ``segment_logging`` logger.
        flush_at_shutdown: at the ASGI lifespan's shutdown, before telling the
            server it is complete, deliver what every handler and processor holds.
        flush_timeout: seconds that flush may take at most.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        context: ContextFunction = authenticated_user,
        flush_at_shutdown: bool = True,
        flush_timeout: float = 5.0,
    ) -> None:
        self.app = app
        self.context = context
        self.flush_at_shutdown = flush_at_shutdown
        self.flush_timeout = flush_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            binding = await self._bind(scope)
            if binding is None:
                await self.app(scope, receive, send)
                return
            try:
                await self.app(scope, receive, send)
            finally:
                binding.reset()
        elif kind == "lifespan" and self.flush_at_shutdown:
            await self.app(scope, receive, self._flushing_at_shutdown(send))
        else:
            await self.app(scope, receive, send)

    async def _bind(self, scope: Scope) -> Binding | None:
        try:
            values = self.context(HTTPConnection(scope))
            if inspect.isawaitable(values):
                values = await values
        except Exception:  # noqa: BLE001 - a middleware never fails the request it wraps
            report_glue_failure("SegmentContextMiddleware")
            return None
        return bind_from(values, "SegmentContextMiddleware")

    def _flushing_at_shutdown(self, send: Send) -> Send:
        timeout = self.flush_timeout

        async def send_after_flushing(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await anyio.to_thread.run_sync(flush_all, timeout)
            await send(message)

        return send_after_flushing
