"""Each reliance on CPython internals or on a Python version (``segment_logging._compat``), checked on
the running Python: a release that breaks one fails here, by name."""

from __future__ import annotations

import _thread
import dataclasses
import gc
import io
import logging
import logging.handlers
import queue
import sys
import threading
import types
import warnings
import weakref

import pytest
from conftest import Script, finish

from segment_logging import Alias, Group, Identify, Page, Screen, Track
from segment_logging._compat import (
    HANDLE_RETURNS_RECORD,
    SHUTDOWN_READS_FLUSH_ON_CLOSE,
    check_level,
    flush_called_by_logging_shutdown,
    holding_logging_lock,
    interpreter_shutting_down,
    is_listener_sentinel,
    live_handlers,
    queue_listener_of,
    released,
    slots_fixed,
    warn_from_caller,
)
from segment_logging._endpoint import check_host


def _record() -> logging.LogRecord:
    return logging.LogRecord("compat", logging.INFO, __file__, 1, "hello", (), None)


class _Recorder(logging.Handler):
    """Records what each call of its flush() saw; emits nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes: list[bool] = []
        self.flushed = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        pass

    def flush(self) -> None:
        self.flushes.append(flush_called_by_logging_shutdown())
        self.flushed.set()


def test_handle_returns_the_record_from_312() -> None:
    """Handler.handle() returns the record that passed the filters from 3.12 on, True before."""
    record = _record()
    result = logging.StreamHandler(io.StringIO()).handle(record)
    assert result is (record if HANDLE_RETURNS_RECORD else True)
    assert (sys.version_info >= (3, 12)) == HANDLE_RETURNS_RECORD


def test_logging_shutdown_reads_flush_on_close_from_312() -> None:
    """logging.shutdown() skips flush() for a handler with flushOnClose = False from 3.12 on (and only
    closes it), so the frame check below is needed only before."""
    handler = _Recorder()
    handler.flushOnClose = False  # type: ignore[attr-defined]  # read by logging.shutdown() on 3.12+
    logging.shutdown([weakref.ref(handler)])
    assert handler.flushes == ([] if SHUTDOWN_READS_FLUSH_ON_CLOSE else [True])
    assert (sys.version_info >= (3, 12)) == SHUTDOWN_READS_FLUSH_ON_CLOSE


def test_flush_knows_logging_shutdown_called_it_before_312() -> None:
    """flush_called_by_logging_shutdown() is True inside a flush() that logging.shutdown() calls (before
    3.12; False from 3.12 on, which reads flushOnClose instead), and False for any other caller,
    including a flush() at the bottom of a stack (as atexit.register(handler.flush) runs it)."""
    handler = _Recorder()
    logging.shutdown([weakref.ref(handler)])
    handler.flush()
    assert handler.flushes == [not SHUTDOWN_READS_FLUSH_ON_CLOSE, False]
    bottom = _Recorder()
    _thread.start_new_thread(bottom.flush, ())  # flush() is the thread's first and only Python frame
    assert bottom.flushed.wait(10)
    assert bottom.flushes == [False]


def test_check_level_takes_what_set_level_takes() -> None:
    """check_level() turns level names into numbers and refuses unknown ones, like Handler.setLevel()."""
    assert check_level("INFO") == logging.INFO
    assert check_level(5) == 5
    with pytest.raises(ValueError, match="BOGUS"):
        check_level("BOGUS")
    with pytest.raises(TypeError):
        check_level(1.5)  # type: ignore[arg-type]


def test_live_handlers_lists_handlers_until_collected() -> None:
    """live_handlers() lists a handler from its creation until it is garbage-collected."""
    handler = logging.StreamHandler(io.StringIO())
    assert any(live is handler for live in live_handlers())
    reference = weakref.ref(handler)
    del handler
    gc.collect()
    assert reference() is None
    assert all(isinstance(live, logging.Handler) for live in live_handlers())


def test_holding_logging_lock_sees_the_module_lock() -> None:
    """holding_logging_lock() is True while logging holds its module lock around our code (as
    Manager.getLogger() does while it builds a logger, and dictConfig() while it builds handlers)."""
    seen: list[bool] = []

    class Probe(logging.Logger):
        def __init__(self, name: str) -> None:
            seen.append(holding_logging_lock())
            super().__init__(name)

    manager = logging.Manager(logging.RootLogger(logging.WARNING))  # its own, not the process's loggers
    manager.setLoggerClass(Probe)
    manager.getLogger("compat.probe")
    assert seen == [True]
    assert not holding_logging_lock()


def test_released_lets_another_thread_take_a_held_handler_lock() -> None:
    """released() lets go of a handler's reentrant lock however deep this thread holds it, and takes
    it back as deep; a lock this thread does not hold is left alone."""
    lock = logging.StreamHandler(io.StringIO()).lock
    assert lock is not None
    taken: list[bool] = []

    def take() -> None:
        got = lock.acquire(timeout=10)
        taken.append(got)
        if got:
            lock.release()

    with released(lock):  # not held: nothing to do
        pass
    lock.acquire()
    lock.acquire()
    try:
        with released(lock):
            other = threading.Thread(target=take)
            other.start()
            other.join(10)
        assert taken == [True]
        lock.release()
    finally:
        lock.release()
    with pytest.raises(RuntimeError):
        lock.release()  # both levels were taken back, and released once each


def test_queue_listener_thread_and_sentinel_are_recognised() -> None:
    """A QueueListener's thread is found from the thread, and its stop signal told from a record."""
    records: queue.Queue[object] = queue.Queue()
    listener = logging.handlers.QueueListener(records, logging.NullHandler())
    listener.start()
    try:
        assert [t for t in threading.enumerate() if queue_listener_of(t) is listener]
    finally:
        listener.stop()
    idle = logging.handlers.QueueListener(records, logging.NullHandler())  # not started: the queue keeps it
    idle.enqueue_sentinel()
    assert is_listener_sentinel(idle, records.get_nowait())
    assert not is_listener_sentinel(idle, _record())
    assert queue_listener_of(threading.current_thread()) is None


def test_interpreter_shutting_down_only_at_exit(script: Script) -> None:
    """interpreter_shutting_down() is False while the program runs and True in its atexit hooks."""
    assert not interpreter_shutting_down()
    status, stdout, stderr = finish(script("compat_exit.py"))
    assert (status, stdout.splitlines()) == (0, ["running False", "at exit True"]), stderr


def _in_the_package_on_behalf_of_the_caller() -> None:
    check_host("http://example.invalid")  # segment_logging frames between here and warnings.warn()


def test_warn_from_caller_names_the_first_frame_outside_the_package() -> None:
    """warn_from_caller() names the first caller outside segment_logging however deep the package's
    own frames go (skip_file_prefixes from 3.12, a frame walk before)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_from_caller("direct", UserWarning)
        line = sys._getframe().f_lineno - 1
        _in_the_package_on_behalf_of_the_caller()
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)
    inner = _in_the_package_on_behalf_of_the_caller.__code__
    assert (caught[1].filename, caught[1].lineno) == (__file__, inner.co_firstlineno + 1)


@pytest.mark.parametrize("cls", [Track, Identify, Page, Screen, Group, Alias], ids=lambda cls: cls.__name__)
def test_message_slots_are_built_as_on_311(cls: type) -> None:
    """Every message class's __slots__ holds only its own fields and it has no stray __weakref__
    (Python 3.10's dataclass(slots=True) repeats inherited slots and keeps one)."""
    inherited = {name for base in cls.__mro__[1:] for name in vars(base).get("__slots__", ())}
    assert not inherited & set(vars(cls)["__slots__"])
    assert "__weakref__" not in vars(cls)


def test_slots_fixed_rebuilds_a_dataclass_hierarchy() -> None:
    """slots_fixed() gives a slotted dataclass subclass only its own slots; it still works as one."""

    @slots_fixed
    @dataclasses.dataclass(slots=True)
    class Base:
        a: int = 0

    @slots_fixed
    @dataclasses.dataclass(slots=True)
    class Child(Base):
        b: int = 0

    child = Child(a=1, b=2)
    assert vars(Child)["__slots__"] == ("b",)
    assert (child.a, child.b, child) == (1, 2, Child(a=1, b=2))
    assert not hasattr(child, "__weakref__")
    assert not hasattr(child, "__dict__")
    assert Child.__qualname__.endswith("<locals>.Child")


def test_threading_lock_release_is_one_c_call() -> None:
    """_sync's signal-safe flags rely on threading.Lock being the C lock of _thread: releasing it is one
    C call, which a signal handler cannot interrupt halfway."""
    lock = threading.Lock()
    assert type(lock) is _thread.LockType
    assert isinstance(lock.release, types.BuiltinMethodType)
