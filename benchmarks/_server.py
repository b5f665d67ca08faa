"""A lean loopback sink for ``POST /v1/batch``: counts what it acknowledges, and little else.

Run by ``run.py`` in its own process, so its work never competes for the
benchmarked process's GIL. It speaks just enough HTTP/1.1 for keep-alive
clients (httpx, requests), sets TCP_NODELAY, inflates gzip bodies, parses every
body as JSON and checks each message the way Segment would (a type, a
messageId, a userId or anonymousId); it counts messages, unique messageIds and
rejected requests. ``segment_logging.testing.SegmentServer`` does more checks,
but its ``http.server`` base costs more per request than this benchmark can
spare; ``run.py`` measures this sink's own capacity and prints it.

Control endpoints (for the orchestrator and the scripts): ``GET /stats``,
``POST /reset`` and ``GET /wait?count=N&timeout=S``, which answers once N
messages were acknowledged, with ``reached_at``, the ``time.monotonic()``
instant the request that reached N was acknowledged.

Usage: ``python _server.py [--write-key KEY]``; prints the port, then serves
until its standard input closes (so it never outlives the orchestrator).
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import zlib
from typing import Any

OK_BODY = b'{"success":true}'


class Counts:
    """What the sink acknowledged, guarded by one condition."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.reset()

    def reset(self) -> None:
        self.messages = 0
        self.requests = 0
        self.rejected = 0
        self.body_bytes = 0
        self.ids: set[str] = set()
        self.first_at: float | None = None
        # Per acknowledged request: when, and how many messages were acknowledged by then.
        self.times: list[float] = []
        self.totals: list[int] = []
        self.reasons: dict[str, int] = {}

    def snapshot(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "unique_ids": len(self.ids),
            "requests": self.requests,
            "rejected": self.rejected,
            "body_bytes": self.body_bytes,
            "first_at": self.first_at,
            "last_at": self.times[-1] if self.times else None,
            "reasons": dict(self.reasons),
        }

    def reached_at(self, count: int) -> float | None:
        index = bisect.bisect_left(self.totals, count)
        return self.times[index] if index < len(self.times) else None


def check_batch(raw: bytes, headers: dict[bytes, bytes], expected_auth: bytes) -> tuple[str, list[str]]:
    """(reason to reject or "", messageIds of the batch)."""
    if headers.get(b"authorization") != expected_auth:
        return "bad authorization", []
    if headers.get(b"content-encoding", b"").lower() == b"gzip":
        try:
            raw = zlib.decompress(raw, 47)  # 32 + 15: gzip or zlib framing
        except zlib.error:
            return "bad gzip", []
    try:
        body = json.loads(raw)
    except ValueError:
        return "bad json", []
    batch = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(batch, list) or not isinstance(body.get("sentAt"), str):
        return "no batch or sentAt", []
    ids = []
    for message in batch:
        if not isinstance(message, dict) or not message.get("type") or not message.get("messageId"):
            return "message without type or messageId", []
        if not message.get("userId") and not message.get("anonymousId"):
            return "message without userId or anonymousId", []
        ids.append(message["messageId"])
    return "", ids


class Sink:
    def __init__(self, write_key: str) -> None:
        self.counts = Counts()
        self.expected_auth = b"Basic " + base64.b64encode(f"{write_key}:".encode())
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = int(self.listener.getsockname()[1])

    def serve_forever(self) -> None:
        while True:
            connection, _ = self.listener.accept()
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection: socket.socket) -> None:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = connection.makefile("rb", buffering=256 * 1024)
        try:
            while self.serve_one(connection, reader):
                pass
        except (OSError, ValueError):
            pass
        finally:
            reader.close()
            connection.close()

    def serve_one(self, connection: socket.socket, reader: Any) -> bool:
        """Answer one request; False when the connection should close."""
        line = reader.readline(65537)
        while line in (b"\r\n", b"\n"):
            line = reader.readline(65537)
        if not line:
            return False
        method, target, version = line.split(None, 2)
        headers: dict[bytes, bytes] = {}
        while True:
            header = reader.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = read_chunked(reader)
        else:
            body = reader.read(int(headers.get(b"content-length", b"0")))
        status, payload = self.route(method, target.decode("latin-1"), headers, body)
        connection.sendall(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, b"OK" if status == 200 else b"Error", len(payload), payload)
        )
        keep_alive = version.strip() == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
        return keep_alive

    def route(
        self, method: bytes, target: str, headers: dict[bytes, bytes], body: bytes
    ) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        counts = self.counts
        if method == b"POST" and path == "/v1/batch":
            reason, ids = check_batch(body, headers, self.expected_auth)
            with counts.changed:
                if reason:
                    counts.rejected += 1
                    counts.reasons[reason] = counts.reasons.get(reason, 0) + 1
                    return 400, json.dumps({"error": reason}).encode()
                now = time.monotonic()
                if counts.first_at is None:
                    counts.first_at = now
                counts.requests += 1
                counts.messages += len(ids)
                counts.body_bytes += len(body)
                counts.ids.update(ids)
                counts.times.append(now)
                counts.totals.append(counts.messages)
                counts.changed.notify_all()
            return 200, OK_BODY
        if method == b"GET" and path == "/stats":
            with counts.changed:
                return 200, json.dumps(counts.snapshot()).encode()
        if method == b"POST" and path == "/reset":
            with counts.changed:
                counts.reset()
            return 200, OK_BODY
        if method == b"GET" and path == "/wait":
            options = urllib.parse.parse_qs(query)
            count = int(options["count"][0])
            timeout = float(options.get("timeout", ["60"])[0])
            with counts.changed:
                counts.changed.wait_for(lambda: counts.messages >= count, timeout)
                snapshot = counts.snapshot()
                snapshot["reached_at"] = counts.reached_at(count)
            return 200, json.dumps(snapshot).encode()
        return 404, b'{"error":"not found"}'


def read_chunked(reader: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int(reader.readline(65537).split(b";")[0], 16)
        if size == 0:
            while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        parts.append(reader.read(size))
        reader.readline(65537)


def _exit_when_stdin_closes() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-key", default="benchmark-write-key")
    args = parser.parse_args()
    sink = Sink(args.write_key)
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    sys.stdout.write(f"{sink.port}\n")
    sys.stdout.flush()
    sink.serve_forever()


if __name__ == "__main__":
    main()
