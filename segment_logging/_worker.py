"""The one core every front end feeds: a bounded queue, one worker thread, one connection pool.

Callers only append a small tuple to a deque (:meth:`Core.submit`). The
worker thread turns each into a message, encodes it once, groups the encoded
pieces into batches (rules in ``_batch``) and sends them (``_transport``),
retrying per ``_retry``. While it waits (for the interval, or before a retry)
it keeps encoding what arrives, so the queue holds compact bytes, not dicts.

What happens at exit, on SIGTERM and after fork is decided in ``_lifecycle``;
this module offers the pieces it uses (:meth:`Core.start_flush`,
:meth:`Core.begin_close`, :meth:`Core.after_fork_in_child`). Rules kept here:

* The worker thread starts with the first event, so an idle core costs nothing,
  and it holds only a weak reference to its core while idle, so a core the
  application dropped lets its thread end.
* ``flush()``/``close()`` never wait on the worker while the calling thread
  holds ``logging._lock`` (``dictConfig()`` does): the worker might need it.
  The worker itself never waits on a logging lock: its reports are deferred
  (see ``_diagnostics.report``).
* A signal handler may log, flush or close while the main thread is inside
  :meth:`Core.submit`: the lock is reentrant and the wake-up flags are
  signal-safe (``_sync``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from . import _lifecycle
from ._auth import WriteKey
from ._batch import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_BYTES,
    MAX_BATCH_SIZE,
    MAX_MESSAGE_BYTES,
    WRAPPER_BYTES,
    decode_pieces,
    encode_captured,
    encode_message,
    encode_wire,
    is_due,
    take_batch,
    wake_worker,
)
from ._clock import monotonic
from ._deadline import meanwhile
from ._diagnostics import RateLimit, flush_reports, plural, report, worker_threads
from ._errors import DeliveryError, InvalidMessage
from ._messages import from_metadata, plain_track_wire
from ._oauth import DEFAULT_SCOPE
from ._options import (
    ErrorCallback,
    Item,
    bool_option,
    integer_option,
    number_option,
    resolve_send,
    resolve_write_key,
)
from ._retry import DEFAULT_MAX_RATE_LIMIT_TIME
from ._sync import Done, Wakeup
from ._transport import DEFAULT_PATH, Delivery, HttpClient
from ._values import restore


class UnformattedMessage(str):
    """The log message of a record whose ``msg % args`` failed: its text unformatted.

    The event is sent if its metadata names it; otherwise it is reported as
    invalid with ``error``, and counted.
    """

    __slots__ = ("error",)

    error: str


def unformatted(text: str, error: BaseException) -> UnformattedMessage:
    """An :class:`UnformattedMessage` for ``text`` whose formatting raised ``error``."""
    message = UnformattedMessage(text)
    message.error = f"{type(error).__name__}: {error}"
    return message


def _holding_logging_lock() -> bool:
    """Whether this thread holds the logging module's lock (as dictConfig() does)."""
    is_owned = getattr(getattr(logging, "_lock", None), "_is_owned", None)
    return bool(is_owned is not None and is_owned())


class Flush:
    """A marker a flush puts in the queue; done once every event before it has settled."""

    __slots__ = ("abandoned", "done", "target")

    def __init__(self) -> None:
        self.done = Done()
        self.target = -1
        self.abandoned = False  # its waiter gave up: the worker forgets it


_held: set[Core] = set()
"""Cores with events their idle (or starting) worker has not picked up yet: kept alive until it does,
so an application that drops a handler right after logging loses nothing."""
_DISTINCT_PROBLEMS = 100
"""How many distinct kinds of invalid-event problem are each reported once; past it, only counts."""
_FLUSH_SLICE = 0.5
"""Seconds flush() waits at a time before checking that the worker is still alive."""
_IDLE: float | None = None
_STOPPED = -1.0
_VALUES = re.compile(r"'[^']*'|\"[^\"]*\"|\b\d[\d,.]*\b")


def problem_kind(problem: str) -> str:
    """A problem's text without the values in it, so that one kind is reported once."""
    return _VALUES.sub("_", problem)[:200]


class Core:
    """One bounded queue, one worker thread and one ``HttpClient``.

    Args: see :class:`segment_logging.SegmentHandler`, which documents every option.
    """

    def __init__(
        self,
        write_key: str | None = None,
        *,
        host: str | None = None,
        max_batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_bytes: int = DEFAULT_BATCH_BYTES,
        flush_interval: float = 0.5,
        max_queue_size: int = 100_000,
        max_queue_bytes: int = 64_000_000,
        gzip: bool = True,
        timeout: float = 10.0,
        shutdown_timeout: float = 5.0,
        max_retry_time: float = 60.0,
        max_rate_limit_time: float = DEFAULT_MAX_RATE_LIMIT_TIME,
        max_retries: int | None = None,
        path: str = DEFAULT_PATH,
        oauth_client_id: str | None = None,
        oauth_client_key: str | None = None,
        oauth_key_id: str | None = None,
        oauth_auth_server: str | None = None,
        oauth_scope: str = DEFAULT_SCOPE,
        on_error: ErrorCallback | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        send: bool | None = None,
    ) -> None:
        self.send = resolve_send(send)
        self._key = resolve_write_key(write_key, send=self.send)
        self.max_batch_size = integer_option(
            "max_batch_size", max_batch_size, minimum=1, maximum=MAX_BATCH_SIZE
        )
        self.max_batch_bytes = integer_option(
            "max_batch_bytes",
            max_batch_bytes,
            minimum=MAX_MESSAGE_BYTES + WRAPPER_BYTES,
            maximum=MAX_BATCH_BYTES,
        )
        self.flush_interval = number_option("flush_interval", flush_interval, minimum=0.001)
        self.max_queue_size = integer_option("max_queue_size", max_queue_size, minimum=1)
        self.max_queue_bytes = integer_option(
            "max_queue_bytes", max_queue_bytes, minimum=MAX_MESSAGE_BYTES + WRAPPER_BYTES
        )
        self.shutdown_timeout = number_option("shutdown_timeout", shutdown_timeout, minimum=0)
        gzip = bool_option("gzip", gzip)
        if on_error is not None and not callable(on_error):
            raise ValueError(f"on_error must be callable, got {on_error!r}")
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise ValueError(f"transport must be an httpx.BaseTransport, got {transport!r}")
        if clock is not None and not callable(clock):
            raise ValueError(f"clock must be callable, got {clock!r}")
        self._client_options = {
            "host": host,
            "timeout": number_option("timeout", timeout, minimum=0.001),
            "transport": transport,
            "gzip": gzip,
            "max_retry_time": number_option("max_retry_time", max_retry_time, minimum=0),
            "max_rate_limit_time": number_option("max_rate_limit_time", max_rate_limit_time, minimum=0),
            "max_retries": max_retries,
            "path": path,
            "oauth_client_id": oauth_client_id,
            "oauth_client_key": oauth_client_key,
            "oauth_key_id": oauth_key_id,
            "oauth_auth_server": oauth_auth_server,
            "oauth_scope": oauth_scope,
        }
        self._http = HttpClient(**self._client_options)  # type: ignore[arg-type]
        self._redirected: tuple[HttpClient, WriteKey] | None = None
        self.host = self._http.host
        self.write_key_token = hash(self._key.authorization)  # compares sources, shows nothing
        self._on_error = on_error
        self._clock = clock or monotonic
        self._closed = False
        self.closed_by_logging = False
        """Set by SegmentHandler: ``logging.shutdown()`` closes this core, the exit hooks only flush it."""
        self.exit_deadline: float | None = None
        """When the process began to exit: the instant every exit step shares for this core."""
        self._setup()
        _lifecycle.track(self)

    def _setup(self) -> None:
        """(Re)initialise every piece of state a fork must not share with the parent."""
        self._lock = threading.RLock()  # reentrant: a signal handler may log from inside submit()
        self._wake = Wakeup()
        self._intake: deque[Item | Flush] = deque()
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._oldest: float | None = None
        self._flushes: list[Flush] = []
        # Counters. _accepted and _dropped change under _lock (many callers); the
        # rest only on the worker, so all stay exact without atomics.
        self._accepted = self._taken = self._released = 0
        self._dropped = self._sent = self._failed = self._retried = self._invalid = 0
        self._overflowed = 0  # dropped by the worker: max_queue_bytes
        # Pieces that entered _pending, and that left it settled (sent, failed or given
        # up), in order: a flush is done when everything that entered before it has left.
        self._pieces_in = self._pieces_out = 0
        self._stopping = False
        self._hurried = False
        self._deadline: float | None = None
        self._waiting = False
        self._idle = True
        self._thread: threading.Thread | None = None
        self._starting = False
        self._start_failed = False
        self.worker_ident: int | None = None
        self._drop_reports = RateLimit()
        self._overflow_reports = RateLimit()
        self._invalid_reports = RateLimit()
        self._problems_reported: set[str] = set()
        self._invalid_unreported = 0
        self._warned_closed = False
        self._timeout_reported = False

    # -- callers' side ---------------------------------------------------------------

    def submit(self, item: Item) -> None:
        """Queue one event; never blocks on the network and never raises for a full queue."""
        with self._lock:
            accepted = not self._closed and self._accepted - self._released < self.max_queue_size
            if accepted:
                self._accepted += 1
                self._intake.append(item)
            else:
                self._dropped += 1
        if not accepted:
            self._report_drop()
            return
        if self._thread is None:
            self._start_worker()
        elif self._waiting and (
            self._idle
            or wake_worker(
                unencoded=len(self._intake), pending=len(self._pending), max_size=self.max_batch_size
            )
        ):
            if self._idle:
                _held.add(self)  # the idle worker holds the core weakly: keep it alive until picked up
            self._wake.set()

    def _report_drop(self) -> None:
        if self._closed:
            if not self._warned_closed:
                self._warned_closed = True
                report(
                    logging.WARNING,
                    "segment-logging: an event was logged after close(); it and any later ones are "
                    "dropped and counted in stats()['dropped']",
                )
            return
        due, held = self._drop_reports.ready()
        if due:
            report(
                logging.WARNING,
                "segment-logging: the queue is full (max_queue_size=%d): events are being dropped "
                "(%d dropped in all, %d since the last report); Segment may be slow or unreachable",
                self.max_queue_size,
                self._dropped,
                held + 1,
            )

    def stats(self) -> dict[str, int]:
        """Counts of messages: queued now, and sent, dropped, failed, retried, invalid so far.

        ``queued`` is waiting or in flight. ``dropped`` were refused because the
        queue was full (by count or bytes) or the core closed; ``failed`` were given
        up after being rejected by Segment or not delivered in time; ``invalid`` had
        metadata that could not become a message; ``retried`` counts messages sent again.
        """
        return {
            "queued": self._accepted - self._released,
            "sent": self._sent,
            "dropped": self._dropped + self._overflowed,
            "failed": self._failed,
            "retried": self._retried,
            "invalid": self._invalid,
        }

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until what was queued before the call is delivered or given up on.

        Returns:
            True when it all settled within ``timeout``; False on timeout, or when
            waiting could deadlock (called from the worker, or under logging's lock).
        """
        if threading.get_ident() == self.worker_ident:
            return False
        marker = self.start_flush()
        if marker is None:
            flush_reports()
            return self._accepted == self._released
        deadline = None if timeout is None else monotonic() + timeout
        return self.await_flush(marker, deadline)

    def start_flush(self) -> Flush | None:
        """Ask the worker to send everything queued now; None when nothing is queued."""
        with self._lock:
            if self._closed or self._accepted == self._released:
                return None
            marker = Flush()
            self._intake.append(marker)
        self._wake.set()
        return marker

    def await_flush(self, marker: Flush, deadline: float | None) -> bool:
        """Wait for ``marker`` until ``deadline`` (a :func:`monotonic` instant); True when done."""
        try:
            if _holding_logging_lock():
                return False
            while True:
                if not self._ensure_worker():
                    self._run_inline(until=marker)  # no worker can run (a child at exit)
                    return marker.done.is_set()
                remaining = None if deadline is None else deadline - monotonic()
                if remaining is not None and remaining <= 0:
                    return marker.done.is_set()
                # Wait in slices, so that a worker that died cannot make this wait forever.
                if marker.done.wait(_FLUSH_SLICE if remaining is None else min(remaining, _FLUSH_SLICE)):
                    return True
        finally:
            if not marker.done.is_set():
                self._abandon_flush(marker)
            flush_reports()

    def _abandon_flush(self, marker: Flush) -> None:
        """Forget a flush whose waiter gave up, so that a flush per call cannot pile up markers."""
        marker.abandoned = True  # the worker skips it
        with self._lock:  # no submit() appends meanwhile; the worker only pops from the left
            intake = self._intake
            if intake and intake[-1] is marker:
                with contextlib.suppress(IndexError):  # the worker took it just now
                    intake.pop()

    def close(self) -> None:
        """Deliver what is queued within ``shutdown_timeout``, then stop. Idempotent."""
        self.begin_close()
        if threading.get_ident() == self.worker_ident or _holding_logging_lock():
            return  # the worker finishes on its own; the exit hooks wait for it
        self.wait_closed()
        flush_reports()

    def begin_close(self) -> None:
        """Stop accepting events and tell the worker to deliver what it holds, then stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.limit_to(
            self.exit_deadline if self.exit_deadline is not None else monotonic() + self.shutdown_timeout
        )
        self._stopping = True
        self._wake.set()

    def hurry(self) -> None:
        """Send every event as soon as it is encoded from now on (the process was asked to stop)."""
        self._hurried = True
        self._wake.set()

    def closing(self) -> bool:
        """Whether the core is closed and its worker may still be delivering."""
        thread = self._thread
        return self._closed and thread is not None and thread.is_alive()

    def limit_to(self, deadline: float) -> None:
        """Give up on what is not delivered by ``deadline`` (a :func:`monotonic` instant)."""
        if self._deadline is None or deadline < self._deadline:
            self._deadline = deadline

    def wait_closed(self) -> None:
        """After :meth:`begin_close`: wait until the worker finished, at most until the deadline."""
        thread = self._thread
        if thread is not None and thread.is_alive() and thread.ident != threading.get_ident():
            assert self._deadline is not None
            thread.join(max(0.0, self._deadline - monotonic()) + 0.05)
            if thread.is_alive() and self._accepted != self._released and not self._timeout_reported:
                self._timeout_reported = True
                # The worker is stuck in a request; it may still finish, so only report.
                report(
                    logging.ERROR,
                    "segment-logging: shutdown_timeout (%g s) ran out with %s not delivered",
                    self.shutdown_timeout,
                    plural(self._accepted - self._released, "event"),
                )
        elif thread is None or not thread.is_alive():
            self._finish()  # no worker (idle, or a child at exit): deliver and clean up here

    def _ensure_worker(self) -> bool:
        """Whether a worker is running, starting one if none was (as after fork)."""
        thread = self._thread
        if thread is not None and not thread.is_alive() and not self._stopping:
            self._thread = None  # it died: start another rather than wait on it
        if self._thread is None and not self._start_failed:
            self._start_worker()
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _start_worker(self) -> None:
        with self._lock:
            if self._thread is not None or self._start_failed or self._starting:
                return  # _starting: a signal handler interrupted a start on this thread
            if _lifecycle.shutting_down():
                # Called from an atexit hook: Python 3.12+ refuses new threads from here on.
                # Do the same on every version; close() and flush() deliver on this thread.
                self._start_failed = True
                return
            self._starting = True
            _held.add(self)  # alive until the new worker holds it, even if the application drops it now
            _lifecycle.first_event_here()
            try:
                wake = self._wake
                core = weakref.ref(self, lambda _: wake.set())  # wakes the worker to end it
                thread = threading.Thread(target=_work, args=(core,), name="segment-logging", daemon=True)
                try:
                    thread.start()
                except RuntimeError:
                    # Interpreter shutdown (Python 3.12+ refuses new threads): close() and
                    # flush() deliver on the calling thread instead.
                    self._start_failed = True
                    return
                self._thread = thread
            finally:
                self._starting = False

    def after_fork_in_child(self) -> None:
        """Forget the parent's queue, lock, connections and worker (they are the parent's)."""
        _held.discard(self)
        self._setup()
        self._http = HttpClient(**self._client_options)  # type: ignore[arg-type]
        if self._redirected is not None:
            http, key = self._redirected
            self._redirected = (HttpClient(http.host, timeout=http.timeout, gzip=http.gzip), key)

    def redirect(self, host: str, write_key: str) -> Callable[[], None]:
        """Send to ``host`` with ``write_key`` from now on, even with ``send=False``; for tests.

        The pytest plugin's ``segment_events`` points every live core at a fake
        Segment this way. Flush before calling the returned function, which
        restores the configured host, key and ``send``.
        """
        http = HttpClient(
            host,
            timeout=self._http.timeout,
            gzip=self._http.gzip,
            max_retry_time=self._http.policy.max_retry_time,
        )
        self._redirected = (http, WriteKey(write_key))  # one assignment: the worker reads it once

        def restore() -> None:
            if self._redirected is not None and self._redirected[0] is http:
                self._redirected = None
            http.close()

        return restore

    # -- the worker ------------------------------------------------------------------

    def step(self) -> float | None:
        """One turn of the worker: encode what arrived and send a batch if one is due.

        Returns:
            Seconds to wait before the next turn; ``_IDLE`` (None) to wait for an
            event; ``_STOPPED`` once the core is closed and done.
        """
        if self._stopping:
            self._finish()
            return _STOPPED
        self._drain()
        if self._is_due():
            self._send_next()
            return 0.0
        return self._seconds_to_due()

    def _run_inline(self, until: Flush | None) -> None:
        """Do the worker's job on this thread (no worker can run): until ``until`` settles."""
        self._drain()
        while self._pending and (until is None or not until.done.is_set()):
            if self._deadline is not None and monotonic() >= self._deadline:
                self._abandon()
                break
            self._send_next()
            self._drain()
        self._settle_flushes()

    def _finish(self) -> None:
        self._run_inline(until=None)
        self._report_unreported_invalid()
        self._settle_flushes(everything=True)
        self._http.close()

    def _seconds_to_due(self) -> float | None:
        if self._oldest is None or not self._pending:
            return _IDLE
        return max(0.0, self._oldest + self.flush_interval - self._clock())

    def _drain(self) -> None:
        intake = self._intake
        while intake:
            item = intake.popleft()
            if type(item) is Flush:
                if not item.abandoned:
                    item.target = self._pieces_in
                    self._flushes.append(item)
            else:
                self._taken += 1
                self._encode(item)  # type: ignore[arg-type]
        self._settle_flushes()

    def _encode(self, item: Item) -> None:
        metadata, name, created, _, extra = item
        try:
            if type(name) is UnformattedMessage:
                piece = self._encode_unformatted(item, name)
            else:
                captured = encode_captured(metadata, name, created)
                wire = None if captured is not None else plain_track_wire(metadata, name, created)
                if captured is not None:
                    piece = captured
                elif wire is not None:
                    piece = encode_wire(wire)
                else:
                    piece = encode_message(from_metadata(restore(metadata), name, extra), created)
        except Exception as exc:  # noqa: BLE001 - bad input is reported, never raised
            self._reject(exc if isinstance(exc, InvalidMessage) else InvalidMessage(str(exc)), item)
            return
        if self._pending_bytes + len(piece) > self.max_queue_bytes:
            self._overflow()
            return
        if not self._pending:
            self._oldest = self._clock()
        self._pending.append(piece)
        self._pending_bytes += len(piece)
        self._pieces_in += 1

    @staticmethod
    def _encode_unformatted(item: Item, name: UnformattedMessage) -> bytes:
        """An event whose log message could not be formatted: fine if its metadata names it."""
        metadata, _, created, _, extra = item
        try:
            return encode_message(from_metadata(restore(metadata), "", extra), created)
        except InvalidMessage as exc:
            raise InvalidMessage(
                f"{exc}; the log message {name!s:.100} could not be formatted with its arguments "
                f"({name.error})"
            ) from exc

    def _overflow(self) -> None:
        """Drop an encoded event: the queue holds max_queue_bytes already."""
        self._overflowed += 1
        self._released += 1
        due, held = self._overflow_reports.ready()
        if due:
            report(
                logging.WARNING,
                "segment-logging: the queue holds max_queue_bytes (%d bytes): events are being dropped "
                "(%d dropped in all, %d since the last report); Segment may be slow or unreachable",
                self.max_queue_bytes,
                self._dropped + self._overflowed,
                held + 1,
            )

    def _reject(self, exc: InvalidMessage, item: Item) -> None:
        metadata, name, _, origin, extra = item
        self._invalid += 1
        self._released += 1
        if self._on_error is not None:
            self._call_on_error(exc, [extra if metadata is True else restore(metadata)])
            return
        kind = problem_kind(str(exc))
        if kind not in self._problems_reported and len(self._problems_reported) < _DISTINCT_PROBLEMS:
            # Each kind of problem is shown once, however often it recurs.
            self._problems_reported.add(kind)
            report(
                logging.ERROR,
                "segment-logging: event %r from logger %r was not sent: %s",
                name,
                origin,
                exc,
            )
            return
        self._invalid_unreported += 1
        due, _ = self._invalid_reports.ready()
        if due:
            self._report_unreported_invalid()

    def _report_unreported_invalid(self) -> None:
        if self._invalid_unreported:
            report(
                logging.ERROR,
                "segment-logging: %s not sent for problems already reported (%d invalid in all)",
                plural(self._invalid_unreported, "more invalid event"),
                self._invalid,
            )
            self._invalid_unreported = 0

    def _is_due(self) -> bool:
        return is_due(
            count=len(self._pending),
            pieces_bytes=self._pending_bytes,
            oldest=self._oldest,
            now=self._clock(),
            interval=self.flush_interval,
            max_size=self.max_batch_size,
            max_bytes=self.max_batch_bytes,
            urgent=bool(self._flushes) or self._stopping or self._hurried or self._deadline is not None,
        )

    def _send_next(self) -> None:
        batch = take_batch(self._pending, max_size=self.max_batch_size, max_bytes=self.max_batch_bytes)
        self._pending_bytes -= sum(map(len, batch))
        if not self._pending:
            self._oldest = None
        redirected = self._redirected  # read once: a test may restore it meanwhile
        try:
            if redirected is not None:
                delivery = redirected[0].deliver(
                    redirected[1], batch, wait=self._pause, deadline=self._deadline
                )
            elif self.send:
                with meanwhile(self._drain):  # keep encoding (and bounding) what arrives meanwhile
                    delivery = self._http.deliver(self._key, batch, wait=self._pause, deadline=self._deadline)
            else:  # send=False: validated, converted and counted; nothing leaves the process
                delivery = Delivery(len(batch), requests=1, sent=len(batch), carried=len(batch))
        except DeliveryError as exc:
            self._failed += len(batch)
            self._retried += len(batch) * max(exc.attempts - 1, 0)
            self._report_failure(exc, batch)
        except Exception as exc:  # noqa: BLE001 - a custom transport's error, or a bug: count, report
            self._failed += len(batch)
            error = DeliveryError(
                f"{plural(len(batch), 'message')} not delivered: {type(exc).__name__}: {exc}"
            )
            error.__cause__ = exc
            self._report_failure(error, batch)
        else:
            # A batch split after a 413 may be delivered in part: count each part.
            self._sent += delivery.sent
            self._retried += delivery.retried
            for part, error in delivery.failures:
                self._failed += len(part)
                self._report_failure(error, part)
        finally:
            self._released += len(batch)
            self._pieces_out += len(batch)
            self._settle_flushes()

    def _pause(self, seconds: float) -> bool:
        """Wait before a retry, encoding new events meanwhile; False to give up (shutdown)."""
        end = monotonic() + seconds
        while True:
            now = monotonic()
            if self._deadline is not None and end >= self._deadline:
                return False
            if now >= end:
                return True
            self._idle = False
            self._waiting = True
            if not self._intake:
                self._wake.wait(end - now)
            self._waiting = False
            self._drain()

    def _abandon(self) -> None:
        """Give up on everything still pending (shutdown_timeout ran out)."""
        self._drain()
        batch = list(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        if batch:
            self._failed += len(batch)
            self._released += len(batch)
            self._pieces_out += len(batch)
            self._report_failure(
                DeliveryError(
                    f"{plural(len(batch), 'message')} not delivered: shutdown_timeout "
                    f"({self.shutdown_timeout:g} s) ran out"
                ),
                batch,
            )

    def _report_failure(self, exc: DeliveryError, batch: list[bytes]) -> None:
        if self._on_error is not None:
            self._call_on_error(exc, decode_pieces(batch))
        else:
            report(logging.ERROR, "segment-logging: %s", exc)

    def _call_on_error(self, exc: Exception, messages: list[Any]) -> None:
        assert self._on_error is not None
        try:
            self._on_error(exc, messages)
        except BaseException:  # noqa: BLE001 - a callback (even one raising SystemExit) must not stop delivery
            report(logging.ERROR, "segment-logging: on_error raised", exc_info=True)

    def _settle_flushes(self, everything: bool = False) -> None:
        if not self._flushes:
            return
        keep = []
        for marker in self._flushes:
            if everything or self._pieces_out >= marker.target:
                marker.done.set()
            elif not marker.abandoned:
                keep.append(marker)
        self._flushes = keep

    def __repr__(self) -> str:
        return f"<Core host={self.host!r} {self.stats()}>"


def _work(ref: weakref.ReferenceType[Core]) -> None:
    """The worker thread: turns of :meth:`Core.step`, waiting in between.

    While idle it holds only ``ref``, so a core the application dropped can be
    collected; collection sets the wake-up flag and the thread ends.
    """
    core = ref()
    if core is None:
        return
    _held.discard(core)
    ident = threading.get_ident()
    core.worker_ident = ident
    worker_threads.add(ident)
    wake = core._wake
    try:
        # The TLS context, before the first burst needs it; if this fails, the
        # first send tries again and reports what fails.
        with contextlib.suppress(Exception):
            core._http.prepare()
        while True:
            try:
                timeout = core.step()
            except BaseException:  # noqa: BLE001 - the worker must outlive any bug in one event
                report(logging.ERROR, "segment-logging: unexpected error in the worker", exc_info=True)
                continue
            if timeout == _STOPPED:
                return
            if timeout == 0.0:
                continue
            core._idle = timeout is _IDLE
            core._waiting = True  # before looking at the intake: submit() looks at it after appending
            if core._intake or core._stopping:
                core._waiting = False
                continue
            if timeout is _IDLE:
                del core
                wake.wait()
                core = ref()
                if core is None:
                    return  # dropped by the application, with nothing left to send
                _held.discard(core)
            else:
                wake.wait(timeout)
            core._waiting = False
    finally:
        worker_threads.discard(ident)
