"""Segment's size limits and the batching rules built on them, in one place.

Everything here is pure (no threads, no sockets; the one clock read is ``sentAt`` in
:meth:`Batch.body`). The worker, the ``Batcher`` and the tests all use these rules, and
:class:`Batch` is what a ``Batcher`` hands to ``HttpClient.send``.
"""

from __future__ import annotations

import datetime
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import _json
from ._errors import MessageTooLarge
from ._messages import BaseMessage, format_timestamp, plain_track_wire
from ._values import captured_track

MAX_MESSAGE_BYTES = 32_000
"""Segment's per-message limit (32 KB, counted as 1,000-byte KB to be safe)."""
MAX_BATCH_BYTES = 500_000
"""Segment's per-request limit."""
DEFAULT_BATCH_BYTES = 475_000
"""Default request cap: Segment's own Python library's, leaving room below the limit."""
MAX_BATCH_SIZE = 2_500
"""Segment silently drops messages past this many in one batch."""
DEFAULT_BATCH_SIZE = MAX_BATCH_SIZE
"""The handler's default ``max_batch_size``: batches are sized by the backlog, up to Segment's limits.

Light traffic still goes out in small batches, every ``flush_interval``; a backlog goes
out in requests as large as Segment takes (in practice the 475,000-byte budget, about
1,300 typical events), so each event carries a small share of a request instead of a
hundredth of one. Segment's own library sends 100 per request; the per-request cost
(headers, a gzip stream, a round trip) is what that number multiplies."""
ENCODE_EVERY = 100
"""Unencoded events that make a waiting worker wake up and encode them, whatever the batch size.

Events waiting to be encoded are dicts the garbage collector walks on each full pass;
encoded ones are bytes it skips. Waking per hundred keeps that backlog short while
batches grow to the byte budget."""

_HEAD = b'{"batch":['
_SENT_AT = b'],"sentAt":"'
_TAIL = b'"}'
_SENT_AT_LENGTH = len(format_timestamp(0.0))
WRAPPER_BYTES = len(_HEAD) + len(_SENT_AT) + _SENT_AT_LENGTH + len(_TAIL)
"""Bytes a request body adds around its messages (without a batch-level context)."""


def encode_message(message: BaseMessage, default_timestamp: datetime.datetime | float | None = None) -> bytes:
    """Encode one message as compact JSON, checked against the 32 KB limit.

    Raises:
        InvalidMessage: a field holds a circular reference, or two keys of one mapping
            that become the same JSON text, or the timestamp is out of range; the error
            names the field.
        MessageTooLarge: the encoded message is over 32,000 bytes.
    """
    return encode_wire(message.to_dict(default_timestamp))


def encode_wire(wire: dict[str, Any]) -> bytes:
    """Encode a message's wire dict, checked against the 32 KB limit (see encode_message)."""
    try:
        piece = _json.dumps(wire)
    except Exception:  # noqa: BLE001 - re-walk field by field so the error names the field
        piece = _json.dumps({key: _json.sanitize(value, key) for key, value in wire.items()})
    return _checked_size(piece, wire)


_EMPTY_PROPERTIES = b'"properties":{}'
"""How a wire message without properties spells them: no JSON string can hold this unescaped."""


def encode_captured(metadata: object, name: str, created: float) -> bytes | None:
    """Encode a track captured on the caller (``_values.CapturedTrack``), splicing in its properties.

    Gives exactly the bytes :func:`encode_message` would for the original event. Returns
    None for anything else, and for a captured track that is not valid (a missing id,
    an empty event name), which the full path then reports by field.

    Raises:
        MessageTooLarge: the encoded message is over 32,000 bytes.
    """
    track = captured_track(metadata)
    if track is None:
        return None
    _, user_id, anonymous_id, event, properties = track
    wire = plain_track_wire({"user_id": user_id, "anonymous_id": anonymous_id, "event": event}, name, created)
    if wire is None:
        return None
    # The user's values never hold '"properties":{}' unescaped (a quote inside a JSON
    # string is always escaped), so the first match is the field itself.
    piece = encode_wire(wire).replace(_EMPTY_PROPERTIES, b'"properties":' + properties, 1)
    return _checked_size(piece, wire)


def _checked_size(piece: bytes, wire: dict[str, Any]) -> bytes:
    if len(piece) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"{wire.get('type', 'a')} message is {len(piece):,} bytes encoded; "
            f"Segment accepts at most {MAX_MESSAGE_BYTES:,}"
        )
    return piece


def encode_context(context: Mapping[str, Any] | None) -> bytes:
    """The ``,"context":{...}`` fragment of a batch-level context, or nothing."""
    if not context:
        return b""
    return b',"context":' + _json.dumps(dict(context), "context")


def body_size(pieces_bytes: int, count: int, context: bytes = b"") -> int:
    """Bytes of a request body holding ``count`` messages of ``pieces_bytes`` in all."""
    return WRAPPER_BYTES + len(context) + pieces_bytes + max(count - 1, 0)


def fits(
    count: int,
    pieces_bytes: int,
    piece: bytes,
    *,
    max_size: int,
    max_bytes: int,
    context: bytes = b"",
) -> bool:
    """Whether ``piece`` can join a batch that holds ``count`` messages of ``pieces_bytes``."""
    if count >= max_size:
        return False
    return body_size(pieces_bytes + len(piece), count + 1, context) <= max_bytes


def take_batch(
    pending: deque[bytes],
    *,
    max_size: int,
    max_bytes: int,
    context: bytes = b"",
) -> list[bytes]:
    """Pop from the left of ``pending`` the longest run that fits in one request."""
    taken: list[bytes] = []
    total = 0
    while pending and fits(
        len(taken), total, pending[0], max_size=max_size, max_bytes=max_bytes, context=context
    ):
        piece = pending.popleft()
        taken.append(piece)
        total += len(piece)
    return taken


def wake_worker(*, unencoded: int, pending: int, max_size: int) -> bool:
    """Whether a new event should wake a worker that waits for the flush interval.

    It wakes when a batch is full by count, or when ``ENCODE_EVERY`` events wait to be encoded.
    """
    return unencoded >= ENCODE_EVERY or unencoded + pending >= max_size


def is_due(
    *,
    count: int,
    pieces_bytes: int,
    oldest: float | None,
    now: float,
    interval: float,
    max_size: int,
    max_bytes: int,
    urgent: bool,
) -> bool:
    """Whether a batch should go out now.

    A batch goes out when something waits and either it is full (by count or by
    bytes), its oldest message has waited ``interval``, or a flush or shutdown
    asked for it (``urgent``).
    """
    if count == 0:
        return False
    if urgent or count >= max_size or body_size(pieces_bytes, count) >= max_bytes:
        return True
    return oldest is not None and now - oldest >= interval


def build_body(pieces: Iterable[bytes], sent_at: str, context: bytes = b"") -> bytes:
    """The JSON body of a ``/v1/batch`` request, assembled from encoded messages."""
    return b"".join((_HEAD, b",".join(pieces), _SENT_AT, sent_at.encode("ascii"), b'"', context, b"}"))


def decode_pieces(pieces: Iterable[bytes]) -> list[dict[str, Any]]:
    """Decode encoded messages back to dicts, for error reports."""
    return [json.loads(piece) for piece in pieces]


class Batch:
    """One ``/v1/batch`` request's worth of messages, encoded: what ``Batcher.into_batch()`` returns.

    Send it with ``HttpClient.send(write_key, batch)`` (or ``await`` the async client's).

    Attributes:
        pieces: the encoded messages, compact JSON bytes each.
        context: the batch-level ``,"context":{...}`` fragment, or ``b""`` for none.
    """

    __slots__ = ("context", "pieces")

    def __init__(self, pieces: Sequence[bytes], context: bytes = b"") -> None:
        self.pieces: tuple[bytes, ...] = tuple(pieces)
        self.context = context

    def __len__(self) -> int:
        return len(self.pieces)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages decoded back to dicts (camelCase, as Segment receives them)."""
        return decode_pieces(self.pieces)

    def body(self) -> bytes:
        """The request body Segment receives, with ``sentAt`` set to now."""
        return build_body(self.pieces, format_timestamp(time.time()), self.context)

    def __repr__(self) -> str:
        size = body_size(sum(map(len, self.pieces)), len(self.pieces), self.context)
        return f"<Batch of {len(self.pieces)} messages, {size:,} bytes>"
