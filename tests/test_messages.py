"""The six Spec messages and how logging metadata becomes one."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import inspect
import pickle
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_logging import Alias, BaseMessage, Group, Identify, InvalidMessage, Page, Screen, Track
from segment_logging._batch import encode_wire
from segment_logging._json import dumps, dumps_stdlib
from segment_logging._messages import (
    LIBRARY,
    format_timestamp,
    from_metadata,
    new_message_id,
    plain_track_wire,
)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        (
            Track(user_id="u1", event="Signup", properties={"a": 1}),
            {"event": "Signup", "properties": {"a": 1}},
        ),
        (Identify(user_id="u1", traits={"email": "e"}), {"traits": {"email": "e"}}),
        (Page(user_id="u1", name="Home", category="Docs"), {"name": "Home", "category": "Docs"}),
        (Screen(anonymous_id="a1", name="Settings"), {"name": "Settings", "anonymousId": "a1"}),
        (
            Group(user_id="u1", group_id="g1", traits={"plan": "pro"}),
            {"groupId": "g1", "traits": {"plan": "pro"}},
        ),
        (Alias(user_id="u1", previous_id="anon-1"), {"previousId": "anon-1"}),
    ],
)
def test_wire_form_has_spec_fields(message: Any, fields: dict[str, Any]) -> None:
    """Each message type produces camelCase Spec fields, a messageId, a timestamp and context.library."""
    wire = message.to_dict(0.0)
    assert wire["type"] == message.type
    for key, value in fields.items():
        assert wire[key] == value
    assert UUID4.match(wire["messageId"])
    assert wire["timestamp"] == "1970-01-01T00:00:00.000+00:00"
    assert wire["context"]["library"] == LIBRARY


def test_user_id_zero_is_accepted_as_a_string() -> None:
    """user_id=0 is a valid id (Segment's own library rejects it)."""
    assert Track(user_id=0, event="E").to_dict()["userId"] == "0"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Track(event="E"), "user_id or anonymous_id"),
        (lambda: Track(user_id="u", event=""), "event"),
        (lambda: Track(user_id="u", event="E", properties=[1]), "properties"),  # type: ignore[arg-type]
        (lambda: Identify(user_id=["u"]), "user_id"),  # type: ignore[arg-type]
        (lambda: Group(user_id="u", group_id=None), "group_id"),  # type: ignore[arg-type]
        (lambda: Alias(user_id="u", previous_id=""), "previous_id"),
        (lambda: Track(user_id="u", event="E", timestamp="yesterday"), "timestamp"),
        (lambda: Track(user_id="u", event="E", message_id="x" * 101), "message_id"),
        (lambda: Track(user_id="u", event="E", context="c"), "context"),  # type: ignore[arg-type]
        (lambda: Page(user_id="u", name=3), "name"),  # type: ignore[arg-type]
    ],
)
def test_invalid_fields_are_named(build: Any, field: str) -> None:
    """Construction rejects a bad field with ValueError/TypeError that names it."""
    with pytest.raises((ValueError, TypeError), match=re.escape(field)):
        build()


def test_caller_dicts_are_never_mutated() -> None:
    """Neither construction nor encoding touches the caller's properties or context."""
    properties = {"a": 1}
    context = {"ip": "1.2.3.4"}
    message = Track(user_id="u", event="E", properties=properties, context=context)
    wire = message.to_dict()
    wire["properties"]["b"] = 2
    assert properties == {"a": 1}
    assert context == {"ip": "1.2.3.4"}
    assert wire["context"] == {"ip": "1.2.3.4", "library": LIBRARY}


def test_timestamps_normalise_to_utc() -> None:
    """Aware datetimes, ISO strings with Z and epoch seconds all become UTC ISO-8601."""
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    aware = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=plus_two)
    assert (
        Track(user_id="u", event="E", timestamp=aware).to_dict()["timestamp"]
        == "2026-01-01T10:00:00.000+00:00"
    )
    iso = Track(user_id="u", event="E", timestamp="2026-01-01T10:00:00Z").to_dict()
    assert iso["timestamp"] == "2026-01-01T10:00:00.000+00:00"
    assert (
        Track(user_id="u", event="E", timestamp=86400).to_dict()["timestamp"].startswith("1970-01-02T00:00")
    )


def test_message_ids_are_unique_uuid4() -> None:
    """Generated message ids are random version-4 UUIDs."""
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(UUID4.match(i) for i in ids)


def test_metadata_mapping_defaults_event_to_log_message() -> None:
    """A mapping without `event` takes the log message as the track event."""
    message = from_metadata({"user_id": "u1", "properties": {"p": 1}}, "Signup")
    assert isinstance(message, Track)
    assert message.event == "Signup"


def test_metadata_type_selects_class_and_name_default() -> None:
    """`type` picks the message class; page/screen take the log message as name."""
    assert isinstance(from_metadata({"type": "identify", "user_id": "u"}, "x"), Identify)
    page = from_metadata({"type": "page", "user_id": "u"}, "Home")
    assert isinstance(page, Page)
    assert page.name == "Home"


def test_segment_true_derives_ids_and_properties() -> None:
    """`True` takes user_id/anonymous_id from the extra fields and the rest as properties."""
    message = from_metadata(True, "Upgraded", {"user_id": "u1", "plan": "team"})
    assert isinstance(message, Track)
    assert message.user_id == "u1"
    assert message.properties == {"plan": "team"}


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ({"properties": {}}, "user_id or anonymous_id"),
        ({"type": "purchase", "user_id": "u"}, "unknown message type 'purchase'"),
        ({"user_id": "u", "properties": "x"}, "properties must be a mapping"),
        ({"type": "group", "user_id": "u"}, "group_id is required"),
        ({"userId": "u"}, "unknown key 'userId'"),
        (["u"], "must be a mapping, a message object or True"),
    ],
)
def test_invalid_metadata_names_the_problem(metadata: Any, problem: str) -> None:
    """Bad metadata raises InvalidMessage whose text names the problem."""
    with pytest.raises(InvalidMessage, match=re.escape(problem)):
        from_metadata(metadata, "E")


def test_repr_and_equality() -> None:
    """Messages compare by value and show their fields in repr."""
    a = Track(user_id="u", event="E", message_id="m1")
    b = Track(user_id="u", event="E", message_id="m1")
    assert a == b
    assert "event='E'" in repr(a)


@pytest.mark.parametrize(
    "moment", [0.0, 0.0005, 86400.5, 1764300000.001, 1764300000.9996, 1764300000.9999996, -1.5]
)
def test_fast_timestamp_matches_datetime(moment: float) -> None:
    """The cached epoch formatter gives exactly what datetime.isoformat would."""
    expected = datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).isoformat(
        timespec="milliseconds"
    )
    assert format_timestamp(moment) == expected


@pytest.mark.parametrize(
    "metadata",
    [
        {"user_id": "u1", "properties": {"plan": "pro"}},
        {"anonymous_id": 7},
        {"user_id": 0, "anonymous_id": "a", "event": "Custom", "properties": {}},
        {"user_id": "u1", "event": None},
    ],
)
def test_plain_track_fast_path_matches_full_path(metadata: dict[str, Any]) -> None:
    """The worker's shortcut for plain track dicts gives exactly what the message classes give."""
    fast = plain_track_wire(metadata, "Signup", 1764300000.25)
    full = from_metadata(metadata, "Signup").to_dict(1764300000.25)
    assert fast is not None
    assert UUID4.match(fast.pop("messageId"))
    full.pop("messageId")
    assert fast == full
    assert list(fast) == list(full), "same key order, so the same bytes on the wire"


@pytest.mark.parametrize(
    "metadata",
    [
        {"properties": {}},
        {"user_id": ["u"]},
        {"user_id": "u", "properties": ["x"]},
        {"user_id": "u", "type": "track"},
        {"user_id": "u", "timestamp": 0},
        {"user_id": "u", "event": 3},
    ],
)
def test_plain_track_fast_path_leaves_the_rest_to_the_full_path(metadata: dict[str, Any]) -> None:
    """Anything but a valid plain track dict is left to the full path, which reports problems."""
    assert plain_track_wire(metadata, "Signup", 0.0) is None


MINUS_FIVE = datetime.timezone(datetime.timedelta(hours=-5))
OUT_OF_RANGE = [
    datetime.datetime(9999, 12, 31, 23, tzinfo=MINUS_FIVE),
    datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=5))),
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:00:00-05:00",
    1e20,
    -1e20,
    10**400,
    float("nan"),
    float("inf"),
    253_402_300_800,
    -62_135_596_801,
    1_764_300_000_000,  # epoch milliseconds
]


@pytest.mark.parametrize("timestamp", OUT_OF_RANGE, ids=repr)
def test_out_of_range_timestamp_is_a_value_error_naming_the_field(timestamp: Any) -> None:
    """Outside years 0001-9999 in UTC, a timestamp raises InvalidMessage (a ValueError), not OverflowError."""
    with pytest.raises(InvalidMessage, match=r"^timestamp .* out of range: Segment takes years 0001 to 9999"):
        Track(user_id="u", event="E", timestamp=timestamp)
    with pytest.raises(InvalidMessage, match=r"^timestamp "):
        from_metadata({"user_id": "u", "timestamp": timestamp}, "E")


def test_epoch_milliseconds_get_a_hint() -> None:
    """An epoch in milliseconds is named as such in the error."""
    with pytest.raises(InvalidMessage, match=r"epoch milliseconds\? Segment takes seconds"):
        Track(user_id="u", event="E", timestamp=1_764_300_000_000)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (-62_135_596_800, "0001-01-01T00:00:00.000+00:00"),
        (253_402_300_799.5, "9999-12-31T23:59:59.500+00:00"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000+00:00"),
        ("9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:59:59.999+00:00"),
        (datetime.datetime(9999, 12, 31, 18, 59, tzinfo=MINUS_FIVE), "9999-12-31T23:59:00.000+00:00"),
    ],
)
def test_timestamps_at_the_ends_of_the_range_are_accepted(timestamp: Any, expected: str) -> None:
    """The first and last moments of years 0001-9999 (UTC) are valid and keep four-digit years."""
    assert Track(user_id="u", event="E", timestamp=timestamp).to_dict()["timestamp"] == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (-62_135_596_800.0, "0001-01-01T00:00:00.000+00:00"),
        (-30_610_224_000.5, "0999-12-31T23:59:59.500+00:00"),
    ],
)
def test_fast_timestamp_writes_four_digit_years(moment: float, expected: str) -> None:
    """The cached epoch formatter writes years before 1000 with four digits, as ISO-8601 requires."""
    assert format_timestamp(moment) == expected


@pytest.mark.parametrize(
    "moment",
    [
        1_764_300_000_000.0,
        253_402_300_799.9999996,  # rounds up into year 10000
        float("nan"),
        float("-inf"),
        10**400,
        "2026-01-01",
        datetime.datetime(9999, 12, 31, 23, tzinfo=MINUS_FIVE),
    ],
    ids=repr,
)
def test_format_timestamp_refuses_what_segment_would_reject(moment: Any) -> None:
    """Formatting a moment outside the range (or not a moment) raises InvalidMessage naming the timestamp."""
    with pytest.raises(InvalidMessage, match=r"^timestamp "):
        format_timestamp(moment)


def test_errors_show_user_values_cut_short() -> None:
    """An error message built from a huge user value shows only its head and its length."""
    huge = "x" * 1_000_000
    builds: tuple[Callable[[], object], ...] = (
        lambda: Track(user_id="u", event="E", timestamp=huge),
        lambda: from_metadata({"type": huge, "user_id": "u"}, "E"),
        lambda: from_metadata({huge: 1, "user_id": "u"}, "E"),
    )
    for build in builds:
        with pytest.raises(ValueError, match=r"…\(1,000,000 chars\)") as caught:
            build()
        assert len(str(caught.value)) < 300


@pytest.mark.parametrize("created", [1_764_300_000_000.0, float("nan"), 1e20], ids=repr)
def test_fast_path_leaves_an_out_of_range_time_to_the_full_path(created: float) -> None:
    """An out-of-range record time makes the shortcut step aside; the full path reports it as invalid."""
    metadata = {"user_id": "u1"}
    assert plain_track_wire(metadata, "Signup", created) is None
    with pytest.raises(InvalidMessage, match=r"^timestamp "):
        from_metadata(metadata, "Signup").to_dict(created)


def _outcome(build: Any) -> str | bytes:
    """The encoded message a wire builder gives (messageId fixed), or the text of its error."""
    try:
        wire = build()
        if wire is None:
            return "fast path stepped aside"
        wire["messageId"] = "m"
        return encode_wire(wire)
    except InvalidMessage as exc:
        return f"invalid: {exc}"


_ids = st.one_of(st.none(), st.text(max_size=4), st.integers(-5, 5), st.booleans())
_keys = st.one_of(st.text(alphabet="1\u03b1truenl", max_size=4), st.integers(0, 2), st.booleans(), st.none())
_values = st.one_of(st.text(alphabet="aβ\ud800\x00", max_size=6), st.integers(), st.floats(), st.none())


@given(
    metadata=st.fixed_dictionaries(
        {},
        optional={
            "user_id": _ids,
            "anonymous_id": _ids,
            "event": st.one_of(st.none(), st.text(max_size=4)),
            "properties": st.dictionaries(_keys, _values, max_size=4),
        },
    ),
    created=st.one_of(
        st.floats(),
        st.integers(-(10**13), 10**13),
        st.sampled_from([-62_135_596_800, 253_402_300_799.5, 253_402_300_800]),
    ),
)
def test_fast_path_and_full_path_agree(metadata: dict[str, Any], created: float) -> None:
    """For any plain track dict and record time, the shortcut gives the full path's bytes or steps aside
    exactly when the full path finds the event invalid (bad ids, time out of range, colliding keys)."""
    fast = _outcome(lambda: plain_track_wire(metadata, "Signup", created))
    full = _outcome(lambda: from_metadata(metadata, "Signup").to_dict(created))
    if fast == "fast path stepped aside":
        assert isinstance(full, str), "the shortcut stepped aside from a valid event"
    else:
        assert fast == full


MESSAGE_CLASSES = [Track, Identify, Page, Screen, Group, Alias]


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
def test_messages_are_keyword_only_dataclasses_with_typed_fields(cls: type[BaseMessage]) -> None:
    """Each message is a slotted dataclass: every constructor argument is keyword-only and is a
    field whose type dataclasses.fields() and typing.get_type_hints() show (what IDEs read)."""
    assert dataclasses.is_dataclass(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    parameters = inspect.signature(cls).parameters
    assert list(parameters) == names
    assert {parameter.kind for parameter in parameters.values()} == {inspect.Parameter.KEYWORD_ONLY}
    hints = typing.get_type_hints(cls)
    assert hints["user_id"] == str | int | None
    assert hints["context"] == Mapping[str, Any] | None
    for field in dataclasses.fields(cls):
        assert field.type == hints[field.name], field.name
    assert all("__slots__" in vars(klass) for klass in cls.__mro__[:-1])  # no per-instance __dict__


def test_required_fields_have_no_default() -> None:
    """The fields a type requires are the ones without a default, so type checkers flag them missing."""
    required = {
        cls.__name__: [
            field.name for field in dataclasses.fields(cls) if field.default is dataclasses.MISSING
        ]
        for cls in MESSAGE_CLASSES
    }
    assert required == {
        "Track": ["event"],
        "Identify": [],
        "Page": [],
        "Screen": [],
        "Group": ["group_id"],
        "Alias": ["previous_id"],
    }


def test_replace_validates_again_and_keeps_the_message_id() -> None:
    """dataclasses.replace() builds a checked message; it keeps message_id unless given message_id=None."""
    original = Track(user_id=7, event="E", timestamp=0, properties={"a": 1})
    copy = dataclasses.replace(original, event="F")
    assert (copy.event, copy.user_id, copy.timestamp) == ("F", "7", original.timestamp)
    assert copy.message_id == original.message_id
    assert dataclasses.replace(original, message_id=None).message_id != original.message_id
    with pytest.raises(ValueError, match="event is required"):
        dataclasses.replace(original, event="")
    with pytest.raises(TypeError, match="properties must be a mapping, not list"):
        dataclasses.replace(original, properties=[1])  # type: ignore[arg-type]  # on purpose


def test_repr_leaves_out_unset_fields() -> None:
    """A repr shows the type's own fields first and leaves out those that are not set, so it stays short."""
    message = Page(user_id="u", name="Home", message_id="m1")
    assert repr(message) == "Page(name='Home', user_id='u', message_id='m1')"


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_messages_pickle_and_copy(protocol: int) -> None:
    """A message survives pickle and copy unchanged (equal, same repr); messages stay unhashable."""
    message = Group(user_id="u", group_id=3, traits={"plan": "pro"}, timestamp="2026-01-01T00:00:00Z")
    for clone in (pickle.loads(pickle.dumps(message, protocol)), copy.copy(message), copy.deepcopy(message)):
        assert clone == message
        assert repr(clone) == repr(message)
    assert message != Group(user_id="u", group_id=3, traits={"plan": "pro"})  # another message_id
    with pytest.raises(TypeError, match="unhashable"):
        hash(message)


def test_message_objects_as_values_encode_alike_on_both_paths() -> None:
    """A message object inside properties is written as its repr on both JSON paths: orjson is told
    to pass dataclasses to the same hook as the stdlib path, not to write them as objects."""
    wire = {"properties": {"nested": Track(user_id="u", event="E", message_id="m1")}}
    expected = b"{\"properties\":{\"nested\":\"Track(event='E', user_id='u', message_id='m1')\"}}"
    assert dumps_stdlib(wire) == expected
    assert dumps(wire) == expected
