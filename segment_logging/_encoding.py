"""A raw event (what a front end handed over) turned into the bytes of one message, once.

Three paths, cheapest first: a plain track the caller already captured (its properties
encoded on the logging call), a plain track built straight into its wire dict, and the
full path through the message classes. What cannot become a message raises
:class:`~segment_logging.InvalidMessage` naming the problem.
"""

from __future__ import annotations

from ._batch import encode_captured, encode_message, encode_wire
from ._errors import InvalidMessage
from ._messages import from_metadata, plain_track_wire
from ._options import RawEvent
from ._values import restore


class UnformattedMessage(str):
    """The log message of a record whose ``msg % args`` failed: its text unformatted.

    The event is sent if its metadata names it; otherwise it is reported as
    invalid with ``error``, and counted.
    """

    __slots__ = ("error",)

    error: str


def unformatted(text: str, error: BaseException) -> UnformattedMessage:
    """An :class:`UnformattedMessage` for ``text`` whose formatting raised ``error``."""
    message = UnformattedMessage(text)
    message.error = f"{type(error).__name__}: {error}"
    return message


def encode_raw(item: RawEvent) -> bytes:
    """The message ``item`` stands for, encoded as it will be sent.

    Raises:
        InvalidMessage: the metadata cannot become a message (any other error while
            encoding is turned into one, so that bad input is reported, never raised).
    """
    metadata, name, created, _, extra = item
    try:
        if type(name) is UnformattedMessage:
            return _encode_unformatted(item, name)
        captured = encode_captured(metadata, name, created)
        if captured is not None:
            return captured
        wire = plain_track_wire(metadata, name, created)
        if wire is not None:
            return encode_wire(wire)
        return encode_message(from_metadata(restore(metadata), name, extra), created)
    except InvalidMessage:
        raise
    except Exception as exc:
        raise InvalidMessage(str(exc)) from exc


def _encode_unformatted(item: RawEvent, name: UnformattedMessage) -> bytes:
    """An event whose log message could not be formatted: fine if its metadata names it."""
    metadata, _, created, _, extra = item
    try:
        return encode_message(from_metadata(restore(metadata), "", extra), created)
    except InvalidMessage as exc:
        raise InvalidMessage(
            f"{exc}; the log message {name!s:.100} could not be formatted with its arguments ({name.error})"
        ) from exc
