"""The two libraries under test, set up the way their users would, and the hot loops.

Each loop spells out the same event as a literal, built fresh on every call (as
application code does): ``user_id`` and six small properties, one of them the
loop index. Imports are lazy, so a script for the peer never imports ours and
the reverse.
"""

from __future__ import annotations

import logging
import time
from array import array
from typing import Any

from _common import USER_ID, WRITE_KEY

PEER_QUEUE = 1_000_000
"""The peer's ``max_queue_size`` but in the loss row: raised (from 10,000) so it never drops."""
PEER_DEFAULT_QUEUE = 10_000
"""The peer's own default ``max_queue_size``, for the row that counts what a burst loses at defaults."""


class _OnALogger:
    """The hot loops, on ``self.logger``: shared by our handler and the logging module's floor."""

    logger: logging.Logger

    def loop(self, start: int, stop: int) -> None:
        info = self.logger.info
        for i in range(start, stop):
            info(
                "Signup",
                extra={
                    "segment": {
                        "user_id": USER_ID,
                        "properties": {
                            "plan": "pro",
                            "seats": 3,
                            "trial": False,
                            "source": "ads",
                            "amount": 19.99,
                            "order": i,
                        },
                    }
                },
            )

    def timed_loop(self, start: int, stop: int) -> array[int]:
        """The loop, timing every call (ns); perf_counter_ns adds about 0.1 µs per call."""
        info = self.logger.info
        clock = time.perf_counter_ns
        durations = array("q", bytes(8 * (stop - start)))
        for n, i in enumerate(range(start, stop)):
            began = clock()
            info(
                "Signup",
                extra={
                    "segment": {
                        "user_id": USER_ID,
                        "properties": {
                            "plan": "pro",
                            "seats": 3,
                            "trial": False,
                            "source": "ads",
                            "amount": 19.99,
                            "order": i,
                        },
                    }
                },
            )
            durations[n] = clock() - began
        return durations


class Ours(_OnALogger):
    """SegmentHandler on a logger of its own, at default settings unless told otherwise."""

    name = "ours"

    def __init__(self, url: str, **options: Any) -> None:
        from segment_logging import SegmentHandler

        self.handler = SegmentHandler(WRITE_KEY, host=url, **options)
        self.logger = logging.getLogger("bench.segment")
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False

    def drain(self) -> None:
        self.handler.flush(120)

    def stats(self) -> dict[str, int]:
        return self.handler.stats()

    def intake(self) -> int:
        """Events not yet encoded by the worker (a private attribute: benchmarks only)."""
        return len(self.handler._queue._intake)


class NullFloor(_OnALogger):
    """The same call with only a ``logging.NullHandler``: the logging module's floor."""

    name = "null"

    def __init__(self) -> None:
        self.logger = logging.getLogger("bench.null")
        self.logger.addHandler(logging.NullHandler())
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False

    loop = Ours.loop
    timed_loop = Ours.timed_loop

    def drain(self) -> None:
        pass

    def stats(self) -> dict[str, int]:
        return {}

    def intake(self) -> int:
        return 0


class Peer:
    """Segment's ``analytics.Client`` at its defaults, but for a queue big enough to drop nothing."""

    name = "peer"

    def __init__(self, url: str, **options: Any) -> None:
        from segment.analytics import Client

        options.setdefault("max_queue_size", PEER_QUEUE)
        self.client = Client(WRITE_KEY, host=url, **options)

    def loop(self, start: int, stop: int) -> None:
        track = self.client.track
        for i in range(start, stop):
            track(
                user_id=USER_ID,
                event="Signup",
                properties={
                    "plan": "pro",
                    "seats": 3,
                    "trial": False,
                    "source": "ads",
                    "amount": 19.99,
                    "order": i,
                },
            )

    def timed_loop(self, start: int, stop: int) -> array[int]:
        track = self.client.track
        clock = time.perf_counter_ns
        durations = array("q", bytes(8 * (stop - start)))
        for n, i in enumerate(range(start, stop)):
            began = clock()
            track(
                user_id=USER_ID,
                event="Signup",
                properties={
                    "plan": "pro",
                    "seats": 3,
                    "trial": False,
                    "source": "ads",
                    "amount": 19.99,
                    "order": i,
                },
            )
            durations[n] = clock() - began
        return durations

    def drain(self) -> None:
        self.client.flush()

    def stats(self) -> dict[str, int]:
        return {"queued": self.client.queue.qsize()}

    def intake(self) -> int:
        return 0


def subject(lib: str, url: str, **options: Any) -> Ours | Peer | NullFloor:
    if lib == "null":
        return NullFloor()
    return Ours(url, **options) if lib == "ours" else Peer(url, **options)
