"""Where requests go: the host and path options, and where a redirect may take the write key.

The write key must never travel in the clear to another machine, nor follow a
redirect to another host; the rules for both are here.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

import httpx

from ._compat import warn_from_caller
from ._options import Settings

DEFAULT_HOST = "https://api.segment.io"


class InsecureHostWarning(UserWarning):
    """The write key would travel unencrypted to a host that is not this machine."""


def check_path(path: str) -> str:
    """Validate the ``path`` option (what follows ``host``, ``/v1/batch`` by default).

    Raises:
        ValueError: not a path starting with ``/``, or one with a query, a fragment or spaces.
    """
    if not isinstance(path, str):
        raise ValueError(f"path must be a str, not {type(path).__name__}")
    if not path.startswith("/") or not path.isprintable() or any(c in path for c in " ?#"):
        raise ValueError(f"path must start with / and have no query, fragment or spaces, got {path!r}")
    return path


def check_host(host: str, path: str = Settings.path) -> str:
    """Validate ``host`` and return it without a trailing slash.

    ``host`` may carry a path prefix (``https://collect.example.com/api/v1/segment``),
    for Segment-compatible endpoints served under one; ``path`` is added to it.

    Raises:
        ValueError: not an absolute http(s) URL with a valid port, or one that
            carries credentials, a query or a fragment, or one that already ends
            with ``path``. The message never repeats credentials.
    """
    if not isinstance(host, str):
        raise ValueError(f"host must be a str URL, not {type(host).__name__}")
    if not host.isprintable() or host != host.strip() or " " in host:
        raise ValueError(f"host must be a URL without spaces or control characters, got {shown_url(host)!r}")
    try:
        parsed = urllib.parse.urlsplit(host)
    except ValueError as exc:  # an unclosed IPv6 bracket, say
        raise ValueError(f"host is not a valid URL ({exc}), got {shown_url(host)!r}") from None
    if parsed.username is not None or parsed.password is not None or "@" in parsed.netloc:
        raise ValueError(
            f"host must not carry credentials (user:password@), got {shown_url(host)!r}: the write key "
            "authenticates; put a proxy's credentials in HTTPS_PROXY or in a transport"
        )
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"host must be an http:// or https:// URL, got {host!r}")
    try:
        parsed.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError(
            f"host has an invalid port (a number from 1 to 65535 is needed), got {host!r}"
        ) from None
    if parsed.port == 0 or parsed.netloc.endswith(":"):
        raise ValueError(f"host has an invalid port (a number from 1 to 65535 is needed), got {host!r}")
    try:
        httpx.URL(host)
    except httpx.InvalidURL as exc:
        raise ValueError(f"host is not a valid URL ({exc}), got {host!r}") from None
    if parsed.query or parsed.fragment or "?" in host or "#" in host:
        raise ValueError(f"host must be a URL without a query or fragment, got {host!r}")
    if parsed.path.rstrip("/").endswith(path.rstrip("/")):
        raise ValueError(
            f"host must be the API's base URL (like https://api.segment.io): {path} is added to it, "
            f"got {host!r}"
        )
    if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        warn_from_caller(
            f"host {host!r} uses plain http: the Segment write key would travel unencrypted",
            InsecureHostWarning,
        )
    return host.rstrip("/")


def shown_url(url: str) -> str:
    """``url`` safe to show: any user:password@ part masked, a query and fragment left out."""
    try:
        parsed = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return "<an invalid URL>"
    netloc = parsed.netloc.rpartition("@")[2]
    if "@" in parsed.netloc:
        netloc = "***@" + netloc
    return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, "", ""))


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def redirect_problem(source: str, target: str) -> str:
    """Why a redirect from ``source`` to ``target`` is not followed, or "" when it may be."""
    try:
        old, new = urllib.parse.urlsplit(source), urllib.parse.urlsplit(target)
        new_port = new.port
    except ValueError:
        return "the Location is not a valid URL"
    if new.scheme not in ("http", "https") or not new.hostname:
        return "the Location is not an http(s) URL"
    if "@" in new.netloc:
        return "the Location carries credentials"
    if old.scheme == "https" and new.scheme == "http":
        return "it would downgrade https to plain http"
    defaults = {"http": 80, "https": 443}
    same_origin = (
        new.scheme == old.scheme
        and new.hostname == old.hostname
        and (new_port or defaults[new.scheme]) == (old.port or defaults[old.scheme])
    )
    upgrade = old.scheme == "http" and new.scheme == "https" and new.hostname == old.hostname
    if not (same_origin or upgrade):
        return "the write key is never sent to another host; set host to the new address if you trust it"
    return ""
