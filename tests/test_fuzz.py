"""Bad input, fuzzed: whatever the values, emit never raises and Segment
only ever receives valid JSON under its limits.

One fake server and one handler serve every example; the fake server answers
400 to invalid JSON, to a message over 32 KB and to a body over 500 KB, so "no
answer but 200" means every batch sent was acceptable.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import io
import logging
import string
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment_logging import InvalidMessage, SegmentHandler
from segment_logging.testing import SegmentServer

COPIES = 16
"""Each example logs its event this many times, so batches fill up to the byte budget."""


class BrokenStr:
    """An object whose __str__ raises (its repr works)."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


class Unprintable:
    """An object whose __str__ and __repr__ both raise."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ is broken")


HUGE_INTS = [2**64, -(2**63) - 1, 2**13_999 - 1, 2**14_000, 10**4_300, -(10**5_000)]
"""Past 64 bits, at and past what str() of an int allows (4,300 digits)."""


def _huge(index: int) -> int:
    return HUGE_INTS[index]  # by name: hypothesis describes strategies with repr(), which these break


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(0, len(HUGE_INTS) - 1).map(_huge),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.integers(0, 40_000).map(lambda n: "x" * n),  # near and over the 32 KB message limit
    st.binary(max_size=10),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(),
    st.uuids(),
    st.builds(BrokenStr),
    st.builds(Unprintable),
    st.frozensets(st.integers(), max_size=3),
)
keys = st.one_of(
    st.text(max_size=10),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.builds(BrokenStr),
    st.sampled_from([datetime.date(2026, 1, 1), uuid.UUID(int=1), decimal.Decimal("NaN")]),
)
nested = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=12,
)


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"down": value}
    return value


@st.composite
def values(draw: st.DrawFn) -> Any:
    """A nested value, sometimes holding itself, sometimes nested past the recursion limit."""
    kind = draw(st.sampled_from(["plain", "plain", "plain", "cycle", "deep"]))
    if kind == "deep":
        # Well inside and well past the recursion limit. Right at it, whether encoding succeeds
        # depends on how deep the encoding thread's stack already is, and the fake server's
        # Python parser stops near there while Segment's goes on: no stable answer to test.
        return _deep(draw(st.sampled_from([50, 300, 3_000])))
    value = draw(nested)
    if kind == "cycle":
        container = value if isinstance(value, dict | list) else {"inner": value}
        if isinstance(container, dict):
            container["self"] = container
        else:
            container.append(container)
        return container
    return value


_dicts = st.dictionaries(keys, nested, max_size=4)
mappings = st.one_of(_dicts, _dicts, _dicts, values())
"""Mostly mappings (what properties, traits and context must be), sometimes anything at all."""


@st.composite
def metadata(draw: st.DrawFn) -> tuple[object, dict[str, Any]]:
    """(the record's ``segment`` value, extra record attributes) for one log call."""
    kind = draw(st.sampled_from(["track", "identify", "group", "page", "derived"]))
    if kind == "derived":  # segment=True: properties come from the record's extra attributes
        names = st.text(string.ascii_lowercase, min_size=1, max_size=6).map(lambda s: f"x_{s}")
        extra = draw(st.dictionaries(names, values(), max_size=4))
        return True, {"user_id": "u", **extra}
    fields: dict[str, Any] = {"type": kind, "user_id": "u", "context": draw(mappings)}
    if kind in ("track", "page"):
        fields["properties"] = draw(mappings)
    else:
        fields["traits"] = draw(mappings)
    if kind == "group":
        fields["group_id"] = "g"
    return fields, {}


class Fuzz:
    """The shared server, handler and logger, and what on_error received."""

    def __init__(self) -> None:
        self.server = SegmentServer().start()
        self.errors: list[tuple[BaseException, list[Any]]] = []
        self._lock = threading.Lock()
        self.handler = SegmentHandler(
            self.server.write_key,
            host=self.server.url,
            flush_interval=0.01,
            max_batch_size=2_500,
            max_retry_time=2,  # a batch the server cannot take fails this example, not the next ones
            on_error=self._on_error,
            shutdown_timeout=2,
        )
        self.logger = logging.getLogger("test.fuzz")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)

    def _on_error(self, exc: BaseException, messages: list[Any]) -> None:
        with self._lock:
            self.errors.append((exc, messages))

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
        self.server.stop()


@pytest.fixture(scope="module")
def fuzz() -> Iterator[Fuzz]:
    """One server and handler for every example (starting them per example would dominate)."""
    shared = Fuzz()
    yield shared
    shared.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=metadata())
def test_emit_never_raises_and_only_valid_batches_are_sent(
    fuzz: Fuzz, case: tuple[object, dict[str, Any]]
) -> None:
    """Arbitrary nested values (non-str keys, huge ints, cycles, NaN/inf, deep nesting, broken
    __str__) in properties, traits and context: emit never raises, every batch Segment receives
    is accepted (valid JSON, messages under 32 KB, body under 500 KB), and every event is either
    sent or reported to on_error as InvalidMessage."""
    segment, extra = case
    before = fuzz.handler.stats()
    errors_before = len(fuzz.errors)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):  # where logging's handleError() would report
        for _ in range(COPIES):
            fuzz.logger.info("Fuzz", extra={"segment": segment, **extra})
    assert "Logging error" not in stderr.getvalue(), stderr.getvalue()
    assert fuzz.handler.flush(10)

    after = fuzz.handler.stats()
    delta = {key: after[key] - before[key] for key in after}
    assert delta["sent"] + delta["invalid"] == COPIES, delta
    assert (delta["failed"], delta["dropped"], after["queued"]) == (0, 0, 0), delta
    rejected = [(r.status, r.reason) for r in fuzz.server.requests if r.status != 200]
    assert rejected == [], rejected
    new_errors = fuzz.errors[errors_before:]
    assert len(new_errors) == delta["invalid"]
    assert all(isinstance(exc, InvalidMessage) for exc, _ in new_errors)
