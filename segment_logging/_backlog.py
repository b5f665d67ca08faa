"""Encoded events waiting to be sent, the rule that says a batch is due, and flush markers.

The worker thread alone touches a :class:`Backlog`; callers only reach it through
the queue's intake. What entered and what left are counted in order, so a flush
marker knows when everything logged before it has settled (sent, failed or given up).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ._batch import is_due, take_batch
from ._clock import monotonic
from ._options import Settings
from ._sync import Done


class Flush:
    """A marker a flush puts in the queue; done once every event before it has settled."""

    __slots__ = ("abandoned", "done", "target")

    def __init__(self) -> None:
        self.done = Done()
        self.target = -1
        self.abandoned = False  # its waiter gave up: the worker forgets it


class Backlog:
    """Encoded events in order, bounded by ``max_queue_bytes``, taken a batch at a time.

    Args:
        settings: the batch limits, ``flush_interval`` and ``max_queue_bytes``.
        clock: when the oldest piece arrived and what time it is now; tests inject one.
    """

    __slots__ = (
        "_clock",
        "_flushes",
        "_pieces",
        "bytes",
        "entered",
        "interval",
        "left",
        "max_batch_bytes",
        "max_batch_size",
        "max_bytes",
        "oldest",
    )

    def __init__(self, settings: Settings, clock: Callable[[], float] = monotonic) -> None:
        self._clock = clock
        self.max_batch_size = settings.max_batch_size
        self.max_batch_bytes = settings.max_batch_bytes
        self.max_bytes = settings.max_queue_bytes
        self.interval = settings.flush_interval
        self._pieces: deque[bytes] = deque()
        self._flushes: list[Flush] = []
        self.bytes = 0
        self.oldest: float | None = None
        # Pieces that entered, and that left settled, in order: a flush is done when
        # everything that entered before it has left.
        self.entered = self.left = 0

    def __len__(self) -> int:
        return len(self._pieces)

    def add(self, piece: bytes) -> bool:
        """Append ``piece``; False (and nothing added) when it would pass ``max_queue_bytes``."""
        if self.bytes + len(piece) > self.max_bytes:
            return False
        if not self._pieces:
            self.oldest = self._clock()
        self._pieces.append(piece)
        self.bytes += len(piece)
        self.entered += 1
        return True

    def due(self, *, urgent: bool) -> bool:
        """Whether a batch should go now: full, old enough, or ``urgent`` (a flush, an exit)."""
        return is_due(
            count=len(self._pieces),
            pieces_bytes=self.bytes,
            oldest=self.oldest,
            now=self._clock(),
            interval=self.interval,
            max_size=self.max_batch_size,
            max_bytes=self.max_batch_bytes,
            urgent=urgent or bool(self._flushes),
        )

    def seconds_to_due(self) -> float | None:
        """Seconds until the oldest piece is due; None when there is nothing to send."""
        if self.oldest is None or not self._pieces:
            return None
        return max(0.0, self.oldest + self.interval - self._clock())

    def take(self) -> list[bytes]:
        """The next batch, oldest first, within the batch limits."""
        batch = take_batch(self._pieces, max_size=self.max_batch_size, max_bytes=self.max_batch_bytes)
        self._forget(batch)
        return batch

    def take_all(self) -> list[bytes]:
        """Everything left (to give it up)."""
        batch = list(self._pieces)
        self._pieces.clear()
        self._forget(batch)
        return batch

    def _forget(self, batch: list[bytes]) -> None:
        self.bytes -= sum(map(len, batch))
        if not self._pieces:
            self.oldest = None

    def settled(self, count: int) -> None:
        """``count`` pieces taken earlier are done with (sent, failed, given up or on disk); the queue
        then settles its flushes (with a spool, not before what is on disk is sent too)."""
        self.left += count

    def unsettled(self, count: int) -> None:
        """``count`` pieces counted as settled (on disk) are pending again: flushes wait for them."""
        self.left -= count

    def add_again(self, piece: bytes) -> bool:
        """Append ``piece``, counted as settled (on disk) until now: pending again, so that every
        flush, also one that began before, waits for it. False (nothing added) as :meth:`add`."""
        if not self.add(piece):
            return False
        self.entered -= 1  # it entered before (or in another process): it did not leave after all
        self.left -= 1
        return True

    def peek_all(self) -> list[bytes]:
        """Everything pending, left in place (to store it, then :meth:`take_all` it)."""
        return list(self._pieces)

    @property
    def flushing(self) -> bool:
        """Whether a flush waits on what is pending."""
        return bool(self._flushes)

    def mark(self, marker: Flush) -> None:
        """``marker`` is done once everything that entered before now has left."""
        if not marker.abandoned:
            marker.target = self.entered
            self._flushes.append(marker)

    def settle_flushes(self, everything: bool = False) -> None:
        """Mark done the flushes whose pieces all left (all of them with ``everything``)."""
        if not self._flushes:
            return
        keep = []
        for marker in self._flushes:
            if everything or self.left >= marker.target:
                marker.done.set()
            elif not marker.abandoned:
                keep.append(marker)
        self._flushes = keep
