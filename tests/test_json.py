"""JSON encoding: every value converted, never invalid JSON, cycles named."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from typing import Any

import pytest

from segment_logging import InvalidMessage
from segment_logging._json import dumps, sanitize


class Color(enum.Enum):
    RED = "red"


class Broken:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05"),
        (datetime.date(2026, 1, 2), "2026-01-02"),
        (decimal.Decimal("9.50"), 9.5),
        (decimal.Decimal("NaN"), None),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Color.RED, "red"),
        ({3}, [3]),
        (frozenset({"a"}), ["a"]),
        ((1, 2), [1, 2]),
        (b"bytes", "bytes"),
        (float("nan"), None),
        (float("inf"), None),
        (object, "<class 'object'>"),
    ],
)
def test_non_json_values_are_converted(value: Any, expected: Any) -> None:
    """Each non-JSON type becomes a JSON value, never dropped."""
    assert json.loads(dumps({"v": value})) == {"v": expected}


def test_nan_never_produces_invalid_json() -> None:
    """NaN and Infinity become null, so strict parsers accept the output."""
    text = dumps({"a": float("nan"), "b": [float("-inf")]}).decode()
    assert "NaN" not in text
    assert "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [None]}


def test_non_string_keys_and_broken_str() -> None:
    """Non-str keys are stringified, and an object whose __str__ raises still encodes."""
    out = json.loads(dumps({"a": {(1, 2): "t", 3: "i", None: "n"}, "b": Broken()}))
    assert out["a"] == {"(1, 2)": "t", "3": "i", "null": "n"}
    assert out["b"] == "<unrepresentable Broken>"


def test_huge_int_is_kept_readable() -> None:
    """Ints past str()'s digit limit do not break encoding."""
    out = json.loads(dumps({"n": 10**5000, "m": 2**70}))
    assert out["n"].startswith("<int of ")
    assert out["m"] == 2**70


def test_circular_reference_names_field() -> None:
    """A cycle raises InvalidMessage naming the field."""
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(InvalidMessage, match="properties contains a circular reference"):
        sanitize(loop, "properties")


def test_repeated_but_acyclic_object_is_fine() -> None:
    """The same dict twice (not a cycle) encodes both times."""
    shared = {"x": float("nan")}
    assert json.loads(dumps({"a": shared, "b": shared})) == {"a": {"x": None}, "b": {"x": None}}


def test_output_is_ascii_and_compact() -> None:
    """Output is compact ASCII (lone surrogates included) so it always encodes."""
    text = dumps({"k": "é\ud800"})
    assert text == b'{"k":"\\u00e9\\ud800"}'
