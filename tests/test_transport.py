"""HttpClient and AsyncHttpClient: one bounded request, what is read and reported of an answer,
which hosts are accepted, redirects, and failures of an attempt that are not HTTP ones."""

from __future__ import annotations

import asyncio
import base64
import gzip
import logging
import math
import socket
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from segment_logging import AsyncHttpClient, DeliveryError, HttpClient, SegmentHandler
from segment_logging._auth import WriteKey, redact
from segment_logging._clock import monotonic
from segment_logging._endpoint import redirect_problem
from segment_logging.testing import ErrorRecorder, SegmentServer

KEY = WriteKey("test-write-key")
PIECES = [b'{"type":"track","userId":"u","event":"E"}']

# -- a misbehaving server ---------------------------------------------------------------------


class RawServer:
    """A loopback TCP server that runs ``script(connection, stop)`` for each connection.

    ``stop`` is set when the test ends, so a script that trickles or never answers
    ends with it (at most ``limit`` seconds in any case).
    """

    def __init__(self, script: Callable[[socket.socket, threading.Event], None], limit: float = 8.0) -> None:
        self._script = script
        self.stop = threading.Event()
        self._limit = limit
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        timer = threading.Timer(self._limit, self.stop.set)
        timer.start()
        try:
            conn.settimeout(self._limit)
            _read_request(conn)
            self._script(conn, self.stop)
        except OSError:
            pass  # the client gave up: what these tests want
        finally:
            timer.cancel()
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self._sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        body += conn.recv(65536)
    return head


@pytest.fixture
def raw() -> Iterator[Callable[..., RawServer]]:
    made: list[RawServer] = []

    def make(script: Callable[[socket.socket, threading.Event], None]) -> RawServer:
        made.append(RawServer(script))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _trickle_status(conn: socket.socket, stop: threading.Event) -> None:
    """A status line and headers that never end, one byte every 50 ms."""
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
        if stop.wait(0.05):
            return
        conn.sendall(bytes([byte]))


def _silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accept the request and never answer."""
    stop.wait()


def _endless_error(conn: socket.socket, stop: threading.Event) -> None:
    """A 500 whose chunked body never ends, sent as fast as the client reads."""
    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    while not stop.is_set():
        conn.sendall(frame)


def _ok_then_slow_body(conn: socket.socket, stop: threading.Event) -> None:
    """A 200 whose 100-byte body comes one byte every 50 ms."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    for _ in range(100):
        if stop.wait(0.05):
            return
        conn.sendall(b"k")


# -- item 13: the whole request is bounded ----------------------------------------------------


@pytest.mark.parametrize("script", [_trickle_status, _silent], ids=["trickled-headers", "silent"])
def test_whole_request_is_bounded_by_timeout(raw: Callable[..., RawServer], script: Any) -> None:
    """A server that trickles its status line and headers (or never answers) holds one attempt
    for ``timeout`` in all, not ``timeout`` per byte read."""
    server = raw(script)
    client = HttpClient(server.url, timeout=0.4, gzip=False)
    started = monotonic()
    outcome = client._attempt(KEY, PIECES, timeout=0.4)
    elapsed = monotonic() - started
    client.close()
    assert outcome.status is None
    assert "Timeout" in outcome.detail
    assert elapsed < 2.0


def test_async_whole_request_is_bounded_by_timeout(raw: Callable[..., RawServer]) -> None:
    """The async client bounds the whole request by ``timeout`` too."""
    server = raw(_trickle_status)

    async def main() -> float:
        async with AsyncHttpClient(server.url, timeout=0.4) as client:
            started = monotonic()
            outcome = await client._attempt(KEY, PIECES, timeout=0.4)
            assert outcome.status is None
            return monotonic() - started

    assert asyncio.run(main()) < 2.0


def test_retries_of_a_trickling_server_end_with_the_budget(raw: Callable[..., RawServer]) -> None:
    """Against a server that always trickles, a batch is given up after max_retry_time and one
    timeout, not held forever."""
    server = raw(_trickle_status)
    client = HttpClient(server.url, timeout=0.3, max_retry_time=0.5)
    started = monotonic()
    with pytest.raises(DeliveryError, match="retry budget spent") as caught:
        client._deliver(KEY, PIECES)
    client.close()
    assert monotonic() - started < 3.0
    assert caught.value.attempts >= 2


def test_shutdown_deadline_bounds_a_trickling_request(raw: Callable[..., RawServer]) -> None:
    """A deadline (shutdown_timeout) cuts a trickling request short even when timeout is longer."""
    server = raw(_trickle_status)
    client = HttpClient(server.url, timeout=30)
    started = monotonic()
    with pytest.raises(DeliveryError, match="shutdown_timeout"):
        client._deliver(KEY, PIECES, deadline=monotonic() + 0.4)
    client.close()
    assert monotonic() - started < 2.0


def _trickle_fast(conn: socket.socket, stop: threading.Event) -> None:
    """A status line and headers that never end, one byte every 10 ms (no read ever waits long)."""
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000:
        if stop.wait(0.01):
            return
        conn.sendall(bytes([byte]))


@pytest.mark.parametrize("script", [_trickle_fast, _silent], ids=["trickling", "silent"])
def test_close_ends_a_request_sent_before_it_at_shutdown_timeout(
    raw: Callable[..., RawServer],
    script: Callable[[socket.socket, threading.Event], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request sent before close() (bound only by its 30 s timeout) trickles or hangs: close()
    ends it at shutdown_timeout, and the worker gives the batch up, counted and reported once."""
    server = raw(script)
    handler = SegmentHandler("key", host=server.url, timeout=30, shutdown_timeout=1)
    record = logging.makeLogRecord({"msg": "Slow", "segment": {"user_id": "u"}})
    handler.handle(record)
    assert handler.flush(timeout=0.3) is False  # in flight
    started = monotonic()
    with caplog.at_level(logging.ERROR, logger="segment_logging"):
        handler.close()
        assert monotonic() - started < 1 + 1  # a generous slack on a loaded machine
        settled = threading.Event()
        while handler.stats()["queued"] and monotonic() - started < 5:  # the worker's last step
            settled.wait(0.01)
    stats = handler.stats()
    assert (stats["queued"], stats["failed"], stats["sent"]) == (0, 1, 0)
    assert len([r for r in caplog.records if r.name == "segment_logging"]) == 1, caplog.text


def test_a_connection_that_never_opens_holds_close_only_to_shutdown_timeout_and_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connecting cannot be cut short: close() still returns at shutdown_timeout and says what it
    left behind; when the connection attempt ends later, the batch is counted failed, not reported
    a second time."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    fillers = []
    try:
        for _ in range(4):  # a full accept queue: further connection attempts are dropped, unanswered
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        host = f"http://127.0.0.1:{listener.getsockname()[1]}"
        handler = SegmentHandler("key", host=host, timeout=2, shutdown_timeout=0.5)
        handler.handle(logging.makeLogRecord({"msg": "Unreachable", "segment": {"user_id": "u"}}))
        assert handler.flush(timeout=0.2) is False
        started = monotonic()
        with caplog.at_level(logging.ERROR, logger="segment_logging"):
            handler.close()
            assert monotonic() - started < 0.5 + 1
            settled = threading.Event()
            while handler.stats()["queued"] and monotonic() - started < 10:  # the attempt's own timeout
                settled.wait(0.05)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert (handler.stats()["queued"], handler.stats()["failed"]) == (0, 1)
    reports = [r.getMessage() for r in caplog.records if r.name == "segment_logging"]
    assert len(reports) == 1, reports
    assert "shutdown_timeout (0.5 s) ran out with 1 event not delivered" in reports[0]


def test_endless_error_body_is_read_only_a_little(raw: Callable[..., RawServer]) -> None:
    """An error answer with an endless body is read up to a few KB, then the connection is
    dropped: the attempt ends at once with the status and a short quote."""
    server = raw(_endless_error)
    client = HttpClient(server.url, timeout=5)
    started = monotonic()
    outcome = client._attempt(KEY, PIECES, timeout=5)
    client.close()
    assert outcome.status == 500
    assert outcome.detail == "x" * 200
    assert monotonic() - started < 4.0


def test_async_endless_error_body_is_read_only_a_little(raw: Callable[..., RawServer]) -> None:
    """The async client reads an endless error body only up to a few KB too."""
    server = raw(_endless_error)

    async def main() -> None:
        async with AsyncHttpClient(server.url, timeout=5) as client:
            outcome = await client._attempt(KEY, PIECES, timeout=5)
            assert (outcome.status, len(outcome.detail)) == (500, 200)

    started = monotonic()
    asyncio.run(main())
    assert monotonic() - started < 4.0


_BOMB: list[bytes] = []


def _gzip_bomb(conn: socket.socket, stop: threading.Event) -> None:
    """A 500 whose small gzip body inflates to 50 MB."""
    body = _BOMB[0]
    head = b"HTTP/1.1 500 Oops\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body)
    conn.sendall(head + body)


def test_compressed_error_answer_is_inflated_only_a_little(raw: Callable[..., RawServer]) -> None:
    """A compressed error answer is inflated only up to the few KB quoted: memory stays small."""
    if not _BOMB:
        _BOMB.append(gzip.compress(b"0" * 50_000_000, compresslevel=9))
    server = raw(_gzip_bomb)
    client = HttpClient(server.url, timeout=5)
    client._prepare()
    tracemalloc.start()
    try:
        outcome = client._attempt(KEY, PIECES, timeout=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    client.close()
    assert (outcome.status, outcome.detail) == (500, "0" * 200)
    assert peak < 2_000_000


def test_success_does_not_wait_for_a_slow_body(raw: Callable[..., RawServer]) -> None:
    """A 2xx is success as soon as its status arrives; a slow body is not waited for."""
    server = raw(_ok_then_slow_body)
    client = HttpClient(server.url, timeout=3)
    started = monotonic()
    assert client._deliver(KEY, PIECES).requests == 1
    client.close()
    assert monotonic() - started < 2.0


# -- item 15: Retry-After that is absurd or broken -----------------------------------------------


def test_far_future_retry_after_date_neither_raises_nor_fails(server: SegmentServer) -> None:
    """A Retry-After date in the year 99999999999 is a long wait within the rate-limit budget,
    not an OverflowError: the batch is retried when the budget allows and delivered."""
    server.fail_next(1, status=503, retry_after="Fri, 31 Dec 99999999999 23:59:59 GMT")
    client = HttpClient(server.url, max_rate_limit_time=0.2)
    assert client._deliver(KEY, PIECES).requests == 2
    client.close()
    assert len(server.messages) == 1


def test_retry_after_zero_is_not_a_storm(server: SegmentServer) -> None:
    """429 with Retry-After: 0 on every answer is retried with the normal, growing backoff:
    a handful of requests in a second, not thousands."""
    server.fail_next(1000, status=429, retry_after="0")
    client = HttpClient(server.url, max_retry_time=1.0)
    with pytest.raises(DeliveryError, match="retry budget spent"):
        client._deliver(KEY, PIECES)
    client.close()
    assert 2 <= len(server.requests) <= 5


# -- item 16: options are validated ---------------------------------------------------------------


@pytest.mark.parametrize("client_class", [HttpClient, AsyncHttpClient])
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout", -1),
        ("timeout", math.inf),
        ("timeout", math.nan),
        ("timeout", 0),
        ("max_retry_time", "soon"),
        ("max_retry_time", -1),
        ("max_rate_limit_time", math.inf),
        ("gzip", "maybe"),
        ("transport", "not a transport"),
    ],
)
def test_clients_refuse_invalid_options(client_class: Any, option: str, value: object) -> None:
    """Both clients refuse a bad option at construction with a ValueError naming it."""
    with pytest.raises(ValueError, match=option):
        client_class("http://127.0.0.1:1", **{option: value})


def test_clients_accept_options_as_text() -> None:
    """Numbers and bools given as text (from a config file) are read like the handler reads them."""
    client = HttpClient("http://127.0.0.1:1", timeout="2.5", gzip="no", max_retry_time="3")  # type: ignore[arg-type]
    assert (client.timeout, client.gzip, client.policy.max_retry_time) == (2.5, False, 3.0)


# -- item 19: fork-safe imports and unexpected errors ---------------------------------------------


def test_codecs_a_connection_needs_are_imported_with_the_package() -> None:
    """The idna codec (looked up by the socket module on a first connection) and httpcore are
    imported with the package, so a child forked mid-connection never finds them half-imported."""
    code = "import sys, segment_logging; print('encodings.idna' in sys.modules, 'httpcore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", "True"]


class _RaisesFirst(httpx.BaseTransport):
    """A real transport whose first ``failures`` requests raise an error that is not httpx's."""

    def __init__(self, failures: int) -> None:
        self._real = httpx.HTTPTransport()
        self.failures = failures

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.failures:
            self.failures -= 1
            raise LookupError("unknown encoding: idna")
        return self._real.handle_request(request)

    def close(self) -> None:
        self._real.close()


def test_unexpected_error_in_an_attempt_is_retried(server: SegmentServer) -> None:
    """An exception that is not an httpx error, raised inside one attempt, is retried like a
    network error: the batch is delivered on the next attempt."""
    client = HttpClient(server.url, transport=_RaisesFirst(1))
    assert client._deliver(KEY, PIECES).requests == 2
    client.close()
    assert len(server.messages) == 1


def test_unexpected_error_that_persists_is_reported_with_its_type(server: SegmentServer) -> None:
    """When it keeps happening, the batch is given up after the budget, with the error's type in
    the report, as for any network error."""
    client = HttpClient(server.url, transport=_RaisesFirst(1000), max_retry_time=0.3)
    with pytest.raises(DeliveryError, match="LookupError: unknown encoding: idna") as caught:
        client._deliver(KEY, PIECES)
    client.close()
    assert caught.value.status is None
    assert caught.value.attempts >= 2


# -- item 20 and the smaller ones: which hosts are accepted -----------------------------------------


@pytest.mark.parametrize(
    "host",
    ["http://user:s3cr3t-pw@relay:8080", "https://s3cr3t-pw@api.segment.io", "http://:s3cr3t-pw@127.0.0.1"],
)
def test_host_with_credentials_is_refused_without_echoing_them(host: str) -> None:
    """A host carrying user:password@ is refused (the write key authenticates), and the message
    never repeats the password."""
    for build in (
        lambda: HttpClient(host),
        lambda: AsyncHttpClient(host),
        lambda: SegmentHandler("k", host=host),
    ):
        with pytest.raises(ValueError, match="credentials") as caught:
            build()
        assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    "host",
    [
        "http://127.0.0.1:99999",
        "http://127.0.0.1:abc",
        "http://127.0.0.1:0",
        "http://127.0.0.1:",
        " http://127.0.0.1",
        "http://127.0.0.1 ",
        "http://127.0.0.1\n",
        "http://127.0.0 .1",
        "ftp://127.0.0.1",
        "127.0.0.1:8080",
        "http://127.0.0.1?x=1",
        "http://127.0.0.1#frag",
        "http://[::1",
    ],
)
def test_invalid_hosts_are_refused_at_construction(host: str) -> None:
    """A host that cannot be sent to is refused when the client is built, not at the first send."""
    with pytest.raises(ValueError, match="host"):
        HttpClient(host)


def test_write_key_is_sent_as_basic_auth(server: SegmentServer) -> None:
    """Every request authenticates with the write key as HTTP Basic user name."""
    client = HttpClient(server.url)
    client._deliver(KEY, PIECES)
    client.close()
    expected = "Basic " + base64.b64encode(b"test-write-key:").decode()
    assert server.requests[0].headers["authorization"] == expected


# -- item 21: secrets echoed by a server are redacted -------------------------------------------


def _echoing(conn: socket.socket, stop: threading.Event) -> None:
    """A 401 whose body echoes the key in every form, and authorization headers."""
    token = base64.b64encode(b"test-write-key:").decode()
    body = (
        f'{{"error": "bad key test-write-key", "auth": "Basic {token}", "seen": "{token}",'
        f' "raw64": "{base64.b64encode(b"test-write-key").decode()}",'
        ' "authorization": "opaque-value-123", "other": "Bearer eyJhbGciOi.xyz.abc"}'
    ).encode()
    conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def test_secrets_echoed_in_an_answer_are_redacted(raw: Callable[..., RawServer]) -> None:
    """The write key (raw and base64) and any Authorization, Basic or Bearer value a server
    echoes in its answer never reach the error text."""
    server = raw(_echoing)
    client = HttpClient(server.url)
    with pytest.raises(DeliveryError) as caught:
        client._deliver(KEY, PIECES)
    client.close()
    text = str(caught.value)
    token = base64.b64encode(b"test-write-key:").decode()
    for secret in ("test-write-key", token, token.rstrip("="), "opaque-value-123", "eyJhbGciOi"):
        assert secret not in text
    assert "401" in text
    assert "********" in text


def test_redact_masks_every_form() -> None:
    """redact() masks given secrets and credential-looking values, and leaves other text alone."""
    text = "key=abcd1234 Authorization: Bearer tok.en-1 basic Zm9vOg== authorization='x1' fine"
    assert redact(text, ["abcd1234"]) == (
        "key=******** Authorization: Bearer ******** basic ******** authorization='********' fine"
    )


# -- redirects ------------------------------------------------------------------------------------


class _Redirecting(BaseHTTPRequestHandler):
    """Answers each POST per the ``routes`` of its server: (status, Location) by path; 200 otherwise."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # stdlib's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server: Any = self.server
        server.seen.append((self.path, self.headers.get("Authorization"), self.headers.get("X-Retry-Count")))
        status, location = server.routes.get(self.path, (200, None))
        self.send_response(status)
        if location:
            self.send_header("Location", location.replace("{self}", f"http://127.0.0.1:{server.server_port}"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass


@pytest.fixture
def redirecting() -> Iterator[Callable[[dict[str, tuple[int, str | None]]], Any]]:
    made: list[ThreadingHTTPServer] = []

    def make(routes: dict[str, tuple[int, str | None]]) -> Any:
        httpd: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
        httpd.daemon_threads = True
        httpd.routes, httpd.seen = routes, []
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        made.append(httpd)
        return httpd

    yield make
    for httpd in made:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_to_the_same_host_is_followed(redirecting: Any, status: int) -> None:
    """A redirect to another path of the same host is followed, re-posting the batch with the key."""
    httpd = redirecting({"/v1/batch": (status, "/api/v1/batch")})
    client = HttpClient(f"http://127.0.0.1:{httpd.server_port}")
    assert client._deliver(KEY, PIECES).requests == 1
    client.close()
    assert [path for path, _, _ in httpd.seen] == ["/v1/batch", "/api/v1/batch"]
    assert httpd.seen[1][1] == KEY.authorization


def test_redirect_to_another_host_is_not_followed(redirecting: Any) -> None:
    """A redirect to another host is reported, saying why, and the other host never gets the key."""
    other = redirecting({})
    httpd = redirecting({"/v1/batch": (307, f"http://localhost:{other.server_port}/v1/batch")})
    client = HttpClient(f"http://127.0.0.1:{httpd.server_port}")
    with pytest.raises(DeliveryError, match="not followed: the write key is never sent to another host"):
        client._deliver(KEY, PIECES)
    client.close()
    assert other.seen == []


def test_redirect_loop_is_cut(redirecting: Any) -> None:
    """A redirect loop stops after a few hops, with a clear report and no retry."""
    httpd = redirecting({"/v1/batch": (308, "/v1/loop"), "/v1/loop": (308, "/v1/batch")})
    client = HttpClient(f"http://127.0.0.1:{httpd.server_port}")
    with pytest.raises(DeliveryError, match="more than 3 redirects"):
        client._deliver(KEY, PIECES)
    client.close()
    assert len(httpd.seen) == 4


@pytest.mark.parametrize(
    ("source", "target", "problem"),
    [
        ("https://api.segment.io/v1/batch", "https://api.segment.io/v2/batch", ""),
        ("http://relay.internal/v1/batch", "https://relay.internal/v1/batch", ""),
        ("https://api.segment.io/v1/batch", "http://api.segment.io/v1/batch", "downgrade"),
        ("https://api.segment.io/v1/batch", "https://evil.example/v1/batch", "another host"),
        ("https://api.segment.io/v1/batch", "https://api.segment.io:8443/v1/batch", "another host"),
        ("https://api.segment.io/v1/batch", "https://u:p@api.segment.io/v1/batch", "credentials"),
        ("https://api.segment.io/v1/batch", "ftp://api.segment.io/x", "not an http"),
    ],
)
def test_which_redirects_may_be_followed(source: str, target: str, problem: str) -> None:
    """Same origin, or http upgraded to https on the same host: followed; never a downgrade,
    another host or port, credentials in the URL, or another scheme."""
    found = redirect_problem(source, target)
    assert (problem in found and bool(found)) if problem else found == ""


# -- AsyncHttpClient across event loops -------------------------------------------------------------


def test_async_client_works_from_a_second_event_loop(server: SegmentServer) -> None:
    """One AsyncHttpClient used by two asyncio.run() calls sends from both."""
    client = AsyncHttpClient(server.url)

    async def send() -> None:
        await client._deliver(KEY, PIECES)

    asyncio.run(send())
    asyncio.run(send())
    asyncio.run(client.aclose())
    assert len(server.messages) == 2


# -- Segment's 2026 behaviour: X-Retry-Count, statuses not retried, 413 splits, path prefixes -------


def test_retry_count_header_counts_retries(server: SegmentServer) -> None:
    """X-Retry-Count is absent on the first attempt and N on the N-th retry."""
    server.fail_next(2, status=503, retry_after="0")
    client = HttpClient(server.url)
    assert client._deliver(KEY, PIECES).requests == 3
    client.close()
    assert [r.headers.get("x-retry-count") for r in server.requests] == [None, "1", "2"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 501, 505, 511])
def test_statuses_that_are_not_retried(server: SegmentServer, status: int) -> None:
    """Other 4xx and 501, 505 and 511 are given up after one request (a single message for 413)."""
    server.fail_next(1, status=status)
    client = HttpClient(server.url)
    with pytest.raises(DeliveryError, match=f"not retryable.*{status}"):
        client._deliver(KEY, PIECES)
    client.close()
    assert len(server.requests) == 1


def test_plain_ok_is_success() -> None:
    """Any 2xx is success, whatever its body: RudderStack's plain OK included."""
    with SegmentServer(mode="rudderstack") as server:
        client = HttpClient(server.url)
        assert client._deliver(KEY, PIECES).requests == 1
        client.close()
        assert len(server.messages) == 1


def _pieces(count: int, size: int = 300) -> list[bytes]:
    return [
        b'{"type":"track","userId":"u","event":"E","messageId":"m%d","properties":{"p":"%s"}}'
        % (i, b"x" * size)
        for i in range(count)
    ]


def test_413_splits_the_batch_in_halves_until_it_fits() -> None:
    """A batch over the endpoint's limit is split in halves, recursively, and every message
    arrives exactly once."""
    with SegmentServer(mode="rudderstack", max_request_bytes=2_500) as server:
        client = HttpClient(server.url)
        delivery = client._deliver(KEY, _pieces(16))
        client.close()
        assert (delivery.sent, delivery.failures) == (16, [])
        assert sorted(server.message_ids()) == sorted(f"m{i}" for i in range(16))
        assert sorted(r.status for r in server.requests) == [200] * 4 + [413] * 3  # 16, 8, 8 too big


def test_413_single_message_is_rejected_and_neighbours_are_delivered() -> None:
    """A message that alone still gets 413 is given up as rejected; its neighbours arrive."""
    with SegmentServer(mode="rudderstack", max_request_bytes=1_500) as server:
        pieces = _pieces(3)
        pieces.insert(1, _pieces(1, size=2_000)[0].replace(b'"m0"', b'"big"'))
        client = HttpClient(server.url)
        delivery = client._deliver(KEY, pieces)
        client.close()
        assert delivery.sent == 3
        [(part, error)] = delivery.failures
        assert b'"big"' in part[0]
        assert error.status == 413
        assert sorted(server.message_ids()) == ["m0", "m1", "m2"]


def test_handler_counts_a_split_batch_per_part(logger: Any) -> None:
    """Through the handler, a split batch counts sent and failed per message, and the rejected
    one is reported alone."""
    errors = ErrorRecorder()
    with SegmentServer(mode="rudderstack", max_request_bytes=1_500) as server:
        handler = SegmentHandler(
            server.write_key, host=server.url, flush_interval=60, on_error=errors, shutdown_timeout=2
        )
        logger.addHandler(handler)
        for index in range(4):
            size = 2_000 if index == 2 else 10
            logger.info("Paid", extra={"segment": {"user_id": f"u{index}", "properties": {"p": "x" * size}}})
        assert handler.flush(10)
        stats = handler.stats()
        handler.close()
        assert (stats["sent"], stats["failed"]) == (3, 1)
        [(error, messages)] = errors.calls
        assert isinstance(error, DeliveryError)
        assert error.status == 413
        assert [m["userId"] for m in messages] == ["u2"]
        assert sorted(m["userId"] for m in server.messages) == ["u0", "u1", "u3"]


@pytest.mark.parametrize("prefix", ["/api/v1/segment", "/collect"])
def test_host_with_a_path_prefix(prefix: str) -> None:
    """host may carry a path prefix; /v1/batch is added to it."""
    with SegmentServer(path_prefix=prefix) as server:
        client = HttpClient(server.url)
        client._deliver(KEY, PIECES)
        client.close()
        assert [r.target for r in server.requests] == [f"{prefix}/v1/batch"]


def test_path_option_sets_the_rest_of_the_url(server: SegmentServer) -> None:
    """path replaces /v1/batch (analytics-node's option), for the handler and the clients."""
    base = server.url
    client = HttpClient(base, path="/v1/batch/")
    with pytest.raises(DeliveryError, match="404"):
        client._deliver(KEY, PIECES)
    client.close()
    with SegmentServer(path_prefix="/x") as prefixed:
        client = HttpClient(prefixed.url.removesuffix("/x"), path="/x/v1/batch")
        client._deliver(KEY, PIECES)
        client.close()
        assert len(prefixed.messages) == 1
    with pytest.raises(ValueError, match="path"):
        HttpClient(base, path="v1/batch")
    with pytest.raises(ValueError, match="path"):
        SegmentHandler("k", host=base, path="/v1/batch?x=1")


@pytest.mark.parametrize("front", ["handler", "processor"])
def test_front_ends_send_to_a_path_prefixed_endpoint(front: str, logger: Any) -> None:
    """The handler and the structlog processor take a host with a path prefix and a path option."""
    from segment_logging.structlog import SegmentProcessor

    with SegmentServer(path_prefix="/jitsu") as server:
        options: dict[str, Any] = {"host": server.url.removesuffix("/jitsu"), "path": "/jitsu/v1/batch"}
        if front == "handler":
            sender: Any = SegmentHandler(server.write_key, **options)
            logger.addHandler(sender)
            logger.info("Signup", extra={"segment": {"user_id": "u1"}})
        else:
            sender = SegmentProcessor(server.write_key, **options)
            sender(None, "info", {"event": "Signup", "segment": {"user_id": "u1"}})
        assert sender.flush(10)
        sender.close()
        assert [r.target for r in server.requests] == ["/jitsu/v1/batch"]
        assert server.events("Signup")
