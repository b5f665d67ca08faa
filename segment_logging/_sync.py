"""Wake-up and done flags that a signal handler can set without deadlocking.

``threading.Event`` guards its flag with a non-reentrant lock taken in Python
code. A signal handler runs on the main thread between two bytecodes, so it can
interrupt ``Event.set()`` while that lock is held; if the handler then logs (and
so sets the same event) or waits for a flush, the main thread waits on itself
forever. These flags are a bare ``_thread`` lock each: setting one is a single C
call, which a signal handler cannot interrupt.
"""

from __future__ import annotations

import threading


class Wakeup:
    """An auto-reset flag: ``set()`` wakes one ``wait()``, which consumes it."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()  # held: not set

    def set(self) -> None:
        """Set the flag (idempotent). Safe from any thread and from a signal handler."""
        try:  # noqa: SIM105 - one C call, no context manager, inside a signal handler
            self._lock.release()
        except RuntimeError:  # already set
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until set or ``timeout`` seconds pass; True when it was set (and is now clear)."""
        if timeout is None:
            return self._lock.acquire()
        return self._lock.acquire(timeout=min(max(timeout, 0.0), threading.TIMEOUT_MAX))

    def is_set(self) -> bool:
        """Whether the flag is set now."""
        return not self._lock.locked()


class Done:
    """A one-shot flag: once set, every ``wait()`` returns True at once."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()  # held: not done

    def set(self) -> None:
        """Mark done (idempotent). Safe from any thread and from a signal handler."""
        try:  # noqa: SIM105 - one C call, no context manager, inside a signal handler
            self._lock.release()
        except RuntimeError:  # already done
            pass

    def is_set(self) -> bool:
        """Whether it is done."""
        return not self._lock.locked()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until done or ``timeout`` seconds pass; True when done."""
        if timeout is None:
            acquired = self._lock.acquire()
        else:
            acquired = self._lock.acquire(timeout=min(max(timeout, 0.0), threading.TIMEOUT_MAX))
        if acquired:
            self.set()  # leave it done for later waiters
        return acquired
