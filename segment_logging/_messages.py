"""The six Segment Spec messages, and how logging metadata becomes one.

Messages validate at construction, raising ``ValueError``/``TypeError`` that
name the field, and never mutate what the caller passed: mappings are copied
(one level deep) and the library's ``context.library`` is merged into a new
dict when the message is turned into its wire form.

The messages are dataclasses, so ``dataclasses.fields()``, ``dataclasses.replace()``
(which validates again) and type checkers see their fields. No ``from __future__
import annotations`` here: the field types stay real objects, which
``typing.get_type_hints()`` can read even though the classes report
``segment_logging`` as their module.
"""

import datetime
import math
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal, cast, overload

from ._compat import slots_fixed
from ._errors import InvalidMessage
from ._json import short_repr
from ._version import __version__

LIBRARY = {"name": "segment-logging", "version": __version__}
MAX_MESSAGE_ID_LENGTH = 100

Timestamp = datetime.datetime | str | float | int


# A private generator: os.urandom per id costs a system call (and a GIL hand-off) per
# event, and the module-level `random` could be re-seeded by the app, repeating ids
# that Segment would then de-duplicate away. Re-seeded in every forked child.
_ids = random.Random(os.urandom(32))
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID_SET = (0x4 << 76) | (0x2 << 62)  # version 4, RFC 4122 variant


def reseed_ids() -> None:
    """In a forked child: ids of its own, never the parent's sequence (``_lifecycle`` calls this)."""
    _ids.seed(os.urandom(32))


def new_message_id() -> str:
    """A random (version 4) UUID string, several times cheaper than ``str(uuid.uuid4())``."""
    h = f"{_ids.getrandbits(128) & _UUID_CLEAR | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# The one rule for every timestamp: a moment Python's datetime holds in UTC, years
# 0001 to 9999, which is also what ISO-8601's four-digit years (and Segment) take.
_EPOCH = datetime.datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=datetime.timezone.utc)
_FIRST = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
_LAST = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)
_RANGE = (
    f"years {_FIRST.year:04d} to {_LAST.year} in UTC, epoch seconds "
    f"{math.floor(_FIRST.timestamp())} to {math.floor(_LAST.timestamp())}"
)


def _out_of_range(value: object) -> InvalidMessage:
    """The error for a timestamp outside :data:`_RANGE`."""
    hint = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            if _FIRST.timestamp() <= value / 1000 <= _LAST.timestamp():
                hint = " (epoch milliseconds? Segment takes seconds)"
        except (OverflowError, ValueError):  # a huge int
            pass
    return InvalidMessage(f"timestamp {short_repr(value)} is out of range: Segment takes {_RANGE}{hint}")


_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def format_timestamp(moment: datetime.datetime | float) -> str:
    """ISO-8601 in UTC with millisecond precision, the form Segment documents.

    Raises:
        InvalidMessage: ``moment`` is outside years 0001 to 9999 in UTC (or not a
            datetime or a number); the error names the timestamp.
    """
    global _second
    if isinstance(moment, datetime.datetime):
        try:
            return moment.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds")
        except (OverflowError, ValueError, OSError):
            raise _out_of_range(moment) from None
    # Log records carry epoch floats, many within the same second: format the
    # second once (a quarter of the cost of datetime.isoformat per call).
    try:
        whole = math.floor(moment)
        micros = round((moment - whole) * 1_000_000)  # round to the microsecond first, as datetime does
    except TypeError:
        raise InvalidMessage(
            f"timestamp must be a datetime or epoch seconds, not {type(moment).__name__}"
        ) from None
    except (ValueError, OverflowError):  # NaN, an infinity
        raise _out_of_range(moment) from None
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    cached = _second
    if cached[0] != whole:
        try:  # datetime checks the range (and, unlike strftime, always writes four-digit years)
            second = (_EPOCH + datetime.timedelta(seconds=whole)).isoformat()
        except OverflowError:
            raise _out_of_range(moment) from None
        cached = _second = (whole, second)
    return f"{cached[1]}.{micros // 1000:03d}+00:00"


@overload
def _id(field: str, value: object, *, required: Literal[True]) -> str: ...
@overload
def _id(field: str, value: object, *, required: bool = False) -> str | None: ...
def _id(field: str, value: object, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise ValueError(f"{field} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"{field} must be a str or an int, not {type(value).__name__}")
    return str(value)


@overload
def _text(field: str, value: object, *, required: Literal[True]) -> str: ...
@overload
def _text(field: str, value: object, *, required: bool = False) -> str | None: ...
def _text(field: str, value: object, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise ValueError(f"{field} is required")
        return None
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}")
    return value


def _mapping(field: str, value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{field} must be a mapping, not {type(value).__name__}")
    return dict(value)


def _timestamp(value: object) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"timestamp {short_repr(value)} is not an ISO-8601 date-time") from None
    elif isinstance(value, datetime.datetime):
        moment = value  # a naive datetime is local time, as everywhere else in Python
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return _EPOCH_UTC + datetime.timedelta(seconds=value)
        except (OverflowError, ValueError):  # out of range, NaN, an infinity
            raise _out_of_range(value) from None
    else:
        raise TypeError(
            f"timestamp must be a datetime, an ISO-8601 str or epoch seconds, not {type(value).__name__}"
        )
    try:
        return moment.astimezone(datetime.timezone.utc)
    except (OverflowError, ValueError, OSError):  # in range locally, not once in UTC
        raise _out_of_range(value) from None


def _message_id(value: object) -> str:
    if value is None:
        return new_message_id()
    if not isinstance(value, str) or not value:
        raise TypeError("message_id must be a non-empty str")
    if len(value) > MAX_MESSAGE_ID_LENGTH:
        raise ValueError(f"message_id is {len(value)} characters; Segment accepts at most 100")
    return value


@slots_fixed
@dataclass(kw_only=True, slots=True, repr=False)
class BaseMessage:
    """Fields common to every Segment message.

    Args:
        user_id: your id for the user (a str, or an int sent as a str).
        anonymous_id: an id for a user you do not know yet. One of the two is required.
        timestamp: when it happened: an aware or local datetime, an ISO-8601 str or
            epoch seconds, within years 0001 to 9999 in UTC. Defaults to when the log
            record was made (or when the message is encoded, for messages sent without
            a record).
        message_id: unique id Segment de-duplicates on; defaults to a fresh UUID.
            ``dataclasses.replace()`` keeps it: pass ``message_id=None`` for a new one.
        context: extra context; ``context.library`` is set to segment-logging's.
        integrations: which destinations receive the message.

    Once built, the ids are str, ``timestamp`` is an aware UTC datetime (or None),
    ``message_id`` is set and the mappings are the message's own dict copies.

    Raises:
        ValueError, TypeError: a field is missing, has the wrong type or is out of range
            (an :class:`InvalidMessage` for a timestamp); the error names it.
    """

    type: ClassVar[str] = ""

    # Each class is a dataclass (keyword-only, slotted) with a shorter repr than the
    # generated one; slots_fixed makes Python 3.10 build its slots as later versions do.
    user_id: str | int | None = None
    anonymous_id: str | int | None = None
    timestamp: Timestamp | None = None
    message_id: str | None = None
    context: Mapping[str, Any] | None = None
    integrations: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        self._check_own_fields()  # first, so their errors come first, as they always have
        self.user_id = _id("user_id", self.user_id)
        self.anonymous_id = _id("anonymous_id", self.anonymous_id)
        if self.user_id is None and self.anonymous_id is None:
            raise ValueError(f"a {self.type} message needs user_id or anonymous_id")
        self.timestamp = _timestamp(self.timestamp)
        self.message_id = _message_id(self.message_id)
        self.context = _mapping("context", self.context)
        self.integrations = _mapping("integrations", self.integrations)

    def _check_own_fields(self) -> None:
        """Check (and convert) the fields particular to this message type."""

    def _fields(self) -> dict[str, Any]:
        """The wire fields particular to this message type."""
        return {}

    def to_dict(self, default_timestamp: datetime.datetime | float | None = None) -> dict[str, Any]:
        """The message as Segment's JSON expects it (camelCase keys, absent fields left out)."""
        wire: dict[str, Any] = {"type": self.type}
        if self.user_id is not None:
            wire["userId"] = self.user_id
        if self.anonymous_id is not None:
            wire["anonymousId"] = self.anonymous_id
        wire.update(self._fields())
        wire["context"] = {**self.context, "library": LIBRARY} if self.context else {"library": LIBRARY}
        if self.integrations is not None:
            wire["integrations"] = self.integrations
        timestamp = cast("datetime.datetime | None", self.timestamp)  # made one by __post_init__
        moment = timestamp if timestamp is not None else default_timestamp
        wire["timestamp"] = format_timestamp(
            moment if moment is not None else datetime.datetime.now(datetime.timezone.utc)
        )
        wire["messageId"] = self.message_id
        return wire

    def __repr__(self) -> str:
        # Shorter than the generated repr: the type's own fields first, unset ones left out.
        names = _own_fields(type(self)) + _COMMON_FIELDS
        shown = ", ".join(
            f"{name}={value!r}" for name in names if (value := getattr(self, name, None)) is not None
        )
        return f"{type(self).__name__}({shown})"


_COMMON_FIELDS = tuple(field.name for field in fields(BaseMessage))


def _own_fields(cls: type[BaseMessage]) -> tuple[str, ...]:
    """The fields of ``cls`` that are not common to every message, in declaration order."""
    return tuple(field.name for field in fields(cls) if field.name not in _COMMON_FIELDS)


@slots_fixed
@dataclass(kw_only=True, slots=True, repr=False)
class Track(BaseMessage):
    """A track call: something the user did. ``event`` is required."""

    type = "track"

    event: str
    properties: Mapping[str, Any] | None = None

    def _check_own_fields(self) -> None:
        self.event = _text("event", self.event, required=True)
        self.properties = _mapping("properties", self.properties)

    def _fields(self) -> dict[str, Any]:
        return {"event": self.event, "properties": self.properties or {}}


@slots_fixed
@dataclass(kw_only=True, slots=True, repr=False)
class Identify(BaseMessage):
    """An identify call: who the user is, with their ``traits``."""

    type = "identify"

    traits: Mapping[str, Any] | None = None

    def _check_own_fields(self) -> None:
        self.traits = _mapping("traits", self.traits)

    def _fields(self) -> dict[str, Any]:
        return {"traits": self.traits or {}}


@slots_fixed
@dataclass(kw_only=True, slots=True, repr=False)
class Page(BaseMessage):
    """A page call: the user saw a web page, optionally with ``name`` and ``category``."""

    type = "page"

    name: str | None = None
    category: str | None = None
    properties: Mapping[str, Any] | None = None

    def _check_own_fields(self) -> None:
        self.name = _text("name", self.name)
        self.category = _text("category", self.category)
        self.properties = _mapping("properties", self.properties)

    def _fields(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"properties": self.properties or {}}
        if self.name is not None:
            wire["name"] = self.name
        if self.category is not None:
            wire["category"] = self.category
        return wire


@slots_fixed
@dataclass(kw_only=True, slots=True, repr=False)
class Screen(Page):
    """A screen call: the mobile-app twin of :class:`Page`."""

    type = "screen"


@slots_fixed
@dataclass(kw_only=True, slots=True, repr=False)
class Group(BaseMessage):
    """A group call: the user belongs to ``group_id`` (required), with the group's ``traits``."""

    type = "group"

    group_id: str | int
    traits: Mapping[str, Any] | None = None

    def _check_own_fields(self) -> None:
        self.group_id = _id("group_id", self.group_id, required=True)
        self.traits = _mapping("traits", self.traits)

    def _fields(self) -> dict[str, Any]:
        return {"groupId": self.group_id, "traits": self.traits or {}}


@slots_fixed
@dataclass(kw_only=True, slots=True, repr=False)
class Alias(BaseMessage):
    """An alias call: ``previous_id`` (required) and ``user_id`` are the same person."""

    type = "alias"

    previous_id: str | int

    def _check_own_fields(self) -> None:
        self.previous_id = _id("previous_id", self.previous_id, required=True)

    def _fields(self) -> dict[str, Any]:
        return {"previousId": self.previous_id}


MESSAGE_TYPES: dict[str, type[BaseMessage]] = {
    cls.type: cls for cls in (Track, Identify, Page, Screen, Group, Alias)
}
_KEYS: dict[type[BaseMessage], frozenset[str]] = {
    cls: frozenset(field.name for field in fields(cls)) | {"type"} for cls in MESSAGE_TYPES.values()
}

# The field the log message fills in when absent, and the field each type requires.
_NAME_KEYS: dict[type[BaseMessage], str] = {Track: "event", Page: "name", Screen: "name"}
_REQUIRED_KEYS: dict[type[BaseMessage], str] = {Group: "group_id", Alias: "previous_id"}


_PLAIN_TRACK_KEYS = frozenset(("user_id", "anonymous_id", "event", "properties"))
_LIBRARY_CONTEXT = {"library": LIBRARY}


def plain_track_wire(metadata: object, name: str, created: float) -> dict[str, Any] | None:
    """The wire form of the commonest event, without building a message object.

    Handles a plain dict of only ``user_id``/``anonymous_id``/``event``/``properties``
    (a dict) that is valid, with the same validators as :class:`Track`, and gives
    exactly what ``from_metadata(...).to_dict(created)`` would. Returns None for
    anything else, including invalid input (an out-of-range ``created`` too), so
    that the full path reports it.
    """
    if type(metadata) is not dict or not _PLAIN_TRACK_KEYS.issuperset(metadata):
        return None
    properties = metadata.get("properties")
    if properties is not None and type(properties) is not dict:
        return None
    try:
        user_id = _id("user_id", metadata.get("user_id"))
        anonymous_id = _id("anonymous_id", metadata.get("anonymous_id"))
        event = metadata.get("event")
        event = _text("event", name if event is None else event, required=True)
        timestamp = format_timestamp(created)
    except (TypeError, ValueError):
        return None
    if user_id is None and anonymous_id is None:
        return None
    wire: dict[str, Any] = {"type": "track"}
    if user_id is not None:
        wire["userId"] = user_id
    if anonymous_id is not None:
        wire["anonymousId"] = anonymous_id
    wire["event"] = event
    wire["properties"] = properties or {}
    wire["context"] = _LIBRARY_CONTEXT
    wire["timestamp"] = timestamp
    wire["messageId"] = new_message_id()
    return wire


def from_metadata(
    metadata: object,
    name: str,
    extra: Mapping[str, Any] | None = None,
) -> BaseMessage:
    """Build a message from a log call's ``segment`` value.

    Args:
        metadata: a message object, a mapping of snake_case fields, or ``True`` to
            derive a track from ``extra`` (``user_id``/``anonymous_id`` from it, the
            rest as properties).
        name: the log message, used as the track ``event`` or page/screen ``name``
            when the metadata has none.
        extra: the fields ``segment=True`` derives from.

    Raises:
        InvalidMessage: the metadata cannot become a message; the text names the problem.
    """
    if isinstance(metadata, BaseMessage):
        return metadata
    if metadata is True:
        fields = dict(extra or {})
        metadata = {
            "user_id": fields.pop("user_id", None),
            "anonymous_id": fields.pop("anonymous_id", None),
            "properties": fields,
        }
    if not isinstance(metadata, Mapping):
        raise InvalidMessage(
            f"segment metadata must be a mapping, a message object or True, not {type(metadata).__name__}"
        )
    kind = metadata.get("type", "track")
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidMessage(
            f"unknown message type {short_repr(kind)}; expected one of {', '.join(MESSAGE_TYPES)}"
        )
    allowed = _KEYS[cls]
    if not allowed.issuperset(metadata):
        unknown = next(key for key in metadata if key not in allowed)
        raise InvalidMessage(
            f"unknown key {short_repr(unknown)} in {kind} metadata; "
            f"expected some of {', '.join(sorted(allowed))}"
        )
    fields = dict(metadata)
    fields.pop("type", None)
    name_key = _NAME_KEYS.get(cls)
    if name_key is not None and fields.get(name_key) is None:
        fields[name_key] = name
    required_key = _REQUIRED_KEYS.get(cls)
    if required_key is not None:
        fields.setdefault(required_key, None)  # so the error says "is required", not a TypeError
    try:
        return cls(**fields)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(str(exc)) from exc
