"""What the logging call captures on the caller's thread: values JSON cannot hold, converted now.

The worker encodes events one after another. A value whose ``__str__`` is slow
(it queries a database, it sleeps) would hold every later event behind it, up to
the end of the process. So the logging call converts such values itself (the
caller pays for its own objects), and the worker only ever sees JSON-native
data. The common case, where every value is already a str, int, float, bool or
None, is one pass over the values with no copy.
"""

from __future__ import annotations

from typing import Any

from ._json import _convert, _safe_str

_NATIVE = frozenset((str, int, float, bool, type(None)))
_MAX_DEPTH = 32
"""Deeper than this, values are left to the worker (which reports cycles and deep nesting)."""


def capture(value: Any, depth: int = 0) -> Any:
    """``value`` with every leaf that is not JSON-native converted; the same object when none is."""
    kind = type(value)
    if kind in _NATIVE or depth > _MAX_DEPTH:
        return value
    if kind is dict:
        for item in value.values():
            if type(item) not in _NATIVE:
                return {key: capture(item, depth + 1) for key, item in value.items()}
        return value
    if kind is list or kind is tuple:
        for item in value:
            if type(item) not in _NATIVE:
                return [capture(item, depth + 1) for item in value]
        return value
    try:
        converted = _convert(value)
    except Exception:  # noqa: BLE001 - a broken conversion falls back to text, as the encoder does
        converted = _safe_str(value)
    if type(converted) in _NATIVE:
        return converted
    return capture(converted, depth + 1)


_FREE_FORM = ("properties", "traits", "context", "integrations")
"""The metadata fields that hold the application's own values; the others are validated as given."""
_IDS = frozenset(("user_id", "anonymous_id"))


def _all_native(mapping: dict[str, Any]) -> bool:
    for value in mapping.values():  # noqa: SIM110 - a plain loop is faster on this hot path than all()
        if type(value) not in _NATIVE:
            return False
    return True


def capture_metadata(metadata: object) -> object:
    """A ``segment`` mapping with its free-form fields captured; anything else as given."""
    if type(metadata) is not dict:
        return metadata
    changed: dict[str, Any] | None = None
    for key in _FREE_FORM:
        value = metadata.get(key)
        if value is None or (type(value) is dict and _all_native(value)):
            continue  # the common case: nothing to convert, nothing copied
        captured = capture(value)
        if captured is not value:
            if changed is None:
                changed = dict(metadata)
            changed[key] = captured
    return metadata if changed is None else changed


def capture_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields ``segment=True`` turns into properties, captured (the ids are validated as given)."""
    if _all_native(fields):
        return fields
    return {key: value if key in _IDS else capture(value) for key, value in fields.items()}
