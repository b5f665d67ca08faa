"""The queue's side of the spool (``_spool``): events wait on disk until Segment accepts them.

:class:`Spooling` is a part of :class:`~segment_logging._worker.EventQueue`, kept
here so that the queue reads as the queue: with a ``spool``, the worker moves what
it encodes to disk in one transaction per drain (or per :data:`SPOOL_CHUNK` events),
then sends batches it leases from the file, retried per ``_retry`` until
``spool_max_age``; what is not delivered at exit stays on disk for the next process.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING

from ._clock import monotonic
from ._diagnostics import plural
from ._errors import DeliveryError
from ._options import Settings, resolve_spool
from ._retry import is_retryable
from ._spool import Leased, Spool, SpoolBusy, SpoolError, SpoolGone, source_token
from ._transport import Delivery, HttpClient

if TYPE_CHECKING:
    from ._auth import WriteKey
    from ._backlog import Backlog
    from ._reporting import Reporter

SPOOL_CHUNK = 1000
"""Events the worker stores in one transaction at most while a burst keeps coming."""
SPOOL_BATCHES = 10
"""Batches leased in one transaction (sent one after the other)."""
SPOOL_BUSY_RETRY = 1.0
"""Seconds before trying again a spool another connection kept locked (past SQLite's busy timeout)."""
SPOOL_POLL = 5.0
"""Seconds between looks at the spool while this process has nothing of its own to send: rows other
processes hold or add (one of them may die) are sent by whichever live process looks first."""


class Spooling:
    """The spool's state and steps, for the queue's worker thread (and its exit)."""

    _spool: Spool | None

    # What the queue provides (see EventQueue).
    settings: Settings
    _key: WriteKey
    _http: HttpClient
    _client_settings: Settings
    _backlog: Backlog
    _reporter: Reporter
    _settled: int
    _dropped: int
    _overflowed: int
    _sent: int
    _failed: int
    _retried: int
    _stopping: bool
    _hurried: bool
    _deadline: float | None

    def _settle_flushes(self, everything: bool = False) -> None:
        raise NotImplementedError

    def _deliver(self, batch: list[bytes]) -> Delivery:
        raise NotImplementedError

    def _reset_spool_state(self) -> None:
        """(Re)initialise what a fork must not share: when to look in the spool next, whether it may
        hold rows to send now (flushes wait for them), the batch in hand."""
        self._spool_due = 0.0
        self._spool_ready = True
        self._spool_fresh = 0
        self._spool_swept = -1e9
        self._spool_cycles = 0
        self._leased: Leased | None = None
        self._in_hand: deque[Leased] = deque()  # leased with it, to be sent next
        self._leased_at = 0.0
        self._spool_polling = False  # waiting only to look again: the worker may hold its queue weakly
        self._reporter.forked()
        self._spool_gone = False
        self._flight_reopened = False  # the batch in flight came from a file found removed meanwhile
        self._spool_retry_at = 0.0  # after a failed batch: when the spool may be sent from again
        self._spool_blocked_until = 0.0  # locked by another connection: memory only until then
        self._spool_failing_since = 0.0

    def _make_spool(self) -> Spool | None:
        """The spool the options ask for (no I/O yet), or None; with one, batches are kept, not given up."""
        settings = self.settings
        path = resolve_spool(settings.spool)
        if path is None:
            return None
        # A batch on disk is retried (per _retry, Retry-After obeyed, backoff capped) until the age limit.
        age = settings.spool_max_age
        self._client_settings = replace(settings, max_retry_time=age, max_rate_limit_time=age)
        self._http = HttpClient._with(self._client_settings)
        return Spool(
            path=path,
            source=source_token(self._key.value),
            max_bytes=settings.spool_max_bytes,
            max_age=settings.spool_max_age,
        )

    def _spool_broken(self, exc: SpoolError) -> None:
        """Fall back to memory for good, saying once what happened and where."""
        spool = self._spool
        if spool is None:
            return  # fell back already (a step still held the old spool): said once
        if isinstance(exc, SpoolGone):
            # Pending again before the spool is dropped: a flush (or stats()) that sees no spool
            # must see these events as queued, not settled on disk.
            self._spool_gone = True
            flying = self._leased
            if flying is not None:
                # Not read back: it is delivered, or given back by _keep; pending until then.
                self._settled -= len(flying.pieces)
                self._backlog.unsettled(len(flying.pieces))
                self._flight_reopened = True
            taken = set(flying.ids) if flying is not None else set()
            self._reclaim([piece for row_id, pieces in exc.rows if row_id not in taken for piece in pieces])
        self._spool = None
        spool.close()
        self._in_hand.clear()
        self._spool_ready = False
        self._client_settings = self.settings
        spool_client, self._http = self._http, HttpClient._with(self._client_settings)
        spool_client.close()  # its connections: the worker (this thread) was its only user
        self._reporter.spool_unusable(exc)

    def _spooling(self) -> bool:
        """Whether events go through the spool now: it is set, and unless the process is ending
        while another connection locks the file (then what is in memory is sent from memory,
        as without a spool: it cannot wait for the lock)."""
        if self._spool is None:
            return False
        ending = self._stopping or self._hurried or self._deadline is not None
        return not ending or monotonic() >= self._spool_blocked_until

    def _spool_busy(self, exc: SpoolBusy) -> None:
        """The file is locked by another connection for now: events wait in memory (an ending
        sends them from there), and the spool is tried again in SPOOL_BUSY_RETRY."""
        self._spool_blocked_until = self._spool_due = monotonic() + SPOOL_BUSY_RETRY
        self._reporter.spool_locked(exc)

    def _reclaim(self, pieces: list[bytes]) -> None:
        """Queue again in memory what a removed spool file held (no other process can find it)."""
        for piece in pieces:
            if self._backlog.add_again(piece):
                self._settled -= 1  # queued again: settled when sent or given up, as any other
            else:
                self._overflowed += 1
                self._reporter.overflowed(self._dropped + self._overflowed)

    def _open_spool(self) -> bool:
        assert self._spool is not None
        try:
            self._spool.open()
        except SpoolBusy as exc:
            self._spool_busy(exc)
            return False
        except SpoolError as exc:
            self._spool_broken(exc)
            return False
        if self._spool.moved_aside is not None:
            self._reporter.spool_moved_aside(self._spool.path, self._spool.moved_aside)
        return True

    def _to_spool(self) -> None:
        """Move the events just encoded to disk, in one transaction."""
        spool = self._spool
        assert spool is not None
        if not spool.opened and not self._open_spool():
            return  # they stay in memory
        backlog = self._backlog
        pieces = backlog.peek_all()
        try:
            stored = spool.store(pieces, max_size=backlog.max_batch_size, max_bytes=backlog.max_batch_bytes)
        except SpoolBusy as exc:
            self._spool_busy(exc)
            return  # they stay in memory, stored at a later turn
        except SpoolError as exc:
            self._spool_broken(exc)
            return
        backlog.take_all()
        self._settled += len(pieces)
        backlog.settled(len(pieces))
        if stored < len(pieces):
            self._overflowed += len(pieces) - stored
            self._reporter.spool_full(
                spool.path, spool.max_bytes, self._dropped + self._overflowed, len(pieces) - stored
            )
        self._spool_fresh += stored
        now = monotonic()
        due = now if self._spool_fresh >= backlog.max_batch_size else now + backlog.interval
        self._spool_due = min(self._spool_due, due)
        self._spool_polling = False  # events of its own on disk: the worker waits for their batch
        self._spool_ready = True

    def _spool_step(self) -> float:
        """A worker's turn with a spool: send a batch from disk if one is due; else how long to wait."""
        spool = self._spool
        assert spool is not None
        if not spool.opened and not self._open_spool():
            # Fell back (the next turn works from memory), or locked for now: opened at a later turn.
            return 0.0 if self._spool is None else max(0.0, self._spool_due - monotonic())
        now = monotonic()
        urgent = self._backlog.flushing or self._stopping or self._hurried or self._deadline is not None
        polled, self._spool_polling = self._spool_polling, False
        if now < self._spool_retry_at:  # a batch failed: nothing goes out before its retry
            self._end_flush_wait(since=self._spool_failing_since)
            return self._spool_retry_at - now  # not 0.0: an exit stops here, the rest stays on disk
        if now < self._spool_due and not urgent:
            self._spool_polling = polled
            return self._spool_due - now
        if polled and not urgent and not self._spool_fresh:
            # A periodic look: a read first, the write transactions of a lease only when there are rows.
            if not self._recount():
                return 0.0  # fell back: the next turn works from memory
            if not spool.count:
                return self._poll_later(now)
        if self._send_spooled():
            return 0.0
        self._spool_ready = False  # nothing to send now: flushes waiting on the spool are done
        self._settle_flushes()
        if not self._recount():
            return 0.0
        if self._spool_due > now:
            return self._spool_due - now  # a batch kept after a failure: its retry is due then
        return self._poll_later(now)

    def _recount(self) -> bool:
        """Count the rows on disk anew; False when the file was removed (fell back to memory)."""
        spool = self._spool
        assert spool is not None
        try:
            spool.recount()
        except SpoolGone as exc:
            self._spool_broken(exc)
            return False
        except SpoolError:
            pass  # counted at the next look
        return True

    def _poll_later(self, now: float) -> float:
        """Nothing to send now: look again in SPOOL_POLL (rows others hold, or will leave behind)."""
        self._spool_due = now + SPOOL_POLL
        self._spool_polling = True
        return SPOOL_POLL

    def _send_spooled(self) -> bool:
        """Lease a batch from disk and send it; False when none is free."""
        spool = self._spool
        assert spool is not None
        try:
            if monotonic() - self._spool_swept >= 1.0:
                self._spool_swept = monotonic()
                expired = spool.expire()
                if expired:
                    self._failed += len(expired)
                    self._reporter.failure(self._too_old(len(expired)), expired)
            if not self._in_hand:
                self._in_hand.extend(
                    spool.lease(
                        max_size=self._backlog.max_batch_size,
                        max_bytes=self._backlog.max_batch_bytes,
                        batches=SPOOL_BATCHES,
                    )
                )
        except SpoolBusy as exc:
            self._spool_busy(exc)
            return False
        except SpoolError as exc:
            self._spool_broken(exc)
            return True
        if not self._in_hand:
            return False
        leased = self._in_hand.popleft()
        self._spool_fresh = 0
        self._leased, self._leased_at = leased, monotonic()
        done: Leased | None = None
        try:
            delivery = self._deliver(leased.pieces)
        except DeliveryError as exc:
            if spool.expired(leased.oldest):
                done = leased
                self._failed += len(leased.pieces)
                self._reporter.failure(self._too_old(len(leased.pieces)), leased.pieces)
            elif is_retryable(exc.status):
                self._keep(leased, exc)
            else:
                done = leased
                self._failed += len(leased.pieces)
                self._retried += len(leased.pieces) * max(exc.attempts - 1, 0)
                self._reporter.failure(exc, leased.pieces)
        except Exception as exc:  # noqa: BLE001 - a custom transport's error, or a bug: kept for later
            self._keep(leased, DeliveryError(f"{type(exc).__name__}: {exc}"))
        else:
            done = leased
            self._spool_cycles = 0
            self._sent += delivery.sent
            self._retried += delivery.retried
            for part, error in delivery.failures:
                self._failed += len(part)
                self._reporter.failure(error, part)
            self._spool_due = monotonic()  # more may be waiting: look again at once
        finally:
            self._leased = None
            if self._flight_reopened:  # its file was found removed meanwhile: settled only now
                self._flight_reopened = False
                self._settled += len(leased.pieces)
                self._backlog.settled(len(leased.pieces))
                self._settle_flushes()
        if done is not None and self._spool is spool:  # else it broke meanwhile, and is closed
            try:
                spool.delete(done)
                # At once, not with the next lease: a process that dies after a 200 must leave
                # as little as possible for another to send again.
                spool.sync()
            except SpoolBusy:
                pass  # deleted with the next transaction
            except SpoolError as exc:
                self._spool_broken(exc)
        return True

    def _too_old(self, count: int) -> DeliveryError:
        assert self._spool is not None
        return DeliveryError(
            f"{plural(count, 'message')} not delivered: older than spool_max_age "
            f"({self._spool.max_age:g} s) in the spool {self._spool.path}"
        )

    def _keep(self, leased: Leased, exc: DeliveryError) -> None:
        """Give a batch that could not be delivered now back to the spool (and the batches leased
        with it), to be tried again later."""
        if self._spool is None:
            if self._spool_gone:
                self._reclaim(leased.pieces)  # its file was removed: memory is all that is left
            return  # it broke meanwhile (reported): what it held stays on disk
        ids = leased.ids + [i for batch in self._in_hand for i in batch.ids]
        self._in_hand.clear()
        try:
            self._spool.release(ids)
        except SpoolBusy:
            pass  # locked for now: their lease runs out, and then they are free again
        except SpoolError as error:
            self._spool_broken(error)
            return
        # Tried again after the policy's next backoff (max_retries, if set, ran out; or the wait
        # Segment asked for did not fit in what was left of the deadline). Nothing from the spool is
        # sent before then, even by a flush; an exit stops sending from it (the rest stays on disk).
        now = monotonic()
        if not self._spool_cycles:
            self._spool_failing_since = now
        self._spool_cycles += 1
        self._spool_retry_at = self._spool_due = now + self._http.policy.backoff(self._spool_cycles)
        if self._stopping or self._deadline is not None:
            return  # the exit report says what stays on disk
        self._reporter.kept(len(leased.pieces), self._spool.path, exc)

    def _end_flush_wait(self, *, since: float) -> None:
        """A flush waits for a batch failing ``since`` as long as without a spool (max_retry_time);
        then it is done, and the batch stays on disk, retried later."""
        if self._backlog.flushing and monotonic() - since >= self.settings.max_retry_time:
            self._spool_ready = False
            self._settle_flushes()

    def _keep_lease(self) -> bool:
        """While a batch from disk waits to be retried: renew its lease; False once it is too old."""
        leased, spool = self._leased, self._spool
        if leased is None or spool is None:
            return True
        if spool.expired(leased.oldest):
            return False
        self._end_flush_wait(since=self._leased_at)
        try:
            spool.check_file()  # a long outage must not hide a removed file until the exit
            spool.renew()
        except SpoolBusy:
            pass  # tried again at the next renewal
        except SpoolError as exc:
            self._spool_broken(exc)
        return True

    def _close_spool(self) -> None:
        """At the end: say what stays on disk, release what this process holds, close the file."""
        spool = self._spool
        assert spool is not None
        left = 0
        if spool.opened:
            try:
                left = spool.recount()
            except SpoolGone as exc:
                self._spool_broken(exc)  # its events come back to memory, and are sent from there
                return
            except SpoolError:
                left = spool.count
        spool.close()
        self.tell_on_disk(left)

    def tell_on_disk(self, left: int | None = None) -> None:
        """Say once, at an ending, that ``left`` events (None: as last counted) stay in the spool.

        Called by the worker as it closes the spool, and by the thread that ends the process
        when it cannot wait for the worker (stuck in a request; SIGTERM's deadline passed).
        """
        spool = self._spool
        left = spool.count if left is None and spool is not None else left
        if spool is None or not left:
            return
        self._reporter.left_on_disk(left, spool.path, removed=spool.opened and not spool.file_is_there())
