"""OAuth 2.0 bearer tokens for Segment's tracking API, against the fake server's OAuth mode."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
from collections.abc import Iterator

import pytest

from segment_logging import AsyncHttpClient, DeliveryError, HttpClient, SegmentHandler
from segment_logging._auth import WriteKey
from segment_logging._oauth import EU_AUTH_SERVER, US_AUTH_SERVER, OAuth, default_auth_server
from segment_logging.testing import ErrorRecorder, SegmentServer

KEY = WriteKey("test-write-key")
PIECES = [b'{"type":"track","userId":"u","event":"E","messageId":"m1"}']


@pytest.fixture
def oauth_server() -> Iterator[SegmentServer]:
    with SegmentServer(oauth=True) as server:
        yield server


def _signup(index: int) -> dict[str, object]:
    return {"segment": {"user_id": f"u{index}", "event": "Signup"}}


def test_handler_fetches_one_token_and_uses_it_for_every_batch(
    oauth_server: SegmentServer, logger: logging.Logger
) -> None:
    """With the oauth_* options, the handler signs an RS256 assertion, fetches a token once, and
    sends every batch with it as a bearer token (and the write key in the body)."""
    handler = SegmentHandler(
        oauth_server.write_key, host=oauth_server.url, max_batch_size=1, **oauth_server.oauth_options()
    )
    logger.addHandler(handler)
    for index in range(3):
        logger.info("Signup", extra=_signup(index))
    assert handler.flush(10)
    handler.close()
    assert oauth_server.oauth is not None
    assert oauth_server.oauth.tokens_issued == 1
    assert [r.status for r in oauth_server.requests] == [200, 200, 200]
    assert all(r.headers["authorization"].startswith("Bearer ") for r in oauth_server.requests)
    assert all(batch["writeKey"] == "test-write-key" for batch in oauth_server.batches())
    [claims] = oauth_server.oauth.assertions
    assert (claims["iss"], claims["sub"]) == ("test-oauth-client", "test-oauth-client")


def test_rejected_token_is_cleared_and_the_request_made_once_more(oauth_server: SegmentServer) -> None:
    """A 401 for a token the server no longer accepts clears it; a new one is fetched and the
    same attempt succeeds."""
    client = HttpClient(oauth_server.url, **oauth_server.oauth_options())
    client._deliver(KEY, PIECES)
    assert oauth_server.oauth is not None
    oauth_server.oauth.revoke_all()
    assert client._deliver(KEY, PIECES).requests == 1
    client.close()
    assert oauth_server.oauth.tokens_issued == 2
    assert [r.status for r in oauth_server.requests] == [200, 401, 200]


def test_token_refused_by_the_auth_server_is_not_retried(oauth_server: SegmentServer) -> None:
    """A client the auth server refuses (wrong client id) fails at once, saying why."""
    options = {**oauth_server.oauth_options(), "oauth_client_id": "someone-else"}
    client = HttpClient(oauth_server.url, **options)
    with pytest.raises(DeliveryError, match=r"OAuth token request .* answered 401: invalid_client") as caught:
        client._deliver(KEY, PIECES)
    client.close()
    assert caught.value.attempts == 1
    assert oauth_server.requests == []


def test_async_client_uses_oauth(oauth_server: SegmentServer) -> None:
    """The async client fetches and caches the token the same way."""

    async def main() -> None:
        async with AsyncHttpClient(oauth_server.url, **oauth_server.oauth_options()) as client:
            await client._deliver(KEY, PIECES)
            await client._deliver(KEY, PIECES)

    asyncio.run(main())
    assert oauth_server.oauth is not None
    assert oauth_server.oauth.tokens_issued == 1
    assert len(oauth_server.messages) == 2


def test_key_and_token_never_show(oauth_server: SegmentServer) -> None:
    """Neither the private key nor the token appears in a repr, and the settings cannot be pickled."""
    options = oauth_server.oauth_options()
    errors = ErrorRecorder()
    handler = SegmentHandler("k", host=oauth_server.url, on_error=errors, **options)
    client = HttpClient(oauth_server.url, **options)
    client._deliver(KEY, PIECES)
    assert client.oauth is not None
    token = client.oauth.cached()
    assert token is not None
    for shown in (repr(handler), repr(client), repr(client.oauth), repr(handler._queue)):
        assert "PRIVATE KEY" not in shown
        assert token.split()[1] not in shown
    with pytest.raises(TypeError):
        pickle.dumps(client.oauth)
    client.close()
    handler.close()


@pytest.mark.parametrize(
    ("override", "option"),
    [
        (
            {"oauth_client_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"},
            "oauth_client_key",
        ),
        ({"oauth_key_id": None}, "oauth_key_id"),
        ({"oauth_client_id": ""}, "oauth_client_id"),
        ({"oauth_auth_server": "oauth.example.com"}, "oauth_auth_server"),
    ],
)
def test_invalid_oauth_options_are_refused(
    oauth_server: SegmentServer, override: dict[str, object], option: str
) -> None:
    """A bad OAuth option is a ValueError naming it, and never repeats the key's text."""
    options = {**oauth_server.oauth_options(), **override}
    with pytest.raises(ValueError, match=option) as caught:
        SegmentHandler("k", host=oauth_server.url, **options)
    assert "not a key" not in str(caught.value)


def test_default_auth_server_follows_the_region() -> None:
    """The EU API host uses Segment's EU auth server; any other host the US one."""
    assert default_auth_server("https://events.eu1.segmentapis.com") == EU_AUTH_SERVER
    assert default_auth_server("https://api.segment.io") == US_AUTH_SERVER


def test_token_is_cached_until_shortly_before_expiry(oauth_server: SegmentServer) -> None:
    """A token is reused while fresh; one about to expire is not (a new one is fetched)."""
    options = oauth_server.oauth_options()
    oauth = OAuth(
        client_id=options["oauth_client_id"],
        client_key=options["oauth_client_key"],
        key_id=options["oauth_key_id"],
        auth_server=options["oauth_auth_server"],
    )
    assert oauth.cached() is None
    oauth.take_answer(200, json.dumps({"access_token": "t1", "expires_in": 3600}).encode())
    assert oauth.cached() == "Bearer t1"
    oauth.take_answer(200, json.dumps({"access_token": "t2", "expires_in": 0}).encode())
    assert oauth.cached() is None
    oauth.clear()
    assert oauth.cached() is None
