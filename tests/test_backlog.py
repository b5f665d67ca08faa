"""The backlog: encoded events in order, the rule that a batch is due, and flush markers."""

from __future__ import annotations

from segment_logging._backlog import Backlog, Flush
from segment_logging._options import Settings


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0  # exact in binary: 1000.25 - 1000.0 == 0.25

    def __call__(self) -> float:
        return self.now


def test_partial_batch_is_due_after_the_interval() -> None:
    """A partial batch waits flush_interval from its oldest piece, not from the newest."""
    clock = FakeClock()
    backlog = Backlog(Settings(flush_interval=0.5), clock)
    assert backlog.seconds_to_due() is None
    backlog.add(b'{"a":1}')
    clock.now += 0.25
    backlog.add(b'{"a":2}')
    assert not backlog.due(urgent=False)
    assert backlog.seconds_to_due() == 0.25
    clock.now += 0.25
    assert backlog.due(urgent=False)


def test_full_or_urgent_batch_is_due_at_once() -> None:
    """max_batch_size pieces, or an urgent reason (an exit), make a batch due before the interval."""
    backlog = Backlog(Settings(flush_interval=60, max_batch_size=2), FakeClock())
    backlog.add(b"1")
    assert not backlog.due(urgent=False)
    assert backlog.due(urgent=True)
    backlog.add(b"2")
    assert backlog.due(urgent=False)


def test_take_respects_the_batch_limits_and_keeps_order() -> None:
    """take() gives the oldest pieces first, at most max_batch_size of them."""
    backlog = Backlog(Settings(max_batch_size=2), FakeClock())
    for piece in (b"1", b"2", b"3"):
        backlog.add(piece)
    assert backlog.take() == [b"1", b"2"]
    assert backlog.take() == [b"3"]
    assert backlog.bytes == 0
    assert backlog.oldest is None


def test_add_refuses_a_piece_past_max_queue_bytes() -> None:
    """A piece that would pass max_queue_bytes is refused, and nothing is added."""
    settings = Settings()
    backlog = Backlog(settings, FakeClock())
    big = b"x" * (settings.max_queue_bytes // 2 + 1)
    assert backlog.add(big)
    assert not backlog.add(big)
    assert len(backlog) == 1


def test_flush_marker_is_done_when_what_came_before_has_left() -> None:
    """A flush is done once every piece that entered before it settled, not those after."""
    backlog = Backlog(Settings(), FakeClock())
    backlog.add(b"1")
    marker = Flush()
    backlog.mark(marker)
    backlog.add(b"2")
    batch = backlog.take()
    assert batch == [b"1", b"2"]
    assert not marker.done.is_set()
    backlog.settled(1)
    backlog.settle_flushes()
    assert marker.done.is_set()


def test_a_flush_is_urgent() -> None:
    """While a flush waits, what is pending is due at once."""
    backlog = Backlog(Settings(flush_interval=60), FakeClock())
    backlog.add(b"1")
    backlog.mark(Flush())
    assert backlog.due(urgent=False)
