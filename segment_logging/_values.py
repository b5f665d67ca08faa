"""What the logging call captures on the caller's thread: values JSON cannot hold, converted now.

The worker encodes events one after another. A value whose ``__str__`` is slow
(it queries a database, it sleeps) would hold every later event behind it, up to
the end of the process. So the logging call converts such values itself (the
caller pays for its own objects), and the worker only ever sees JSON-native
data. The common case, where every value is already a str, int, float, bool or
None, is one pass over the values with no copy.

The commonest event, a track of ids, a name and properties, is captured further:
its properties are encoded to JSON bytes on the caller's thread (orjson makes that
about a third of a microsecond) and the event is queued as a :class:`CapturedTrack`,
a tuple of str, bytes and None. Such a tuple holds nothing the garbage collector
walks (it stops tracking it at its first pass), so a backlog of 100,000 of them costs
no full-collection pause; it takes a third of the memory of the dicts; and the
application may change its dict as soon as the call returns. The worker splices the
bytes into the message (``_batch.encode_captured``).
"""

from __future__ import annotations

import json
from typing import Any

from ._errors import InvalidMessage
from ._json import _convert, _safe_str, dumps

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


CAPTURED = object()
"""The first item of a captured track; an ``object()``, which the garbage collector does not track."""
CapturedTrack = tuple[object, "str | int | None", "str | int | None", "str | None", bytes]
"""A plain track captured on the caller: ``(CAPTURED, user_id, anonymous_id, event, properties_json)``.

A plain tuple (the garbage collector stops tracking an exact tuple of untracked items at
its first pass; it never stops tracking a NamedTuple). Only :func:`capture_metadata` makes
one; :func:`captured_track` recognises one; :func:`restore` turns it back into the mapping.
"""


def captured_track(metadata: object) -> CapturedTrack | None:
    """``metadata`` when it is a :data:`CapturedTrack`, else None."""
    if type(metadata) is tuple and len(metadata) == 5 and metadata[0] is CAPTURED:
        return metadata  # checked: only capture_metadata makes these
    return None


_PLAIN_TRACK_KEYS = frozenset(("user_id", "anonymous_id", "event", "properties"))
_ID_TYPES = (str, int, type(None))


def _capture_track(metadata: dict[str, Any]) -> CapturedTrack | None:
    """The metadata as a :class:`CapturedTrack` when it is a plain track; None to capture it as a dict.

    Anything unusual (another field, an id that is not a str or an int, properties
    that cannot be encoded) is left to the full path, which validates and reports.
    """
    if not _PLAIN_TRACK_KEYS.issuperset(metadata):
        return None
    get = metadata.get
    user_id, anonymous_id, event, properties = (
        get("user_id"),
        get("anonymous_id"),
        get("event"),
        get("properties"),
    )
    if (
        type(user_id) not in _ID_TYPES
        or type(anonymous_id) not in _ID_TYPES
        or (event is not None and type(event) is not str)
    ):
        return None
    if properties is None:
        encoded = b"{}"
    elif type(properties) is dict:
        try:
            encoded = dumps(properties, "properties")
        except InvalidMessage:
            return None  # a cycle, deep nesting, clashing keys: the worker reports it
    else:
        return None
    return (CAPTURED, user_id, anonymous_id, event, encoded)


def capture_metadata(metadata: object) -> object:
    """A ``segment`` mapping captured: a plain track as a :class:`CapturedTrack`, else its
    free-form fields converted; anything else as given."""
    if type(metadata) is not dict:
        return metadata
    track = _capture_track(metadata)
    if track is not None:
        return track
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


def restore(metadata: object) -> object:
    """The ``segment`` mapping a :class:`CapturedTrack` was made from (its properties decoded); else as given.

    For the full path (an invalid event, reported by field) and for ``on_error``.
    """
    track = captured_track(metadata)
    if track is None:
        return metadata
    _, user_id, anonymous_id, event, properties = track
    fields = (("user_id", user_id), ("anonymous_id", anonymous_id), ("event", event))
    restored: dict[str, Any] = {key: value for key, value in fields if value is not None}
    restored["properties"] = json.loads(properties)
    return restored
