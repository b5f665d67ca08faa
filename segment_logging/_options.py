"""Options of every front end and client: their names, their one set of defaults, their validators.

Numbers and bools are also accepted as text, since ``dictConfig`` from YAML or
``fileConfig`` from INI passes strings. Every validator raises ``ValueError``
naming the option.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

import httpx

from ._auth import WriteKey
from ._batch import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_BYTES,
    MAX_BATCH_SIZE,
    MAX_MESSAGE_BYTES,
    WRAPPER_BYTES,
)
from ._oauth import DEFAULT_SCOPE
from ._retry import DEFAULT_MAX_RATE_LIMIT_TIME, DEFAULT_MAX_RETRY_TIME
from ._spool import DEFAULT_MAX_AGE as DEFAULT_SPOOL_AGE
from ._spool import DEFAULT_MAX_BYTES as DEFAULT_SPOOL_BYTES

if TYPE_CHECKING:
    from typing_extensions import NotRequired


ErrorCallback = Callable[[Exception, list[Any]], object]
"""Called with an InvalidMessage or a DeliveryError and the messages concerned."""
RawEvent = tuple[object, str, float, str, "Mapping[str, Any] | None"]
"""What a front end hands over: (metadata, log message, created, logger name, extra fields).

A plain tuple, not a NamedTuple: the logging call builds one per event, and a NamedTuple's
constructor costs it about ten times more (about 0.4 against 0.04 microseconds here)."""


class _ClientOptions(TypedDict):
    timeout: NotRequired[float]
    gzip: NotRequired[bool]
    max_retry_time: NotRequired[float]
    max_rate_limit_time: NotRequired[float]
    max_retries: NotRequired[int | None]
    path: NotRequired[str]
    oauth_client_id: NotRequired[str | None]
    oauth_client_key: NotRequired[str | None]
    oauth_key_id: NotRequired[str | None]
    oauth_auth_server: NotRequired[str | None]
    oauth_scope: NotRequired[str]


class HttpClientOptions(_ClientOptions):
    """The keyword options of :class:`~segment_logging.HttpClient`."""

    transport: NotRequired[httpx.BaseTransport | None]


class AsyncHttpClientOptions(_ClientOptions):
    """The keyword options of :class:`~segment_logging.AsyncHttpClient`."""

    transport: NotRequired[httpx.AsyncBaseTransport | None]


class Options(HttpClientOptions):
    """The keyword options every front end (handler, structlog processor) accepts."""

    host: NotRequired[str | None]
    max_batch_size: NotRequired[int]
    max_batch_bytes: NotRequired[int]
    flush_interval: NotRequired[float]
    max_queue_size: NotRequired[int]
    max_queue_bytes: NotRequired[int]
    shutdown_timeout: NotRequired[float]
    on_error: NotRequired[ErrorCallback | None]
    send: NotRequired[bool | None]
    spool: NotRequired[str | os.PathLike[str] | None]
    spool_max_bytes: NotRequired[int]
    spool_max_age: NotRequired[float]


CLIENT_OPTIONS = frozenset(HttpClientOptions.__annotations__) | frozenset(_ClientOptions.__annotations__)
"""The options a client takes; the rest are the queue's."""


@dataclass(frozen=True)
class Settings:
    """Every option of the front ends and the clients: validated, each with its one default.

    The handler, the structlog processor and the public clients all build one of these,
    so a default or a bound is written here and nowhere else. Numbers and bools given as
    text (dictConfig from YAML, fileConfig from INI) are converted; anything else invalid
    raises ``ValueError`` naming the option.
    """

    host: str | None = field(default=None, repr=False)  # a URL may hold a password
    max_batch_size: int = DEFAULT_BATCH_SIZE
    max_batch_bytes: int = DEFAULT_BATCH_BYTES
    flush_interval: float = 0.5
    max_queue_size: int = 100_000
    max_queue_bytes: int = 64_000_000
    gzip: bool = True
    timeout: float = 10.0
    shutdown_timeout: float = 5.0
    max_retry_time: float = DEFAULT_MAX_RETRY_TIME
    max_rate_limit_time: float = DEFAULT_MAX_RATE_LIMIT_TIME
    max_retries: int | None = None
    path: str = "/v1/batch"
    oauth_client_id: str | None = None
    oauth_client_key: str | None = field(default=None, repr=False)  # a private key: never shown
    oauth_key_id: str | None = None
    oauth_auth_server: str | None = None
    oauth_scope: str = DEFAULT_SCOPE
    on_error: ErrorCallback | None = None
    transport: object = None
    send: bool | None = None
    spool: str | None = None
    spool_max_bytes: int = DEFAULT_SPOOL_BYTES
    spool_max_age: float = DEFAULT_SPOOL_AGE

    def __post_init__(self) -> None:
        for name, check in _CHECKS.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))
        if self.on_error is not None and not callable(self.on_error):
            raise ValueError(f"on_error must be callable, got {self.on_error!r}")

    @classmethod
    def of(
        cls, owner: str, options: Mapping[str, Any], *, allowed: frozenset[str] | None = None, **more: Any
    ) -> Settings:
        """Settings from an owner's keyword ``options`` (and ``more``, its own parameters).

        Raises:
            TypeError: an option ``owner`` does not take; the message names it.
            ValueError: an invalid value; the message names the option.
        """
        check_option_names(owner, options, allowed)
        return cls(**options, **more)


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


def check_option_names(
    owner: str, options: Mapping[str, object], allowed: Iterable[str] | None = None
) -> None:
    """Reject an unknown keyword option with a TypeError that names it and suggests the nearest.

    Raises:
        TypeError: an option that is not one of ``allowed`` (default: :class:`Options`).
    """
    known = list(Options.__annotations__ if allowed is None else allowed)
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


_SMALLEST_BATCH = MAX_MESSAGE_BYTES + WRAPPER_BYTES
_CHECKS: dict[str, Callable[[str, Any], object]] = {
    "max_batch_size": lambda n, v: integer_option(n, v, minimum=1, maximum=MAX_BATCH_SIZE),
    "max_batch_bytes": lambda n, v: integer_option(n, v, minimum=_SMALLEST_BATCH, maximum=MAX_BATCH_BYTES),
    "flush_interval": lambda n, v: number_option(n, v, minimum=0.001),
    "max_queue_size": lambda n, v: integer_option(n, v, minimum=1),
    "max_queue_bytes": lambda n, v: integer_option(n, v, minimum=_SMALLEST_BATCH),
    "gzip": bool_option,
    "timeout": lambda n, v: number_option(n, v, minimum=0.001),
    "shutdown_timeout": lambda n, v: number_option(n, v, minimum=0),
    "max_retry_time": lambda n, v: number_option(n, v, minimum=0),
    "max_rate_limit_time": lambda n, v: number_option(n, v, minimum=0),
    "max_retries": lambda n, v: None if v is None else integer_option(n, v, minimum=0),
    "send": lambda n, v: None if v is None else bool_option(n, v),
    "spool": lambda n, v: None if v is None else resolve_spool(v),
    "spool_max_bytes": lambda n, v: integer_option(n, v, minimum=1),
    "spool_max_age": lambda n, v: number_option(n, v, minimum=0.001),
}
"""How each option is read. The rest are checked by what uses them: the host, path and oauth_* by the
client (with its own messages), on_error here below, transport by the client of its kind."""


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
    # Made absolute now: a process that changes directory (and its forked children) keeps one file.
    return os.path.abspath(os.path.expanduser(spool))


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
