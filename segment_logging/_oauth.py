"""OAuth 2.0 for Segment's tracking API: an RS256-signed client assertion exchanged for a bearer token.

The flow of Segment's own Python library (``oauth_client_id``, ``oauth_client_key``,
``oauth_key_id``, ``oauth_auth_server``, ``oauth_scope``): a JWT signed with the
client's RSA private key is posted to ``{auth_server}/token``; the answer's
``access_token`` is sent as ``Authorization: Bearer ...`` until shortly before
it expires. A 401 or 403 from the API clears it, and the request is made once
more with a fresh one.

What is here is pure (building the assertion and the form, reading the
answer) plus a thread-safe cache; the HTTP calls are the clients' (``_transport``),
so they share its deadline and connection pool. Signing needs ``cryptography``
(the ``oauth`` extra), imported only when OAuth is configured.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import uuid
from typing import Any

from ._clock import monotonic

US_AUTH_SERVER = "https://oauth2.segment.io"
EU_AUTH_SERVER = "https://oauth2.eu1.segmentapis.com"
EU_API_HOST = "https://events.eu1.segmentapis.com"
DEFAULT_SCOPE = "tracking_api:write"
_ASSERTION_LIFETIME = 60  # seconds; Segment's library signs for one minute (iat 5 s in the past)
_REFRESH_MARGIN = 60.0
"""Seconds before a token's expiry at which a new one is fetched (at most half its lifetime)."""
_MAX_TOKEN_ANSWER = 16_384


class TokenRefused(Exception):
    """The auth server refused the client (a status that retrying cannot change)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def default_auth_server(api_host: str) -> str:
    """Segment's auth server for an API host: the EU one for the EU host, else the US one."""
    return EU_AUTH_SERVER if api_host.rstrip("/") == EU_API_HOST else US_AUTH_SERVER


class OAuth:
    """The OAuth options of a client, and its cached token. Never shows the key or the token.

    Raises:
        ValueError: an option is missing or invalid (the message names it), or
            ``cryptography`` is not installed.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_key: str,
        key_id: str,
        auth_server: str,
        scope: str = DEFAULT_SCOPE,
    ) -> None:
        for name, value in (
            ("oauth_client_id", client_id),
            ("oauth_client_key", client_key),
            ("oauth_key_id", key_id),
            ("oauth_scope", scope),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty str when OAuth is used")
        try:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa
        except ImportError:
            raise ValueError(
                "OAuth needs the cryptography package: pip install 'segment-logging[oauth]'"
            ) from None
        try:
            key = serialization.load_pem_private_key(client_key.encode(), password=None)
        except (ValueError, TypeError):
            # The key's text is never repeated: it is the secret.
            raise ValueError("oauth_client_key must be an unencrypted PEM RSA private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("oauth_client_key must be an RSA private key (RS256)")
        self._key = key
        self.client_id = client_id
        self.key_id = key_id
        self.scope = scope
        self.auth_server = auth_server.rstrip("/")
        self.token_url = f"{self.auth_server}/token"
        self._lock = threading.Lock()
        self._token: str | None = None
        self._fresh_until = 0.0
        self.fetched = 0
        """How many tokens were fetched (for tests and stats)."""

    # -- the pure parts ------------------------------------------------------------------

    def assertion(self, now: float | None = None) -> str:
        """A signed RS256 JWT client assertion, valid for a minute."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        issued = int(time.time() if now is None else now)
        header = {"alg": "RS256", "typ": "JWT", "kid": self.key_id}
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.auth_server,
            "iat": issued - 5,
            "exp": issued + _ASSERTION_LIFETIME - 5,
            "jti": str(uuid.uuid4()),
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def token_request(self) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a token request."""
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": self.assertion(),
            "scope": self.scope,
        }
        body = urllib.parse.urlencode(form).encode()
        return body, {"Content-Type": "application/x-www-form-urlencoded"}

    def take_answer(self, status: int, data: bytes) -> str:
        """Read the auth server's answer, cache the token, and return the Authorization value.

        Raises:
            TokenRefused: a 4xx other than 408 and 429 (the client is misconfigured).
            RuntimeError: any other failure (worth retrying).
        """
        text = data[:_MAX_TOKEN_ANSWER].decode("utf-8", errors="replace")
        if status != 200:
            detail = f"OAuth token request to {self.token_url} answered {status}: {_error_of(text)}"
            if 400 <= status < 500 and status not in (408, 429):
                raise TokenRefused(status, detail)
            raise RuntimeError(detail)
        try:
            answer: Any = json.loads(text)
            token = answer["access_token"]
            lifetime = float(answer.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise RuntimeError(f"OAuth token answer from {self.token_url} has no access_token") from None
        if not isinstance(token, str) or not token:
            raise RuntimeError(f"OAuth token answer from {self.token_url} has no access_token")
        margin = min(_REFRESH_MARGIN, max(lifetime, 0.0) / 2)
        with self._lock:
            self._token = token
            self._fresh_until = monotonic() + lifetime - margin
            self.fetched += 1
        return f"Bearer {token}"

    # -- the cache -------------------------------------------------------------------------

    def cached(self) -> str | None:
        """The Authorization value while the cached token is fresh, else None (fetch one)."""
        with self._lock:
            if self._token is not None and monotonic() < self._fresh_until:
                return f"Bearer {self._token}"
            return None

    def clear(self) -> None:
        """Forget the token (the API refused it): the next request fetches a new one."""
        with self._lock:
            self._token = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never appear in a report: the current token."""
        token = self._token
        return (token,) if token else ()

    def __repr__(self) -> str:
        return (
            f"OAuth(client_id={self.client_id!r}, key_id={self.key_id!r}, auth_server={self.auth_server!r})"
        )

    def __reduce__(self) -> Any:
        raise TypeError("OAuth settings hold a private key and cannot be pickled")


def _error_of(text: str) -> str:
    """The error and description of an OAuth error answer, or the start of its text."""
    try:
        answer = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(answer, dict):
        return " ".join(str(answer.get(k, "")) for k in ("error", "error_description")).strip()[:200]
    return text[:200]
