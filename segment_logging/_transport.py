"""HTTP to Segment's ``/v1/batch``: the clients, and the retry loop around one exchange.

``HttpClient`` and ``AsyncHttpClient`` are the sync and async twins. Both build
requests the same way (``_exchange``, to the URL ``_endpoint`` checked) and ask
:class:`~segment_logging._retry.RetryPolicy` whether and when to retry; only the
waiting differs.
"""

from __future__ import annotations

import asyncio
import encodings.idna  # noqa: F401 - see below
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpcore  # noqa: F401 - see below
import httpx

# Imported here, never lazily in the worker: httpx imports httpcore when its first
# client is built, and the socket module looks up the "idna" codec on the first
# connection. A fork in the middle of either import leaves the child with a
# half-initialised module ("LookupError: unknown encoding: idna"), and every
# event of the child lost.
from ._auth import WriteKey
from ._batch import Batch
from ._clock import monotonic
from ._deadline import bound_client, bounded
from ._diagnostics import plural
from ._endpoint import DEFAULT_HOST, check_host, check_path
from ._errors import DeliveryError
from ._exchange import (
    USER_AGENT,
    Outcome,
    aread_capped,
    build_request,
    follow_redirect,
    outcome_of_answer,
    outcome_of_error,
    read_capped,
)
from ._oauth import OAuth, default_auth_server
from ._options import CLIENT_OPTIONS, AsyncHttpClientOptions, HttpClientOptions, Settings
from ._retry import RetryPolicy, RetryState, is_retryable

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncHttpClient", "Delivery", "HttpClient"]

building = threading.Lock()
"""Held while a client (with its TLS context) is built; ``fork()`` waits for it (``_lifecycle``).

OpenSSL takes process-wide locks while it loads the CA bundle. A fork in the
middle (a worker building its pool just as gunicorn forks) leaves them locked
in the child for good: the child's first TLS context never finishes, and its
flush() never returns.
"""


@dataclass
class Delivery:
    """What became of one batch handed to ``deliver()``.

    Attributes:
        size: messages in the batch.
        requests: requests made for it, retries and halves after a 413 included.
        sent: messages Segment accepted.
        carried: messages carried by all those requests (``carried - size`` were sent again).
        failures: parts given up after the batch was split (a single message still
            too large, or a half that could not be delivered), each with its error.
    """

    size: int
    requests: int = 0
    sent: int = 0
    carried: int = 0
    failures: list[tuple[list[bytes], DeliveryError]] = field(default_factory=list)

    @property
    def retried(self) -> int:
        """Messages sent more than once (retries, and the halves of a split)."""
        return max(self.carried - self.size, 0)

    def count(self, part: Sequence[bytes], requests: int, *, sent: bool) -> None:
        self.requests += requests
        self.carried += requests * len(part)
        if sent:
            self.sent += len(part)


class _Sender:
    """What the sync and async clients share: options and the retry decision."""

    def _configure(self, settings: Settings, transport_type: type) -> None:
        self.settings = settings
        self.path = check_path(settings.path)
        self.host = check_host(settings.host or os.environ.get("SEGMENT_HOST") or DEFAULT_HOST, self.path)
        self.timeout = settings.timeout
        self.gzip = settings.gzip
        transport = settings.transport
        if transport is not None and not isinstance(transport, transport_type):
            raise ValueError(
                f"transport must be an {transport_type.__module__}.{transport_type.__name__}, "
                f"got {type(transport).__name__}"
            )
        self.policy = RetryPolicy(
            max_retry_time=settings.max_retry_time,
            max_rate_limit_time=settings.max_rate_limit_time,
            max_retries=settings.max_retries,
        )
        self._transport = transport
        self._url = f"{self.host}{self.path}"
        self.oauth = _oauth_of(self.host, settings)

    def _request(
        self,
        write_key: WriteKey,
        pieces: Sequence[bytes],
        context: bytes,
        retry_count: int,
        bearer: str | None,
    ) -> tuple[bytes, dict[str, str]]:
        return build_request(
            pieces,
            context,
            gzip=self.gzip,
            retry_count=retry_count,
            authorization=bearer or write_key.authorization,
            write_key_in_body=write_key.value if bearer else None,
        )

    def _secrets(self, write_key: WriteKey) -> tuple[str, ...]:
        return write_key.secrets + (self.oauth.secrets if self.oauth is not None else ())

    def _renew_token(self, outcome: Outcome, renewed: bool) -> bool:
        """Whether to clear the OAuth token and make the request again (once, on 401/403)."""
        if self.oauth is None or renewed or outcome.status not in (401, 403):
            return False
        self.oauth.clear()
        return True

    def _client_options(self) -> dict[str, Any]:
        # trust_env (httpx's default) reads HTTPS_PROXY, ALL_PROXY, NO_PROXY and SSL_CERT_FILE.
        return {
            "transport": self._transport,
            "timeout": self.timeout,
            "headers": {"User-Agent": USER_AGENT},
            "follow_redirects": False,  # followed by follow_redirect(), which keeps the write key at home
        }

    def _attempt_time(self, deadline: float | None) -> float:
        """Seconds the next attempt may take in all: ``timeout``, within the shutdown deadline.

        Retries only start within the budgets, so a batch is given up at most
        ``max_retry_time`` (plus the waits the server asked for) and one ``timeout``
        after its first attempt.
        """
        if deadline is None:
            return self.timeout
        return min(self.timeout, deadline - monotonic())

    def _next_wait(
        self,
        state: RetryState,
        attempts: int,
        outcome: Outcome,
        started: float,
        deadline: float | None,
        count: int,
    ) -> float:
        """Seconds to wait before retrying, or raise DeliveryError to give up."""
        now = monotonic()
        delay = self.policy.next_wait(state, outcome.status, outcome.retry_after, now - started)
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

    def _out_of_time(self, count: int, attempts: int, last: Outcome | None) -> DeliveryError:
        return DeliveryError(
            f"{plural(count, 'message')} not delivered: shutdown_timeout ran out after "
            f"{plural(attempts, 'attempt')}" + (f"; last: {last.describe()}" if last is not None else ""),
            status=None if last is None else last.status,
            attempts=attempts,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, timeout={self.timeout!r})"


def _oauth_of(host: str, settings: Settings) -> OAuth | None:
    """The OAuth settings from the ``oauth_*`` options, or None when none is set."""
    given = (settings.oauth_client_id, settings.oauth_client_key, settings.oauth_key_id)
    if all(value is None for value in given) and settings.oauth_auth_server is None:
        return None
    auth_server = settings.oauth_auth_server or default_auth_server(host)
    if not isinstance(auth_server, str):
        raise ValueError(f"oauth_auth_server must be a str URL, not {type(auth_server).__name__}")
    try:
        auth_server = check_host(auth_server, "/token")
    except ValueError as exc:
        raise ValueError(f"oauth_auth_server: {exc}") from None
    return OAuth(
        client_id=settings.oauth_client_id,  # type: ignore[arg-type]  # OAuth checks each is a str
        client_key=settings.oauth_client_key,  # type: ignore[arg-type]
        key_id=settings.oauth_key_id,  # type: ignore[arg-type]
        auth_server=auth_server,
        scope=settings.oauth_scope,
    )


def as_write_key(write_key: str | WriteKey) -> WriteKey:
    if isinstance(write_key, WriteKey):
        return write_key
    if not isinstance(write_key, str) or not write_key:
        raise ValueError("write_key must be a non-empty str")
    return WriteKey(write_key)


def raise_failures(delivery: Delivery) -> None:
    """Raise one DeliveryError for the parts of a split batch that were given up, if any."""
    if not delivery.failures:
        return
    lost = sum(len(part) for part, _ in delivery.failures)
    last = delivery.failures[-1][1]
    raise DeliveryError(
        f"{plural(lost, 'message')} of {delivery.size} not delivered after the batch was split "
        f"({delivery.sent} sent); last: {last}",
        status=last.status,
        attempts=delivery.requests,
    )


def _pieces_of(batch: Batch) -> tuple[Sequence[bytes], bytes]:
    if not isinstance(batch, Batch):
        raise TypeError(f"send() takes a Batch from Batcher.into_batch(), not {type(batch).__name__}")
    return batch.pieces, batch.context


class HttpClient(_Sender):
    """Sends batches to Segment over one pooled ``httpx.Client``, retrying like the handler.

    Args:
        host: Segment's API host; defaults to ``$SEGMENT_HOST``, else ``https://api.segment.io``
            (EU workspaces: ``https://events.eu1.segmentapis.com``).
        timeout: seconds for each whole request (connecting, sending and reading the answer).
        transport: an httpx transport, for proxies, custom TLS and tests. An
            ``httpx.HTTPTransport`` gets the whole-request deadline; another kind
            keeps only its own timeouts.
        gzip: compress request bodies.
        max_retry_time: seconds of backing off after which a failing batch is given up.
        max_rate_limit_time: seconds a batch may spend in waits the server asked for
            (``Retry-After``).
        max_retries: retries of a batch at most; None (the default) leaves it to the budgets.
        path: what follows ``host`` in the endpoint's URL (default ``/v1/batch``).
        oauth_client_id: with ``oauth_client_key`` and ``oauth_key_id``, authenticate with
            OAuth 2.0 bearer tokens instead of the write key alone (needs the ``oauth`` extra).
        oauth_client_key: the client's RSA private key, PEM text (never shown anywhere).
        oauth_key_id: the key's id (the JWT's ``kid``).
        oauth_auth_server: the auth server; defaults to Segment's for the host's region.
        oauth_scope: the scope asked for (default ``tracking_api:write``).

    Raises:
        ValueError: an option is invalid; the message names it.
    """

    def __init__(self, host: str | None = None, **options: Unpack[HttpClientOptions]) -> None:
        self._configure(
            Settings.of("HttpClient", options, allowed=CLIENT_OPTIONS, host=host), httpx.BaseTransport
        )
        self._http: httpx.Client | None = None

    @classmethod
    def _with(cls, settings: Settings) -> HttpClient:
        """A client configured by ``settings`` (already validated, as the handler's are)."""
        client = cls.__new__(cls)
        client._configure(settings, httpx.BaseTransport)
        client._http = None
        return client

    def _client(self) -> httpx.Client:
        # Made on first use: building the TLS context reads the CA bundle from disk.
        if self._http is None:
            with building:
                client = httpx.Client(**self._client_options())
            bound_client(client)
            self._http = client
        return self._http

    def _prepare(self) -> None:
        """Build the connection pool now (it reads the CA bundle) rather than on the first send."""
        self._client()

    def _attempt(
        self,
        write_key: WriteKey,
        pieces: Sequence[bytes],
        context: bytes = b"",
        *,
        timeout: float,
        retry_count: int = 0,
    ) -> Outcome:
        """Make one request (following same-host redirects) within ``timeout`` seconds in all.

        With OAuth, a token is fetched first when none is fresh, and a 401 or 403
        clears it and makes the request once more with a new one.

        Never raises for an HTTP or network failure, nor for any other exception
        raised while sending: those come back as an outcome with no status (retryable).
        """
        until = monotonic() + timeout
        url = self._url
        hops = 0
        renewed = False
        try:
            while True:
                with bounded(until):
                    body, headers = self._request(
                        write_key, pieces, context, retry_count, self._authorize(until)
                    )
                    response, data = self._post(url, body, headers, until)
                outcome = outcome_of_answer(response, data, self._secrets(write_key))
                if self._renew_token(outcome, renewed):
                    renewed, url, hops = True, self._url, 0
                    continue
                url, outcome = follow_redirect(url, outcome, hops)  # type: ignore[assignment]
                if url is None:
                    return outcome
                hops += 1
        except Exception as exc:  # noqa: BLE001 - any failure of one attempt is worth a retry
            return outcome_of_error(exc, self._secrets(write_key))

    def _authorize(self, until: float) -> str | None:
        """The bearer Authorization with OAuth (fetching a token if none is fresh), else None."""
        if self.oauth is None:
            return None
        cached = self.oauth.cached()
        if cached is not None:
            return cached
        body, headers = self.oauth.token_request()
        response, data = self._post(self.oauth.token_url, body, headers, until, whole=True)
        return self.oauth.take_answer(response.status_code, data)

    def _post(
        self, url: str, body: bytes, headers: dict[str, str], until: float, *, whole: bool = False
    ) -> tuple[httpx.Response, bytes]:
        left = until - monotonic()
        if left <= 0:
            raise httpx.TimeoutException("the request's deadline passed before it was sent")
        client = self._client()
        request = client.build_request("POST", url, content=body, headers=headers, timeout=left)
        response = client.send(request, stream=True)
        try:
            # A 2xx needs no body (RudderStack answers a plain "OK"); an error's is quoted.
            read = whole or not response.is_success
            data = read_capped(response, until) if read else b""
        finally:
            response.close()  # an unread body closes the connection rather than being drained
        return response, data

    def _deliver(
        self,
        write_key: WriteKey,
        pieces: Sequence[bytes],
        context: bytes = b"",
        *,
        wait: Callable[[float], bool] | None = None,
        deadline: float | None = None,
    ) -> Delivery:
        """Send one batch, retrying as the policy allows, split in halves on a 413.

        Args:
            wait: waits the given seconds before a retry; returns False to give up
                (the worker drains its queue meanwhile). Defaults to ``time.sleep``.
            deadline: a ``monotonic()`` instant after which nothing more is tried.

        Returns:
            What happened: requests made, messages sent, and the parts given up
            (only once the batch was split).

        Raises:
            DeliveryError: the batch as a whole was rejected, or not delivered within
                the budgets or the deadline; nothing of it was sent.
        """
        delivery = Delivery(len(pieces))
        self._deliver_part(write_key, list(pieces), context, wait, deadline, delivery, whole=True)
        return delivery

    def _deliver_part(
        self,
        write_key: WriteKey,
        part: list[bytes],
        context: bytes,
        wait: Callable[[float], bool] | None,
        deadline: float | None,
        delivery: Delivery,
        *,
        whole: bool,
    ) -> None:
        try:
            requests = self._retrying(write_key, part, context, wait, deadline)
        except DeliveryError as exc:
            delivery.count(part, exc.attempts, sent=False)
            if exc.status == 413 and len(part) > 1:
                middle = len(part) // 2
                for half in (part[:middle], part[middle:]):
                    self._deliver_part(write_key, half, context, wait, deadline, delivery, whole=False)
                return
            if whole:
                raise
            delivery.failures.append((part, exc))
        else:
            delivery.count(part, requests, sent=True)

    def _retrying(
        self,
        write_key: WriteKey,
        pieces: Sequence[bytes],
        context: bytes,
        wait: Callable[[float], bool] | None,
        deadline: float | None,
    ) -> int:
        """Send ``pieces`` in one request, retried as the policy allows; the requests made."""
        started = monotonic()
        state = RetryState()
        attempts = 0
        outcome: Outcome | None = None
        while True:
            timeout = self._attempt_time(deadline)
            if timeout <= 0:
                raise self._out_of_time(len(pieces), attempts, outcome)
            outcome = self._attempt(write_key, pieces, context, timeout=timeout, retry_count=state.retries)
            attempts += 1
            if outcome.ok:
                return attempts
            delay = self._next_wait(state, attempts, outcome, started, deadline, len(pieces))
            if wait is None:
                time.sleep(delay)
            elif not wait(delay):
                raise DeliveryError(
                    f"{plural(len(pieces), 'message')} not delivered: closed while waiting to retry; "
                    f"last: {outcome.describe()}",
                    status=outcome.status,
                    attempts=attempts,
                )

    def send(self, write_key: str, batch: Batch) -> None:
        """Send a ``Batch`` (from ``Batcher.into_batch()``); nothing for an empty one.

        Raises:
            DeliveryError: the batch was rejected or could not be delivered in time.
        """
        pieces, context = _pieces_of(batch)
        if pieces:
            raise_failures(self._deliver(as_write_key(write_key), pieces, context))

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
    """The asyncio twin of :class:`HttpClient`, over one ``httpx.AsyncClient``.

    It may be used from one event loop after another (two ``asyncio.run()`` calls):
    connections made in a loop that is gone are left behind, not reused.
    """

    def __init__(self, host: str | None = None, **options: Unpack[AsyncHttpClientOptions]) -> None:
        self._configure(
            Settings.of("AsyncHttpClient", options, allowed=CLIENT_OPTIONS, host=host),
            httpx.AsyncBaseTransport,
        )
        self._http: httpx.AsyncClient | None = None
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is not None and (self._loop is None or self._loop() is not loop):
            # Its connections belong to another (likely closed) loop: they cannot be used,
            # nor closed from here. Start over in this loop.
            self._http = None
        if self._http is None:
            with building:
                self._http = httpx.AsyncClient(**self._client_options())
            self._loop = weakref.ref(loop)
        return self._http

    async def _attempt(
        self,
        write_key: WriteKey,
        pieces: Sequence[bytes],
        context: bytes = b"",
        *,
        timeout: float,
        retry_count: int = 0,
    ) -> Outcome:
        """Make one request (following same-host redirects) within ``timeout`` seconds in all.

        With OAuth, a token is fetched first when none is fresh, and a 401 or 403
        clears it and makes the request once more with a new one.

        Never raises for an HTTP or network failure, nor for any other exception
        raised while sending (cancellation excepted).
        """
        until = monotonic() + timeout
        try:
            return await asyncio.wait_for(
                self._attempt_until(write_key, pieces, context, until, retry_count), timeout
            )
        except asyncio.TimeoutError:
            return Outcome(None, detail=f"timed out after {timeout:g} s (timeout covers the whole request)")
        except Exception as exc:  # noqa: BLE001 - any failure of one attempt is worth a retry
            return outcome_of_error(exc, self._secrets(write_key))

    async def _attempt_until(
        self, write_key: WriteKey, pieces: Sequence[bytes], context: bytes, until: float, retry_count: int
    ) -> Outcome:
        url: str | None = self._url
        hops = 0
        renewed = False
        while True:
            assert url is not None
            authorization = await self._authorize()
            body, headers = self._request(write_key, pieces, context, retry_count, authorization)
            response, data = await self._post(url, body, headers, until)
            outcome = outcome_of_answer(response, data, self._secrets(write_key))
            if self._renew_token(outcome, renewed):
                renewed, url, hops = True, self._url, 0
                continue
            url, outcome = follow_redirect(url, outcome, hops)
            if url is None:
                return outcome
            hops += 1

    async def _authorize(self) -> str | None:
        if self.oauth is None:
            return None
        cached = self.oauth.cached()
        if cached is not None:
            return cached
        body, headers = self.oauth.token_request()
        response, data = await self._post(
            self.oauth.token_url, body, headers, monotonic() + self.timeout, whole=True
        )
        return self.oauth.take_answer(response.status_code, data)

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], until: float, *, whole: bool = False
    ) -> tuple[httpx.Response, bytes]:
        client = self._client()
        left = max(until - monotonic(), 0.001)
        request = client.build_request("POST", url, content=body, headers=headers, timeout=left)
        response = await client.send(request, stream=True)
        try:
            data = await aread_capped(response) if whole or not response.is_success else b""
        finally:
            await response.aclose()
        return response, data

    async def _deliver(self, write_key: WriteKey, pieces: Sequence[bytes], context: bytes = b"") -> Delivery:
        """Send one batch, retrying as the policy allows, split in halves on a 413.

        Returns:
            What happened: requests made, messages sent, and the parts given up
            (only once the batch was split).

        Raises:
            DeliveryError: the batch as a whole was rejected, or not delivered within
                the budgets; nothing of it was sent.
        """
        delivery = Delivery(len(pieces))
        await self._deliver_part(write_key, list(pieces), context, delivery, whole=True)
        return delivery

    async def _deliver_part(
        self, write_key: WriteKey, part: list[bytes], context: bytes, delivery: Delivery, *, whole: bool
    ) -> None:
        try:
            requests = await self._retrying(write_key, part, context)
        except DeliveryError as exc:
            delivery.count(part, exc.attempts, sent=False)
            if exc.status == 413 and len(part) > 1:
                middle = len(part) // 2
                for half in (part[:middle], part[middle:]):
                    await self._deliver_part(write_key, half, context, delivery, whole=False)
                return
            if whole:
                raise
            delivery.failures.append((part, exc))
        else:
            delivery.count(part, requests, sent=True)

    async def _retrying(self, write_key: WriteKey, pieces: Sequence[bytes], context: bytes) -> int:
        started = monotonic()
        state = RetryState()
        attempts = 0
        while True:
            timeout = self._attempt_time(None)
            outcome = await self._attempt(
                write_key, pieces, context, timeout=timeout, retry_count=state.retries
            )
            attempts += 1
            if outcome.ok:
                return attempts
            await asyncio.sleep(self._next_wait(state, attempts, outcome, started, None, len(pieces)))

    async def send(self, write_key: str, batch: Batch) -> None:
        """Send a ``Batch`` (from ``Batcher.into_batch()``); nothing for an empty one.

        Raises:
            DeliveryError: the batch was rejected or could not be delivered in time.
        """
        pieces, context = _pieces_of(batch)
        if pieces:
            raise_failures(await self._deliver(as_write_key(write_key), pieces, context))

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent."""
        http, self._http = self._http, None
        if http is not None and self._loop is not None and self._loop() is asyncio.get_running_loop():
            await http.aclose()

    async def __aenter__(self) -> AsyncHttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
