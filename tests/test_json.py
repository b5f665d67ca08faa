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
from segment_logging._json import dumps, dumps_stdlib, orjson, sanitize


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
@pytest.mark.parametrize("encode", [dumps, dumps_stdlib], ids=["default", "stdlib"])
def test_non_json_values_are_converted(value: Any, expected: Any, encode: Any) -> None:
    """Each non-JSON type becomes a JSON value, never dropped, with or without orjson."""
    assert json.loads(encode({"v": value})) == {"v": expected}


@pytest.mark.parametrize("encode", [dumps, dumps_stdlib], ids=["default", "stdlib"])
def test_nan_never_produces_invalid_json(encode: Any) -> None:
    """NaN and Infinity become null, so strict parsers accept the output."""
    text = encode({"a": float("nan"), "b": [float("-inf")]}).decode()
    assert "NaN" not in text
    assert "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [None]}


@pytest.mark.parametrize("encode", [dumps, dumps_stdlib], ids=["default", "stdlib"])
def test_non_string_keys_and_broken_str(encode: Any) -> None:
    """Non-str keys are stringified, and an object whose __str__ raises still encodes."""
    out = json.loads(encode({"a": {(1, 2): "t", 3: "i", None: "n"}, "b": Broken()}))
    assert out["a"] == {"(1, 2)": "t", "3": "i", "null": "n"}
    assert out["b"] == "<unrepresentable Broken>"


@pytest.mark.parametrize("encode", [dumps, dumps_stdlib], ids=["default", "stdlib"])
def test_huge_int_is_kept_readable(encode: Any) -> None:
    """Ints past str()'s digit limit do not break encoding."""
    out = json.loads(encode({"n": 10**5000, "m": 2**70}))
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


def test_stdlib_output_is_ascii_and_compact() -> None:
    """The stdlib path writes compact ASCII, lone surrogates included, so it always encodes."""
    assert dumps_stdlib({"k": "é\ud800"}) == b'{"k":"\\u00e9\\ud800"}'


def test_lone_surrogate_falls_back_to_stdlib() -> None:
    """A string orjson refuses (a lone surrogate) still encodes, through the stdlib path."""
    assert json.loads(dumps({"k": "\ud800"})) == {"k": "\ud800"}


@pytest.mark.skipif(orjson is None, reason="orjson (the `fast` extra) is not installed")
def test_orjson_is_used_when_installed() -> None:
    """With the `fast` extra, non-ASCII text is written as UTF-8 (orjson), not escaped."""
    assert dumps({"k": "é"}) == '{"k":"é"}'.encode()
