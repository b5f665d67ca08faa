"""The durable spool: encoded events kept in a SQLite file until Segment accepts them.

One table of rows, each a ready-to-send batch (as analytics-kotlin's batch
files): its events exactly as they will be sent, compact JSON one per line
(compact JSON has no raw newline), how many, the non-reversible token of the
source it belongs to, when it was spooled (wall time: several processes share
the file) and who holds it now. A row per batch, not per event: a burst costs
a few row writes per hundred events.

* the worker thread stores what it encodes, one transaction per drain (or per
  thousand events while a burst lasts), cut into batches by ``_batch``'s rules;
* it leases batches (``owner`` and ``lease_until`` set in one ``BEGIN IMMEDIATE``
  transaction; small batches of a trickle are sent together), sends them, and
  deletes them after Segment's 200; a batch it cannot deliver now is released
  and stays on disk;
* a lease runs :data:`LEASE` seconds and is renewed while its holder waits to
  retry; a lease whose holder died is taken over once it runs out, or at once
  when the holder was a process on this machine that no longer exists.

WAL mode with ``synchronous=NORMAL``: a commit is not synced to disk, so a
process that crashes, is killed or calls ``os._exit`` loses nothing it
committed; a power cut may lose the last transactions. No fsync per event.

Every ``sqlite3`` error is translated into :class:`SpoolError`, which the queue
answers by falling back to memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._batch import body_size, take_batch
from ._clock import monotonic, wall

_LINE = b"\n"

DEFAULT_MAX_BYTES = 256_000_000
"""The spool file's default cap: about a million events of 250 bytes, twelve hours (the default
age limit) of 20 events a second; the smallest disk buffer Vector allows is the same 256 MB."""
DEFAULT_MAX_AGE = 12 * 3600.0
"""Seconds an event may wait in the spool: 12 hours, like Segment's SDKs' total retry budgets."""
LEASE = 60.0
"""Seconds a batch taken for sending stays reserved to its process; renewed while it waits to retry."""
_RENEW_EVERY = LEASE / 4
_CHECK_FILE_EVERY = 1.0
"""Seconds between two checks that the path still names the file this process has open."""
_TAKEOVER_EVERY = 1.0
"""Seconds between two looks for leases whose holder (a process on this machine) is dead, while
free rows keep coming; a lease that finds none free looks at once."""
_BUSY_TIMEOUT_MS = 2_000
"""How long a write waits for another connection's transaction before giving up for now: the
events wait in memory and the worker tries again (:class:`SpoolBusy`); the spool stays in use."""
_WAL_LIMIT = 4 * 1024 * 1024
"""Bytes the WAL file is cut back to after a checkpoint (``PRAGMA journal_size_limit``)."""
_ROW_OVERHEAD = 48
"""Bytes a row costs beyond its JSON (ids, times, token, b-tree cells), for the size cap."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    created REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT '',
    events INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_source ON batches (source);  -- rowid (id) order within a source
"""


class SpoolError(Exception):
    """The spool file cannot be opened or written; the message names the file and why."""


class SpoolBusy(SpoolError):
    """Another connection held the file's write lock longer than the busy timeout: try again later."""


class SpoolGone(SpoolError):
    """The file was removed or replaced while open. ``rows``: this source's rows (id, events),
    read back from the open (removed) file, which no later process could find."""

    def __init__(self, message: str, rows: list[tuple[int, list[bytes]]]) -> None:
        super().__init__(message)
        self.rows = rows


def _error(path: str, exc: sqlite3.Error) -> SpoolError:
    """The :class:`SpoolError` (or :class:`SpoolBusy`) for a ``sqlite3`` error on ``path``."""
    busy = isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))
    return (SpoolBusy if busy else SpoolError)(f"{path}: {exc}")


def source_token(write_key: str) -> str:
    """A token naming the source (write key) of a row, from which the key cannot be read back.

    The host is left out: a key belongs to one workspace and region, and rows spooled while
    the host was wrong go to the corrected one.
    """
    digest = hashlib.sha256(b"segment-logging spool\0" + write_key.encode())
    return digest.hexdigest()[:32]


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def _owner_name() -> str:
    """Who holds a lease: host, pid namespace and pid (to tell a dead holder), and a random part."""
    return f"{socket.gethostname()}/{_pid_namespace()}/{os.getpid()}/{secrets.token_hex(4)}"


def _holder_is_dead(owner: str) -> bool:
    """Whether ``owner`` was a process on this machine (same pid namespace) that is gone now."""
    parts = owner.split("/")
    if len(parts) != 4 or parts[0] != socket.gethostname() or parts[1] != _pid_namespace():
        return False  # another machine or container: only its lease running out tells
    try:
        pid = int(parts[2])
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended but its parent has not reaped it yet (Linux; elsewhere: False)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ")".
            return stat.read().rpartition(b")")[2].split()[:1] == [b"Z"]
    except OSError:
        return False


def moved_aside_name(path: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = f"{path}.corrupt-{stamp}"
    return candidate if not os.path.exists(candidate) else f"{candidate}-{os.getpid()}"


@dataclass(kw_only=True, slots=True)
class Leased:
    """A batch taken from the spool: the rows' ids and bodies, and when the oldest was spooled."""

    ids: list[int]
    pieces: list[bytes]
    oldest: float


@dataclass(kw_only=True)
class Spool:
    """The spool file of one queue. Built without I/O; :meth:`open` opens (or creates) the file.

    Used by one thread at a time (the queue's worker, or the thread that finishes
    the queue when no worker can run).
    """

    path: str
    source: str
    max_bytes: int = DEFAULT_MAX_BYTES
    max_age: float = DEFAULT_MAX_AGE
    max_page_count: int | None = None
    """A ceiling SQLite enforces (``PRAGMA max_page_count``): tests make it report a full disk."""
    count: int = field(default=0, init=False)
    """Rows of this source on disk, as last seen (stored and deleted here, counted anew now and then)."""
    moved_aside: str | None = field(default=None, init=False)
    _db: sqlite3.Connection | None = field(default=None, init=False, repr=False)
    _owner: str = field(default="", init=False, repr=False)
    _lock: Any = field(default_factory=lambda: _IN_SQLITE, init=False, repr=False)
    _renewed: float = field(default=0.0, init=False, repr=False)
    _leased: list[int] = field(default_factory=list, init=False, repr=False)
    _next_takeover: float = field(default=0.0, init=False, repr=False)
    _deletes: list[tuple[int, int]] = field(default_factory=list, init=False, repr=False)
    _page_size: int = field(default=0, init=False, repr=False)
    _identity: tuple[int, int] = field(default=(0, 0), init=False, repr=False)
    _checked: float = field(default=0.0, init=False, repr=False)

    # -- opening and closing ---------------------------------------------------------

    def open(self) -> None:
        """Open the file, creating it ``0600``; a file that is not a database is moved aside first.

        Raises:
            SpoolError: the file cannot be created, opened or written.
        """
        with self._lock:
            self._open()

    def _open(self) -> None:
        try:
            self._connect()
        except sqlite3.OperationalError as exc:  # locked, read-only, cannot open: not corruption
            self._forget()
            raise _error(self.path, exc) from exc
        except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
            self._forget()
            aside = moved_aside_name(self.path)
            try:
                os.replace(self.path, aside)
                if os.path.exists(self.path + "-wal"):
                    os.replace(self.path + "-wal", aside + "-wal")
                if os.path.exists(self.path + "-shm"):
                    os.remove(self.path + "-shm")  # an index of the WAL, rebuilt from it
                self.moved_aside = aside
                self._connect()
            except (OSError, sqlite3.Error) as again:
                self._forget()
                raise SpoolError(f"{self.path}: {exc}; moving it aside failed: {again}") from again
        except OSError as exc:
            raise SpoolError(f"{self.path}: {exc.strerror or exc}") from exc

    def _connect(self) -> None:
        if os.path.isdir(self.path):
            raise IsADirectoryError(21, "is a directory, not a file", self.path)
        # Created here, 0600, before SQLite opens it (SQLite gives its -wal and -shm files the same mode).
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        db = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self._db = db
        db.execute("PRAGMA journal_mode=WAL").fetchone()
        db.execute("PRAGMA synchronous=NORMAL")
        # The WAL is checkpointed into the file every 1000 pages (SQLite's default) and cut back to
        # this size after, so the disk holds at most about spool_max_bytes plus this.
        db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}").fetchone()
        if self.max_page_count is not None:
            db.execute(f"PRAGMA max_page_count={int(self.max_page_count)}").fetchone()
        db.execute("BEGIN IMMEDIATE")  # proves the file writable now, not at the first event
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._owner = _owner_name()
        self.count = self._count(db)
        opened = os.stat(self.path)
        self._identity, self._checked = (opened.st_dev, opened.st_ino), monotonic()

    def _forget(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    @property
    def opened(self) -> bool:
        return self._db is not None

    def close(self) -> None:
        """Release this process's leases and close the file. Idempotent; never raises."""
        with self._lock:
            if self._db is None:
                return
            with contextlib.suppress(sqlite3.Error):
                self._apply_deletes(self._db)
            if self._leased:
                with contextlib.suppress(sqlite3.Error):
                    self._release(self._leased)
            self._forget()

    def for_child(self) -> Spool:
        """The same spool for a forked child: same settings, a connection of its own (opened later).

        The copy of the parent's connection is closed first (fork() waited until no thread was
        inside SQLite, so it is idle): SQLite keeps one record of locks per file and process,
        which a connection left open from the parent would confuse. Closing it cannot touch
        the parent's locks (POSIX locks belong to a process), and the WAL is not removed while
        the parent holds the file open.
        """
        self._forget()
        return Spool(
            path=self.path,
            source=self.source,
            max_bytes=self.max_bytes,
            max_age=self.max_age,
            max_page_count=self.max_page_count,
        )

    # -- the worker's operations -------------------------------------------------------

    @contextlib.contextmanager
    def _named_errors(self) -> Iterator[None]:
        """A ``sqlite3`` error inside becomes a :class:`SpoolError` that names the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _error(self.path, exc) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock: ``BEGIN IMMEDIATE``, the deferred deletes, the body,
        ``COMMIT``; rolled back on any error, a ``sqlite3`` one raised as :class:`SpoolError`."""
        with self._lock, self._named_errors():
            db = self._conn()
            self._check_file(db)
            db.execute("BEGIN IMMEDIATE")
            try:
                self._apply_deletes(db)
                yield db
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise

    def _check_file(self, db: sqlite3.Connection) -> None:
        """Raise :class:`SpoolGone` when the path no longer names the open file (checked at most
        every :data:`_CHECK_FILE_EVERY`): writing on would keep events where no one finds them."""
        if monotonic() - self._checked < _CHECK_FILE_EVERY:
            return
        self._checked = monotonic()
        if self.file_is_there():
            return
        self._apply_deletes(db)  # delivered already: not to be read back
        # Taken under a lease that never runs out, in one transaction: another process that has the
        # removed file open too reads back only what this one did not take (and the other way round).
        now = wall()
        db.execute("BEGIN IMMEDIATE")
        try:
            self._take_over_dead(db, now)
            db.execute(
                "UPDATE batches SET owner = ?, lease_until = ? WHERE source = ? AND lease_until < ?",
                (self._owner, math.inf, self.source, now),
            )
            rows = db.execute(
                "SELECT id, body FROM batches WHERE source = ? AND owner = ? ORDER BY id",
                (self.source, self._owner),
            ).fetchall()
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        raise SpoolGone(
            f"{self.path}: the file was removed or replaced while in use",
            [(row_id, body.split(_LINE)) for row_id, body in rows],
        )

    def check_file(self) -> None:
        """Raise :class:`SpoolGone` when the file was removed or replaced (looked at every second).

        Raises:
            SpoolGone: with this source's rows, read back from the removed file.
            SpoolError: the database could not be read.
        """
        with self._lock, self._named_errors():
            self._check_file(self._conn())

    def file_is_there(self) -> bool:
        """Whether the path still names the file this spool opened (False: removed or replaced)."""
        try:
            now = os.stat(self.path)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == self._identity

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise SpoolError(f"{self.path}: not open")
        return self._db

    def store(self, pieces: Sequence[bytes], *, max_size: int, max_bytes: int) -> int:
        """Add encoded events, cut into batches, in one transaction, as far as ``max_bytes`` of the
        spool allows; how many were added.

        Raises:
            SpoolError: the write failed (disk full, I/O error, the file went away).
        """
        rows: list[list[bytes]] = []
        waiting = deque(pieces)
        while waiting:
            rows.append(take_batch(waiting, max_size=max_size, max_bytes=max_bytes))
        with self._transaction() as db:
            now = wall()
            room = self.max_bytes - self._size(db)
            kept: list[bytes] = []
            stored = 0
            for row in rows:
                body = _LINE.join(row)
                if len(body) + _ROW_OVERHEAD > room:
                    # The spool is full: what fits of this batch is kept, the rest and later ones dropped.
                    fit: list[bytes] = []
                    used = _ROW_OVERHEAD
                    for piece in row:
                        used += len(piece) + len(_LINE)
                        if used > room:
                            break
                        fit.append(piece)
                    if fit:
                        kept.append(_LINE.join(fit))
                        stored += len(fit)
                    break
                room -= len(body) + _ROW_OVERHEAD
                kept.append(body)
                stored += len(row)
            db.executemany(
                "INSERT INTO batches (source, created, events, body) VALUES (?, ?, ?, ?)",
                [(self.source, now, body.count(_LINE) + 1, body) for body in kept],
            )
            self.count += stored
        return stored

    def _count(self, db: sqlite3.Connection) -> int:
        row = db.execute(
            "SELECT COALESCE(SUM(events), 0) FROM batches WHERE source = ?", (self.source,)
        ).fetchone()
        return int(row[0])

    def _size(self, db: sqlite3.Connection) -> int:
        """Bytes the database uses now (free pages excluded: they are reused first)."""
        pages = (
            db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        )
        if not self._page_size:
            self._page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        return int(pages) * self._page_size

    def lease(self, *, max_size: int, max_bytes: int, batches: int = 1) -> list[Leased]:
        """Take up to ``batches`` batches of this source's oldest rows no live process holds.

        Each batch obeys the batching rules (``take_batch``): ``max_size`` rows, ``max_bytes``
        in all. Several batches in one transaction save a commit per batch in a burst.

        Raises:
            SpoolError: the database could not be read or written.
        """
        with self._transaction() as db:
            now = wall()
            looked = monotonic() >= self._next_takeover
            if looked:
                self._take_over_dead(db, now)
            rows = self._free(db, now, batches * 4)
            if not rows and not looked:
                # Nothing free: look for dead holders now, not up to a second later (an exit
                # would end with a dead process's rows left behind).
                self._take_over_dead(db, now)
                rows = self._free(db, now, batches * 4)
            if not rows:
                return []
            taken = _group(rows, max_size=max_size, max_bytes=max_bytes, batches=batches)
            ids = [i for leased in taken for i in leased.ids]
            # The rows selected are those of the range that match: one statement leases them.
            db.execute(
                "UPDATE batches SET lease_until = ?, owner = ? "
                "WHERE id BETWEEN ? AND ? AND source = ? AND lease_until < ?",
                (now + LEASE, self._owner, ids[0], ids[-1], self.source, now),
            )
            self._leased = ids
            self._renewed = monotonic()
        return taken

    def _free(self, db: sqlite3.Connection, now: float, limit: int) -> list[Any]:
        """This source's oldest rows (id, body, created) no one holds now, within ``max_age`` (older
        ones, also those a dead holder had leased, are left to :meth:`expire`: failed, not sent)."""
        return db.execute(
            "SELECT id, body, created FROM batches WHERE source = ? AND lease_until < ? AND created >= ? "
            "ORDER BY id LIMIT ?",
            (self.source, now, now - self.max_age, limit),
        ).fetchall()

    def _take_over_dead(self, db: sqlite3.Connection, now: float) -> None:
        """Free the rows held by processes of this machine that are gone (rate: _TAKEOVER_EVERY)."""
        self._next_takeover = monotonic() + _TAKEOVER_EVERY
        holders = db.execute(
            "SELECT DISTINCT owner FROM batches WHERE source = ? AND lease_until >= ? AND owner != ?",
            (self.source, now, self._owner),
        ).fetchall()
        for (owner,) in holders:
            if _holder_is_dead(owner):
                db.execute("UPDATE batches SET lease_until = 0, owner = '' WHERE owner = ?", (owner,))

    def renew(self) -> None:
        """Extend the lease of the batch in hand (at most every quarter of a lease), and carry out
        the deferred deletes (a long wait must not let a delivered batch's lease run out)."""
        with self._lock:
            if not self._leased or monotonic() - self._renewed < _RENEW_EVERY:
                return
            with self._named_errors():
                self._apply_deletes(self._conn())
                self._conn().executemany(
                    "UPDATE batches SET lease_until = ? WHERE id = ? AND owner = ?",
                    [(wall() + LEASE, i, self._owner) for i in self._leased],
                )
            self._renewed = monotonic()

    def delete(self, leased: Leased) -> None:
        """Delete delivered (or given-up) batches this process holds: recorded now, carried out by
        :meth:`sync` (the queue calls it right after) or else by the next transaction.

        A process that dies before may send them again, under the same ``messageId`` (Segment
        de-duplicates), as when it dies between the 200 and the delete.
        """
        ids = leased.ids
        with self._lock:
            if ids:
                self._deletes.append((min(ids), max(ids)))
                self.count = max(0, self.count - len(leased.pieces))
                gone = set(ids)
                self._leased = [i for i in self._leased if i not in gone]

    def _apply_deletes(self, db: sqlite3.Connection) -> None:
        if self._deletes:
            # This process holds no other row in these ranges: its one lease is the batch deleted.
            db.executemany(
                "DELETE FROM batches WHERE id BETWEEN ? AND ? AND owner = ?",
                [(first, last, self._owner) for first, last in self._deletes],
            )
            self._deletes.clear()

    def sync(self) -> None:
        """Carry out the deletes still deferred now.

        Raises:
            SpoolError: the database could not be written.
        """
        with self._lock:
            if not self._deletes:
                return
            with self._transaction():
                pass  # the deferred deletes are applied first in every transaction

    def release(self, ids: Sequence[int]) -> None:
        """Give rows back, to be sent later (by this process or another)."""
        with self._lock, self._named_errors():
            self._release(ids)

    def _release(self, ids: Sequence[int]) -> None:
        # The deferred deletes first: a batch delivered before this one failed must not be left under
        # a lease that runs out while this process waits to retry (another would send it again).
        self._apply_deletes(self._conn())
        self._conn().executemany(
            "UPDATE batches SET lease_until = 0, owner = '' WHERE id = ? AND owner = ?",
            [(i, self._owner) for i in ids],
        )
        gone = set(ids)
        self._leased = [i for i in self._leased if i not in gone]

    def expired(self, created: float) -> bool:
        """Whether an event spooled at ``created`` (wall time) is past ``max_age``."""
        return wall() - created > self.max_age

    def expire(self) -> list[bytes]:
        """Delete this source's free rows older than ``max_age``; their bodies, for the report.

        Raises:
            SpoolError: the database could not be read or written.
        """
        with self._transaction() as db:
            now = wall()
            self._take_over_dead(db, now)  # a dead holder's rows are this sweep's too
            rows = db.execute(
                "SELECT id, body FROM batches WHERE source = ? AND created < ? AND lease_until < ?",
                (self.source, now - self.max_age, now),
            ).fetchall()
            db.executemany("DELETE FROM batches WHERE id = ?", [(row[0],) for row in rows])
            pieces = [piece for row in rows for piece in row[1].split(_LINE)]
            self.count = max(0, self.count - len(pieces))
        return pieces

    def recount(self) -> int:
        """Count this source's rows anew (other processes deliver and add rows too).

        Raises:
            SpoolGone: the file was removed or replaced (checked at most every second).
            SpoolError: the database could not be read.
        """
        self.sync()
        with self._lock, self._named_errors():
            self._check_file(self._conn())
            self.count = self._count(self._conn())
            return self.count


def _group(rows: list[Any], *, max_size: int, max_bytes: int, batches: int) -> list[Leased]:
    """Stored batches (id, body, created) in id order, joined into at most ``batches`` requests:
    consecutive rows go together while their events fit in one (small rows of a trickle)."""
    taken: list[Leased] = []
    for row_id, body, created in rows:
        pieces = body.split(_LINE)
        if taken:
            last = taken[-1]
            count = len(last.pieces) + len(pieces)
            if (
                count <= max_size
                and body_size(sum(map(len, last.pieces)) + len(body) - len(pieces) + 1, count) <= max_bytes
            ):
                last.ids.append(row_id)
                last.pieces = last.pieces + pieces
                last.oldest = min(last.oldest, created)
                continue
            if len(taken) == batches:
                break
        taken.append(Leased(ids=[row_id], pieces=pieces, oldest=created))
    return taken


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


_IN_SQLITE: Any = threading.RLock()
"""Held around every call into SQLite, and by fork() (see :func:`before_fork`): a child must not
inherit SQLite's own mutexes locked by a thread that does not exist in it."""


def before_fork() -> None:
    """Wait until no thread of this process is inside SQLite through a spool, and keep it so."""
    _IN_SQLITE.acquire()


def after_fork() -> None:
    """In the parent and the child alike: SQLite may be used again."""
    _IN_SQLITE.release()
