"""Shared fixtures: a fake Segment server per test, and handlers that are always closed."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from segment_logging import SegmentHandler
from segment_logging.testing import SegmentServer


@pytest.fixture
def server() -> Iterator[SegmentServer]:
    """A fake Segment on a random loopback port."""
    with SegmentServer() as srv:
        yield srv


@pytest.fixture
def make_handler(server: SegmentServer) -> Iterator[Callable[..., SegmentHandler]]:
    """Build SegmentHandlers pointed at ``server``; each is closed after the test."""
    made: list[SegmentHandler] = []

    def make(**options: Any) -> SegmentHandler:
        options.setdefault("host", server.url)
        options.setdefault("shutdown_timeout", 2.0)
        handler = SegmentHandler(options.pop("write_key", server.write_key), **options)
        made.append(handler)
        return handler

    yield make
    for handler in made:
        handler.close()


_names = itertools.count()


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A fresh, non-propagating logger at INFO with no handlers."""
    log = logging.getLogger(f"test.logger{next(_names)}")
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
