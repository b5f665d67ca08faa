"""Security: the write key stays secret, TLS stays verified, proxies follow httpx.

TLS tests serve the fake Segment over HTTPS with a throw-away self-signed
certificate made by the ``openssl`` command (skipped where it is missing).
"""

from __future__ import annotations

import base64
import logging
import shutil
import ssl
import subprocess
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from segment_logging import DeliveryError, HttpClient, InsecureHostWarning, SegmentHandler
from segment_logging.testing import ErrorRecorder, SegmentServer

SECRET = "sk_live_Zq8v3NfT0pLw9sXr"
SECRET_FORMS = (
    SECRET,
    base64.b64encode(f"{SECRET}:".encode()).decode(),  # as in the Authorization header
    base64.b64encode(SECRET.encode()).decode(),
)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _event(n: int = 0) -> dict[str, Any]:
    return {"segment": {"user_id": f"u{n}", "properties": {"n": n}}}


def _everything_about(exc: BaseException) -> str:
    """Every text an exception can show: str, repr, args, traceback, causes."""
    parts = [str(exc), repr(exc), repr(exc.args), repr(vars(exc))]
    parts += traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "\n".join(parts)


@pytest.fixture
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without proxy settings of any case, for the test to set its own."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


# -- the write key -------------------------------------------------------------------------------


def test_write_key_is_in_no_repr_or_str(server: SegmentServer) -> None:
    """Neither the handler nor its queue, client or key object shows the key in repr() or str()."""
    handler = SegmentHandler(SECRET, host=server.url)
    try:
        objects = [handler, handler._queue, handler._queue._http, handler._queue._key]
        shown = "\n".join(repr(o) + str(o) for o in objects)
    finally:
        handler.close()
    assert not [form for form in SECRET_FORMS if form in shown], shown


def test_write_key_is_in_no_output_of_a_failing_run(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A run where every kind of failure happens (401, 500s past the budget, dropped connections,
    close() running out of time) shows the key in no log record (httpx's included), warning,
    stderr/stdout line, on_error exception or on_error payload."""
    errors = ErrorRecorder()
    log = logging.getLogger("test.security.failing")
    options: dict[str, Any] = {"max_retry_time": 0.3, "flush_interval": 0.01, "shutdown_timeout": 0.3}
    with SegmentServer(SECRET) as server, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.DEBUG):
            wrong_key = SegmentHandler("not-the-key", host=server.url, on_error=errors, **options)
            failing = SegmentHandler(SECRET, host=server.url, **options)  # reports on the logger
            log.addHandler(wrong_key)
            log.warning("Signup", extra=_event())
            assert wrong_key.flush(5)  # answered 401
            log.removeHandler(wrong_key)
            log.addHandler(failing)
            server.drop_next(2)
            server.fail_for(60, statuses=(500, 503))
            for n in range(5):
                log.warning("Signup", extra=_event(n))
            assert failing.flush(5)  # retry budget spent
            server.pause()
            log.warning("AtClose", extra=_event(99))
            failing.close()  # the hanging request is cut short at shutdown_timeout
            wrong_key.close()
            log.removeHandler(failing)
            server.resume()
    out, err = capfd.readouterr()
    shown = [caplog.text, out, err]
    shown += [str(w.message) + str(w.filename) for w in caught]
    shown += [_everything_about(exc) + repr(messages) for exc, messages in errors.calls]
    text = "\n".join(shown)
    assert [exc.status for exc, _ in errors.calls if isinstance(exc, DeliveryError)] == [401]
    assert "retry budget spent" in text
    assert "(ReadTimeout" in text  # the request close() cut short was reported too
    assert not [form for form in SECRET_FORMS if form in text]


def test_write_key_cannot_be_pickled(server: SegmentServer) -> None:
    """The key object refuses pickling, so it cannot leak into a pickled payload or cache."""
    import pickle

    handler = SegmentHandler(SECRET, host=server.url)
    try:
        with pytest.raises(TypeError):
            pickle.dumps(handler._queue._key)
    finally:
        handler.close()


# -- TLS -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for 127.0.0.1, valid for a day."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[SegmentServer]:
    """The fake Segment over HTTPS with a self-signed certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with SegmentServer(ssl_context=context) as server:
        yield server


def test_tls_verification_is_on_by_default(tls_server: SegmentServer, logger: logging.Logger) -> None:
    """An https host whose certificate is not trusted gets nothing: the batch fails, reported."""
    assert tls_server.url.startswith("https://127.0.0.1:")
    errors = ErrorRecorder()
    handler = SegmentHandler(
        tls_server.write_key, host=tls_server.url, max_retry_time=0.3, flush_interval=0.01, on_error=errors
    )
    try:
        logger.addHandler(handler)
        logger.info("Signup", extra=_event())
        assert handler.flush(5)
    finally:
        handler.close()
    assert tls_server.messages == []
    assert handler.stats()["failed"] == 1
    ((exc, _),) = errors.calls
    assert "CERTIFICATE_VERIFY_FAILED" in str(exc)


def test_custom_transport_is_the_way_to_trust_another_certificate(
    tls_server: SegmentServer, certificate: tuple[Path, Path], logger: logging.Logger
) -> None:
    """A transport built with its own SSL context (here trusting the test certificate) is used
    as given: that is how to change verification."""
    context = ssl.create_default_context(cafile=str(certificate[0]))
    handler = SegmentHandler(
        tls_server.write_key, host=tls_server.url, transport=httpx.HTTPTransport(verify=context)
    )
    try:
        logger.addHandler(handler)
        logger.info("Signup", extra=_event())
        assert handler.flush(5)
    finally:
        handler.close()
    assert len(tls_server.events("Signup")) == 1


def test_ssl_cert_file_environment_is_honoured(
    tls_server: SegmentServer,
    certificate: tuple[Path, Path],
    logger: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SSL_CERT_FILE (httpx's convention) changes which certificates are trusted, still verifying."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    handler = SegmentHandler(tls_server.write_key, host=tls_server.url)
    try:
        logger.addHandler(handler)
        logger.info("Signup", extra=_event())
        assert handler.flush(5)
    finally:
        handler.close()
    assert len(tls_server.events("Signup")) == 1


def test_there_is_no_option_to_turn_verification_off() -> None:
    """No handler or client option disables TLS verification (a transport is the only way)."""
    with pytest.raises(TypeError):
        SegmentHandler(SECRET, verify=False)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        HttpClient(verify=False)  # type: ignore[call-arg]


# -- plain http ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["http://api.segment.io", "http://10.1.2.3:8080", "http://[2001:db8::1]", "http://example.com/"]
)
def test_plain_http_to_another_machine_warns(host: str) -> None:
    """A non-loopback http:// host gets InsecureHostWarning saying the key would travel
    unencrypted, without showing the key."""
    with pytest.warns(InsecureHostWarning, match="unencrypted") as caught:
        handler = SegmentHandler(SECRET, host=host)
    handler.close()
    assert len(caught) == 1
    assert SECRET not in str(caught[0].message)


@pytest.mark.parametrize(
    "host",
    [
        "http://127.0.0.1:9",
        "http://127.8.9.10",
        "http://localhost:9",
        "http://[::1]:9",
        "https://api.segment.io",
    ],
)
def test_loopback_or_https_does_not_warn(host: str) -> None:
    """Loopback http (tests, a local relay) and any https host get no InsecureHostWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        handler = SegmentHandler(SECRET, host=host)
    handler.close()
    assert not [w for w in caught if issubclass(w.category, InsecureHostWarning)]


def test_insecure_host_warning_points_at_the_caller() -> None:
    """The warning names the line that created the handler, so it can be found and filtered."""
    with pytest.warns(InsecureHostWarning) as caught:
        handler = SegmentHandler(SECRET, host="http://api.segment.io")
    handler.close()
    assert caught[0].filename == __file__


# -- proxies -------------------------------------------------------------------------------------------


def test_http_proxy_environment_is_followed(
    server: SegmentServer, logger: logging.Logger, no_proxy_environment: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY sends the requests through the proxy (the fake server plays it), as httpx does."""
    no_proxy_environment.setenv("HTTP_PROXY", server.url)
    with pytest.warns(InsecureHostWarning):
        handler = SegmentHandler(server.write_key, host="http://segment.invalid")
    try:
        logger.addHandler(handler)
        logger.info("Signup", extra=_event())
        assert handler.flush(5)
    finally:
        handler.close()
    assert [r.target for r in server.requests] == ["http://segment.invalid/v1/batch"]
    assert len(server.events("Signup")) == 1


def test_no_proxy_environment_bypasses_the_proxy(
    server: SegmentServer, logger: logging.Logger, no_proxy_environment: pytest.MonkeyPatch
) -> None:
    """NO_PROXY naming Segment's host bypasses HTTP_PROXY (here a proxy that is not there)."""
    no_proxy_environment.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens on port 9
    no_proxy_environment.setenv("NO_PROXY", "127.0.0.1")
    handler = SegmentHandler(server.write_key, host=server.url, max_retry_time=0.3)
    try:
        logger.addHandler(handler)
        logger.info("Signup", extra=_event())
        assert handler.flush(5)
    finally:
        handler.close()
    assert [r.target for r in server.requests] == ["/v1/batch"]


def test_custom_transport_ignores_proxy_environment(
    server: SegmentServer, logger: logging.Logger, no_proxy_environment: pytest.MonkeyPatch
) -> None:
    """With a transport of one's own, proxy environment variables no longer apply (httpx's rule)."""
    no_proxy_environment.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    handler = SegmentHandler(server.write_key, host=server.url, transport=httpx.HTTPTransport())
    try:
        logger.addHandler(handler)
        logger.info("Signup", extra=_event())
        assert handler.flush(5)
    finally:
        handler.close()
    assert len(server.events("Signup")) == 1
