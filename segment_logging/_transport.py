"""HTTP to Segment's ``/v1/batch``: one request, and the retry loop around it.

``HttpClient`` and ``AsyncHttpClient`` are the sync and async twins. Both build
requests the same way and ask :class:`~segment_logging._retry.RetryPolicy`
whether and when to retry; only the waiting differs.
"""

from __future__ import annotations

import asyncio
import encodings.idna  # noqa: F401 - see below
import ipaddress
import json
import os
import platform
import threading
import time
import urllib.parse
import weakref
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpcore  # noqa: F401 - see below
import httpx

# Imported here, never lazily in the worker: httpx imports httpcore when its first
# client is built, and the socket module looks up the "idna" codec on the first
# connection. A fork in the middle of either import leaves the child with a
# half-initialised module ("LookupError: unknown encoding: idna"), and every
# event of the child lost.
from ._auth import WriteKey, redact
from ._batch import build_body
from ._clock import monotonic
from ._compat import warn_from_caller
from ._deadline import bound_client, bounded
from ._diagnostics import plural
from ._errors import DeliveryError
from ._messages import format_timestamp
from ._oauth import DEFAULT_SCOPE, OAuth, TokenRefused, default_auth_server
from ._options import bool_option, integer_option, number_option
from ._retry import DEFAULT_MAX_RATE_LIMIT_TIME, DEFAULT_MAX_RETRY_TIME, RetryPolicy, RetryState, is_retryable
from ._version import __version__

__all__ = [
    "AsyncHttpClient",
    "Delivery",
    "HttpClient",
    "InsecureHostWarning",
    "Outcome",
    "WriteKey",
    "check_host",
    "check_path",
]

DEFAULT_HOST = "https://api.segment.io"
DEFAULT_PATH = "/v1/batch"
DEFAULT_TIMEOUT = 10.0
USER_AGENT = f"segment-logging/{__version__} (python {platform.python_version()}; httpx {httpx.__version__})"
_GZIP_LEVEL = 1  # JSON compresses well even at level 1; higher levels cost CPU the worker needs.
MAX_ANSWER_BYTES = 4_096
"""Bytes of an error answer read at most; the rest is never read (an endless body costs nothing)."""
_SHOWN_ANSWER = 200
"""Characters of an error answer quoted in a report."""
MAX_REDIRECTS = 3
_REDIRECTS = frozenset((301, 302, 307, 308))


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


def check_path(path: str) -> str:
    """Validate the ``path`` option (what follows ``host``, ``/v1/batch`` by default).

    Raises:
        ValueError: not a path starting with ``/``, or one with a query, a fragment or spaces.
    """
    if not isinstance(path, str):
        raise ValueError(f"path must be a str, not {type(path).__name__}")
    if not path.startswith("/") or not path.isprintable() or any(c in path for c in " ?#"):
        raise ValueError(f"path must start with / and have no query, fragment or spaces, got {path!r}")
    return path


def check_host(host: str, path: str = DEFAULT_PATH) -> str:
    """Validate ``host`` and return it without a trailing slash.

    ``host`` may carry a path prefix (``https://collect.example.com/api/v1/segment``),
    for Segment-compatible endpoints served under one; ``path`` is added to it.

    Raises:
        ValueError: not an absolute http(s) URL with a valid port, or one that
            carries credentials, a query or a fragment, or one that already ends
            with ``path``. The message never repeats credentials.
    """
    if not isinstance(host, str):
        raise ValueError(f"host must be a str URL, not {type(host).__name__}")
    if not host.isprintable() or host != host.strip() or " " in host:
        raise ValueError(f"host must be a URL without spaces or control characters, got {_shown(host)!r}")
    try:
        parsed = urllib.parse.urlsplit(host)
    except ValueError as exc:  # an unclosed IPv6 bracket, say
        raise ValueError(f"host is not a valid URL ({exc}), got {_shown(host)!r}") from None
    if parsed.username is not None or parsed.password is not None or "@" in parsed.netloc:
        raise ValueError(
            f"host must not carry credentials (user:password@), got {_shown(host)!r}: the write key "
            "authenticates; put a proxy's credentials in HTTPS_PROXY or in a transport"
        )
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"host must be an http:// or https:// URL, got {host!r}")
    try:
        parsed.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError(
            f"host has an invalid port (a number from 1 to 65535 is needed), got {host!r}"
        ) from None
    if parsed.port == 0 or parsed.netloc.endswith(":"):
        raise ValueError(f"host has an invalid port (a number from 1 to 65535 is needed), got {host!r}")
    try:
        httpx.URL(host)
    except httpx.InvalidURL as exc:
        raise ValueError(f"host is not a valid URL ({exc}), got {host!r}") from None
    if parsed.query or parsed.fragment or "?" in host or "#" in host:
        raise ValueError(f"host must be a URL without a query or fragment, got {host!r}")
    if parsed.path.rstrip("/").endswith(path.rstrip("/")):
        raise ValueError(
            f"host must be the API's base URL (like https://api.segment.io): {path} is added to it, "
            f"got {host!r}"
        )
    if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        warn_from_caller(
            f"host {host!r} uses plain http: the Segment write key would travel unencrypted",
            InsecureHostWarning,
        )
    return host.rstrip("/")


def _shown(url: str) -> str:
    """``url`` safe to show: any user:password@ part masked, a query and fragment left out."""
    try:
        parsed = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return "<an invalid URL>"
    netloc = parsed.netloc.rpartition("@")[2]
    if "@" in parsed.netloc:
        netloc = "***@" + netloc
    return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, "", ""))


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
    location: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        if self.status is None:
            return f"no answer from Segment ({self.detail})"
        return f"Segment answered {self.status}" + (f": {self.detail}" if self.detail else "")


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


def _request(
    pieces: Sequence[bytes],
    context: bytes,
    *,
    gzip: bool,
    retry_count: int,
    authorization: str,
    write_key_in_body: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    body = build_body(pieces, format_timestamp(time.time()), context)
    if write_key_in_body is not None:
        # With OAuth the bearer token authenticates; the source is named in the body,
        # as Segment's own library does.
        body = body[:-1] + b',"writeKey":' + json.dumps(write_key_in_body).encode() + b"}"
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    if retry_count:
        headers["X-Retry-Count"] = str(retry_count)
    if gzip:
        compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip framing
        body = compressor.compress(body) + compressor.flush()
        headers["Content-Encoding"] = "gzip"
    return body, headers


def _failed(exc: Exception, secrets: Sequence[str]) -> Outcome:
    """The outcome of an attempt that raised: retryable, whatever the exception (a broken
    codec in a forked child, a custom transport's bug), and named by its type; a refusal
    by the OAuth server keeps its status (and is not retried)."""
    if isinstance(exc, TokenRefused):
        return Outcome(exc.status, detail=redact(str(exc), secrets)[: _SHOWN_ANSWER * 2])
    kind = type(exc).__name__ if isinstance(exc, httpx.HTTPError) else f"unexpected {type(exc).__name__}"
    return Outcome(None, detail=redact(f"{kind}: {exc}", secrets)[: _SHOWN_ANSWER * 2])


def _answer(response: httpx.Response, data: bytes, secrets: Sequence[str]) -> Outcome:
    detail = ""
    if not response.is_success:
        text = data.decode(response.encoding or "utf-8", errors="replace")
        detail = redact(text, secrets)[:_SHOWN_ANSWER]
    return Outcome(
        response.status_code,
        response.headers.get("Retry-After"),
        detail,
        response.headers.get("Location") if response.status_code in _REDIRECTS else None,
    )


class _Body:
    """Up to MAX_ANSWER_BYTES of an answer's body, decompressed within that bound.

    Raw bytes are read (``iter_raw``) and a gzip or deflate body is inflated here
    with a cap, so a small compressed answer cannot expand into megabytes.
    """

    def __init__(self, response: httpx.Response) -> None:
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        # wbits 47: a gzip or zlib header, whichever comes.
        self._inflate = zlib.decompressobj(47) if encoding in ("gzip", "deflate", "x-gzip") else None
        self.data = b""

    def add(self, chunk: bytes) -> bool:
        """Take a raw chunk; whether enough has been read."""
        room = MAX_ANSWER_BYTES - len(self.data)
        if self._inflate is not None:
            try:
                chunk = self._inflate.decompress(chunk, room)
            except zlib.error:
                self._inflate = None  # not what it said it was: quote it as it came
        self.data += chunk[:room]
        return len(self.data) >= MAX_ANSWER_BYTES


def _capped(response: httpx.Response, until: float) -> bytes:
    """Up to MAX_ANSWER_BYTES of an answer's body, read before ``until``."""
    body = _Body(response)
    try:
        for chunk in response.iter_raw():
            if body.add(chunk) or monotonic() >= until:
                break
    except httpx.HTTPError:
        pass  # the status is what matters; a body cut short is still worth quoting
    return body.data


async def _acapped(response: httpx.Response) -> bytes:
    """The async :func:`_capped` (the caller's ``wait_for`` bounds the time)."""
    body = _Body(response)
    try:
        async for chunk in response.aiter_raw():
            if body.add(chunk):
                break
    except httpx.HTTPError:
        pass
    return body.data


def _redirect_problem(source: str, target: str) -> str:
    """Why a redirect from ``source`` to ``target`` is not followed, or "" when it may be."""
    try:
        old, new = urllib.parse.urlsplit(source), urllib.parse.urlsplit(target)
        new_port = new.port
    except ValueError:
        return "the Location is not a valid URL"
    if new.scheme not in ("http", "https") or not new.hostname:
        return "the Location is not an http(s) URL"
    if "@" in new.netloc:
        return "the Location carries credentials"
    if old.scheme == "https" and new.scheme == "http":
        return "it would downgrade https to plain http"
    defaults = {"http": 80, "https": 443}
    same_origin = (
        new.scheme == old.scheme
        and new.hostname == old.hostname
        and (new_port or defaults[new.scheme]) == (old.port or defaults[old.scheme])
    )
    upgrade = old.scheme == "http" and new.scheme == "https" and new.hostname == old.hostname
    if not (same_origin or upgrade):
        return "the write key is never sent to another host; set host to the new address if you trust it"
    return ""


def _follow(url: str, outcome: Outcome, hops: int) -> tuple[str | None, Outcome]:
    """The URL to send to again after a redirect answer, or None and the outcome to report."""
    if outcome.status not in _REDIRECTS:
        return None, outcome
    if not outcome.location:
        return None, replace(outcome, detail="a redirect without a Location")
    target = urllib.parse.urljoin(url, outcome.location)
    problem = _redirect_problem(url, target)
    if not problem and hops >= MAX_REDIRECTS:
        problem = f"more than {MAX_REDIRECTS} redirects"
    if problem:
        return None, replace(outcome, detail=f"redirect to {_shown(target)} not followed: {problem}")
    return target, outcome


class _Sender:
    """What the sync and async clients share: options and the retry decision."""

    def __init__(
        self,
        host: str | None,
        *,
        timeout: float,
        gzip: bool,
        max_retry_time: float,
        max_rate_limit_time: float,
        max_retries: int | None,
        path: str,
        transport: Any,
        transport_type: type,
        oauth: dict[str, Any],
    ) -> None:
        self.path = check_path(path)
        self.host = check_host(host or os.environ.get("SEGMENT_HOST") or DEFAULT_HOST, self.path)
        self.timeout = number_option("timeout", timeout, minimum=0.001)
        self.gzip = bool_option("gzip", gzip)
        if transport is not None and not isinstance(transport, transport_type):
            raise ValueError(
                f"transport must be an {transport_type.__module__}.{transport_type.__name__}, "
                f"got {type(transport).__name__}"
            )
        self.policy = RetryPolicy(
            max_retry_time=number_option("max_retry_time", max_retry_time, minimum=0),
            max_rate_limit_time=number_option("max_rate_limit_time", max_rate_limit_time, minimum=0),
            max_retries=None
            if max_retries is None
            else integer_option("max_retries", max_retries, minimum=0),
        )
        self._transport = transport
        self._url = f"{self.host}{self.path}"
        self.oauth = _oauth_of(self.host, oauth)

    def _request(
        self,
        write_key: WriteKey,
        pieces: Sequence[bytes],
        context: bytes,
        retry_count: int,
        bearer: str | None,
    ) -> tuple[bytes, dict[str, str]]:
        return _request(
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
            "follow_redirects": False,  # followed by _follow(), which keeps the write key at home
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


def _oauth_of(host: str, options: dict[str, Any]) -> OAuth | None:
    """The OAuth settings from the ``oauth_*`` options, or None when none is set."""
    if all(options[name] is None for name in ("client_id", "client_key", "key_id", "auth_server")):
        return None
    auth_server = options["auth_server"] or default_auth_server(host)
    if not isinstance(auth_server, str):
        raise ValueError(f"oauth_auth_server must be a str URL, not {type(auth_server).__name__}")
    try:
        auth_server = check_host(auth_server, "/token")
    except ValueError as exc:
        raise ValueError(f"oauth_auth_server: {exc}") from None
    return OAuth(
        client_id=options["client_id"],
        client_key=options["client_key"],
        key_id=options["key_id"],
        auth_server=auth_server,
        scope=options["scope"],
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

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        gzip: bool = True,
        max_retry_time: float = DEFAULT_MAX_RETRY_TIME,
        max_rate_limit_time: float = DEFAULT_MAX_RATE_LIMIT_TIME,
        max_retries: int | None = None,
        path: str = DEFAULT_PATH,
        oauth_client_id: str | None = None,
        oauth_client_key: str | None = None,
        oauth_key_id: str | None = None,
        oauth_auth_server: str | None = None,
        oauth_scope: str = DEFAULT_SCOPE,
    ) -> None:
        super().__init__(
            host,
            timeout=timeout,
            gzip=gzip,
            max_retry_time=max_retry_time,
            max_rate_limit_time=max_rate_limit_time,
            max_retries=max_retries,
            path=path,
            transport=transport,
            transport_type=httpx.BaseTransport,
            oauth={
                "client_id": oauth_client_id,
                "client_key": oauth_client_key,
                "key_id": oauth_key_id,
                "auth_server": oauth_auth_server,
                "scope": oauth_scope,
            },
        )
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        # Made on first use: building the TLS context reads the CA bundle from disk.
        if self._http is None:
            with _building:
                client = httpx.Client(**self._client_options())
            bound_client(client)
            self._http = client
        return self._http

    def prepare(self) -> None:
        """Build the connection pool now (it reads the CA bundle) rather than on the first send."""
        self._client()

    def attempt(
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
                outcome = _answer(response, data, self._secrets(write_key))
                if self._renew_token(outcome, renewed):
                    renewed, url, hops = True, self._url, 0
                    continue
                url, outcome = _follow(url, outcome, hops)  # type: ignore[assignment]
                if url is None:
                    return outcome
                hops += 1
        except Exception as exc:  # noqa: BLE001 - any failure of one attempt is worth a retry
            return _failed(exc, self._secrets(write_key))

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
            data = _capped(response, until) if read else b""
        finally:
            response.close()  # an unread body closes the connection rather than being drained
        return response, data

    def deliver(
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
            outcome = self.attempt(write_key, pieces, context, timeout=timeout, retry_count=state.retries)
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

    def send(self, write_key: str, batch: Any) -> None:
        """Send a ``Batch`` (from ``Batcher.into_batch()``); nothing for an empty one.

        Raises:
            DeliveryError: the batch was rejected or could not be delivered in time.
        """
        pieces, context = _pieces_of(batch)
        if pieces:
            raise_failures(self.deliver(as_write_key(write_key), pieces, context))

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

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        gzip: bool = True,
        max_retry_time: float = DEFAULT_MAX_RETRY_TIME,
        max_rate_limit_time: float = DEFAULT_MAX_RATE_LIMIT_TIME,
        max_retries: int | None = None,
        path: str = DEFAULT_PATH,
        oauth_client_id: str | None = None,
        oauth_client_key: str | None = None,
        oauth_key_id: str | None = None,
        oauth_auth_server: str | None = None,
        oauth_scope: str = DEFAULT_SCOPE,
    ) -> None:
        super().__init__(
            host,
            timeout=timeout,
            gzip=gzip,
            max_retry_time=max_retry_time,
            max_rate_limit_time=max_rate_limit_time,
            max_retries=max_retries,
            path=path,
            transport=transport,
            transport_type=httpx.AsyncBaseTransport,
            oauth={
                "client_id": oauth_client_id,
                "client_key": oauth_client_key,
                "key_id": oauth_key_id,
                "auth_server": oauth_auth_server,
                "scope": oauth_scope,
            },
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
            with _building:
                self._http = httpx.AsyncClient(**self._client_options())
            self._loop = weakref.ref(loop)
        return self._http

    async def attempt(
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
                self._attempt(write_key, pieces, context, until, retry_count), timeout
            )
        except asyncio.TimeoutError:
            return Outcome(None, detail=f"timed out after {timeout:g} s (timeout covers the whole request)")
        except Exception as exc:  # noqa: BLE001 - any failure of one attempt is worth a retry
            return _failed(exc, self._secrets(write_key))

    async def _attempt(
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
            outcome = _answer(response, data, self._secrets(write_key))
            if self._renew_token(outcome, renewed):
                renewed, url, hops = True, self._url, 0
                continue
            url, outcome = _follow(url, outcome, hops)
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
            data = await _acapped(response) if whole or not response.is_success else b""
        finally:
            await response.aclose()
        return response, data

    async def deliver(self, write_key: WriteKey, pieces: Sequence[bytes], context: bytes = b"") -> Delivery:
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
            outcome = await self.attempt(
                write_key, pieces, context, timeout=timeout, retry_count=state.retries
            )
            attempts += 1
            if outcome.ok:
                return attempts
            await asyncio.sleep(self._next_wait(state, attempts, outcome, started, None, len(pieces)))

    async def send(self, write_key: str, batch: Any) -> None:
        """Send a ``Batch`` (from ``Batcher.into_batch()``); nothing for an empty one.

        Raises:
            DeliveryError: the batch was rejected or could not be delivered in time.
        """
        pieces, context = _pieces_of(batch)
        if pieces:
            raise_failures(await self.deliver(as_write_key(write_key), pieces, context))

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent."""
        http, self._http = self._http, None
        if http is not None and self._loop is not None and self._loop() is asyncio.get_running_loop():
            await http.aclose()

    async def __aenter__(self) -> AsyncHttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
