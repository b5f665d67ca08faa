"""One exchange with the endpoint: the request's body and headers, and what its answer means.

What an answer's body may cost is bounded here: at most :data:`MAX_ANSWER_BYTES`
are read (and inflated), so an endless or compressed answer costs nothing.
"""

from __future__ import annotations

import json
import platform
import time
import urllib.parse
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import httpx

from ._auth import redact
from ._batch import build_body
from ._clock import monotonic
from ._endpoint import redirect_problem, shown_url
from ._messages import format_timestamp
from ._oauth import TokenRefused
from ._version import __version__

USER_AGENT = f"segment-logging/{__version__} (python {platform.python_version()}; httpx {httpx.__version__})"
_GZIP_LEVEL = 1  # JSON compresses well even at level 1; higher levels cost CPU the worker needs.
MAX_ANSWER_BYTES = 4_096
"""Bytes of an error answer read at most; the rest is never read (an endless body costs nothing)."""
_SHOWN_ANSWER = 200
"""Characters of an error answer quoted in a report."""
MAX_REDIRECTS = 3
_REDIRECTS = frozenset((301, 302, 307, 308))


@dataclass(frozen=True)
class Outcome:
    """What one request got back: a status, or the network error that stopped it."""

    status: int | None
    retry_after: str | None = None
    detail: str = ""
    location: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        if self.status is None:
            return f"no answer from Segment ({self.detail})"
        return f"Segment answered {self.status}" + (f": {self.detail}" if self.detail else "")


def build_request(
    pieces: Sequence[bytes],
    context: bytes,
    *,
    gzip: bool,
    retry_count: int,
    authorization: str,
    write_key_in_body: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    body = build_body(pieces, format_timestamp(time.time()), context)
    if write_key_in_body is not None:
        # With OAuth the bearer token authenticates; the source is named in the body,
        # as Segment's own library does.
        body = body[:-1] + b',"writeKey":' + json.dumps(write_key_in_body).encode() + b"}"
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    if retry_count:
        headers["X-Retry-Count"] = str(retry_count)
    if gzip:
        compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip framing
        body = compressor.compress(body) + compressor.flush()
        headers["Content-Encoding"] = "gzip"
    return body, headers


def outcome_of_error(exc: Exception, secrets: Sequence[str]) -> Outcome:
    """The outcome of an attempt that raised: retryable, whatever the exception (a broken
    codec in a forked child, a custom transport's bug), and named by its type; a refusal
    by the OAuth server keeps its status (and is not retried)."""
    if isinstance(exc, TokenRefused):
        return Outcome(exc.status, detail=redact(str(exc), secrets)[: _SHOWN_ANSWER * 2])
    kind = type(exc).__name__ if isinstance(exc, httpx.HTTPError) else f"unexpected {type(exc).__name__}"
    return Outcome(None, detail=redact(f"{kind}: {exc}", secrets)[: _SHOWN_ANSWER * 2])


def outcome_of_answer(response: httpx.Response, data: bytes, secrets: Sequence[str]) -> Outcome:
    detail = ""
    if not response.is_success:
        text = data.decode(response.encoding or "utf-8", errors="replace")
        detail = redact(text, secrets)[:_SHOWN_ANSWER]
    return Outcome(
        response.status_code,
        response.headers.get("Retry-After"),
        detail,
        response.headers.get("Location") if response.status_code in _REDIRECTS else None,
    )


class _Body:
    """Up to MAX_ANSWER_BYTES of an answer's body, decompressed within that bound.

    Raw bytes are read (``iter_raw``) and a gzip or deflate body is inflated here
    with a cap, so a small compressed answer cannot expand into megabytes.
    """

    def __init__(self, response: httpx.Response) -> None:
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        # wbits 47: a gzip or zlib header, whichever comes.
        self._inflate = zlib.decompressobj(47) if encoding in ("gzip", "deflate", "x-gzip") else None
        self.data = b""

    def add(self, chunk: bytes) -> bool:
        """Take a raw chunk; whether enough has been read."""
        room = MAX_ANSWER_BYTES - len(self.data)
        if self._inflate is not None:
            try:
                chunk = self._inflate.decompress(chunk, room)
            except zlib.error:
                self._inflate = None  # not what it said it was: quote it as it came
        self.data += chunk[:room]
        return len(self.data) >= MAX_ANSWER_BYTES


def read_capped(response: httpx.Response, until: float) -> bytes:
    """Up to MAX_ANSWER_BYTES of an answer's body, read before ``until``."""
    body = _Body(response)
    try:
        for chunk in response.iter_raw():
            if body.add(chunk) or monotonic() >= until:
                break
    except httpx.HTTPError:
        pass  # the status is what matters; a body cut short is still worth quoting
    return body.data


async def aread_capped(response: httpx.Response) -> bytes:
    """The async :func:`_capped` (the caller's ``wait_for`` bounds the time)."""
    body = _Body(response)
    try:
        async for chunk in response.aiter_raw():
            if body.add(chunk):
                break
    except httpx.HTTPError:
        pass
    return body.data


def follow_redirect(url: str, outcome: Outcome, hops: int) -> tuple[str | None, Outcome]:
    """The URL to send to again after a redirect answer, or None and the outcome to report."""
    if outcome.status not in _REDIRECTS:
        return None, outcome
    if not outcome.location:
        return None, replace(outcome, detail="a redirect without a Location")
    target = urllib.parse.urljoin(url, outcome.location)
    problem = redirect_problem(url, target)
    if not problem and hops >= MAX_REDIRECTS:
        problem = f"more than {MAX_REDIRECTS} redirects"
    if problem:
        return None, replace(outcome, detail=f"redirect to {shown_url(target)} not followed: {problem}")
    return target, outcome
