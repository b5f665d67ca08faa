"""Batching without logging: ``Batcher``, ``AutoBatcher``, ``AsyncAutoBatcher`` (the Rust crate's API).

The Rust crate ``segment`` batches by hand: a ``Batcher`` says when it is full,
an ``AutoBatcher`` sends full batches inline. These are its twins, built on the
same rules as the handler (limits and encoding from ``_batch``, sending and
retries from ``_transport``), so nothing here decides a size or a retry itself.

Where the crate falls short, these do better: every message carries a
``messageId`` and ``context.library``; sends are retried; the byte budget counts
the whole request body and is not spoiled by a rejected message; a count cap of
at most 2,500 applies; a batch whose send failed but may still succeed is kept
for the next send instead of being lost.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from ._auth import WriteKey
from ._batch import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    Batch,
    body_size,
    encode_context,
    encode_message,
    fits,
)
from ._diagnostics import RateLimit, plural, report
from ._errors import DeliveryError
from ._messages import BaseMessage
from ._options import Settings, integer_option
from ._retry import is_retryable
from ._transport import AsyncHttpClient, Delivery, HttpClient, as_write_key, raise_failures

BATCHER_BATCH_SIZE = 100
"""A Batcher's messages per batch by default: the crate's habit of small, frequent batches (the handler,
which sees its backlog, sends up to 2,500)."""


class Batcher:
    """Accepts messages into a buffer and says when it is full. Pure: no I/O, no threads.

    Not thread-safe; share an :class:`AutoBatcher` between threads instead.

    Args:
        context: a batch-level ``context`` sent with every batch (copied when the
            batcher is made).
        max_batch_size: messages per batch, 1 to 2,500 (default 100).
        max_batch_bytes: cap on the whole request body in bytes, wrapper and
            context included, at most 500,000 (default 475,000).

    Raises:
        ValueError: an option is out of range or of the wrong type; the message names it.
    """

    __slots__ = ("_context", "_pieces", "_pieces_bytes", "max_batch_bytes", "max_batch_size")

    def __init__(
        self,
        context: Mapping[str, Any] | None = None,
        *,
        max_batch_size: int = BATCHER_BATCH_SIZE,
        max_batch_bytes: int = Settings.max_batch_bytes,
    ) -> None:
        if context is not None and not isinstance(context, Mapping):
            raise ValueError(f"context must be a mapping or None, not {type(context).__name__}")
        self._context = encode_context(context)
        smallest = body_size(MAX_MESSAGE_BYTES, 1, self._context)
        if smallest > MAX_BATCH_BYTES:
            raise ValueError(
                f"context is {len(self._context):,} bytes encoded: it leaves no room for a "
                f"{MAX_MESSAGE_BYTES:,}-byte message in a {MAX_BATCH_BYTES:,}-byte request"
            )
        self.max_batch_size = Settings(max_batch_size=max_batch_size).max_batch_size
        # At least room for one message of the largest size (and the context), so a
        # message handed back is always accepted by the emptied batcher.
        self.max_batch_bytes = integer_option(
            "max_batch_bytes", max_batch_bytes, minimum=smallest, maximum=MAX_BATCH_BYTES
        )
        self._pieces: list[bytes] = []
        self._pieces_bytes = 0

    def push(self, message: BaseMessage) -> BaseMessage | None:
        """Add ``message`` to the batch, or hand it back when the batch is full.

        A message without a timestamp is stamped with the time of this call.

        Returns:
            None when the message was accepted; the same message when it would
            take the batch past ``max_batch_size`` or ``max_batch_bytes``: send
            ``into_batch()``, then push it again.

        Raises:
            MessageTooLarge: the message is over 32,000 bytes encoded. Nothing is
                added and the batcher stays usable.
            InvalidMessage: a field holds a circular reference.
            TypeError: ``message`` is not a Track, Identify, Page, Screen, Group or Alias.
        """
        return self._push(message, time.time())

    def _push(self, message: BaseMessage, stamp: float) -> BaseMessage | None:
        """``push()`` with the timestamp to use when the message has none."""
        if not isinstance(message, BaseMessage):
            raise TypeError(
                f"push() takes a Track, Identify, Page, Screen, Group or Alias, not {type(message).__name__}"
            )
        piece = encode_message(message, stamp)  # raises before anything is counted
        if not fits(
            len(self._pieces),
            self._pieces_bytes,
            piece,
            max_size=self.max_batch_size,
            max_bytes=self.max_batch_bytes,
            context=self._context,
        ):
            return message
        self._pieces.append(piece)
        self._pieces_bytes += len(piece)
        return None

    def into_batch(self) -> Batch:
        """Take what is buffered as a :class:`Batch` and start over empty (same context and limits)."""
        batch = Batch(self._pieces, self._context)
        self._pieces = []
        self._pieces_bytes = 0
        return batch

    def _restore(self, batch: Batch) -> None:
        """Put an unsent batch back in front of whatever was pushed since."""
        self._pieces[:0] = batch.pieces
        self._pieces_bytes += sum(map(len, batch.pieces))

    def __len__(self) -> int:
        return len(self._pieces)

    def __repr__(self) -> str:
        size = body_size(self._pieces_bytes, len(self._pieces), self._context)
        return (
            f"<Batcher {len(self._pieces)}/{self.max_batch_size} messages, "
            f"{size:,}/{self.max_batch_bytes:,} bytes>"
        )


def _keep_unsent(exc: BaseException) -> bool:
    """Whether a batch whose send raised ``exc`` may still succeed later (and so is kept)."""
    return not isinstance(exc, DeliveryError) or is_retryable(exc.status)


def _keep_failed_parts(batcher: Batcher, delivery: Delivery) -> None:
    """After a split batch: keep the parts that may still succeed, then raise for the lost and kept."""
    for part, error in reversed(delivery.failures):  # each put back in front: last first keeps order
        if _keep_unsent(error):
            batcher._restore(Batch(part))
    raise_failures(delivery)


def _check_batcher(batcher: object) -> Batcher:
    if not isinstance(batcher, Batcher):
        raise ValueError(f"batcher must be a Batcher, not {type(batcher).__name__}")
    return batcher


class AutoBatcher:
    """A :class:`Batcher` that sends each batch through an :class:`HttpClient` when it fills up.

    Safe to share between threads: one lock orders pushes and sends. A send
    happens inline, in the thread whose push filled the batch.

    When a send fails with an error that may pass (no answer, a 5xx, a 429 once
    the client's retries are spent), the batch is kept and sent first next time;
    when Segment rejects it (another 4xx), it is dropped. Either way the
    ``DeliveryError`` is raised to the caller.

    Args:
        client: the client that sends; ``close()`` closes it.
        batcher: the batcher to fill, with its context and limits.
        write_key: your Segment source's write key (kept out of every repr).

    Raises:
        ValueError: a wrong type for ``client`` or ``batcher``, or an empty ``write_key``.
    """

    def __init__(self, client: HttpClient, batcher: Batcher, write_key: str) -> None:
        if not isinstance(client, HttpClient):
            raise ValueError(f"client must be an HttpClient, not {type(client).__name__}")
        self._client = client
        self._batcher = _check_batcher(batcher)
        self._key: WriteKey = as_write_key(write_key)
        self._lock = threading.Lock()
        self._closed = False

    def push(self, message: BaseMessage) -> None:
        """Buffer ``message``; when the batch is full, send it first (inline) and start a new one.

        Raises:
            MessageTooLarge: the message is over 32,000 bytes encoded; nothing is sent.
            DeliveryError: the full batch could not be sent; ``message`` was not buffered.
            RuntimeError: the AutoBatcher is closed.
        """
        stamp = time.time()  # stamped now, even if a send comes between the two pushes
        with self._lock:
            self._check_open()
            if self._batcher._push(message, stamp) is None:
                return
            self._send()
            handed_back = self._batcher._push(message, stamp)
        if handed_back is not None:  # pragma: no cover - max_batch_bytes always leaves room for one
            raise RuntimeError("an empty batcher refused a message")

    def flush(self) -> None:
        """Send what is buffered; nothing when the buffer is empty.

        Raises:
            DeliveryError: the batch could not be sent (see the class docstring for what is kept).
            RuntimeError: the AutoBatcher is closed.
        """
        with self._lock:
            self._check_open()
            self._send()

    def close(self) -> None:
        """Flush, then close the client. Idempotent.

        Raises:
            DeliveryError: the last batch could not be sent; it is lost. The client is closed anyway.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._send()
            finally:
                self._client.close()

    def _send(self) -> None:
        if not len(self._batcher):
            return
        batch = self._batcher.into_batch()
        try:
            delivery = self._client._deliver(self._key, batch.pieces, batch.context)
        except BaseException as exc:
            if _keep_unsent(exc):
                self._batcher._restore(batch)
            raise
        _keep_failed_parts(self._batcher, delivery)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    def __enter__(self) -> AutoBatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._batcher)} messages buffered"
        return f"<{type(self).__name__} {self._client.host}, {state}>"


class AsyncAutoBatcher:
    """The asyncio twin of :class:`AutoBatcher`, sending through an :class:`AsyncHttpClient`.

    Used as ``async with AsyncAutoBatcher(...) as auto:``, it also flushes every
    ``flush_interval`` seconds from a background task, and flushes and closes
    the client when the block ends. An ``asyncio.Lock`` keeps the interval flush
    and a send triggered by ``push`` from overlapping; the event loop is never
    blocked on I/O.

    Args:
        client: the async client that sends; ``aclose()`` closes it.
        batcher: the batcher to fill, with its context and limits.
        write_key: your Segment source's write key (kept out of every repr).
        flush_interval: seconds between interval flushes inside ``async with`` (default 0.5).

    Raises:
        ValueError: a wrong type for an argument, an empty ``write_key`` or a
            ``flush_interval`` under 0.001.
    """

    def __init__(
        self,
        client: AsyncHttpClient,
        batcher: Batcher,
        write_key: str,
        *,
        flush_interval: float = Settings.flush_interval,
    ) -> None:
        if not isinstance(client, AsyncHttpClient):
            raise ValueError(f"client must be an AsyncHttpClient, not {type(client).__name__}")
        self._client = client
        self._batcher = _check_batcher(batcher)
        self._key: WriteKey = as_write_key(write_key)
        self.flush_interval = Settings(flush_interval=flush_interval).flush_interval
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._failure_reports = RateLimit()
        self._closed = False  # no more pushes
        self._finished = False  # flushed and the client closed: nothing more to do

    def _bind_loop(self) -> None:
        """Use the running event loop; after another one (a second ``asyncio.run()``),
        start over with a lock, an event and a ticker of this loop's own."""
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop() is loop:
            return
        if self._loop is not None:
            self._lock = asyncio.Lock()
            self._stop = asyncio.Event()
            if self._closed:
                self._stop.set()
            self._ticker = None  # it belonged to the other loop, which ran it to its end or dropped it
        self._loop = weakref.ref(loop)

    async def push(self, message: BaseMessage) -> None:
        """Buffer ``message``; when the batch is full, send it first and start a new one.

        Raises:
            MessageTooLarge: the message is over 32,000 bytes encoded; nothing is sent.
            DeliveryError: the full batch could not be sent; ``message`` was not buffered.
            RuntimeError: the AsyncAutoBatcher is closed.
        """
        stamp = time.time()
        self._bind_loop()
        async with self._lock:
            self._check_open()
            if self._batcher._push(message, stamp) is None:
                return
            await self._send()
            handed_back = self._batcher._push(message, stamp)
        if handed_back is not None:  # pragma: no cover - max_batch_bytes always leaves room for one
            raise RuntimeError("an empty batcher refused a message")

    async def flush(self) -> None:
        """Send what is buffered; nothing when the buffer is empty.

        After an ``aclose()`` that did not finish (cancelled by a timeout), this
        still sends what it left buffered.

        Raises:
            DeliveryError: the batch could not be sent (kept when it may still succeed).
            RuntimeError: the AsyncAutoBatcher is closed.
        """
        self._bind_loop()
        async with self._lock:
            if self._finished:
                raise RuntimeError(f"{type(self).__name__} is closed")
            await self._send()

    async def aclose(self) -> None:
        """Stop the interval flush, flush, then close the client. Idempotent once it has finished.

        When it does not finish (cancelled, as by ``asyncio.wait_for(auto.aclose(), 1)``,
        or the last send failed in a way that may pass), what is still buffered is
        kept and reported: call ``aclose()`` (or ``flush()``) again to deliver it.

        Raises:
            DeliveryError: the last batch could not be sent (kept when it may still succeed,
                else lost). The client is closed once nothing is left buffered.
        """
        if self._finished:
            return
        self._bind_loop()
        self._closed = True
        self._stop.set()
        ticker, self._ticker = self._ticker, None
        try:
            if ticker is not None:
                await ticker  # finishes a flush in progress rather than cutting it short
            async with self._lock:
                await self._send()
        finally:
            left = len(self._batcher)
            if left:
                report(
                    logging.WARNING,
                    "segment-logging: %s.aclose() did not finish: %s still buffered; call aclose() "
                    "again to deliver them",
                    type(self).__name__,
                    plural(left, "message"),
                )
            else:
                self._finished = True
                await self._client.aclose()

    async def _send(self) -> None:
        if not len(self._batcher):
            return
        batch = self._batcher.into_batch()
        try:
            delivery = await self._client._deliver(self._key, batch.pieces, batch.context)
        except BaseException as exc:  # CancelledError too: the batch must not vanish with the task
            if _keep_unsent(exc):
                self._batcher._restore(batch)
            raise
        _keep_failed_parts(self._batcher, delivery)

    async def _flush_every_interval(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), self.flush_interval)
            except asyncio.TimeoutError:
                pass
            else:
                return
            try:
                await self.flush()
            except DeliveryError as exc:
                kept = len(self._batcher)
                self._report_failure(
                    logging.WARNING,
                    f"interval flush failed ({exc}); "
                    + (f"{kept} messages kept for the next flush" if kept else "the batch was dropped"),
                )
            except Exception:  # noqa: BLE001 - the ticker must outlive a broken transport
                self._report_failure(logging.ERROR, "unexpected error in the interval flush", exc_info=True)

    def _report_failure(self, level: int, text: str, *, exc_info: bool = False) -> None:
        """Report a failed interval flush, at most once every 10 s (with a count of the others)."""
        due, held = self._failure_reports.ready()
        if due:
            held_back = f" ({held} similar failures since the last report)" if held else ""
            report(level, "segment-logging: %s%s", text, held_back, exc_info=exc_info)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    async def __aenter__(self) -> AsyncAutoBatcher:
        self._bind_loop()
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        if self._ticker is not None:
            raise RuntimeError(f"{type(self).__name__} is already in an async with block")
        self._ticker = asyncio.get_running_loop().create_task(
            self._flush_every_interval(), name="segment-logging interval flush"
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._batcher)} messages buffered"
        return f"<{type(self).__name__} {self._client.host}, {state}>"
