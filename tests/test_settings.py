"""One set of options: the handler, the structlog processor and the public clients read the same Settings."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from segment_logging import AsyncHttpClient, Batcher, HttpClient, SegmentHandler
from segment_logging._options import (
    CLIENT_OPTIONS,
    AsyncHttpClientOptions,
    HttpClientOptions,
    Options,
    Settings,
)


def test_every_option_has_one_setting() -> None:
    """The keyword options the front ends and clients accept are exactly the Settings fields."""
    fields = {field.name for field in dataclasses.fields(Settings)}
    assert set(Options.__annotations__) == fields
    assert set(HttpClientOptions.__annotations__) == CLIENT_OPTIONS
    assert set(AsyncHttpClientOptions.__annotations__) == CLIENT_OPTIONS
    assert fields > CLIENT_OPTIONS


def test_settings_are_frozen() -> None:
    """Settings cannot change after they were validated."""
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"timeout": -1}, "timeout"),
        ({"max_retry_time": "soon"}, "max_retry_time"),
        ({"gzip": "maybe"}, "gzip"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_rate_limit_time": float("inf")}, "max_rate_limit_time"),
    ],
)
@pytest.mark.parametrize("client", [HttpClient, AsyncHttpClient])
def test_public_clients_validate_like_the_handler(
    client: type[HttpClient] | type[AsyncHttpClient], options: dict[str, Any], named: str
) -> None:
    """HttpClient and AsyncHttpClient refuse what SegmentHandler refuses, naming the option."""
    with pytest.raises(ValueError, match=named):
        client("http://127.0.0.1:9", **options)
    with pytest.raises(ValueError, match=named):
        SegmentHandler("k", host="http://127.0.0.1:9", **options)


def test_clients_refuse_a_queue_option_by_name() -> None:
    """A client takes only what a client uses: a queue option is refused with its name."""
    with pytest.raises(TypeError, match="max_batch_size"):
        HttpClient("http://127.0.0.1:9", max_batch_size=5)  # type: ignore[call-arg]


def test_text_from_config_files_is_converted() -> None:
    """Numbers and bools given as text (dictConfig from YAML, fileConfig from INI) are converted."""
    settings = Settings(max_batch_size="10", flush_interval="0.25", gzip="off")  # type: ignore[arg-type]
    assert (settings.max_batch_size, settings.flush_interval, settings.gzip) == (10, 0.25, False)


def test_repr_shows_no_secret() -> None:
    """A settings repr never shows the OAuth private key, nor a password in the host URL."""
    shown = repr(Settings(host="https://user:hunter2@127.0.0.1:9", oauth_client_key="-----BEGIN PRIVATE KEY"))
    assert "hunter2" not in shown
    assert "PRIVATE" not in shown


def test_clients_and_batchers_share_the_defaults() -> None:
    """A default is written once: clients and the Batcher start from the same Settings."""
    client = HttpClient("http://127.0.0.1:9")
    try:
        assert client.timeout == Settings.timeout
        assert client.policy.max_retry_time == Settings.max_retry_time
        assert client.gzip is Settings.gzip
    finally:
        client.close()
    assert Batcher().max_batch_bytes == Settings.max_batch_bytes


def test_transport_kind_is_checked_per_client() -> None:
    """The sync client takes a sync transport and the async one an async transport."""
    with pytest.raises(ValueError, match="transport"):
        HttpClient("http://127.0.0.1:9", transport=httpx.AsyncHTTPTransport())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="transport"):
        AsyncHttpClient("http://127.0.0.1:9", transport=httpx.HTTPTransport())  # type: ignore[arg-type]
