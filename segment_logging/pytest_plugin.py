"""pytest plugin: a fake Segment per test, and one-line assertions on what your code sent.

Installed with the package and registered through the ``pytest11`` entry point
``segment_logging``, so there is nothing to import; ``-p no:segment_logging``
turns it off. Fixtures:

* ``segment_server``: a :class:`~segment_logging.testing.SegmentServer` on
  loopback, with ``$SEGMENT_HOST`` and ``$SEGMENT_WRITE_KEY`` pointed at it (and
  ``$SEGMENT_SEND`` unset) for the test's duration.
* ``segment_events``: a :class:`~segment_logging.testing.SegmentEvents`: every
  handler and processor already configured (at import, with the real host, or
  with ``send=False``) sends to ``segment_server`` for the test, then gets its
  own host back. Its assertions flush first::

      def test_signup(client, segment_events):
          client.post("/signup", data={"plan": "pro"})
          segment_events.assert_tracked("Signup", user_id="u1", properties={"plan": "pro"})
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._capture import SegmentEvents
from .testing import SegmentServer

__all__ = ["segment_events", "segment_server"]


@pytest.fixture
def segment_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SegmentServer]:
    """A fake Segment on a random loopback port; ``$SEGMENT_HOST``/``$SEGMENT_WRITE_KEY`` point at it."""
    with SegmentServer() as server:
        monkeypatch.setenv("SEGMENT_HOST", server.url)
        monkeypatch.setenv("SEGMENT_WRITE_KEY", server.write_key)
        monkeypatch.delenv("SEGMENT_SEND", raising=False)
        yield server


@pytest.fixture
def segment_events(segment_server: SegmentServer) -> Iterator[SegmentEvents]:
    """What the app's handlers and processors send during the test, captured by ``segment_server``."""
    with SegmentEvents(segment_server) as events:
        yield events
