"""Segment events from a plain asyncio app, flushed on an interval: AsyncAutoBatcher.

Run it:  python examples/async_app.py

With SEGMENT_WRITE_KEY set, the events go to your Segment source (set SEGMENT_HOST
for an EU workspace). Without it, they go to a fake Segment running inside this
script, and what it received is printed.
"""

from __future__ import annotations

import asyncio

from _target import segment_target, show_received

from segment_logging import AsyncAutoBatcher, AsyncHttpClient, Batcher, Track

FLUSH_INTERVAL = 0.2

write_key, host, fake = segment_target()


async def handle_order(auto: AsyncAutoBatcher, user_id: str, total: float) -> None:
    """A request handler of your app: it records an event and moves on."""
    await auto.push(Track(user_id=user_id, event="Order Completed", properties={"total": total}))


async def other_work(delivered: int) -> None:
    """Stand-in for the rest of your app, which keeps running while the interval flush sends."""
    if fake is None:
        await asyncio.sleep(FLUSH_INTERVAL * 3)
    else:
        # Only to make the printout below certain: wait (off the event loop) for the delivery.
        await asyncio.to_thread(fake.wait_for, delivered)


async def main() -> None:
    client = AsyncHttpClient(host)
    async with AsyncAutoBatcher(client, Batcher(), write_key, flush_interval=FLUSH_INTERVAL) as auto:
        await asyncio.gather(*(handle_order(auto, f"user-{i}", 10.0 * i) for i in range(3)))
        await other_work(delivered=3)  # no flush() call: the interval flush delivers them
        if fake is not None:
            print(f"Delivered by the interval flush, while the app kept running: {len(fake.messages)} events")
        await handle_order(auto, "user-3", 99.0)
    # Leaving the block flushed the last event and closed the client.


asyncio.run(main())

show_received(fake, "Delivered in all, the last when the async with block ended:")
