"""Every reliance on CPython internals or on a Python version, in one place.

Each name here stands for one assumption about the interpreter, and
``tests/test_compat.py`` checks each on every supported Python (3.10 to 3.13), so
that a new release that breaks one fails one named test instead of a logging call
somewhere. Where Python offers a public way, it is used on the versions that have
it (``Handler.flushOnClose``, ``warnings.warn(skip_file_prefixes=...)``), and the
private way only before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any, TypeVar

_T = TypeVar("_T", bound=type)

_PACKAGE = os.path.dirname(__file__) + os.sep
"""What the file of every module of this package (and of its subpackages) starts with."""

# -- logging ---------------------------------------------------------------------------------------

HANDLE_RETURNS_RECORD = sys.version_info >= (3, 12)
"""``Handler.handle()`` returns the record that passed the filters since 3.12 (True before)."""

SHUTDOWN_READS_FLUSH_ON_CLOSE = sys.version_info >= (3, 12)
"""``logging.shutdown()`` skips ``flush()`` for a handler whose ``flushOnClose`` is false since 3.12."""


def flush_called_by_logging_shutdown() -> bool:
    """Whether the ``flush()`` that calls this (directly) was called by ``logging.shutdown()``.

    Only before 3.12, where ``logging.shutdown()`` calls ``flush()`` then ``close()``
    whatever the handler's ``flushOnClose``; from 3.12 on, it reads ``flushOnClose``
    and the answer is always False. The caller's caller is looked up by frame.
    """
    if SHUTDOWN_READS_FLUSH_ON_CLOSE:
        return False
    try:
        frame = sys._getframe(2)  # 0: here, 1: flush(), 2: flush()'s caller
    except ValueError:  # flush() called from the bottom of the stack, as by atexit.register(handler.flush)
        return False
    return frame.f_code is logging.shutdown.__code__


def check_level(level: int | str) -> int:
    """The number of a level name or number, as ``Handler.setLevel()`` would take it.

    Raises:
        ValueError: an unknown level name.
        TypeError: neither an int nor a str.
    """
    checked: int = logging._checkLevel(level)  # type: ignore[attr-defined]  # the check setLevel() uses
    return checked


def live_handlers() -> list[logging.Handler]:
    """Every handler object not yet garbage-collected, from ``logging._handlerList``."""
    references = list(getattr(logging, "_handlerList", ()))  # weak references, oldest first
    return [handler for handler in (reference() for reference in references) if handler is not None]


def holding_logging_lock() -> bool:
    """Whether this thread holds the logging module's lock (as ``dictConfig()`` does)."""
    is_owned = getattr(getattr(logging, "_lock", None), "_is_owned", None)
    return bool(is_owned is not None and is_owned())


@contextlib.contextmanager
def released(lock: Any) -> Iterator[None]:
    """Let go of the reentrant ``lock`` meanwhile, however deep this thread holds it.

    logging.shutdown() holds a handler's lock while it calls flush() and close();
    dictConfig() takes logging's module lock and then each handler's lock. Waiting
    for delivery with the handler lock held deadlocks a dictConfig() running on
    another thread (``SegmentHandler.handle()`` never takes its lock, so nothing else
    needs it meanwhile). ``RLock`` has no public way to release every level at once
    and take them back; these are the methods ``threading.Condition`` uses.
    """
    is_owned = getattr(lock, "_is_owned", None)
    if is_owned is None or not is_owned():
        yield
        return
    state = lock._release_save()
    try:
        yield
    finally:
        lock._acquire_restore(state)


def queue_listener_of(thread: threading.Thread) -> Any:
    """The object whose bound method ``thread`` runs (a ``QueueListener``, for its monitor thread)."""
    return getattr(getattr(thread, "_target", None), "__self__", None)


def is_listener_sentinel(listener: Any, record: object) -> bool:
    """Whether ``record`` is the value ``QueueListener.enqueue_sentinel()`` puts in the queue."""
    return record is getattr(listener, "_sentinel", None)


# -- threads and the interpreter -------------------------------------------------------------------


def interpreter_shutting_down() -> bool:
    """Whether the interpreter is exiting: ``threading._shutdown()`` ran, so atexit hooks run
    and no new thread may start."""
    return bool(getattr(threading, "_SHUTTING_DOWN", False))


# -- warnings --------------------------------------------------------------------------------------


def warn_from_caller(message: str, category: type[Warning]) -> None:
    """Warn, naming the first caller outside this package.

    The handler, the structlog processor and the clients reach a check through
    different depths, so a fixed ``stacklevel`` would name one of our own files.
    """
    if sys.version_info >= (3, 12):
        warnings.warn(message, category, skip_file_prefixes=(_PACKAGE,))
        return
    frame = sys._getframe(1)  # this function's caller: stacklevel 2
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]  # None past the bottom of the stack
        level += 1
    warnings.warn(message, category, stacklevel=level)


# -- dataclasses -----------------------------------------------------------------------------------


def slots_fixed(cls: _T) -> _T:
    """Make a ``@dataclass(slots=True)`` class on 3.10 what it is on 3.11 and later.

    Apply it on top of the ``@dataclass`` decorator. Python 3.10 repeats the
    inherited fields in a subclass's ``__slots__`` (each instance then carries unused
    copies) and keeps a ``__weakref__`` attribute no instance has, which raises
    ``TypeError`` when read (gh-102069); 3.11 fixed both. The class is rebuilt the
    way 3.11 builds it. Its methods never use ``super()`` without arguments, which
    does not work in a class ``slots=True`` rebuilds, on any version.
    """
    if sys.version_info >= (3, 11):
        return cls
    slots: tuple[str, ...] = cls.__dict__["__slots__"]
    inherited = {name for base in cls.__mro__[1:] for name in base.__dict__.get("__slots__", ())}
    namespace = {
        key: value
        for key, value in cls.__dict__.items()
        if key not in slots and key not in ("__dict__", "__weakref__")
    }
    namespace["__slots__"] = tuple(name for name in slots if name not in inherited)
    rebuilt = type(cls)(cls.__name__, cls.__bases__, namespace)
    rebuilt.__qualname__ = cls.__qualname__
    return rebuilt
