"""Celery: carry the publisher's binding to the task, through the message headers.

Call :func:`propagate_context` once in every process that publishes or runs
tasks (where you create the Celery app is the usual place)::

    app = Celery("shop", broker=...)
    propagate_context()

When a task is published, what :func:`segment_logging.bind` bound in the
publishing thread or task is written into the message's headers
(``before_task_publish``); in the worker, it is bound while the task runs
(``task_prerun``) and reset after it (``task_postrun``), as django-structlog does
for structlog's context. Values JSON cannot hold are converted when the task is
published, so any serializer can carry them. Tasks run eagerly (``apply()``,
``task_always_eager``) run in the caller's context, which is already bound.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from .._context import bind_from, bound, report_glue_failure
from .._values import capture

__all__ = ["HEADER", "propagate_context"]

HEADER = "segment_logging_context"
"""The message header holding the binding (a JSON-ready mapping: ``bind()``'s keyword arguments)."""

_SOURCE = "propagate_context (Celery)"
_ATTRIBUTE = "_segment_logging_binding"


def propagate_context() -> None:
    """Connect the three signal handlers; calling it again changes nothing."""
    signals.before_task_publish.connect(_write_header, weak=False, dispatch_uid=_SOURCE + " publish")
    signals.task_prerun.connect(_bind_for_task, weak=False, dispatch_uid=_SOURCE + " prerun")
    signals.task_postrun.connect(_reset_after_task, weak=False, dispatch_uid=_SOURCE + " postrun")


def _write_header(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    try:
        values = bound()
        if values and headers is not None:
            headers[HEADER] = capture(values)
    except Exception:  # noqa: BLE001 - publishing goes on without the context
        report_glue_failure(_SOURCE)


def _bind_for_task(task: Any = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    values = getattr(request, HEADER, None)
    if request is None or values is None:
        return
    binding = bind_from(values, _SOURCE)
    if binding is not None:
        setattr(request, _ATTRIBUTE, binding)


def _reset_after_task(task: Any = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    binding = getattr(request, _ATTRIBUTE, None)
    if binding is None:
        return
    try:
        delattr(request, _ATTRIBUTE)
        binding.reset()
    except Exception:  # noqa: BLE001 - the worker goes on
        report_glue_failure(_SOURCE)
