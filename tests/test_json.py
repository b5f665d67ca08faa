"""JSON encoding: every value converted, never invalid JSON, cycles named."""

from __future__ import annotations

import datetime
import decimal
import enum
import importlib.util
import json
import re
import types
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_logging import InvalidMessage
from segment_logging._json import dumps, dumps_stdlib, sanitize, short_repr


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


def test_stdlib_output_is_utf8_and_compact() -> None:
    """The stdlib path writes compact UTF-8, and a lone surrogate as its escape, so it always encodes."""
    out = dumps_stdlib({"k": "é\ud800"})
    assert out == b'{"k":"\xc3\xa9\\ud800"}'
    assert json.loads(out) == {"k": "é\ud800"}


def test_lone_surrogate_falls_back_to_stdlib() -> None:
    """A string orjson refuses (a lone surrogate) still encodes, through the stdlib path."""
    assert json.loads(dumps({"k": "\ud800"})) == {"k": "\ud800"}


@pytest.mark.skipif(
    importlib.util.find_spec("orjson") is None, reason="orjson (a CPython dependency) is not installed"
)
def test_orjson_is_used_when_installed() -> None:
    """With orjson (installed by default on CPython), non-ASCII text is written as UTF-8, not escaped."""
    assert dumps({"k": "é"}) == '{"k":"é"}'.encode()


GREEK = "αβγδεζηθικλμνξοπρστυφχψω" * 625  # 15,000 letters, two bytes each in UTF-8


@pytest.mark.parametrize("encode", [dumps, dumps_stdlib], ids=["default", "stdlib"])
def test_non_ascii_text_is_utf8_on_both_paths(encode: Any) -> None:
    """15,000 Greek letters encode to about 30 KB (UTF-8), not 90 KB of escapes, with or without orjson."""
    out = encode({"text": GREEK})
    assert len(out) == len('{"text":""}') + 2 * len(GREEK)
    assert json.loads(out) == {"text": GREEK}


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.text(), st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none()),
        max_size=6,
    )
)
def test_both_paths_write_the_same_bytes(value: dict[str, Any]) -> None:
    """For text, ints, booleans and null, the stdlib path writes exactly the bytes the default path writes."""
    assert dumps_stdlib(value) == dumps(value)


@given(st.text(alphabet=st.characters(min_codepoint=0xD700, max_codepoint=0xE000), max_size=6))
def test_surrogates_always_give_valid_utf8_json(text: str) -> None:
    """Whatever surrogates a string holds, the output is valid UTF-8 JSON a strict parser reads."""
    for encode in (dumps, dumps_stdlib):
        out = encode({"k": text})
        decoded = json.loads(out.decode("utf-8"))  # strict UTF-8: raises on an encoded surrogate
        assert set(decoded) == {"k"}


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        ({1: "a", "1": "b"}, "1 and '1'"),
        ({"1": "a", 1: "b"}, "'1' and 1"),
        ({"x": {True: "a", "true": "b"}}, "True and 'true'"),
        ({None: "a", "null": "b"}, "None and 'null'"),
        ({1.5: "a", "1.5": "b"}, "1.5 and '1.5'"),
        ({"m": types.MappingProxyType({2: "a", "2": "b"})}, "2 and '2'"),
        ({"l": [{0: "a", "0": "b"}]}, "0 and '0'"),
    ],
)
@pytest.mark.parametrize("encode", [dumps, dumps_stdlib], ids=["default", "stdlib"])
def test_keys_that_collide_in_json_are_refused(value: Any, keys: str, encode: Any) -> None:
    """Two keys that become the same JSON text raise InvalidMessage naming the field and both keys."""
    expected = rf"^properties has keys {re.escape(keys)}, both '[^']*' in JSON"
    with pytest.raises(InvalidMessage, match=expected):
        encode(value, "properties")


@pytest.mark.parametrize("encode", [dumps, dumps_stdlib], ids=["default", "stdlib"])
def test_distinct_non_string_keys_still_encode(encode: Any) -> None:
    """Non-str keys that stay distinct in JSON are written as text, nested or not, on both paths."""
    value = {"counts": {1: "a", 2: "b"}, "flags": {True: 1, None: 2}, "plain": {"1": "x"}}
    assert json.loads(encode(value)) == {
        "counts": {"1": "a", "2": "b"},
        "flags": {"true": 1, "null": 2},
        "plain": {"1": "x"},
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("short", "'short'"),
        ("x" * 100, "'" + "x" * 60 + "'…(100 chars)"),
        (b"y" * 61, "b'" + "y" * 60 + "'…(61 chars)"),
        (list(range(100)), repr(list(range(100)))[:60] + "…(390 chars)"),
        (Broken(), "<unrepresentable Broken>"),
    ],
)
def test_short_repr_cuts_long_values(value: Any, expected: str) -> None:
    """Error messages show at most 60 characters of a value, with its full length."""
    assert short_repr(value) == expected


def test_collision_error_does_not_repeat_a_huge_key() -> None:
    """A colliding key of a megabyte appears cut short in the error."""
    huge = "k" * 1_000_000
    with pytest.raises(InvalidMessage) as caught:
        dumps({huge: 1, Text(huge): 2})
    assert len(str(caught.value)) < 400


class Text:
    """A key whose str() is another key's text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Text({self.text!r})"


def _nested(kind: str, depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


@pytest.mark.parametrize("kind", ["list", "dict"])
@pytest.mark.parametrize("encode", [dumps, dumps_stdlib], ids=["default", "stdlib"])
def test_deep_nesting_the_encoder_takes_still_encodes(kind: str, encode: Any) -> None:
    """The key check costs no depth: 900 levels of lists or dicts encode, as they did before it."""
    value = _nested(kind, 900)
    assert json.loads(encode({"p": value})) == {"p": value}


@pytest.mark.parametrize("kind", ["list", "dict"])
@pytest.mark.parametrize("encode", [dumps, dumps_stdlib], ids=["default", "stdlib"])
def test_cycle_is_named_on_both_paths(kind: str, encode: Any) -> None:
    """A list or dict that holds itself raises InvalidMessage naming the field, on both paths."""
    loop: Any = [] if kind == "list" else {}
    if isinstance(loop, list):
        loop.append(loop)
    else:
        loop["self"] = loop
    with pytest.raises(InvalidMessage, match=r"^properties contains a circular reference"):
        encode({"p": loop}, "properties")
