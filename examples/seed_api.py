"""The Rust crate `segment`'s documented usage, in Python: HttpClient, Batcher, AutoBatcher.

Run it:  python examples/seed_api.py

With SEGMENT_WRITE_KEY set, the events go to your Segment source (set SEGMENT_HOST
for an EU workspace). Without it, they go to a fake Segment running inside this
script, and what it received is printed.
"""

from __future__ import annotations

from _target import segment_target, show_received

from segment_logging import AutoBatcher, Batcher, HttpClient, Track

write_key, host, fake = segment_target()

# The crate's README: an AutoBatcher sends each batch as it fills up; flush() sends the rest.
client = HttpClient(host)
batcher = Batcher(None)
auto = AutoBatcher(client, batcher, write_key)

msg = Track(user_id="user-1", event="Example", properties={"foo": "bar"})
# MessageTooLarge here means the message is over 32 KB once encoded; in real life you
# would put it in a dead-letter queue. Nothing was sent and `auto` stays usable.
auto.push(msg)
auto.flush()

# The crate's Batcher docs: batch by hand. push() hands the message back when the batch
# is full; send the batch, then push the message again.
manual = Batcher(None, max_batch_size=4)
for i in range(10):
    msg = Track(user_id=f"user-{i}", event="Batched Event", properties={"foo": f"bar-{i}"})
    if manual.push(msg) is not None:
        client.send(write_key, manual.into_batch())
        manual.push(msg)
client.send(write_key, manual.into_batch())

auto.close()  # closes the client too

sizes = [len(batch["batch"]) for batch in fake.batches()] if fake else []
show_received(fake, detail=f" in {len(sizes)} requests of {sizes}")
