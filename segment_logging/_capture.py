"""Capture what an application sends, in a test: every live queue pointed at a fake Segment.

:class:`SegmentEvents` is what the pytest plugin's ``segment_events`` fixture
gives; it also works as a context manager without pytest (unittest, scripts).
Its assertions flush every queue first, and say what was sent instead when they
fail: the closest messages and the fields that differ.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import _lifecycle, _worker

if TYPE_CHECKING:
    from .testing import Request, SegmentServer

_CLOSEST = 3
"""How many of the closest messages a failed assertion shows."""
_SHOWN_CHARS = 240
"""A message shown in a failure is cut after this many characters of JSON."""
_MISSING = object()


def _camel(name: str) -> str:
    """``user_id`` -> ``userId``: the assertion helpers take the handler's snake_case names."""
    return re.sub(r"_([a-z])", lambda match: match.group(1).upper(), name)


def _differences(expected: Mapping[str, Any], actual: object, path: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected``; a nested mapping only needs the keys it names."""
    found: list[str] = []
    for key, want in expected.items():
        where = f"{path}{key}"
        got = actual.get(key, _MISSING) if isinstance(actual, Mapping) else _MISSING
        if isinstance(want, Mapping) and isinstance(got, Mapping):
            found.extend(_differences(want, got, where + "."))
        elif got is _MISSING:
            found.append(f"{where}: expected {want!r}, missing")
        elif got != want:
            found.append(f"{where}: expected {want!r}, got {got!r}")
    return found


_SHOWN_FIELDS = ("type", "event", "name", "userId", "anonymousId", "groupId", "previousId")
"""Fields a failure always shows of a message; others only when the assertion named them."""


def _show(message: Mapping[str, Any], expected: Mapping[str, Any] | None = None) -> str:
    """A message in one line of JSON: who and what, plus the fields asked about."""
    shown = [*_SHOWN_FIELDS, "properties", "traits", *(expected or ())]
    text = json.dumps({key: message[key] for key in dict.fromkeys(shown) if key in message}, default=str)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


class SegmentEvents:
    """The messages an application sent during a test, as a fake Segment received them.

    On :meth:`start`, every ``SegmentHandler`` and ``SegmentProcessor`` alive (built
    at import with the real host, or with ``send=False``) is pointed at ``server``
    until :meth:`stop`, so nothing reaches the network; what they had queued
    before is delivered to ``server`` and forgotten. Handlers built later reach
    ``server`` through ``$SEGMENT_HOST`` and ``$SEGMENT_WRITE_KEY`` when those
    point at it (the ``segment_server`` fixture sets them).

    Args:
        server: a started fake Segment.
        flush_timeout: seconds each flush waits for the queues at most.
    """

    def __init__(self, server: SegmentServer, *, flush_timeout: float = 5.0) -> None:
        self.server = server
        self.flush_timeout = flush_timeout
        self._restores: list[Callable[[], None]] = []
        self._settled = True
        self._invalid_before: weakref.WeakKeyDictionary[_worker.EventQueue, int] = weakref.WeakKeyDictionary()

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> SegmentEvents:
        """Point every live queue at the server, deliver what they had queued, then forget it."""
        for queue in _lifecycle.live_queues():
            self._restores.append(queue.redirect(self.server.url, self.server.write_key))
        self.flush()
        self.server.clear()
        for queue in _lifecycle.live_queues():
            self._invalid_before[queue] = queue.stats()["invalid"]
        return self

    def stop(self) -> None:
        """Deliver what is queued to the server, then give every queue its own host back."""
        self.flush()
        restores, self._restores = self._restores, []
        for restore in restores:
            restore()

    def __enter__(self) -> SegmentEvents:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what was sent ----------------------------------------------------------------

    def flush(self) -> bool:
        """Wait until every live queue delivered what was logged; True when all did in time."""
        settled = [
            queue.flush(self.flush_timeout) for queue in _lifecycle.live_queues()
        ]  # each, no short cut
        self._settled = all(settled)
        return self._settled

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message the server accepted, in arrival order (after a flush)."""
        self.flush()
        return list(self.server.messages)

    def tracked(self, event: str | None = None) -> list[dict[str, Any]]:
        """Accepted track messages, only those named ``event`` if given (after a flush)."""
        return [
            m
            for m in self.messages
            if m.get("type") == "track" and (event is None or m.get("event") == event)
        ]

    def identified(self) -> list[dict[str, Any]]:
        """Accepted identify messages (after a flush)."""
        return [m for m in self.messages if m.get("type") == "identify"]

    @property
    def rejected(self) -> list[Request]:
        """Requests the server refused, each with its ``status`` and ``reason`` (after a flush)."""
        self.flush()
        return [r for r in self.server.requests if r.status != 200]

    def clear(self) -> None:
        """Deliver what is queued, then forget everything the server received."""
        self.flush()
        self.server.clear()

    # -- assertions -------------------------------------------------------------------

    def assert_sent(self, type: str, **fields: Any) -> dict[str, Any]:  # noqa: A002 - Segment's field name
        """Assert a message of ``type`` with ``fields`` was sent; return the latest such.

        Args:
            type: ``track``, ``identify``, ``page``, ``screen``, ``group`` or ``alias``.
            **fields: snake_case names as the handler takes them (``user_id``,
                ``properties``, ``traits``, ``context``, ...); a mapping matches when it
                has the keys given with those values (others may be there too).

        Raises:
            AssertionError: none matched; the message shows the closest ones sent
                and the fields that differ.
        """
        __tracebackhide__ = True
        expected = {"type": type, **{_camel(name): value for name, value in fields.items()}}
        messages = self.messages
        for message in messages[::-1]:  # the latest match
            if not _differences(expected, message):
                return message
        raise AssertionError(self._explain(expected, messages))

    def assert_tracked(self, event: str, **fields: Any) -> dict[str, Any]:
        """Assert a track named ``event`` with ``fields`` was sent (as :meth:`assert_sent`).

        Example: ``segment_events.assert_tracked("Signup", user_id="u1", properties={"plan": "pro"})``.
        """
        __tracebackhide__ = True
        return self.assert_sent("track", event=event, **fields)

    def assert_identified(self, user_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """Assert an identify (of ``user_id`` if given) with ``fields`` was sent (as :meth:`assert_sent`)."""
        __tracebackhide__ = True
        if user_id is not None:
            fields["user_id"] = user_id
        return self.assert_sent("identify", **fields)

    def assert_nothing_sent(self) -> None:
        """Assert no request reached the server (after a flush).

        Raises:
            AssertionError: something did; the message lists it.
        """
        __tracebackhide__ = True
        self.flush()
        requests = list(self.server.requests)
        if requests:
            lines = [f"expected nothing sent, but {len(requests)} request(s) reached the fake Segment:"]
            lines += [f"  {_show(m)}" for r in requests for m in r.messages]
            lines += [f"  rejected ({r.status}): {r.reason}" for r in requests if r.status != 200]
            raise AssertionError("\n".join(lines))

    def _explain(self, expected: Mapping[str, Any], messages: list[dict[str, Any]]) -> str:
        wanted = ", ".join(f"{key}={value!r}" for key, value in expected.items())
        lines = [f"no message with {wanted} was sent"]
        if messages:
            scored = sorted(
                enumerate(messages),
                # Fewest differences first; the same type first; then the latest.
                key=lambda pair: (
                    pair[1].get("type") != expected["type"],
                    len(_differences(expected, pair[1])),
                    -pair[0],
                ),
            )
            lines.append(f"{len(messages)} message(s) were sent; the closest:")
            for _, message in scored[:_CLOSEST]:
                lines.append(f"  {_show(message, expected)}")
                lines += [f"    {difference}" for difference in _differences(expected, message)]
        else:
            lines.append("nothing was sent")
        if not self._settled:
            lines.append(
                f"some events were still being delivered after flush_timeout ({self.flush_timeout:g} s)"
            )
        for request in self.server.requests:
            if request.status != 200:
                lines.append(f"a request was rejected ({request.status}): {request.reason}")
        invalid = sum(
            queue.stats()["invalid"] - self._invalid_before.get(queue, 0)
            for queue in _lifecycle.live_queues()
        )
        if invalid > 0:
            lines.append(
                f"{invalid} event(s) were invalid and not sent: see the segment_logging logger's errors"
            )
        return "\n".join(lines)
