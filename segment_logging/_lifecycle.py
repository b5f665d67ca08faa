"""Every hook the library sets on the process, in one place: exit, SIGTERM, fork, multiprocessing.

What happens to queued events when the process ends:

* **Normal exit** (``sys.exit``, end of the main module, an uncaught exception).
  Two ``atexit`` hooks. The first, registered with the first queue, flushes every
  queue; it runs before the hooks the application registered before configuring
  logging, so those see their events delivered. The second, registered when
  ``segment_logging`` is imported, runs after the application's later hooks:
  it flushes again what they logged and closes the queues that no logging
  handler owns. ``logging.shutdown()`` (registered when ``logging`` was
  imported, so it runs last) closes the handlers, which delivers whatever a
  ``MemoryHandler`` flushed into them on its way out. All of it shares one
  deadline per queue: ``shutdown_timeout`` from the moment exit began.
* **SIGTERM** with no handler of the application's (the default action would
  kill the process at once): the library's handler delivers what every queue
  holds within ``shutdown_timeout``, then restores the default and raises
  SIGTERM again, so the process still dies of SIGTERM (status 143). A handler the
  application or its server installs later replaces it; servers that restore the
  previous handler before re-raising (uvicorn) still reach it. Where a handler
  was there first (a server that set it before the application's logging), it
  is wrapped: on SIGTERM every queue starts sending at once, then that handler
  runs as before.
* **multiprocessing children** (fork, forkserver, spawn) end with ``os._exit``
  after running multiprocessing's finalizers; a finalizer closes every queue.
  **billiard** pool workers (Celery's prefork pool) end with ``os._exit`` before
  any finalizer; their ``on_exit`` callback closes every queue first.
* **fork()**: in the child every queue starts empty (nothing the parent queued is
  sent twice) with new locks, a new connection pool and no worker thread; message
  ids get a seed of their own and reports a reporter thread of their own. A fork
  waits while a client builds its TLS context (OpenSSL's locks must not be held).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING

from . import _diagnostics, _messages, _spool, _transport
from ._clock import monotonic
from ._compat import interpreter_shutting_down, is_listener_sentinel, queue_listener_of
from ._diagnostics import flush_reports, plural, quiet_http_loggers, report

if TYPE_CHECKING:
    from ._backlog import Flush
    from ._worker import EventQueue

_live: weakref.WeakSet[EventQueue] = weakref.WeakSet()
_first_core_seen = False
_mp_hooked = False


def track(queue: EventQueue) -> None:
    """Register a new queue for the exit, signal and fork hooks."""
    global _first_core_seen
    _live.add(queue)
    if not _first_core_seen:
        _first_core_seen = True
        atexit.register(_flush_at_exit)
        quiet_http_loggers()
    _hook_multiprocessing()
    _install_sigterm_handler()


def first_event_here() -> None:
    """A queue starts its worker: the first event in this process (or since fork) for it.

    Forked workers of process managers (Celery's prefork pool) reset SIGTERM to
    its default after the fork; the handler is installed again here.
    """
    _install_sigterm_handler()


def live_queues() -> list[EventQueue]:
    """Every queue not yet garbage-collected, oldest first."""
    return list(_live)


def shutting_down() -> bool:
    """Whether the interpreter is exiting (atexit hooks run): no new thread may start then."""
    return interpreter_shutting_down()


# -- flushing and closing many queues at once ----------------------------------------------


def flush_queues(queues: Iterable[EventQueue], deadline: float | None) -> bool:
    """Flush every queue concurrently until ``deadline`` (a monotonic instant, None: no limit)."""
    started: list[tuple[EventQueue, Flush]] = []
    for queue in queues:
        marker = queue.start_flush()
        if marker is not None:
            started.append((queue, marker))
    done = True
    for queue, marker in started:
        done = queue.await_flush(marker, deadline) and done
    return done


def close_queues(queues: Iterable[EventQueue]) -> None:
    """Close every queue concurrently, each within its own deadline."""
    closing = list(queues)
    for queue in closing:
        queue.begin_close()
    for queue in closing:
        queue.wait_closed()
    flush_reports()


def _begin_exit(queues: Iterable[EventQueue]) -> float:
    """Fix each queue's exit deadline (once) and return the latest of them."""
    latest = monotonic()
    for queue in queues:
        if queue.exit_deadline is None:
            queue.exit_deadline = monotonic() + queue.shutdown_timeout
        queue.limit_to(queue.exit_deadline)
        latest = max(latest, queue.exit_deadline)
    return latest


def _drain_queue_listeners() -> None:
    """Hand a SegmentHandler what running ``QueueListener`` threads have not taken yet.

    A listener nobody stopped leaves records in its queue at exit: its daemon
    thread dies with the process. Records are taken from the queue here, so each
    is handled once, by this thread or the listener's.
    """
    handlers_module = sys.modules.get("logging.handlers")
    if handlers_module is None:
        return
    for thread in threading.enumerate():
        listener = queue_listener_of(thread)
        if not isinstance(listener, handlers_module.QueueListener):
            continue
        if not any(isinstance(handler, _diagnostics.silent_handlers) for handler in listener.handlers):
            continue
        records = listener.queue
        while True:
            try:
                record = records.get_nowait()
            except Exception:  # noqa: BLE001 - queue.Empty, or a queue of another kind giving up
                break
            if is_listener_sentinel(listener, record):
                records.put_nowait(record)  # the listener is being stopped: leave it its signal
                break
            with contextlib.suppress(Exception):
                listener.handle(record)
            if hasattr(records, "task_done"):
                records.task_done()


def _flush_everything() -> bool:
    """Deliver what every queue holds within its exit deadline; wait for those already closing.

    Returns:
        True when everything settled in time.
    """
    _drain_queue_listeners()
    queues = live_queues()
    done = flush_queues(queues, _begin_exit(queues))
    for queue in queues:
        if queue.closing():  # closed on another path that this one interrupted (a finalizer)
            queue.wait_closed()
    return done


def _flush_at_exit() -> None:
    """atexit, registered with the first queue: deliver what is queued before older hooks run."""
    _flush_everything()


def _close_at_exit() -> None:
    """atexit, registered at import: deliver what later hooks logged; close what logging will not."""
    _drain_queue_listeners()
    queues = live_queues()
    flush_queues(queues, _begin_exit(queues))
    close_queues(queue for queue in queues if not queue.closed_by_logging)


atexit.register(_close_at_exit)


def close_all() -> None:
    """Deliver and close every queue within its exit deadline (a process that ends without atexit)."""
    queues = live_queues()
    _begin_exit(queues)
    close_queues(queues)


def flush_all(timeout: float | None = None) -> bool:
    """Deliver what every live handler and processor holds, all at once.

    For the hooks servers offer before a process ends: Celery's
    ``worker_process_shutdown``, gunicorn's ``worker_exit``, an ASGI lifespan's
    shutdown, the end of an AWS Lambda invocation.

    Args:
        timeout: seconds to wait at most; None waits as long as retries last.

    Returns:
        True when everything logged before the call was delivered or given up on in time.
    """
    deadline = None if timeout is None else monotonic() + max(0.0, float(timeout))
    return flush_queues(live_queues(), deadline)


def shutdown(timeout: float | None = None) -> bool:
    """Deliver what every live handler and processor holds, then close them all.

    Events logged afterwards are dropped (counted, and reported once). The exit
    hooks do this by themselves; call it where a process ends without them.

    Args:
        timeout: seconds to wait at most; None gives each its own ``shutdown_timeout``.

    Returns:
        True when nothing was left undelivered.
    """
    queues = live_queues()
    if timeout is not None:
        deadline = monotonic() + max(0.0, float(timeout))
        for queue in queues:
            queue.limit_to(deadline)
    close_queues(queues)
    return all(queue.stats()["queued"] == 0 for queue in queues)


# -- SIGTERM ------------------------------------------------------------------------------


def _install_sigterm_handler() -> None:
    """Watch SIGTERM (see the module doc): deliver and die where nothing else handles it,
    hurry delivery and pass it on where something does."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        elif callable(current) and current is not _on_sigterm and not isinstance(current, _Hurry):
            signal.signal(signal.SIGTERM, _Hurry(current))
    except (ValueError, OSError):  # an embedded interpreter without signal support
        pass


def _on_sigterm(signum: int, frame: object) -> None:
    if not _flush_everything():
        left = sum(queue.stats()["queued"] for queue in live_queues())
        if left:
            report(
                logging.ERROR,
                "segment-logging: SIGTERM: %s not delivered within shutdown_timeout (or logging was "
                "being configured when the signal came)",
                plural(left, "event"),
            )
    for queue in live_queues():
        queue.tell_on_disk()  # with a spool: what waits there for a later process
    flush_reports()
    # Die of SIGTERM as without us (status 143), after delivering.
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
    # Still alive: PID 1 in a container, where the default action does nothing. Deliver what is
    # logged from now on as before (not failed at once for the passed deadline); keep watching.
    for queue in live_queues():
        queue.carry_on()
    signal.signal(signum, _on_sigterm)


class _Hurry:
    """SIGTERM handled by the application or its server: send every event at once from now
    on, then let their handler decide what happens (it runs unchanged).

    A server that shuts down gracefully and then re-raises SIGTERM with the default
    action restored (uvicorn, when it was started before logging was configured)
    gives no later chance to deliver; sending at once leaves only what is logged in
    the last moments before it dies.
    """

    def __init__(self, handler: Callable[[int, FrameType | None], object]) -> None:
        self.handler = handler

    def __call__(self, signum: int, frame: FrameType | None) -> object:
        for queue in live_queues():
            queue.hurry()
        return self.handler(signum, frame)

    def __repr__(self) -> str:
        return f"<segment-logging hurry, then {self.handler!r}>"


# -- fork and multiprocessing -------------------------------------------------------------


def _before_fork() -> None:
    _transport.building.acquire()  # no TLS context is half-built in the child
    _spool.before_fork()  # no thread is inside SQLite: the child would inherit its mutexes locked


def _after_fork_in_parent() -> None:
    _spool.after_fork()
    _transport.building.release()


def _after_fork_in_child() -> None:
    global _mp_hooked
    _spool.after_fork()
    _transport.building.release()
    _messages.reseed_ids()
    _diagnostics.reset_after_fork()
    _mp_hooked = False  # multiprocessing's registries are the child's own after its bootstrap
    for queue in live_queues():
        queue.after_fork_in_child()
    _hook_multiprocessing()


class _Anchor:
    """A weak-referenceable object multiprocessing's after-fork registry can key on."""


_mp_anchor = _Anchor()


def _hook_multiprocessing() -> None:
    """Close every queue when a multiprocessing child ends.

    Its children leave through ``os._exit()``, skipping atexit, after running
    multiprocessing's finalizers. ``Process._bootstrap`` clears those finalizers and
    then runs the after-fork hooks, so the finalizer is registered now (for a queue
    made while the child runs) and again from an after-fork hook (for a queue made
    while the child imported its main module, before the bootstrap).
    """
    global _mp_hooked
    if _mp_hooked:
        return
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None and ("billiard" in sys.modules or "multiprocessing" in sys.modules):
        # A billiard child imports its (multiprocessing's) registries only in its bootstrap,
        # after this fork hook: import them now, so the finalizer gets in before it.
        import multiprocessing.util as mp_util
    if mp_util is None:
        return
    _mp_hooked = True
    _register_mp_finalizer(None)
    mp_util.register_after_fork(_mp_anchor, _register_mp_finalizer)


def _register_mp_finalizer(_: object) -> None:
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _close_in_mp_child, exitpriority=100)
    _hook_billiard_worker()


def _hook_billiard_worker() -> None:
    """Close every queue before a billiard pool worker (Celery's prefork pool) leaves.

    billiard's ``Worker`` ends its process with ``os._exit()`` from inside the
    process's run, before any finalizer; its ``on_exit`` callback (Celery's
    ``worker_process_shutdown``) is the last code that runs. Called from the
    after-fork hook, in the child, before the worker starts.
    """
    process_module = sys.modules.get("billiard.process")
    pool_module = sys.modules.get("billiard.pool")
    if process_module is None or pool_module is None:
        return
    worker = getattr(process_module.current_process(), "_target", None)
    if not isinstance(worker, pool_module.Worker) or getattr(worker, "_segment_logging_hooked", False):
        return
    previous = worker.on_exit

    def on_exit(pid: int, exitcode: int) -> None:
        close_all()
        if previous is not None:
            previous(pid, exitcode)

    worker.on_exit = on_exit
    worker._segment_logging_hooked = True


def _close_in_mp_child() -> None:
    if _in_child_process():  # the main process ends through atexit
        close_all()


def _in_child_process() -> bool:
    """Whether this is a multiprocessing or billiard child (billiard keeps its own process record)."""
    multiprocessing_module = sys.modules.get("multiprocessing")
    if multiprocessing_module is not None and multiprocessing_module.parent_process() is not None:
        return True
    billiard_process = sys.modules.get("billiard.process")
    # billiard has no parent_process(); its main process record alone has no parent pid.
    return (
        billiard_process is not None
        and getattr(billiard_process.current_process(), "_parent_pid", None) is not None
    )


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)
