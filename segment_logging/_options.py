"""Options of every front end, and the validators that read them.

Numbers and bools are also accepted as text, since ``dictConfig`` from YAML or
``fileConfig`` from INI passes strings. Every validator raises ``ValueError``
naming the option.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

import httpx

from ._auth import WriteKey

if TYPE_CHECKING:
    from typing_extensions import NotRequired


ErrorCallback = Callable[[Exception, list[Any]], object]
"""Called with an InvalidMessage or a DeliveryError and the messages concerned."""
Item = tuple[object, str, float, str, "Mapping[str, Any] | None"]
"""What a front end hands over: (metadata, log message, created, logger name, extra fields)."""


class Options(TypedDict):
    """The keyword options every front end (handler, structlog processor) accepts."""

    host: NotRequired[str | None]
    max_batch_size: NotRequired[int]
    max_batch_bytes: NotRequired[int]
    flush_interval: NotRequired[float]
    max_queue_size: NotRequired[int]
    max_queue_bytes: NotRequired[int]
    gzip: NotRequired[bool]
    timeout: NotRequired[float]
    shutdown_timeout: NotRequired[float]
    max_retry_time: NotRequired[float]
    max_rate_limit_time: NotRequired[float]
    max_retries: NotRequired[int | None]
    path: NotRequired[str]
    oauth_client_id: NotRequired[str | None]
    oauth_client_key: NotRequired[str | None]
    oauth_key_id: NotRequired[str | None]
    oauth_auth_server: NotRequired[str | None]
    oauth_scope: NotRequired[str]
    on_error: NotRequired[ErrorCallback | None]
    transport: NotRequired[httpx.BaseTransport | None]
    clock: NotRequired[Callable[[], float] | None]
    send: NotRequired[bool | None]
    spool: NotRequired[str | os.PathLike[str] | None]
    spool_max_bytes: NotRequired[int]
    spool_max_age: NotRequired[float]


def number_option(name: str, value: object, *, minimum: float, maximum: float | None = None) -> float:
    """A float option, also accepted as a numeric str (dictConfig from YAML or INI)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, not a bool")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not number >= minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f"at least {minimum:g}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return number


_TRUE = frozenset(("true", "yes", "on", "1"))
_FALSE = frozenset(("false", "no", "off", "0"))


def bool_option(name: str, value: object) -> bool:
    """A bool option, also accepted as true/false, yes/no, on/off or 1/0 text (INI or YAML configs)."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name} must be True or False, got {value!r}")


def check_option_names(owner: str, options: Mapping[str, object]) -> None:
    """Reject an unknown keyword option with a TypeError that names it and suggests the nearest.

    Raises:
        TypeError: an option that is not one of :class:`Options`.
    """
    known = Options.__annotations__
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; options are {', '.join(sorted(known))}"
            raise TypeError(f"{owner} got an unknown option {name!r}{hint}")


def integer_option(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    number = number_option(name, value, minimum=minimum, maximum=maximum)
    if number != int(number):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def resolve_send(send: object) -> bool:
    """The ``send`` option given, else ``$SEGMENT_SEND`` (true/false, 1/0, ...), else True.

    Raises:
        ValueError: a value that is not a bool or bool text (the message names it).
    """
    if send is not None:
        return bool_option("send", send)
    from_env = os.environ.get("SEGMENT_SEND", "").strip()
    return bool_option("SEGMENT_SEND", from_env) if from_env else True


def resolve_spool(spool: object) -> str | None:
    """The ``spool`` path given (str or ``os.PathLike``), else ``$SEGMENT_SPOOL``, else None (memory only).

    Raises:
        ValueError: a value that is not a path (the message names ``spool``).
    """
    if spool is None:
        spool = os.environ.get("SEGMENT_SPOOL", "").strip() or None
        if spool is None:
            return None
    if isinstance(spool, os.PathLike):
        spool = os.fspath(spool)
    if not isinstance(spool, str) or not spool:
        raise ValueError(f"spool must be a file path (str or os.PathLike) or None, got {spool!r}")
    return spool


def resolve_write_key(write_key: str | None, *, send: bool = True) -> WriteKey:
    """The write key given, else ``$SEGMENT_WRITE_KEY``; with ``send=False`` none is needed.

    Raises:
        ValueError: neither is set while sending (the message names ``write_key`` and
            how to switch sending off).
    """
    value = write_key if write_key is not None else os.environ.get("SEGMENT_WRITE_KEY")
    if not value and not send:
        return WriteKey("")  # never used: nothing is sent
    if not value:
        raise ValueError(
            "write_key is required: pass write_key=... or set SEGMENT_WRITE_KEY; to send nothing "
            "(local development, tests, CI), pass send=False or set SEGMENT_SEND=0"
        )
    if not isinstance(value, str):
        raise ValueError(f"write_key must be a str, not {type(value).__name__}")
    return WriteKey(value)
