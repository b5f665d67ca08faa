"""One deadline for a whole request, not one timeout per read.

httpx's timeouts apply to each socket operation: a server that trickles its
headers or an endless body one byte a second never trips them, and holds the
worker forever. Here every socket operation of the sending thread gets what is
left of one deadline (:func:`bounded`), through a wrapper around httpcore's
network backend installed in the transports a client owns (:func:`bound_transport`).

httpx offers no public way to pass a network backend to ``HTTPTransport``; the
backend lives in the connection pool's ``_network_backend`` attribute (httpcore
0.17 to 1.x). Where it is missing, requests keep httpx's per-read timeouts and
the caller's own checks between reads (see ``_transport``).
"""

from __future__ import annotations

import contextlib
import threading
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpcore
import httpx

from ._clock import monotonic

_WRITE_SLICE = 16_384
"""Bytes written per socket call, so a server that reads slowly meets the deadline between calls."""


_MEANWHILE_SLICE = 0.05
"""Seconds a read waits at a time while the sending thread has other work (see :func:`meanwhile`)."""


class _State(threading.local):
    until: float | None = None
    meanwhile: Callable[[], object] | None = None
    work_due = 0.0  # when the meanwhile work runs next, also while reads keep succeeding


_state = _State()


@contextlib.contextmanager
def meanwhile(work: Callable[[], object]) -> Iterator[None]:
    """While this thread waits for an answer, call ``work`` every :data:`_MEANWHILE_SLICE` seconds.

    The worker encodes what the application logs while a request is in flight, so
    a server that is slow to answer cannot make unencoded events pile up beyond
    what ``max_queue_bytes`` bounds.
    """
    previous, _state.meanwhile = _state.meanwhile, work
    _state.work_due = monotonic() + _MEANWHILE_SLICE
    try:
        yield
    finally:
        _state.meanwhile = previous


@contextlib.contextmanager
def bounded(until: float) -> Iterator[None]:
    """Make every socket operation of this thread end by the ``monotonic()`` instant ``until``."""
    previous, _state.until = _state.until, until
    try:
        yield
    finally:
        _state.until = previous


def _run(work: Callable[[], object]) -> None:
    _state.work_due = monotonic() + _MEANWHILE_SLICE
    with contextlib.suppress(Exception):  # the other work must not fail the request
        work()


def tighten(until: float) -> None:
    """Bring forward to ``until`` the deadline of this thread's request in flight (from the work
    :func:`meanwhile` runs: an exit began, or the process was told to stop)."""
    if _state.until is not None and until < _state.until:
        _state.until = until


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    until = _state.until
    if until is None:
        return timeout
    left = until - monotonic()
    if left <= 0:
        raise error("the request's deadline passed (timeout covers the whole request)")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        work = _state.meanwhile
        if work is not None and monotonic() >= _state.work_due:
            _run(work)  # an answer trickled in small reads: the work (and its deadline) still runs
        left = _left(timeout, httpcore.ReadTimeout)
        if work is None:
            return self._inner.read(max_bytes, left)
        end = None if left is None else monotonic() + left
        while True:
            if end is not None and _state.until is not None:
                end = min(end, _state.until)  # the work may have brought the deadline forward
            step = _MEANWHILE_SLICE if end is None else min(end - monotonic(), _MEANWHILE_SLICE)
            if step <= 0:
                raise httpcore.ReadTimeout("the request's deadline passed (timeout covers the whole request)")
            try:
                # A socket read that times out consumes nothing (with TLS, OpenSSL keeps any
                # partial record): reading again after the other work is safe.
                return self._inner.read(max_bytes, step)
            except httpcore.ReadTimeout:
                if end is not None and monotonic() >= end:
                    raise
            _run(work)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        work = _state.meanwhile
        for start in range(0, len(buffer), _WRITE_SLICE):
            if work is not None and monotonic() >= _state.work_due:
                _run(work)  # a server that reads slowly: the work (and its deadline) still runs
            self._inner.write(buffer[start : start + _WRITE_SLICE], _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(
            self._inner.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _Stream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _Stream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def bound_transport(transport: object) -> bool:
    """Install the deadline in an ``httpx.HTTPTransport``'s pool; whether it could be."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        return False
    if not isinstance(backend, _Backend):
        pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
    return True


def bound_client(client: httpx.Client) -> bool:
    """Install the deadline in every transport of ``client`` (proxies from the environment too)."""
    transports: list[object] = [getattr(client, "_transport", None)]
    mounts = getattr(client, "_mounts", None)
    if isinstance(mounts, typing.Mapping):
        transports.extend(mounts.values())
    bound = True
    for transport in transports:
        if isinstance(transport, httpx.HTTPTransport):
            bound = bound_transport(transport) and bound
    return bound
