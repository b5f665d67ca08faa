"""The fake Segment server answers like Segment does."""

from __future__ import annotations

import base64
import gzip
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from segment_logging import SegmentHandler
from segment_logging.testing import SegmentServer


def _post(
    server: SegmentServer,
    body: Any,
    *,
    key: str | None = None,
    raw: bytes | None = None,
    compress: bool = False,
    client: httpx.Client | None = None,
) -> httpx.Response:
    token = base64.b64encode(f"{key or server.write_key}:".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    data = raw if raw is not None else json.dumps(body).encode()
    if compress:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    if client is not None:  # the in-process form: any host reaches the transport
        return client.post("http://127.0.0.1/v1/batch", content=data, headers=headers)
    return httpx.post(f"{server.url}/v1/batch", content=data, headers=headers)


def _batch(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"batch": list(messages), "sentAt": "2026-01-01T00:00:00.000+00:00"}


TRACK = {"type": "track", "userId": "u", "event": "E", "messageId": "m1"}


def test_accepts_valid_batch_plain_and_gzip(server: SegmentServer) -> None:
    """A valid batch is answered 200 and recorded, gzip or not."""
    assert _post(server, _batch(TRACK)).status_code == 200
    assert _post(server, _batch(TRACK), compress=True).status_code == 200
    assert server.message_ids() == ["m1", "m1"]


REJECTED = pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_batch({"type": "track", "event": "E"}), "userId or anonymousId"),
        (_batch({"type": "track", "userId": "u"}), "event is required"),
        (_batch({"type": "group", "userId": "u"}), "groupId is required"),
        (_batch({"type": "alias", "userId": "u"}), "previousId is required"),
        (_batch({"type": "buy", "userId": "u"}), "unknown type"),
        ({"batch": "x", "sentAt": "s"}, "no batch list"),
        (_batch({**TRACK, "properties": {"x": "y" * 33_000}}), "over 32000"),
        (_batch(*[{**TRACK, "properties": {"x": "y" * 20_000}}] * 30), "over 500000"),
    ],
)


@REJECTED
def test_rejects_what_segment_rejects(server: SegmentServer, body: Any, reason: str) -> None:
    """Missing fields, unknown types and over-size bodies get a 400 naming the reason."""
    response = _post(server, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert server.messages == []


def test_rejects_bad_json_and_wrong_key(server: SegmentServer) -> None:
    """Bad JSON is a 400; a wrong write key a 401."""
    assert _post(server, None, raw=b"{nope").status_code == 400
    assert _post(server, _batch(TRACK), key="wrong").status_code == 401


def test_keeps_only_the_first_2500(server: SegmentServer) -> None:
    """Over 2,500 messages: 200, and the extra ones are dropped, as Segment does."""
    small = {"type": "track", "userId": "u", "event": "E"}
    assert _post(server, _batch(*[small] * 2600)).status_code == 200
    assert len(server.messages) == 2500
    assert server.truncated == 100


def test_injected_faults_in_order(server: SegmentServer) -> None:
    """fail_next, delay_next and drop_next apply to the next requests, then it recovers."""
    server.fail_next(1, status=429, retry_after="0")
    server.delay_next(1, seconds=0.01, status=503)
    server.drop_next(1)
    first = _post(server, _batch(TRACK))
    assert (first.status_code, first.headers["Retry-After"]) == (429, "0")
    assert _post(server, _batch(TRACK)).status_code == 503
    with pytest.raises(httpx.TransportError):
        _post(server, _batch(TRACK))
    assert _post(server, _batch(TRACK)).status_code == 200
    assert [r.status for r in server.requests] == [429, 503, 0, 200]


# -- modes ----------------------------------------------------------------------------------------


def test_rudderstack_mode_needs_basic_auth_answers_ok_and_413s() -> None:
    """As RudderStack: Basic auth is required, success is a plain OK, a body over the limit is 413."""
    with SegmentServer(mode="rudderstack", max_request_bytes=2_000) as server:
        ok = _post(server, _batch(TRACK))
        assert (ok.status_code, ok.text, ok.headers["content-type"].split(";")[0]) == (
            200,
            "OK",
            "text/plain",
        )
        assert _post(server, _batch(TRACK), key="wrong").status_code == 401
        big = _post(server, _batch(*[TRACK] * 40))
        assert big.status_code == 413
        assert server.message_ids() == ["m1"]


def test_path_prefix_mode_serves_under_the_prefix_only() -> None:
    """With a path prefix, the endpoint is {prefix}/v1/batch, and url includes the prefix."""
    with SegmentServer(path_prefix="/api/v1/segment") as server:
        assert server.url.endswith("/api/v1/segment")
        assert _post(server, _batch(TRACK)).status_code == 200
        bare = server.url.removesuffix("/api/v1/segment")
        assert httpx.post(f"{bare}/v1/batch", content=b"{}").status_code == 404


def test_oauth_mode_requires_a_bearer_token() -> None:
    """In OAuth mode the write key's Basic auth is refused on /v1/batch; an unsigned assertion
    gets no token."""
    with SegmentServer(oauth=True) as server:
        assert _post(server, _batch(TRACK)).status_code == 401
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "e30.e30.c2ln",
            "scope": "tracking_api:write",
        }
        answer = httpx.post(f"{server.oauth_url}/token", data=form)
        assert answer.status_code == 401
        assert server.oauth is not None
        assert server.oauth.tokens_issued == 0


def test_unknown_mode_is_refused() -> None:
    """A mode the server does not know is a ValueError."""
    with pytest.raises(ValueError, match="mode"):
        SegmentServer(mode="posthog")


# -- in process: the MockTransport form ---------------------------------------------------------------


@pytest.fixture
def in_process() -> Iterator[tuple[SegmentServer, httpx.Client]]:
    """A server that is never started, and a client whose transport is that server's in-process form."""
    server = SegmentServer()
    with httpx.Client(transport=server.transport()) as client:
        yield server, client


def test_transport_accepts_and_records_without_a_socket(
    in_process: tuple[SegmentServer, httpx.Client],
) -> None:
    """The in-process form answers 200 to a valid batch, plain or gzip, and records it; no port is open."""
    server, client = in_process
    assert _post(server, _batch(TRACK), client=client).json() == {"success": True}
    assert _post(server, _batch(TRACK), compress=True, client=client).status_code == 200
    assert server.message_ids() == ["m1", "m1"]
    assert server.requests[0].target == "/v1/batch"
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url


@REJECTED
def test_transport_rejects_what_segment_rejects(
    in_process: tuple[SegmentServer, httpx.Client], body: Any, reason: str
) -> None:
    """The in-process form judges with the same limits and rules as the HTTP server."""
    server, client = in_process
    response = _post(server, body, client=client)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert server.messages == []


def test_transport_refuses_a_wrong_key_and_unknown_paths(
    in_process: tuple[SegmentServer, httpx.Client],
) -> None:
    """A wrong write key is a 401 and any path but /v1/batch a 404, as over HTTP."""
    server, client = in_process
    assert _post(server, _batch(TRACK), key="wrong", client=client).status_code == 401
    assert client.post("http://127.0.0.1/v1/track", json={}).status_code == 404
    assert client.get("http://127.0.0.1/").status_code == 404


def test_transport_injects_faults_in_order(in_process: tuple[SegmentServer, httpx.Client]) -> None:
    """fail_next and drop_next apply to the in-process form too; a drop raises httpx's own error."""
    server, client = in_process
    server.fail_next(1, status=429, retry_after="0")
    server.drop_next(1)
    first = _post(server, _batch(TRACK), client=client)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "0")
    with pytest.raises(httpx.RemoteProtocolError):
        _post(server, _batch(TRACK), client=client)
    assert _post(server, _batch(TRACK), client=client).status_code == 200
    assert [r.status for r in server.requests] == [429, 0, 200]


def test_handler_delivers_through_the_transport(new_logger: Callable[[], logging.Logger]) -> None:
    """A SegmentHandler given the transport delivers to the unstarted server, retrying its faults."""
    server = SegmentServer()
    server.fail_next(1, status=503, retry_after="0")
    handler = SegmentHandler(
        server.write_key, host="http://127.0.0.1", transport=server.transport(), shutdown_timeout=2.0
    )
    log = new_logger()
    log.addHandler(handler)
    log.info("Signup", extra={"segment": {"user_id": "u1"}})
    assert handler.flush(10)
    handler.close()
    assert [event["userId"] for event in server.events("Signup")] == ["u1"]
    assert [r.status for r in server.requests] == [503, 200]
