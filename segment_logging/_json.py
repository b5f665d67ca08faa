"""JSON encoding that never drops a value and never produces invalid JSON.

The fast path is the stdlib's C encoder with a ``default`` hook for the usual
non-JSON types. Anything it refuses (NaN, non-string keys, a value whose
``__str__`` raises, a cycle) goes through :func:`sanitize`, a slower walk that
converts every value or names the field that cannot be converted.
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


def _convert(value: Any) -> Any:
    """Turn one value JSON cannot hold into one it can (may return a container)."""
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


_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_convert)

try:  # the optional `fast` extra; everything works without it
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]  # absent: the stdlib path is used

# Non-str keys as the stdlib writes them; dataclasses through _convert (str), as the stdlib path does.
_ORJSON_OPTIONS = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS) if orjson else 0


def dumps_stdlib(obj: Any, field: str = "message") -> bytes:
    """Encode ``obj`` as compact ASCII JSON with the standard library only.

    Raises:
        InvalidMessage: ``obj`` holds a circular reference or is nested too deeply;
            the error names ``field``.
    """
    try:
        return _encoder.encode(obj).encode("ascii")
    except Exception:  # noqa: BLE001 - any failure of the fast path is retried on the safe path
        return _encoder.encode(sanitize(obj, field)).encode("ascii")


def dumps(obj: Any, field: str = "message") -> bytes:
    """Encode ``obj`` as compact JSON: with orjson when installed (UTF-8), else :func:`dumps_stdlib`.

    Both give the same values; orjson writes NaN and Infinity as null too. Whatever
    orjson refuses (a cycle, a lone surrogate, an int past 64 bits, deep nesting)
    goes the stdlib way, so the result never depends on which is installed.

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
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(sanitize(key, "key"))
    return _safe_str(key)


def sanitize(value: Any, field: str, _active: set[int] | None = None) -> Any:
    """Return a copy of ``value`` made only of JSON-native, finite values.

    Raises:
        InvalidMessage: a circular reference, or nesting deeper than Python can walk.
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
                return {_key(k): sanitize(v, field, active) for k, v in value.items()}
            return [sanitize(item, field, active) for item in value]
        except RecursionError:
            raise InvalidMessage(f"{field} is nested too deeply to encode") from None
        finally:
            active.discard(marker)
    try:
        converted = _convert(value)
    except Exception:  # noqa: BLE001 - fall back to text rather than lose the value
        converted = _safe_str(value)
    if isinstance(converted, str):
        return converted
    return sanitize(converted, field, active)
