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
without an answer), :meth:`~SegmentServer.delay_next` (answer late), and
:meth:`~SegmentServer.fail_randomly` (a seeded mix of all three).
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import socket
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._batch import MAX_BATCH_BYTES, MAX_BATCH_SIZE, MAX_MESSAGE_BYTES

__all__ = ["Fault", "Request", "SegmentServer"]

_TYPES = {"track", "identify", "page", "screen", "group", "alias"}
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


class SegmentServer:
    """A fake Segment HTTP Tracking API on a random loopback port.

    Args:
        write_key: the key it accepts (any other gets 401).
        host: the address to bind; loopback only by default.
    """

    def __init__(self, write_key: str = "test-write-key", *, host: str = "127.0.0.1") -> None:
        self.write_key = write_key
        self._expected_auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        self._host = host
        self._lock = threading.Condition()
        self._faults: deque[Fault] = deque()
        self._random: tuple[float, random.Random, tuple[Fault, ...]] | None = None
        self._stopping = threading.Event()
        self.requests: list[Request] = []
        self.messages: list[dict[str, Any]] = []
        self.truncated = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> SegmentServer:
        """Start serving in a background thread; returns self."""
        if self._server is not None:
            return self
        self._server = ThreadingHTTPServer((self._host, 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (slow answers in progress are cut short). Idempotent."""
        self._stopping.set()
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
        address = self._server.server_address
        return f"http://{address[0]}:{address[1]}"

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

    def fail_randomly(
        self, rate: float, *, seed: int = 0, faults: Iterable[Fault] | None = None
    ) -> None:
        """From now on fail a ``rate`` share of requests with one of ``faults`` at random.

        The default mix is a 500, a 429 with ``Retry-After: 0``, a dropped
        connection and a 1-second answer. ``rate=0`` stops it.
        """
        mix = tuple(faults) if faults is not None else (
            Fault(status=500),
            Fault(status=429, retry_after="0"),
            Fault(drop=True),
            Fault(delay=1.0, status=503),
        )
        with self._lock:
            self._random = (rate, random.Random(seed), mix) if rate > 0 else None

    def _add(self, count: int, fault: Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * count)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
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

    # -- the protocol -----------------------------------------------------------------

    def _judge(self, headers: dict[str, str], raw: bytes) -> tuple[int, str, dict[str, Any] | None]:
        """(status, reason, body) for a request, as Segment would answer it."""
        if headers.get("authorization") != self._expected_auth:
            return 401, "invalid write key", None
        if headers.get("content-encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                return 400, "body is not valid gzip", None
        if len(raw) > MAX_BATCH_BYTES:
            return 400, f"body is {len(raw)} bytes, over {MAX_BATCH_BYTES}", None
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return 400, f"invalid JSON: {exc}", None
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            return 400, "body has no batch list", None
        if not isinstance(body.get("sentAt"), str):
            return 400, "body has no sentAt", None
        for index, message in enumerate(body["batch"]):
            problem = _check_message(message)
            if problem:
                return 400, f"batch[{index}]: {problem}", body
        return 200, "", body

    def _record(self, request: Request) -> None:
        with self._lock:
            if request.status == 200 and request.body is not None:
                accepted = request.body["batch"][:MAX_BATCH_SIZE]
                self.truncated += len(request.body["batch"]) - len(accepted)
                request.messages = accepted
                self.messages.extend(accepted)
            self.requests.append(request)
            self._lock.notify_all()


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
    size = len(json.dumps(message, separators=(",", ":")).encode())
    if size > MAX_MESSAGE_BYTES:
        return f"message is {size} bytes, over {MAX_MESSAGE_BYTES}"
    return ""


def _make_handler(server: SegmentServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Segment
        server_version = "FakeSegment/1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
            pass  # quiet: tests read server.requests instead

        def do_POST(self) -> None:  # noqa: N802 - stdlib's name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            if self.path != "/v1/batch":
                self._answer(404, {"error": "not found"})
                return
            fault = server._next_fault()
            if fault is not None:
                if fault.delay:
                    server._stopping.wait(fault.delay)
                if fault.drop:
                    server._record(Request(0, headers, None, fault, "dropped"))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault.status is not None:
                    server._record(Request(fault.status, headers, None, fault, "injected"))
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                    self._answer(fault.status, {"error": "injected fault"}, extra)
                    return
            status, reason, body = server._judge(headers, raw)
            server._record(Request(status, headers, body, fault, reason))
            self._answer(status, {"success": True} if status == 200 else {"error": reason})

        def _answer(self, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
