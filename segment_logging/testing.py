"""A fake Segment for tests: a real HTTP server on 127.0.0.1 that speaks ``/v1/batch``.

It checks what Segment checks (Basic auth, gzip, JSON, required fields, size
limits), answers 400 to what Segment would reject, records what it accepted,
and can be told to fail the next requests::

    from segment_logging.testing import SegmentServer

    with SegmentServer() as server:
        handler = SegmentHandler(server.write_key, host=server.url)
        ...
        handler.flush()
        assert server.events("Signup")

Faults: :meth:`SegmentServer.fail_next` (a status, optionally with
``Retry-After``), :meth:`~SegmentServer.drop_next` (close the connection
without an answer), :meth:`~SegmentServer.delay_next` (answer late),
:meth:`~SegmentServer.fail_randomly` (a seeded mix of all three),
:meth:`~SegmentServer.fail_for` (an outage lasting some seconds) and
:meth:`~SegmentServer.pause` / :meth:`~SegmentServer.resume` (hang every
request until resumed).

It also serves HTTPS when given an ``ssl_context``, and accepts requests
addressed to it as an HTTP forward proxy (``POST http://host/v1/batch``), so
tests can check TLS verification and proxy settings.

In process, without a socket: :meth:`SegmentServer.transport` gives an
``httpx.MockTransport`` that judges, records and fails requests the same way::

    server = SegmentServer()  # not started
    handler = SegmentHandler(server.write_key, host="http://127.0.0.1", transport=server.transport())

Modes, for testing a set-up against each kind of endpoint:

* ``SegmentServer()``: Segment (JSON answers, 400 for an over-size body);
* ``SegmentServer(mode="rudderstack")``: RudderStack (Basic auth required, a plain
  ``OK``, 413 for a body over ``max_request_bytes``, 4 MB by default);
* ``SegmentServer(path_prefix="/api/v1/segment")``: an endpoint served under a path
  (like Jitsu's); ``url`` includes the prefix, so ``host=server.url`` still works;
* ``SegmentServer(oauth=True)``: Segment with OAuth 2.0: a token endpoint at
  ``server.oauth_url + "/token"`` that checks an RS256 client assertion, and bearer
  tokens required on ``/v1/batch``. The client's key pair is made by the server:
  ``server.oauth_options()`` gives the options a handler needs. Needs ``cryptography``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import gzip
import itertools
import json
import random
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from ._clock import monotonic

# Segment's documented limits, written out here rather than imported from the library:
# the fake is an independent judge of what the library sends.
MAX_MESSAGE_BYTES = 32_000
MAX_BATCH_BYTES = 500_000
MAX_BATCH_SIZE = 2_500

__all__ = ["ErrorRecorder", "Fault", "Request", "SegmentEvents", "SegmentServer"]

_TYPES = {"track", "identify", "page", "screen", "group", "alias"}
RUDDERSTACK_MAX_REQUEST_BYTES = 4_000_000
"""RudderStack's default request size limit (about 4 MB): above it, 413."""
_REQUIRED = {"track": "event", "group": "groupId", "alias": "previousId"}


@dataclass(frozen=True)
class Fault:
    """How to answer one request instead of accepting it.

    Attributes:
        status: answer with this status (None: see ``drop``/``delay``).
        retry_after: a ``Retry-After`` value to send with the status.
        drop: close the connection without answering.
        delay: seconds to wait before answering (then accept, unless status is set).
    """

    status: int | None = None
    retry_after: str | None = None
    drop: bool = False
    delay: float = 0.0


@dataclass
class Request:
    """One request the server saw, and what it answered."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None
    fault: Fault | None = None
    reason: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    target: str = "/v1/batch"
    """The request target as sent: an absolute URL when it came through a proxy."""


class SegmentServer:
    """A fake Segment HTTP Tracking API on a random loopback port.

    Args:
        write_key: the key it accepts (any other gets 401).
        host: the address to bind; loopback only by default.
        ssl_context: a server-side context to serve HTTPS with (``url`` then starts with https).
        port: the port to bind; 0 (the default) picks a free one.
        pages: answers ``GET`` requests: called with the request target and its headers
            (lower-case names), returns ``(status, content type, body)``; without it,
            every ``GET`` gets 404.
    """

    def __init__(
        self,
        write_key: str = "test-write-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pages: Callable[[str, dict[str, str]], tuple[int, str, bytes]] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        mode: str = "segment",
        path_prefix: str = "",
        max_request_bytes: int = RUDDERSTACK_MAX_REQUEST_BYTES,
        oauth: bool = False,
        token_lifetime: int = 3600,
    ) -> None:
        if mode not in ("segment", "rudderstack"):
            raise ValueError(f"mode must be 'segment' or 'rudderstack', got {mode!r}")
        if path_prefix and (not path_prefix.startswith("/") or path_prefix.endswith("/")):
            raise ValueError(f"path_prefix must start with / and not end with one, got {path_prefix!r}")
        self.write_key = write_key
        self.mode = mode
        self.path_prefix = path_prefix
        self.max_request_bytes = max_request_bytes
        self.oauth: _OAuthJudge | None = _OAuthJudge(token_lifetime) if oauth else None
        self._expected_auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        self._host = host
        self._port = port
        self._pages = pages
        self._ssl_context = ssl_context
        self._lock = threading.Condition()
        self._faults: deque[Fault] = deque()
        self._random: tuple[float, random.Random, tuple[Fault, ...]] | None = None
        self._outage: tuple[float, Iterator[int]] | None = None
        self._open = threading.Event()
        self._open.set()
        self._held = 0
        self._active = 0
        self._stopping = threading.Event()
        self.requests: list[Request] = []
        self.messages: list[dict[str, Any]] = []
        self.truncated = 0
        self._listeners: list[Callable[[Request], object]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> SegmentServer:
        """Start serving in a background thread; returns self."""
        if self._server is not None:
            return self
        self._server = _HTTPServer((self._host, self._port), _make_handler(self))
        self._server.daemon_threads = True
        if self._ssl_context is not None:
            # The handshake happens on the request's own thread, so a client that
            # rejects the certificate cannot stall the accept loop.
            self._server.socket = self._ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (slow and paused answers in progress are cut short). Idempotent."""
        self._stopping.set()
        self._open.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SegmentServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to pass as ``host``."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        host, port = self._server.server_address[:2]
        if not isinstance(host, str):
            host = bytes(host).decode("ascii")
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{host}:{port}{self.path_prefix}"

    @property
    def oauth_url(self) -> str:
        """The OAuth server's base URL (``oauth_auth_server``): the token endpoint is ``/token`` under it."""
        return self.url.removesuffix(self.path_prefix) + "/oauth"

    def oauth_options(self) -> dict[str, Any]:
        """The ``oauth_*`` options a client needs to authenticate with this server's OAuth mode."""
        if self.oauth is None:
            raise RuntimeError("the server was not started with oauth=True")
        return {
            "oauth_client_id": self.oauth.client_id,
            "oauth_client_key": self.oauth.private_key_pem,
            "oauth_key_id": self.oauth.key_id,
            "oauth_auth_server": self.oauth_url,
        }

    def transport(self) -> httpx.MockTransport:
        """The same fake, in process: an ``httpx.MockTransport`` that answers as this server would.

        Pass it as the ``transport`` option (or to an ``httpx.Client``) to test without a
        socket; the server need not be started. Requests to any host reach it, and it
        judges, records and fails them exactly like the HTTP server: ``requests``,
        ``messages``, ``events()``, ``fail_next()`` and the other faults all apply. A
        dropped connection raises ``httpx.RemoteProtocolError``, as a real one does; a
        delay or :meth:`pause` blocks the calling thread (with an ``httpx.AsyncClient``,
        the event loop). Example::

            server = SegmentServer()  # not started: no port, no thread
            handler = SegmentHandler(
                server.write_key, host="http://127.0.0.1", transport=server.transport()
            )

        Returns:
            A new transport; any number may share one server.
        """

        def handle(request: httpx.Request) -> httpx.Response:
            headers = {name.lower(): value for name, value in request.headers.items()}
            target = request.url.raw_path.decode("ascii")
            if request.method == "GET":
                if self._pages is None:
                    status, content_type, data = 404, *_encode_payload({"error": "not found"})
                else:
                    status, content_type, data = self._pages(target, headers)
                return httpx.Response(status, headers={"Content-Type": content_type}, content=data)
            if request.method != "POST":
                return httpx.Response(501, text=f"Unsupported method ({request.method!r})")
            raw = request.read()
            self._begin()
            try:
                answer = self._answer_post(target, headers, raw)
            finally:
                self._end()
            if answer is None:
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )
            content_type, data = _encode_payload(answer.payload)
            return httpx.Response(
                answer.status, headers={"Content-Type": content_type, **answer.headers}, content=data
            )

        return httpx.MockTransport(handle)

    # -- faults ---------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 500, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After``)."""
        self._add(count, Fault(status=status, retry_after=retry_after))

    def drop_next(self, count: int = 1) -> None:
        """Close the connection of the next ``count`` requests without answering."""
        self._add(count, Fault(drop=True))

    def delay_next(self, count: int = 1, *, seconds: float, status: int | None = None) -> None:
        """Answer the next ``count`` requests after ``seconds`` (with ``status``, else accept)."""
        self._add(count, Fault(delay=seconds, status=status))

    def fail_randomly(self, rate: float, *, seed: int = 0, faults: Iterable[Fault] | None = None) -> None:
        """From now on fail a ``rate`` share of requests with one of ``faults`` at random.

        The default mix is a 500, a 429 with ``Retry-After: 0``, a dropped
        connection and a 1-second answer. ``rate=0`` stops it.
        """
        mix = (
            tuple(faults)
            if faults is not None
            else (
                Fault(status=500),
                Fault(status=429, retry_after="0"),
                Fault(drop=True),
                Fault(delay=1.0, status=503),
            )
        )
        with self._lock:
            self._random = (rate, random.Random(seed), mix) if rate > 0 else None

    def fail_for(self, seconds: float, *, statuses: Iterable[int] = (500, 503)) -> None:
        """An outage: for the next ``seconds``, answer every request with ``statuses`` in turn.

        Faults queued with :meth:`fail_next` and the like still come first.
        """
        cycle = itertools.cycle(tuple(statuses))
        with self._lock:
            self._outage = (monotonic() + seconds, cycle)

    def pause(self) -> None:
        """Hang: hold every request, without answering, until :meth:`resume` (or :meth:`stop`)."""
        self._open.clear()

    def resume(self) -> None:
        """Answer the requests held by :meth:`pause`, and the ones after them, as usual."""
        self._open.set()

    def wait_for_held(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` requests are being held by :meth:`pause`."""
        with self._lock:
            return self._lock.wait_for(lambda: self._held >= count, timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being answered (slow answers included); False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._active == 0, timeout)

    def _begin(self) -> None:
        with self._lock:
            self._active += 1

    def _end(self) -> None:
        with self._lock:
            self._active -= 1
            self._lock.notify_all()

    def _hold(self) -> None:
        if self._open.is_set():
            return
        with self._lock:
            self._held += 1
            self._lock.notify_all()
        self._open.wait()
        with self._lock:
            self._held -= 1

    def _add(self, count: int, fault: Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * count)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._outage is not None:
                until, statuses = self._outage
                if monotonic() < until:
                    return Fault(status=next(statuses))
                self._outage = None
            if self._random is not None:
                rate, rng, mix = self._random
                if rng.random() < rate:
                    return rng.choice(mix)
            return None

    # -- what it saw ------------------------------------------------------------------

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` messages were accepted; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.messages) >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` requests were answered (or dropped)."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.requests) >= count, timeout)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Accepted track messages, optionally only those for event ``name``."""
        with self._lock:
            return [
                m
                for m in self.messages
                if m.get("type") == "track" and (name is None or m.get("event") == name)
            ]

    def message_ids(self) -> list[str]:
        """The messageId of every accepted message, in arrival order (duplicates kept)."""
        with self._lock:
            return [m.get("messageId", "") for m in self.messages]

    def batches(self) -> list[dict[str, Any]]:
        """The bodies of accepted requests."""
        with self._lock:
            return [r.body for r in self.requests if r.status == 200 and r.body is not None]

    def clear(self) -> None:
        """Forget what was received and any pending faults."""
        with self._lock:
            self.requests.clear()
            self.messages.clear()
            self._faults.clear()
            self._random = None
            self._outage = None

    def add_listener(self, callback: Callable[[Request], object]) -> None:
        """Call ``callback(request)`` for every request once answered (accepted or not).

        It runs on the request's thread, after the request is recorded: accepted
        ones have ``status`` 200 and their ``messages``; rejected ones their
        ``status`` and ``reason``. What it raises is ignored.
        """
        with self._lock:
            self._listeners.append(callback)

    # -- the protocol -----------------------------------------------------------------

    def _judge(self, headers: dict[str, str], raw: bytes) -> tuple[int, str, dict[str, Any] | None]:
        """(status, reason, body) for a request, as Segment (or RudderStack) would answer it."""
        authorization = headers.get("authorization")
        if self.oauth is not None:
            if not self.oauth.accepts(authorization):
                return 401, "invalid or expired bearer token", None
        elif authorization != self._expected_auth:
            return 401, "invalid write key", None
        if headers.get("content-encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                return 400, "body is not valid gzip", None
        if self.mode == "rudderstack" and len(raw) > self.max_request_bytes:
            return 413, f"request is {len(raw)} bytes, over {self.max_request_bytes}", None
        if self.mode == "segment" and len(raw) > MAX_BATCH_BYTES:
            return 400, f"body is {len(raw)} bytes, over {MAX_BATCH_BYTES}", None
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return 400, f"invalid JSON: {exc}", None
        except RecursionError:
            # Valid JSON, but deeper than Python's parser goes (Segment's goes deeper): say so
            # rather than drop the connection, so a test sees why.
            return 400, "JSON nested deeper than this fake server can parse", None
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            return 400, "body has no batch list", None
        if not isinstance(body.get("sentAt"), str):
            return 400, "body has no sentAt", None
        for index, message in enumerate(body["batch"]):
            try:
                problem = _check_message(message)
            except RecursionError:
                problem = "nested deeper than this fake server can measure"
            if problem:
                return 400, f"batch[{index}]: {problem}", body
        return 200, "", body

    def _answer_post(self, target: str, headers: dict[str, str], raw: bytes) -> _Answer | None:
        """How to answer a POST to ``target``, recorded; None: drop the connection without an answer.

        Shared by the HTTP server and :meth:`transport`. ``headers`` have lower-case names.
        """
        # A forward proxy request names the whole URL; serve it as the proxy and the origin.
        path = urllib.parse.urlsplit(target).path
        if self.oauth is not None and path == "/oauth/token":
            status, payload = self.oauth.token(headers, raw)
            return _Answer(status, payload)
        if path != self.path_prefix + "/v1/batch":
            return _Answer(404, {"error": "not found"})
        self._hold()
        fault = self._next_fault()
        if fault is not None:
            if fault.delay:
                self._stopping.wait(fault.delay)
            if fault.drop:
                self._record(Request(0, headers, None, fault, "dropped", target=target))
                return None
            if fault.status is not None:
                self._record(Request(fault.status, headers, None, fault, "injected", target=target))
                extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return _Answer(fault.status, {"error": "injected fault"}, extra)
        status, reason, body = self._judge(headers, raw)
        self._record(Request(status, headers, body, fault, reason, target=target))
        if self.mode == "rudderstack":
            return _Answer(status, "OK" if status == 200 else reason)
        return _Answer(status, {"success": True} if status == 200 else {"error": reason})

    def _record(self, request: Request) -> None:
        with self._lock:
            if request.status == 200 and request.body is not None:
                accepted = request.body["batch"][:MAX_BATCH_SIZE]
                self.truncated += len(request.body["batch"]) - len(accepted)
                request.messages = accepted
                self.messages.extend(accepted)
            self.requests.append(request)
            self._lock.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            with contextlib.suppress(Exception):  # a listener's bug must not break the server
                listener(request)


@dataclass(frozen=True)
class _Answer:
    """An answer to send: a status, a JSON object or plain text, and extra headers."""

    status: int
    payload: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)


def _encode_payload(payload: dict[str, Any] | str) -> tuple[str, bytes]:
    """(content type, body) for an answer: JSON for a dict, plain text for a string."""
    if isinstance(payload, str):
        return "text/plain; charset=utf-8", payload.encode()
    return "application/json", json.dumps(payload).encode()


def _check_message(message: object) -> str:
    if not isinstance(message, dict):
        return "not an object"
    kind = message.get("type")
    if kind not in _TYPES:
        return f"unknown type {kind!r}"
    if not message.get("userId") and not message.get("anonymousId"):
        return "userId or anonymousId is required"
    required = _REQUIRED.get(kind)
    if required and not message.get(required):
        return f"{required} is required for {kind}"
    message_id = message.get("messageId")
    if message_id is not None and (not isinstance(message_id, str) or len(message_id) > 100):
        return "messageId must be a string of at most 100 characters"
    timestamp = message.get("timestamp")
    if timestamp is not None and not _is_iso_datetime(timestamp):
        return f"timestamp {str(timestamp)[:40]!r} is not an ISO-8601 date-time with a four-digit year"
    # Sized as sent: UTF-8, non-ASCII text unescaped (a lone surrogate as its escape).
    size = len(
        json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "backslashreplace")
    )
    if size > MAX_MESSAGE_BYTES:
        return f"message is {size} bytes, over {MAX_MESSAGE_BYTES}"
    return ""


def _is_iso_datetime(value: object) -> bool:
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}T", value):
        return False
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        datetime.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


class _HTTPServer(ThreadingHTTPServer):
    def process_request(self, request: Any, client_address: Any) -> None:
        # Python 3.12+ refuses new threads once the interpreter is shutting down,
        # which is exactly when an app using this server in-process delivers its
        # last events. Serve that connection on the server's own thread instead.
        try:
            super().process_request(request, client_address)
        except RuntimeError:
            # A kept-alive connection would hold this thread, and with it stop(), until the
            # client closes it (at the very end of its exit): let an idle one go after a second.
            request.settimeout(1.0)
            self.process_request_thread(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timed out, rejected our certificate) is an expected
        # part of fault injection, not a server error worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError | TimeoutError):
            return
        super().handle_error(request, client_address)


def _make_handler(server: SegmentServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Segment
        server_version = "FakeSegment/1"

        def setup(self) -> None:
            if isinstance(self.request, ssl.SSLSocket):
                self.request.settimeout(10)  # a client that stalls mid-handshake frees the thread
                self.request.do_handshake()
                self.request.settimeout(None)
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
            pass  # quiet: tests read server.requests instead

        def do_GET(self) -> None:  # stdlib's name
            if server._pages is None:
                self._answer(404, {"error": "not found"})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, content_type, data = server._pages(self.path, headers)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # stdlib's name (ruff's N802 knows overrides)
            server._begin()
            try:
                self._serve()
            finally:
                server._end()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = server._answer_post(self.path, headers, raw)
            if answer is None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._answer(answer.status, answer.payload, answer.headers)

        def _answer(
            self, status: int, payload: dict[str, Any] | str, extra: dict[str, str] | None = None
        ) -> None:
            content_type, data = _encode_payload(payload)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


class ErrorRecorder:
    """An ``on_error`` callback for tests: keeps every call (it runs on the worker thread).

    Example::

        errors = ErrorRecorder()
        handler = SegmentHandler(server.write_key, host=server.url, on_error=errors)
        ...
        handler.flush()
        assert "user_id or anonymous_id" in str(errors.calls[0][0])
    """

    def __init__(self) -> None:
        self.calls: list[tuple[BaseException, list[Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, exc: BaseException, messages: list[Any]) -> None:
        with self._lock:
            self.calls.append((exc, messages))

    @property
    def messages(self) -> list[Any]:
        """Every message handed over, across all calls, in order."""
        with self._lock:
            return [message for _, messages in self.calls for message in messages]


class _OAuthJudge:
    """The OAuth 2.0 side of the fake: issues bearer tokens for a valid RS256 client assertion.

    It makes the client's RSA key pair itself (the private key is handed to the
    client under test), checks the assertion's signature, ``iss``/``sub``, ``kid``
    and expiry, and counts the tokens it issued.
    """

    scope = "tracking_api:write"

    def __init__(self, token_lifetime: int) -> None:
        try:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa
        except ImportError as exc:  # pragma: no cover - the oauth extra is missing
            raise RuntimeError(
                "SegmentServer(oauth=True) needs cryptography: pip install segment-logging[oauth]"
            ) from exc
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = key.public_key()
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.client_id = "test-oauth-client"
        self.key_id = "test-key-id"
        self.token_lifetime = token_lifetime
        self.tokens_issued = 0
        self.assertions: list[dict[str, Any]] = []
        self._valid: dict[str, float] = {}
        self._lock = threading.Lock()

    def revoke_all(self) -> None:
        """Make every issued token invalid (as a rotation on the server would)."""
        with self._lock:
            self._valid.clear()

    def accepts(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self._lock:
            expires = self._valid.get(authorization[len("Bearer ") :])
        return expires is not None and time.time() < expires

    def token(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 415, {"error": "invalid_request", "error_description": "form body expected"}
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("ascii", "replace")).items()}
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "client credentials expected",
            }
        if form.get("scope") != self.scope:
            return 400, {"error": "invalid_scope", "error_description": f"scope must be {self.scope}"}
        problem = self._check_assertion(form.get("client_assertion", ""))
        if problem:
            return 401, {"error": "invalid_client", "error_description": problem}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._valid[token] = time.time() + self.token_lifetime
            self.tokens_issued += 1
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": self.scope,
        }

    def _check_assertion(self, assertion: str) -> str:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head_b64, claims_b64, signature_b64 = assertion.split(".")
            head = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(signature_b64)
        except ValueError:
            return "client_assertion is not a JWT"
        if head.get("alg") != "RS256" or head.get("kid") != self.key_id:
            return "assertion must be RS256 with the registered kid"
        try:
            self._public_key.verify(
                signature,
                f"{head_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return "assertion signature does not verify"
        now = time.time()
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return "iss and sub must be the client id"
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] < now:
            return "Token is expired"
        if not isinstance(claims.get("jti"), str) or not claims.get("aud"):
            return "jti and aud are required"
        with self._lock:
            self.assertions.append(claims)
        return ""


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


from ._capture import SegmentEvents  # noqa: E402 - it builds on SegmentServer, defined above
