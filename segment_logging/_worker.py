"""The queue every front end feeds: bounded, with one worker thread and one connection pool.

Callers only append a small tuple to a deque (:meth:`EventQueue.submit`). The
worker thread encodes each once (``_encoding``), keeps the pieces in a backlog
(``_backlog``, with the rule that says a batch is due) and sends them
(``_transport``), retrying per ``_retry``; problems are reported by ``_reporting``
and, with a spool, batches wait on disk (``_spooling``). While it waits (for the interval, or before a retry)
it keeps encoding what arrives, so the queue holds compact bytes, not dicts.

What happens at exit, on SIGTERM and after fork is decided in ``_lifecycle``;
this module offers the pieces it uses (:meth:`EventQueue.start_flush`,
:meth:`EventQueue.begin_close`, :meth:`EventQueue.after_fork_in_child`). Rules kept here:

* The worker thread starts with the first event, so an idle queue costs nothing,
  and it holds only a weak reference to its queue while idle, so a queue the
  application dropped lets its thread end.
* ``flush()``/``close()`` never wait on the worker while the calling thread
  holds ``logging._lock`` (``dictConfig()`` does): the worker might need it.
  The worker itself never waits on a logging lock: its reports are deferred
  (see ``_diagnostics.report``).
* A signal handler may log, flush or close while the main thread is inside
  :meth:`EventQueue.submit`: the lock is reentrant and the wake-up flags are
  signal-safe (``_sync``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable

from . import _lifecycle
from ._auth import WriteKey
from ._backlog import Backlog, Flush
from ._batch import wake_worker
from ._clock import monotonic
from ._compat import holding_logging_lock
from ._deadline import meanwhile, tighten
from ._diagnostics import flush_reports, plural, report, worker_threads
from ._encoding import encode_raw
from ._errors import DeliveryError, InvalidMessage
from ._options import RawEvent, Settings, resolve_send, resolve_write_key
from ._reporting import Reporter, given_metadata
from ._spooling import SPOOL_CHUNK, Spooling
from ._sync import Wakeup
from ._transport import Delivery, HttpClient
from ._values import restore

_held: set[EventQueue] = set()
"""EventQueues with events their idle (or starting) worker has not picked up yet: kept alive until it does,
so an application that drops a handler right after logging loses nothing."""
_FLUSH_SLICE = 0.5
"""Seconds flush() waits at a time before checking that the worker is still alive."""
_IDLE: float | None = None
_STOPPED = -1.0


class EventQueue(Spooling):
    """One bounded queue, one worker thread and one ``HttpClient``.

    Args: see :class:`segment_logging.SegmentHandler`, which documents every option.
    """

    def __init__(self, write_key: str | None, settings: Settings) -> None:
        self.settings = settings
        self.send = resolve_send(settings.send)
        self._key = resolve_write_key(write_key, send=self.send)
        self.max_queue_size = settings.max_queue_size
        self.max_batch_size = settings.max_batch_size
        self.shutdown_timeout = settings.shutdown_timeout
        self._client_settings = settings  # a spool changes the retry budgets to its own
        self._http = HttpClient._with(settings)
        self._redirected: tuple[HttpClient, WriteKey] | None = None
        self.host = self._http.host
        self._spool = self._make_spool()
        self.write_key_token = hash(self._key.authorization)  # compares sources, shows nothing
        self._reporter = Reporter(settings)
        self._closed = False
        self.closed_by_logging = False
        """Set by SegmentHandler: ``logging.shutdown()`` closes this queue, the exit hooks only flush it."""
        self.exit_deadline: float | None = None
        """When the process began to exit: the instant every exit step shares for this queue."""
        self._setup()
        _lifecycle.track(self)
        if self._spool is not None:
            self._start_worker()  # what an earlier process left in the spool goes out now

    def _setup(self) -> None:
        """(Re)initialise every piece of state a fork must not share with the parent."""
        self._lock = threading.RLock()  # reentrant: a signal handler may log from inside submit()
        self._wake = Wakeup()
        self._intake: deque[RawEvent | Flush] = deque()
        self._backlog = Backlog(self.settings)
        # Counters. _accepted and _dropped change under _lock (many callers); the
        # rest only on the worker, so all stay exact without atomics. Accepted events
        # are queued until settled: sent, failed, invalid or dropped by max_queue_bytes.
        self._accepted = self._settled = 0
        self._dropped = self._sent = self._failed = self._retried = self._invalid = 0
        self._overflowed = 0  # dropped by the worker: max_queue_bytes
        self._stopping = False
        self._finished = False
        self._hurried = False
        self._deadline: float | None = None
        self._waiting = False
        self._idle = True
        self._thread: threading.Thread | None = None
        self._starting = False
        self._start_failed = False
        self.worker_ident: int | None = None
        self._reset_spool_state()

    # -- callers' side ---------------------------------------------------------------

    def submit(self, item: RawEvent) -> None:
        """Queue one event; never blocks on the network and never raises for a full queue."""
        with self._lock:
            accepted = not self._closed and self._accepted - self._settled < self.max_queue_size
            if accepted:
                self._accepted += 1
                self._intake.append(item)
            else:
                self._dropped += 1
        if not accepted:
            self._reporter.dropped(self._dropped, closed=self._closed)
            return
        if self._thread is None:
            self._start_worker()
        elif self._waiting and (
            self._idle
            or wake_worker(
                unencoded=len(self._intake), pending=len(self._backlog), max_size=self.max_batch_size
            )
        ):
            if self._idle:
                _held.add(self)  # the idle worker holds the queue weakly: keep it alive until picked up
            self._wake.set()

    def stats(self) -> dict[str, int]:
        """Counts of messages: queued now, and sent, dropped, failed, retried, invalid so far.

        ``queued`` is waiting or in flight. ``dropped`` were refused because the
        queue was full (by count or bytes) or the queue closed; ``failed`` were given
        up after being rejected by Segment or not delivered in time; ``invalid`` had
        metadata that could not become a message; ``retried`` counts messages sent again.
        """
        spool = self._spool  # read first: a spool found removed gives its events back to memory, then goes
        return {
            "queued": self._accepted - self._settled,
            "sent": self._sent,
            "dropped": self._dropped + self._overflowed,
            "failed": self._failed,
            "retried": self._retried,
            "invalid": self._invalid,
            "spooled": spool.count if spool is not None else 0,
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
            return self._accepted == self._settled
        deadline = None if timeout is None else monotonic() + timeout
        return self.await_flush(marker, deadline)

    def start_flush(self) -> Flush | None:
        """Ask the worker to send everything queued now; None when nothing is queued."""
        with self._lock:
            # The spool first: one found removed gives its events back to memory before it goes.
            if self._closed or (self._spool is None and self._accepted == self._settled):
                return None  # with a spool, a flush also waits for what is on disk
            marker = Flush()
            self._intake.append(marker)
        self._wake.set()
        return marker

    def await_flush(self, marker: Flush, deadline: float | None) -> bool:
        """Wait for ``marker`` until ``deadline`` (a :func:`monotonic` instant); True when done."""
        try:
            if holding_logging_lock():
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
        # Removed by identity in one C call: a signal handler on this thread may log between any
        # two bytecodes (the lock is reentrant), so "look at the last item, then pop it" could pop
        # the handler's event instead. Not there: the worker took it already.
        with contextlib.suppress(ValueError, IndexError):  # IndexError: the worker took one meanwhile
            self._intake.remove(marker)

    def close(self) -> None:
        """Deliver what is queued within ``shutdown_timeout``, then stop. Idempotent."""
        self.begin_close()
        if threading.get_ident() == self.worker_ident or holding_logging_lock():
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
        """Whether the queue is closed and its worker may still be delivering."""
        thread = self._thread
        return self._closed and thread is not None and thread.is_alive()

    def limit_to(self, deadline: float) -> None:
        """Give up on what is not delivered by ``deadline`` (a :func:`monotonic` instant)."""
        if self._deadline is None or deadline < self._deadline:
            self._deadline = deadline

    def carry_on(self) -> None:
        """The process outlived the signal that began its exit (PID 1 ignores SIGTERM's default
        action): deliver as before, without that exit's deadline, and report failures again."""
        with self._lock:
            if not self._closed:
                self.exit_deadline = None
                self._deadline = None
                self._reporter.carry_on()

    def cut_short(self) -> None:
        """Stop sending now (the process was told to stop): what close() still waits for is given up
        at once, and with a spool stays on disk. Safe from a signal handler."""
        self.limit_to(monotonic())
        self._wake.set()

    def wait_closed(self) -> None:
        """After :meth:`begin_close`: wait until the worker finished, at most until the deadline."""
        thread = self._thread
        if thread is not None and thread.is_alive() and thread.ident != threading.get_ident():
            # In slices: a stop (cut_short) may bring the deadline forward meanwhile.
            while thread.is_alive():
                deadline = self._deadline
                left = (monotonic() if deadline is None else deadline) + 0.05 - monotonic()
                if left <= 0:
                    break
                thread.join(min(left, 0.1))
            if thread.is_alive():
                # The worker is stuck in a request; it may still finish, so only report.
                if self._accepted != self._settled:
                    self._reporter.shutdown_ran_out(self._accepted - self._settled)
                self.tell_on_disk()
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
                queue = weakref.ref(self, lambda _: wake.set())  # wakes the worker to end it
                thread = threading.Thread(target=_work, args=(queue,), name="segment-logging", daemon=True)
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
        self._http = HttpClient._with(self._client_settings)
        if self._spool is not None:
            self._spool = self._spool.for_child()  # a connection of its own, opened by its worker
        if self._redirected is not None:
            http, key = self._redirected
            self._redirected = (HttpClient._with(http.settings), key)

    def redirect(self, host: str, write_key: str) -> Callable[[], None]:
        """Send to ``host`` with ``write_key`` from now on, even with ``send=False``; for tests.

        The pytest plugin's ``segment_events`` points every live queue at a fake
        Segment this way. Flush before calling the returned function, which
        restores the configured host, key and ``send``.
        """
        mine = self.settings
        http = HttpClient._with(
            Settings(host=host, timeout=mine.timeout, gzip=mine.gzip, max_retry_time=mine.max_retry_time)
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
            event; ``_STOPPED`` once the queue is closed and done.
        """
        if self._stopping:
            self._finish()
            return _STOPPED
        self._drain()
        if self._spooling():
            return self._spool_step()
        if self._backlog.due(urgent=self._stopping or self._hurried or self._deadline is not None):
            self._send_next()
            return 0.0
        return self._backlog.seconds_to_due()  # None (_IDLE) when there is nothing to send

    def _run_inline(self, until: Flush | None) -> None:
        """Do the worker's job on this thread (no worker can run): until ``until`` settles."""
        self._drain()
        while self._spooling() and (until is None or not until.done.is_set()):
            if (self._deadline is not None and monotonic() >= self._deadline) or self._spool_step() != 0.0:
                break
        while self._backlog and (until is None or not until.done.is_set()):
            if self._deadline is not None and monotonic() >= self._deadline:
                self._abandon()
                break
            self._send_next()
            self._drain()
        self._settle_flushes()

    def _finish(self) -> None:
        if self._finished:
            return  # a second close() (logging.shutdown() flushes closed handlers): nothing to do
        self._finished = True
        self._run_inline(until=None)
        if self._spool is not None:
            self._close_spool()
            if self._spool is None and self._backlog:
                self._run_inline(until=None)  # read back from a spool file found removed just now
        self._reporter.unreported_invalid(self._invalid)
        self._settle_flushes(everything=True)
        self._http.close()

    def _drain(self) -> None:
        intake = self._intake
        while intake:
            item = intake.popleft()
            if type(item) is Flush:
                self._backlog.mark(item)
            else:
                self._encode(item)  # type: ignore[arg-type]
                if self._spooling() and len(self._backlog) >= SPOOL_CHUNK:
                    self._to_spool()  # one transaction per chunk while events keep coming
        if self._spooling() and self._backlog:
            self._to_spool()
        self._settle_flushes()

    def _encode(self, item: RawEvent) -> None:
        try:
            piece = encode_raw(item)
        except InvalidMessage as exc:
            self._reject(exc, item)
            return
        if not self._backlog.add(piece):  # it holds max_queue_bytes already
            self._overflowed += 1
            self._settled += 1
            self._reporter.overflowed(self._dropped + self._overflowed)

    def _reject(self, exc: InvalidMessage, item: RawEvent) -> None:
        metadata, name, _, origin, extra = item
        self._invalid += 1
        self._settled += 1
        self._reporter.invalid(exc, name, origin, given_metadata(restore(metadata), extra), self._invalid)

    def _send_next(self) -> None:
        batch = self._backlog.take()
        try:
            delivery = self._deliver(batch)
        except DeliveryError as exc:
            self._failed += len(batch)
            self._retried += len(batch) * max(exc.attempts - 1, 0)
            self._reporter.failure(exc, batch)
        except Exception as exc:  # noqa: BLE001 - a custom transport's error, or a bug: count, report
            self._failed += len(batch)
            error = DeliveryError(
                f"{plural(len(batch), 'message')} not delivered: {type(exc).__name__}: {exc}"
            )
            error.__cause__ = exc
            self._reporter.failure(error, batch)
        else:
            # A batch split after a 413 may be delivered in part: count each part.
            self._sent += delivery.sent
            self._retried += delivery.retried
            for part, error in delivery.failures:
                self._failed += len(part)
                self._reporter.failure(error, part)
        finally:
            self._settled += len(batch)
            self._backlog.settled(len(batch))
            self._settle_flushes()

    def _deliver(self, batch: list[bytes]) -> Delivery:
        """Send one batch (retrying per ``_retry``), to the redirected host if a test set one."""
        redirected = self._redirected  # read once: a test may restore it meanwhile
        if redirected is not None:
            return redirected[0]._deliver(redirected[1], batch, wait=self._pause, deadline=self._deadline)
        if self.send:
            with meanwhile(self._meanwhile):
                return self._http._deliver(self._key, batch, wait=self._pause, deadline=self._deadline)
        # send=False: validated, converted and counted; nothing leaves the process
        return Delivery(len(batch), requests=1, sent=len(batch), carried=len(batch))

    def _meanwhile(self) -> None:
        """While a request waits for its answer: encode (and bound) what arrives, and end the request
        by the deadline an exit or a stop set since it started."""
        self._drain()
        deadline = self._deadline
        if deadline is not None:
            tighten(deadline)

    def _settle_flushes(self, everything: bool = False) -> None:
        if self._spool is not None and self._spool_ready and not everything:
            return  # rows on disk may still be sent now: a flush waits for them too
        self._backlog.settle_flushes(everything)

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
                # With a spool, what arrives goes to disk within a flush_interval, even during a long wait.
                self._wake.wait(end - now if self._spool is None else min(end - now, self._backlog.interval))
            self._waiting = False
            self._drain()
            if self._spool is not None and not self._keep_lease():
                return False

    def _abandon(self) -> None:
        """Give up on everything still pending (shutdown_timeout ran out)."""
        self._drain()
        batch = self._backlog.take_all()
        if batch:
            self._failed += len(batch)
            # Reported before settled, as every give-up: a count of what is still queued, taken
            # meanwhile by the exit, then names them twice rather than not at all.
            self._reporter.failure(
                DeliveryError(
                    f"{plural(len(batch), 'message')} not delivered: shutdown_timeout "
                    f"({self.shutdown_timeout:g} s) ran out"
                ),
                batch,
            )
            self._settled += len(batch)
            self._backlog.settled(len(batch))
            self._settle_flushes()

    def __repr__(self) -> str:
        return f"<EventQueue host={self.host!r} {self.stats()}>"


def _work(ref: weakref.ReferenceType[EventQueue]) -> None:
    """The worker thread: turns of :meth:`EventQueue.step`, waiting in between.

    While idle it holds only ``ref``, so a queue the application dropped can be
    collected; collection sets the wake-up flag and the thread ends.
    """
    queue = ref()
    if queue is None:
        return
    _held.discard(queue)
    ident = threading.get_ident()
    queue.worker_ident = ident
    worker_threads.add(ident)
    wake = queue._wake
    try:
        # The TLS context, before the first burst needs it; if this fails, the
        # first send tries again and reports what fails.
        with contextlib.suppress(Exception):
            queue._http._prepare()
        while True:
            try:
                timeout = queue.step()
            except BaseException:  # noqa: BLE001 - the worker must outlive any bug in one event
                report(logging.ERROR, "segment-logging: unexpected error in the worker", exc_info=True)
                continue
            if timeout == _STOPPED:
                return
            if timeout == 0.0:
                continue
            # Idle: nothing of its own to send, waiting for an event (or, with a spool, to look again).
            queue._idle = idle = timeout is _IDLE or queue._spool_polling
            queue._waiting = True  # before looking at the intake: submit() looks at it after appending
            if queue._intake or queue._stopping:
                queue._waiting = False
                continue
            if idle:
                spool = queue._spool
                del queue
                wake.wait(timeout)
                queue = ref()
                if queue is None:  # dropped by the application, with nothing left to send
                    if spool is not None:
                        spool.close()
                    return
                del spool
                _held.discard(queue)
            else:
                wake.wait(timeout)
            queue._waiting = False
    finally:
        worker_threads.discard(ident)
