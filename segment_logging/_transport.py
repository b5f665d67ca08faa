"""HTTP to Segment's ``/v1/batch``: one request, and the retry loop around it.

``HttpClient`` and ``AsyncHttpClient`` are the sync and async twins. Both build
requests the same way and ask :class:`~segment_logging._retry.RetryPolicy`
whether and when to retry; only the waiting differs.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import platform
import sys
import threading
import time
import types
import urllib.parse
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore  # noqa: F401 - imported here, not lazily by httpx in the worker (see below)
import httpx

# httpx imports httpcore when its first client is built. If that happened on the
# worker thread and the process forked mid-import, the child would find httpcore
# half-initialised; importing it with this module avoids the race.
from ._batch import build_body
from ._clock import monotonic
from ._diagnostics import plural
from ._errors import DeliveryError
from ._messages import format_timestamp
from ._retry import RetryPolicy, is_retryable
from ._version import __version__

DEFAULT_HOST = "https://api.segment.io"
USER_AGENT = f"segment-logging/{__version__} (python {platform.python_version()}; httpx {httpx.__version__})"
_GZIP_LEVEL = 1  # JSON compresses well even at level 1; higher levels cost CPU the worker needs.


_building = threading.Lock()
"""Held while a client (with its TLS context) is built; ``fork()`` waits for it.

OpenSSL takes process-wide locks while it loads the CA bundle. A fork in the
middle (a worker building its pool just as gunicorn forks) leaves them locked
in the child for good: the child's first TLS context never finishes, and its
flush() never returns.
"""
os.register_at_fork(
    before=_building.acquire, after_in_parent=_building.release, after_in_child=_building.release
)


class InsecureHostWarning(UserWarning):
    """The write key would travel unencrypted to a host that is not this machine."""


class WriteKey:
    """A Segment write key that never shows itself in a repr, a str or a log line."""

    __slots__ = ("_header",)

    def __init__(self, value: str) -> None:
        token = base64.b64encode(f"{value}:".encode()).decode("ascii")
        self._header = f"Basic {token}"

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value: Basic auth, key as user name, empty password."""
        return self._header

    def __repr__(self) -> str:
        return "WriteKey('********')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a WriteKey cannot be pickled")


def check_host(host: str) -> str:
    """Validate ``host`` and return it without a trailing slash.

    Raises:
        ValueError: not an absolute http(s) URL.
    """
    if not isinstance(host, str):
        raise ValueError(f"host must be a str URL, not {type(host).__name__}")
    parsed = urllib.parse.urlsplit(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"host must be an http:// or https:// URL, got {host!r}")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ValueError(
            f"host must be the API's base URL without a path (like https://api.segment.io), got {host!r}"
        )
    if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        warnings.warn(
            f"host {host!r} uses plain http: the Segment write key would travel unencrypted",
            InsecureHostWarning,
            stacklevel=_outside_this_package(),
        )
    return host.rstrip("/")


def _outside_this_package() -> int:
    """The ``stacklevel`` that makes a warning name the first caller outside segment_logging.

    The handler, the structlog processor and the clients reach ``check_host``
    through different depths, so a fixed number names one of our own files.
    """
    package = os.path.dirname(os.path.abspath(__file__))
    frame: types.FrameType | None = sys._getframe(2)  # check_host()'s caller: stacklevel 2
    level = 2
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == package:
        frame = frame.f_back
        level += 1
    return level


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Outcome:
    """What one request got back: a status, or the network error that stopped it."""

    status: int | None
    retry_after: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        if self.status is None:
            return f"no answer from Segment ({self.detail})"
        return f"Segment answered {self.status}" + (f": {self.detail}" if self.detail else "")


def _request(
    write_key: WriteKey, pieces: Sequence[bytes], context: bytes, gzip: bool
) -> tuple[bytes, dict[str, str]]:
    body = build_body(pieces, format_timestamp(time.time()), context)
    headers = {"Authorization": write_key.authorization, "Content-Type": "application/json"}
    if gzip:
        compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip framing
        body = compressor.compress(body) + compressor.flush()
        headers["Content-Encoding"] = "gzip"
    return body, headers


def _outcome(response: httpx.Response) -> Outcome:
    detail = "" if response.is_success else response.text[:200]
    return Outcome(response.status_code, response.headers.get("Retry-After"), detail)


class _Sender:
    """What the sync and async clients share: options and the retry decision."""

    def __init__(
        self,
        host: str | None,
        *,
        timeout: float,
        gzip: bool,
        max_retry_time: float,
        transport: Any,
    ) -> None:
        self.host = check_host(host or os.environ.get("SEGMENT_HOST") or DEFAULT_HOST)
        self.timeout = timeout
        self.gzip = gzip
        self.policy = RetryPolicy(max_retry_time=max_retry_time)
        self._transport = transport
        self._url = f"{self.host}/v1/batch"

    def _client_options(self) -> dict[str, Any]:
        # trust_env (httpx's default) reads HTTPS_PROXY, ALL_PROXY, NO_PROXY and SSL_CERT_FILE.
        return {
            "transport": self._transport,
            "timeout": self.timeout,
            "headers": {"User-Agent": USER_AGENT},
        }

    def _next_wait(
        self, attempts: int, outcome: Outcome, started: float, deadline: float | None, count: int
    ) -> float:
        """Seconds to wait before retrying, or raise DeliveryError to give up."""
        now = monotonic()
        delay = self.policy.delay(attempts, outcome.status, outcome.retry_after, now - started)
        if delay is None:
            why = "retry budget spent" if is_retryable(outcome.status) else "not retryable"
            raise DeliveryError(
                f"{plural(count, 'message')} not delivered after {plural(attempts, 'attempt')} ({why}): "
                f"{outcome.describe()}",
                status=outcome.status,
                attempts=attempts,
            )
        if deadline is not None and now + delay >= deadline:
            raise DeliveryError(
                f"{plural(count, 'message')} not delivered: shutdown_timeout ran out after "
                f"{plural(attempts, 'attempt')}; last: {outcome.describe()}",
                status=outcome.status,
                attempts=attempts,
            )
        return delay

    def _timeout_for(self, deadline: float | None) -> float:
        if deadline is None:
            return self.timeout
        return min(self.timeout, deadline - monotonic())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, timeout={self.timeout!r})"


def as_write_key(write_key: str | WriteKey) -> WriteKey:
    if isinstance(write_key, WriteKey):
        return write_key
    if not isinstance(write_key, str) or not write_key:
        raise ValueError("write_key must be a non-empty str")
    return WriteKey(write_key)


def _pieces_of(batch: Any) -> tuple[Sequence[bytes], bytes]:
    pieces = getattr(batch, "pieces", None)
    if pieces is None:
        raise TypeError(f"send() takes a Batch from Batcher.into_batch(), not {type(batch).__name__}")
    return pieces, getattr(batch, "context", b"")


class HttpClient(_Sender):
    """Sends batches to Segment over one pooled ``httpx.Client``, retrying like the handler.

    Args:
        host: Segment's API host; defaults to ``$SEGMENT_HOST``, else ``https://api.segment.io``
            (EU workspaces: ``https://events.eu1.segmentapis.com``).
        timeout: seconds for each request.
        transport: an httpx transport, for proxies, custom TLS and tests.
        gzip: compress request bodies.
        max_retry_time: seconds after which a failing batch is given up.
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        gzip: bool = True,
        max_retry_time: float = 60.0,
    ) -> None:
        super().__init__(host, timeout=timeout, gzip=gzip, max_retry_time=max_retry_time, transport=transport)
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        # Made on first use: building the TLS context reads the CA bundle from disk.
        if self._http is None:
            with _building:
                self._http = httpx.Client(**self._client_options())
        return self._http

    def prepare(self) -> None:
        """Build the connection pool now (it reads the CA bundle) rather than on the first send."""
        self._client()

    def attempt(
        self, write_key: WriteKey, pieces: Sequence[bytes], context: bytes = b"", *, timeout: float
    ) -> Outcome:
        """Make one request; never raises for an HTTP or network failure."""
        body, headers = _request(write_key, pieces, context, self.gzip)
        try:
            response = self._client().post(self._url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            return Outcome(None, detail=f"{type(exc).__name__}: {exc}")
        return _outcome(response)

    def deliver(
        self,
        write_key: WriteKey,
        pieces: Sequence[bytes],
        context: bytes = b"",
        *,
        wait: Callable[[float], bool] | None = None,
        deadline: float | None = None,
    ) -> int:
        """Send one batch, retrying as the policy allows.

        Args:
            wait: waits the given seconds before a retry; returns False to give up
                (the worker drains its queue meanwhile). Defaults to ``time.sleep``.
            deadline: a ``monotonic()`` instant after which nothing more is tried.

        Returns:
            The number of requests made.

        Raises:
            DeliveryError: rejected, or not delivered within the budget or deadline.
        """
        started = monotonic()
        attempts = 0
        while True:
            timeout = self._timeout_for(deadline)
            if timeout <= 0:
                raise DeliveryError(
                    f"{plural(len(pieces), 'message')} not delivered: shutdown_timeout ran out",
                    attempts=attempts,
                )
            outcome = self.attempt(write_key, pieces, context, timeout=timeout)
            attempts += 1
            if outcome.ok:
                return attempts
            delay = self._next_wait(attempts, outcome, started, deadline, len(pieces))
            if wait is None:
                time.sleep(delay)
            elif not wait(delay):
                raise DeliveryError(
                    f"{plural(len(pieces), 'message')} not delivered: closed while waiting to retry; "
                    f"last: {outcome.describe()}",
                    status=outcome.status,
                    attempts=attempts,
                )

    def send(self, write_key: str, batch: Any) -> None:
        """Send a ``Batch`` (from ``Batcher.into_batch()``); nothing for an empty one.

        Raises:
            DeliveryError: the batch was rejected or could not be delivered in time.
        """
        pieces, context = _pieces_of(batch)
        if pieces:
            self.deliver(as_write_key(write_key), pieces, context)

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncHttpClient(_Sender):
    """The asyncio twin of :class:`HttpClient`, over one ``httpx.AsyncClient``."""

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        gzip: bool = True,
        max_retry_time: float = 60.0,
    ) -> None:
        super().__init__(host, timeout=timeout, gzip=gzip, max_retry_time=max_retry_time, transport=transport)
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            with _building:
                self._http = httpx.AsyncClient(**self._client_options())
        return self._http

    async def attempt(
        self, write_key: WriteKey, pieces: Sequence[bytes], context: bytes = b"", *, timeout: float
    ) -> Outcome:
        """Make one request; never raises for an HTTP or network failure."""
        body, headers = _request(write_key, pieces, context, self.gzip)
        try:
            response = await self._client().post(self._url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            return Outcome(None, detail=f"{type(exc).__name__}: {exc}")
        return _outcome(response)

    async def deliver(self, write_key: WriteKey, pieces: Sequence[bytes], context: bytes = b"") -> int:
        """Send one batch, retrying as the policy allows; returns the requests made.

        Raises:
            DeliveryError: rejected, or not delivered within the retry budget.
        """
        started = monotonic()
        attempts = 0
        while True:
            outcome = await self.attempt(write_key, pieces, context, timeout=self.timeout)
            attempts += 1
            if outcome.ok:
                return attempts
            await asyncio.sleep(self._next_wait(attempts, outcome, started, None, len(pieces)))

    async def send(self, write_key: str, batch: Any) -> None:
        """Send a ``Batch`` (from ``Batcher.into_batch()``); nothing for an empty one.

        Raises:
            DeliveryError: the batch was rejected or could not be delivered in time.
        """
        pieces, context = _pieces_of(batch)
        if pieces:
            await self.deliver(as_write_key(write_key), pieces, context)

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> AsyncHttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
