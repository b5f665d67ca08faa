"""Django: bind the authenticated user's id for each request (``SegmentContextMiddleware``).

Add the middleware after ``AuthenticationMiddleware``::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "segment_logging.contrib.django.SegmentContextMiddleware",
        ...,
    ]

Every log call made while the view runs sees ``user_id`` (the user's primary
key) when the user is authenticated; concurrent requests, threaded or async,
never see each other's. Subclass and override :meth:`SegmentContextMiddleware.context`
to bind something else (an ``anonymous_id`` from a cookie, properties).
A streaming response's body is produced after the middleware has returned, so
events logged while it streams are not bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from .._context import Binding, bind_from, report_glue_failure

__all__ = ["SegmentContextMiddleware", "user_context"]

_SOURCE = "SegmentContextMiddleware (Django)"


def user_context(user: Any) -> dict[str, Any] | None:
    """``{"user_id": user.pk}`` for an authenticated user, else None (a UUID key is sent as text)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    key = user.pk
    return {"user_id": key if isinstance(key, str | int) and not isinstance(key, bool) else str(key)}


class SegmentContextMiddleware:
    """Binds :meth:`context`'s result around each request, in sync and async Django alike.

    If :meth:`context` raises, or returns what ``bind()`` refuses, the request goes
    on unbound and the problem is reported (rate-limited) on the ``segment_logging``
    logger.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def context(self, request: Any) -> Mapping[str, Any] | None:
        """What to bind for ``request``: ``bind()``'s keyword arguments, or None.

        The default binds ``user_id``, the primary key of ``request.user`` when
        authenticated. In async Django an override runs in a thread
        (``sync_to_async``), unless you override :meth:`acontext` as well.
        """
        return user_context(getattr(request, "user", None))

    async def acontext(self, request: Any) -> Mapping[str, Any] | None:
        """:meth:`context` for async Django; the default awaits ``request.auser()``."""
        auser = getattr(request, "auser", None)
        if type(self).context is SegmentContextMiddleware.context and auser is not None:
            return user_context(await auser())
        values: Mapping[str, Any] | None = await sync_to_async(self.context)(request)
        return values

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self.__acall__(request)
        try:
            values = self.context(request)
        except Exception:  # noqa: BLE001 - a middleware never fails the request it wraps
            report_glue_failure(_SOURCE)
            values = None
        binding = bind_from(values, _SOURCE)
        if binding is None:
            return self.get_response(request)
        with binding:
            return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        try:
            values = await self.acontext(request)
        except Exception:  # noqa: BLE001 - a middleware never fails the request it wraps
            report_glue_failure(_SOURCE)
            values = None
        binding: Binding | None = bind_from(values, _SOURCE)
        if binding is None:
            return await self.get_response(request)
        with binding:
            return await self.get_response(request)
