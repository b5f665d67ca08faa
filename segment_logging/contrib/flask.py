"""Flask: bind who the user is for each request (``SegmentContext``, an extension).

``context`` is called at the start of each request, after the ``before_request``
functions registered before the extension, and returns ``bind()``'s keyword
arguments (or None to bind nothing); the binding is reset when the request is
torn down::

    app = Flask(__name__)
    SegmentContext(app, context=lambda: {"user_id": session.get("user_id")})

Every log call made by the view, later ``before_request`` functions and
``after_request`` functions sees the binding; requests served at once on other
threads never see each other's. A streamed response's body is produced after
the request is torn down, so events logged while it streams are not bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, g

from .._context import bind_from, report_glue_failure

__all__ = ["SegmentContext"]

_SOURCE = "SegmentContext (Flask)"
_KEY = "_segment_logging_binding"


class SegmentContext:
    """Binds what ``context`` returns for each request of a Flask app.

    Args:
        app: the app; or call :meth:`init_app` later (the application-factory pattern).
        context: a function of no arguments (read ``flask.request``, ``session``,
            ``g``) returning ``bind()``'s keyword arguments or None. If it raises,
            or returns what ``bind()`` refuses, the request goes on unbound and the
            problem is reported (rate-limited) on the ``segment_logging`` logger.
    """

    def __init__(self, app: Flask | None = None, *, context: Callable[[], Mapping[str, Any] | None]) -> None:
        self.context = context
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the hooks on ``app``."""
        app.before_request(self._bind)
        app.teardown_request(self._reset)

    def _bind(self) -> None:
        try:
            values = self.context()
        except Exception:  # noqa: BLE001 - an extension never fails the request it wraps
            report_glue_failure(_SOURCE)
            return
        binding = bind_from(values, _SOURCE)
        if binding is not None:
            setattr(g, _KEY, binding)

    def _reset(self, error: BaseException | None) -> None:
        binding = g.pop(_KEY, None)
        if binding is None:
            return
        try:
            binding.reset()
        except Exception:  # noqa: BLE001 - teardown must go on
            report_glue_failure(_SOURCE)
