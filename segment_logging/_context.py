"""Context bound to the running thread or asyncio task: who the user is, and properties for every event.

``bind()`` sets one :class:`contextvars.ContextVar` to an immutable snapshot, so
a binding made in one request (a thread, or an asyncio task) is never seen by
another one running at the same time. The front ends read that variable once per
event they queue, and only then; with nothing bound, that read is all it costs.

How a binding meets an event (explicit metadata always wins):

- **The identity is all or nothing.** When the event names neither ``user_id``
  nor ``anonymous_id``, the bound ids fill in. When it names either, it keeps its
  own identity and no bound id is added: an event about another user (an admin
  acting on an account) must not link that user to the one making the request.
- **Properties merge under the event's own**: the event's keys win. They go to
  track, page and screen events (``segment=True`` is a track); identify and group
  describe the user or the group with ``traits``, and alias has no properties,
  so these take the bound ids only.
- **Message objects** (``Track(...)``, ...) are complete as built and sent as given.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from ._diagnostics import RateLimit, report
from ._messages import _id

__all__ = ["Binding", "Bound", "bind", "bind_from", "bound", "clear_bound", "current", "unbind"]

_PROPERTY_TYPES = frozenset(("track", "page", "screen"))
"""The message types whose ``properties`` take the bound properties."""


class Bound:
    """An immutable snapshot of what is bound: the ids (as sent) and the properties."""

    __slots__ = ("anonymous_id", "properties", "user_id")

    def __init__(self, user_id: str | None, anonymous_id: str | None, properties: dict[str, Any]) -> None:
        self.user_id = user_id
        self.anonymous_id = anonymous_id
        self.properties = properties  # never mutated once the snapshot is made

    def _ids_into(self, fields: dict[str, Any]) -> None:
        if self.user_id is not None:
            fields["user_id"] = self.user_id
        if self.anonymous_id is not None:
            fields["anonymous_id"] = self.anonymous_id

    def under_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The fields ``segment=True`` derives from, with this binding merged under them."""
        merged = {**self.properties, **fields} if self.properties else dict(fields)
        if not (_names(fields.get("user_id")) or _names(fields.get("anonymous_id"))):
            self._ids_into(merged)
        return merged

    def under_metadata(self, metadata: object) -> object:
        """A ``segment`` mapping with this binding merged under it; the same object if nothing changes.

        Anything but a mapping (a message object, or a value the worker reports as
        invalid) is returned as given.
        """
        if not isinstance(metadata, Mapping):
            return metadata
        merged: dict[str, Any] | None = None
        has_ids = self.user_id is not None or self.anonymous_id is not None
        if has_ids and not (_names(metadata.get("user_id")) or _names(metadata.get("anonymous_id"))):
            merged = dict(metadata)
            self._ids_into(merged)
        kind = metadata.get("type", "track")
        if self.properties and type(kind) is str and kind in _PROPERTY_TYPES:
            own = metadata.get("properties")
            if own is None or isinstance(own, Mapping):
                if merged is None:
                    merged = dict(metadata)
                merged["properties"] = {**self.properties, **own} if own else dict(self.properties)
        return metadata if merged is None else merged

    def as_dict(self) -> dict[str, Any]:
        """``bind()``'s keyword arguments that would recreate this binding."""
        values: dict[str, Any] = dict(self.properties)
        self._ids_into(values)
        return values

    def __repr__(self) -> str:
        return f"Bound({', '.join(f'{key}={value!r}' for key, value in self.as_dict().items())})"


def _names(value: object) -> bool:
    """Whether an event's id field names someone (None and "" do not, as for the messages)."""
    return value is not None and not (type(value) is str and not value)


current: contextvars.ContextVar[Bound | None] = contextvars.ContextVar("segment_logging.bound", default=None)
"""What is bound in the running context; None when nothing is (the front ends' one read per event)."""


class Binding:
    """What :func:`bind` returns: undo the binding with :meth:`reset`, or by leaving its ``with`` block."""

    __slots__ = ("_token",)

    def __init__(self, token: contextvars.Token[Bound | None]) -> None:
        self._token: contextvars.Token[Bound | None] | None = token

    def reset(self) -> None:
        """Restore what was bound before this binding was made. A second call does nothing.

        Raises:
            ValueError: called in another context than the one ``bind()`` ran in
                (another thread, or another asyncio task).
        """
        token = self._token
        if token is None:
            return
        current.reset(token)
        self._token = None

    def __enter__(self) -> Binding:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.reset()

    def __repr__(self) -> str:
        return f"<Binding {'active' if self._token is not None else 'reset'}>"


def bind(
    *, user_id: str | int | None = None, anonymous_id: str | int | None = None, **properties: Any
) -> Binding:
    """Bind who the user is, and properties, for the events logged in the running context.

    The binding applies to this thread or asyncio task (and to the tasks it starts
    afterwards), on top of what was already bound: a new ``user_id`` replaces the
    bound one, properties are added or replaced by key. An id left as None keeps
    what was bound before (use :func:`unbind` to remove it).

    Use it as a context manager, or keep the returned :class:`Binding` and call
    its ``reset()``::

        with segment_logging.bind(user_id="u1", plan="team"):
            log.info("Upgraded", extra={"segment": True})

    Args:
        user_id: your id for the user (a str, or an int sent as a str).
        anonymous_id: an id for a user you do not know yet.
        **properties: properties every track, page and screen event gets, under
            the event's own.

    Returns:
        A :class:`Binding`; it is already in effect.

    Raises:
        TypeError: an id that is neither a str nor an int.
    """
    user = _id("user_id", user_id)
    anonymous = _id("anonymous_id", anonymous_id)
    previous = current.get()
    if previous is not None:
        user = previous.user_id if user is None else user
        anonymous = previous.anonymous_id if anonymous is None else anonymous
        if previous.properties:
            properties = {**previous.properties, **properties}
    return Binding(current.set(Bound(user, anonymous, properties)))


def unbind(*keys: str) -> None:
    """Remove ``user_id``, ``anonymous_id`` or properties from the running context's binding.

    Keys that are not bound are ignored. An enclosing :class:`Binding`'s ``reset()``
    still restores what it replaced.
    """
    previous = current.get()
    if previous is None or not keys:
        return
    remove = set(keys)
    properties = {key: value for key, value in previous.properties.items() if key not in remove}
    user = None if "user_id" in remove else previous.user_id
    anonymous = None if "anonymous_id" in remove else previous.anonymous_id
    empty = user is None and anonymous is None and not properties
    current.set(None if empty else Bound(user, anonymous, properties))


def clear_bound() -> None:
    """Remove everything bound in the running context (an enclosing ``reset()`` still restores it)."""
    if current.get() is not None:
        current.set(None)


def bound() -> dict[str, Any]:
    """What is bound in the running context, as ``bind()``'s keyword arguments (a new dict)."""
    snapshot = current.get()
    return {} if snapshot is None else snapshot.as_dict()


_glue_reports: dict[str, RateLimit] = {}
"""One rate limit per middleware or signal handler that reports."""


def bind_from(values: object, source: str) -> Binding | None:
    """``bind(**values)`` for framework glue: None when ``values`` is empty; never raises.

    A middleware must not fail the request it wraps: what cannot be bound (not a
    mapping, an id of the wrong type) is reported, rate-limited, on the
    ``segment_logging`` logger, and the request goes on unbound.
    """
    if not values:
        return None
    try:
        if not isinstance(values, Mapping):
            raise TypeError(f"the context must be a mapping or None, not {type(values).__name__}")
        return bind(**values)
    except Exception:  # noqa: BLE001 - the request goes on; the problem is reported
        report_glue_failure(source)
        return None


def report_glue_failure(source: str) -> None:
    """Report, rate-limited and with the traceback, that ``source`` could not bind or reset a context."""
    try:
        limit = _glue_reports.get(source)
        if limit is None:
            limit = _glue_reports[source] = RateLimit()
        due, held = limit.ready()
        if due:
            more = f" ({held} more since the last report)" if held else ""
            message = "segment-logging: %s could not bind the context%s"
            report(logging.ERROR, message, source, more, exc_info=True)
    except Exception:  # noqa: BLE001 - reporting is best effort
        pass
