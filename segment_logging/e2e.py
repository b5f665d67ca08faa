"""The ``e2e-cli`` that Segment's cross-SDK conformance suite drives.

Run as ``python -m segment_logging.e2e --input '<json>'``.

It takes the input every SDK's CLI takes::

    {"writeKey": "...", "apiHost": "https://...",
     "sequences": [{"delayMs": 0, "events": [{"type": "track", "event": "Test", "userId": "u1"}]}],
     "config": {"flushAt": 20, "flushInterval": 10000, "maxRetries": 3, "timeout": 15}}

sends the events through a real :class:`~segment_logging.SegmentHandler` (as an
application would, by logging them), and prints one line of JSON:
``{"success": true, "sentBatches": N}`` or
``{"success": false, "error": "...", "sentBatches": N}``. The exit status is 0 on
success, 1 otherwise. ``e2e-config.json`` at the project's root names the suites
this passes.

``flushInterval`` is in milliseconds and ``timeout`` in seconds, as in the other
SDKs' CLIs; ``maxRetries`` caps the retries of a batch (within the default time budgets).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from ._handler import SegmentHandler
from .testing import ErrorRecorder

__all__ = ["main", "run"]

_FIELDS = {
    "type": "type",
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "messageId": "message_id",
    "timestamp": "timestamp",
    "context": "context",
    "integrations": "integrations",
    "event": "event",
    "name": "name",
    "category": "category",
    "properties": "properties",
    "traits": "traits",
    "groupId": "group_id",
    "previousId": "previous_id",
}
"""Segment's camelCase event fields, and the handler's snake_case names for them."""
_FLUSH_GRACE = 5.0
"""Seconds the final flush may take beyond what retries can take."""


class _CountingTransport(httpx.HTTPTransport):
    """An ordinary transport that counts the batches the endpoint accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if 200 <= response.status_code < 300 and not request.url.path.endswith("/token"):
            with self._lock:
                self.accepted += 1
        return response


def _metadata(event: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
        raise ValueError(f"each event needs a 'type', got {event!r}")
    return {_FIELDS[key]: value for key, value in event.items() if key in _FIELDS and value is not None}


def _options(config: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if "flushAt" in config:
        options["max_batch_size"] = min(max(int(config["flushAt"]), 1), 2500)
    if "flushInterval" in config:
        options["flush_interval"] = max(float(config["flushInterval"]) / 1000, 0.001)
    if "maxRetries" in config:
        options["max_retries"] = max(int(config["maxRetries"]), 0)
    if "timeout" in config:
        options["timeout"] = max(float(config["timeout"]), 0.001)
    return options


def run(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Send the events of an e2e ``spec`` through a SegmentHandler; the result to print."""
    write_key = spec.get("writeKey")
    if not isinstance(write_key, str) or not write_key:
        raise ValueError("writeKey is required")
    sequences = spec.get("sequences")
    if not isinstance(sequences, list):
        raise ValueError("sequences must be a list")
    config = spec.get("config") or {}
    options = _options(config)
    transport = _CountingTransport()
    errors = ErrorRecorder()
    handler = SegmentHandler(
        write_key,
        host=spec.get("apiHost") or None,
        transport=transport,
        on_error=errors,
        shutdown_timeout=options.get("timeout", 10.0) * 2 + _FLUSH_GRACE,
        **options,
    )
    log = logging.getLogger("e2e-cli")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        for sequence in sequences:
            delay = float(sequence.get("delayMs", 0)) / 1000
            if delay > 0:
                time.sleep(delay)
            for event in sequence.get("events") or []:
                metadata = _metadata(event)
                log.info(
                    str(metadata.get("event") or metadata.get("name") or metadata["type"]),
                    extra={"segment": metadata},
                )
        handler.flush()
    finally:
        log.removeHandler(handler)
        handler.close()
    stats = handler.stats()
    result: dict[str, Any] = {"success": not errors.calls and stats["dropped"] == 0}
    if errors.calls:
        result["error"] = str(errors.calls[-1][0])
    elif stats["dropped"]:
        result["error"] = f"{stats['dropped']} events dropped"
    result["sentBatches"] = transport.accepted
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the e2e-cli with ``argv`` (default: the command line); print the result as JSON.

    Returns:
        0 when every event was delivered, 1 otherwise (the printed JSON says why).
    """
    parser = argparse.ArgumentParser(prog="python -m segment_logging.e2e", description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="the test's input, as JSON")
    args = parser.parse_args(argv)
    try:
        spec = json.loads(args.input)
        if not isinstance(spec, dict):
            raise ValueError("the input must be a JSON object")
        result = run(spec)
    except Exception as exc:  # noqa: BLE001 - the CLI answers in JSON whatever happens
        result = {"success": False, "error": f"{type(exc).__name__}: {exc}", "sentBatches": 0}
    print(json.dumps(result))
    return 0 if result["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
