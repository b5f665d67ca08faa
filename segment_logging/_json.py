"""JSON encoding that never drops a value, never loses one to a duplicate key, never writes invalid JSON.

Both encoders write compact UTF-8 (non-ASCII text as is, not as ``\\u`` escapes), so
a message has the same size, and meets the same 32 KB limit, whichever is installed.
The fast path is orjson (a dependency on CPython), else the stdlib's C encoder, each with a
``default`` hook for the usual non-JSON types. Anything they refuse (NaN, a non-str
key, a value whose ``__str__`` raises, a cycle, a lone surrogate) goes through
:func:`sanitize`, a slower walk that converts every value or names the field that
cannot be converted.

Non-str keys are turned into text the way ``json`` does (``1`` -> ``"1"``,
``None`` -> ``"null"``). Two keys of one mapping that become the same text
(``{1: "a", "1": "b"}``) would make one value vanish: :func:`sanitize` refuses
them with :class:`InvalidMessage` naming the field and both keys, on both paths.
With orjson, the common all-str-keys message pays nothing for this (orjson refuses
non-str keys by itself); the stdlib's C encoder accepts them silently, so that path
first walks the message's dicts (about 1.5 us for a typical event on 2 vCPU).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from ._errors import InvalidMessage

# str() of an int refuses more than 4,300 digits by default (CVE-2020-10735); stay below it.
_MAX_INT_BITS = 14_000
_REPR_LIMIT = 60


def short_repr(value: object, limit: int = _REPR_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters with the full length noted.

    A report must not repeat a megabyte of user data, nor fail on a broken ``__repr__``.
    """
    if isinstance(value, str | bytes) and len(value) > limit:
        # repr() of the head only: never build the repr of a huge string.
        return f"{value[:limit]!r}…({len(value):,} chars)"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break the report
        return f"<unrepresentable {type(value).__name__}>"
    if len(text) > limit:
        return f"{text[:limit]}…({len(text):,} chars)"
    return text


def _convert_one(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _convert(value: Any) -> Any:
    """Turn one value JSON cannot hold into one it can (may return a container).

    Raises:
        TypeError: the result holds a non-str key; the caller's encoder then fails
            and the value goes through :func:`sanitize`, which checks its keys.
    """
    converted = _convert_one(value)
    if not _str_keys_only(converted):
        raise TypeError("a converted value has a non-str key")
    return converted


_SCALARS = frozenset((str, int, float, bool, type(None)))
_SEQUENCES = (list, tuple)


def _str_keys_only(value: Any) -> bool:
    """Whether every dict inside ``value`` has only (exact) str keys.

    Runs on the stdlib path only: its C encoder turns ``1`` and ``"1"`` alike into
    ``"1"`` without a word, so keys are checked before it is trusted (orjson refuses
    non-str keys by itself). One frame per level of nesting, like the encoder; a
    cycle ends in RecursionError, which sends the value to :func:`sanitize`, as the
    encoder's own cycle error would.
    """
    if isinstance(value, dict):
        return _dict_keys_are_str(value)
    if isinstance(value, _SEQUENCES):
        return _items_keys_are_str(value)
    return True  # a scalar, or an object the `default` hook converts (and checks)


def _dict_keys_are_str(value: dict[Any, Any]) -> bool:
    for key, item in value.items():
        if type(key) is not str:
            return False
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is dict:
            if not _dict_keys_are_str(item):
                return False
        elif kind is list:
            if not _items_keys_are_str(item):
                return False
        elif not _str_keys_only(item):
            return False
    return True


def _items_keys_are_str(value: list[Any] | tuple[Any, ...]) -> bool:
    for item in value:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is dict:
            if not _dict_keys_are_str(item):
                return False
        elif kind is list:
            if not _items_keys_are_str(item):
                return False
        elif not _str_keys_only(item):
            return False
    return True


_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=_convert)

try:  # a dependency on CPython; other interpreters (and a CI run without it) use the stdlib path
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]  # absent: the stdlib path is used

# Dataclasses through _convert (str), as the stdlib path does. No OPT_NON_STR_KEYS: a
# non-str key makes orjson fail, and the stdlib path then checks the keys for duplicates.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS if orjson else 0


def dumps_stdlib(obj: Any, field: str = "message") -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON with the standard library only.

    A lone surrogate, which UTF-8 cannot hold, is written as its ``\\uXXXX`` escape.

    Raises:
        InvalidMessage: ``obj`` holds a circular reference, is nested too deeply, or
            has two keys that become the same JSON text; the error names ``field``.
    """
    try:
        text = _encoder.encode(obj) if _str_keys_only(obj) else None
    except Exception:  # noqa: BLE001 - any failure of the fast path is retried on the safe path
        text = None
    if text is None:
        text = _encoder.encode(sanitize(obj, field))
    # Surrogates only ever stand inside JSON strings, where \\udxxx is their valid escape.
    return text.encode("utf-8", "backslashreplace")


def dumps(obj: Any, field: str = "message") -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON: with orjson when installed, else :func:`dumps_stdlib`.

    Both give the same bytes for text; orjson writes NaN and Infinity as null too.
    Whatever orjson refuses (a non-str key, a cycle, a lone surrogate, an int past
    64 bits, deep nesting) goes the stdlib way, so the result never depends on
    which is installed.

    Raises:
        InvalidMessage: as :func:`dumps_stdlib`.
    """
    if orjson is not None:
        try:
            # orjson's result keeps a large over-allocated buffer (about 4 KB per small
            # message); a copy, which costs about 0.1 us, holds only the bytes.
            return bytes(memoryview(orjson.dumps(obj, default=_convert, option=_ORJSON_OPTIONS)))
        except Exception:  # noqa: BLE001 - fall back to the stdlib path, which handles every case
            pass
    return dumps_stdlib(obj, field)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the event
        try:
            return repr(value)
        except Exception:  # noqa: BLE001 - nor a broken __repr__
            return f"<unrepresentable {type(value).__name__}>"


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(sanitize(key, "key"))
    return _safe_str(key)


def _mapping_copy(value: Mapping[Any, Any], field: str, active: set[int]) -> dict[str, Any]:
    copy: dict[str, Any] = {}
    for key, item in value.items():
        text = _key(key)
        if text in copy:
            first = next(other for other in value if _key(other) == text)
            raise InvalidMessage(
                f"{field} has keys {short_repr(first)} and {short_repr(key)}, both {short_repr(text)} "
                "in JSON: one value would be lost"
            )
        copy[text] = sanitize(item, field, active)
    return copy


def sanitize(value: Any, field: str, _active: set[int] | None = None) -> Any:
    """Return a copy of ``value`` made only of JSON-native, finite values and str keys.

    Raises:
        InvalidMessage: a circular reference, nesting deeper than Python can walk,
            or two keys of one mapping that become the same text.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)  # a plain copy, even of a subclass with its own __str__
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            return f"<int of {value.bit_length()} bits>"
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    active = set() if _active is None else _active
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        marker = id(value)
        if marker in active:
            raise InvalidMessage(f"{field} contains a circular reference")
        active.add(marker)
        try:
            if isinstance(value, Mapping):
                return _mapping_copy(value, field, active)
            return [sanitize(item, field, active) for item in value]
        except RecursionError:
            raise InvalidMessage(f"{field} is nested too deeply to encode") from None
        finally:
            active.discard(marker)
    try:
        converted = _convert_one(value)
    except Exception:  # noqa: BLE001 - fall back to text rather than lose the value
        converted = _safe_str(value)
    if isinstance(converted, str):
        return converted
    return sanitize(converted, field, active)
