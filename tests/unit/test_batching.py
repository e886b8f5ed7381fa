"""The batch-ingest pieces that need no broker: queue hand-over, records, selection, acking."""

from __future__ import annotations

import asyncio

import faust
import pytest
from faust.types import TP, ConsumerMessage, Message

from streams import batching
from streams.app import faust_config
from streams.batching import BatchConsumer, BatchIngest, BatchTransport
from streams.codec import RawRecord
from streams.settings import Settings


def message(offset: int, *, topic: str = "posts", value: bytes | None = b"{}") -> Message:
    return ConsumerMessage(
        topic, 2, offset, 1_700_000_000.5, 0, [], b"c1", value, None, 2, 2, TP(topic, 2)
    )


async def test_take_joins_queued_fetches_and_splits_at_the_limit() -> None:
    ingest = BatchIngest(frozenset({"posts"}), max_pending=4)
    for start in (0, 3, 6):
        await ingest.put([message(o) for o in range(start, start + 3)])
    assert [m.offset for m in await ingest.take(5)] == [0, 1, 2, 3, 4]
    # The rest of the split fetch comes first, then whatever else is queued.
    assert [m.offset for m in await ingest.take(100)] == [5, 6, 7, 8]
    await ingest.put([message(o) for o in range(9, 13)])
    assert [m.offset for m in await ingest.take(3)] == [9, 10, 11]
    assert [m.offset for m in await ingest.take(3)] == [12]


async def test_a_full_queue_blocks_the_producer_side() -> None:
    ingest = BatchIngest(frozenset({"posts"}), max_pending=1)
    await ingest.put([message(0)])
    put = asyncio.ensure_future(ingest.put([message(1)]))
    await asyncio.sleep(0.01)
    assert not put.done()
    assert [m.offset for m in await ingest.take(1)] == [0]
    await asyncio.wait_for(put, 1.0)
    assert [m.offset for m in await ingest.take(1)] == [1]


async def test_waiting_records_are_bounded_not_only_fetches() -> None:
    ingest = BatchIngest(frozenset({"posts"}), max_pending=8, max_pending_records=5)
    await ingest.put([message(o) for o in range(4)])
    put = asyncio.ensure_future(ingest.put([message(o) for o in range(4, 7)]))
    await asyncio.sleep(0.01)
    assert not put.done() and ingest.pending_records == 4  # 4 + 3 would pass 5
    assert [m.offset for m in await ingest.take(2)] == [0, 1]
    await asyncio.wait_for(put, 1.0)  # 2 + 3 fit
    assert ingest.pending_records == 5
    assert [m.offset for m in await ingest.take(100)] == [2, 3, 4, 5, 6]
    # With nothing waiting, one fetch goes in however big: the consumer never deadlocks.
    await asyncio.wait_for(ingest.put([message(o) for o in range(7, 20)]), 1.0)
    assert len(await ingest.take(100)) == 13 and ingest.pending_records == 0


@pytest.mark.parametrize(
    ("topics", "pending", "error"),
    [(frozenset(), 1, "at least one topic"), (frozenset({"posts"}), 0, "max_pending")],
)
def test_bad_ingest_settings_are_rejected(topics: frozenset[str], pending: int, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        BatchIngest(topics, max_pending=pending)


async def test_take_rejects_a_non_positive_limit() -> None:
    with pytest.raises(ValueError, match="max_records"):
        await BatchIngest(frozenset({"posts"})).take(0)


def test_batch_url_swaps_the_scheme() -> None:
    assert batching.batch_url("kafka://h1:9092") == "kafka+batch://h1:9092"
    assert batching.batch_url("h2:9093") == "kafka+batch://h2:9093"


def test_messages_become_raw_records() -> None:
    records = batching.to_records([message(7), message(8, topic="orders", value=None)])
    assert records == [
        RawRecord("posts", 2, 7, b"c1", b"{}", 1_700_000_000_500),
        RawRecord("orders", 2, 8, b"c1", b"", 1_700_000_000_500),
    ]


def test_the_batch_transport_is_used_for_consuming_only() -> None:
    config = faust_config(Settings(kafka_bootstrap_servers="b1:9092,b2:9092"))
    assert [str(u) for u in config["broker_consumer"]] == [
        "kafka+batch://b1:9092",
        "kafka+batch://b2:9092",
    ]
    app = faust.App("test-batching", **config)
    assert isinstance(app.transport, BatchTransport)
    assert BatchTransport.Consumer is BatchConsumer
    assert [str(u) for u in app.conf.broker_producer] == ["kafka://b1:9092", "kafka://b2:9092"]


async def test_stale_messages_are_dropped_and_processed_ones_acked() -> None:
    app = faust.App("test-batching-ack", broker="kafka+batch://localhost:9092")
    app.flow_control.resume()
    old, new = message(1), message(2)
    old.generation_id = app.consumer_generation_id - 1
    new.generation_id = app.consumer_generation_id
    kept = batching.current(app, [old, new])
    assert kept == [new]

    # What subscribing an agent to the topic does: its offsets are committed on ack.
    app.topics.acking_topics.add("posts")
    consumer = app.consumer
    assert isinstance(consumer, BatchConsumer)
    # Never started, so nothing else will close the loop of its (unstarted) client thread.
    consumer._thread.thread_loop.close()
    batching.track(consumer, kept)
    assert new.tracked and new in consumer.unacked
    batching.ack(consumer, kept)
    assert new.acked and new not in consumer.unacked


async def test_messages_taken_during_a_rebalance_wait_for_it_then_go_or_are_dropped() -> None:
    """Dropping a current message leaves a gap no commit passes (the fault suite's stalled
    partitions); processing it during a recovery reads a state not yet recovered."""
    app = faust.App("test-batching-ready", broker="kafka+batch://localhost:9092")
    app.consumer._thread.thread_loop.close()  # type: ignore[attr-defined]
    app.flow_control.resume()
    msg = message(5)
    msg.generation_id = app.consumer_generation_id
    assert await batching.when_ready(app, [msg]) == [msg]

    app.rebalancing = True  # assignment and recovery under way
    waiting = asyncio.ensure_future(batching.when_ready(app, [msg], poll_s=0.01))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    app.rebalancing = False
    assert await asyncio.wait_for(waiting, 1) == [msg]

    app.flow_control.suspend()
    waiting = asyncio.ensure_future(batching.when_ready(app, [msg], poll_s=0.01))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    app.consumer_generation_id += 1  # the rebalance moved on: the message is stale
    assert await asyncio.wait_for(waiting, 1) == []


async def test_while_not_ready_a_fetch_is_queued_without_waiting_for_room() -> None:
    ingest = BatchIngest(frozenset({"posts"}), max_pending=1)
    await ingest.put([message(0)])
    await asyncio.wait_for(ingest.put([message(1)], wait_for_room=False), 1)
    blocked = asyncio.ensure_future(ingest.put([message(2)]))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert [m.offset for m in await ingest.take(10)] == [0, 1]
    await asyncio.wait_for(blocked, 1)


def test_batch_sizer_grows_under_a_backlog_and_shrinks_to_the_target() -> None:
    sizer = batching.BatchSizer(cap=50_000, target_s=5.0)
    assert sizer.limit == 1000
    # Full batches well within the target: the limit doubles, up to the cap.
    seen = []
    for _ in range(8):
        sizer.observe(sizer.limit, 0.5)
        seen.append(sizer.limit)
    assert seen == [2000, 4000, 8000, 16000, 32000, 50_000, 50_000, 50_000]
    # A batch over the target: down to what would have fitted.
    sizer.observe(50_000, 10.0)
    assert sizer.limit == 25_000
    # Near the target: no doubling past what fits.
    sizer.observe(25_000, 4.0)
    assert sizer.limit == 31_250
    # Batches that were not full (the worker keeps up) say nothing about bigger ones.
    sizer.observe(10, 0.01)
    assert sizer.limit == 31_250
    # ... unless even they took too long; never below the floor.
    sizer.observe(5_000, 60.0)
    assert sizer.limit == 1000


def test_batch_sizer_fixed_size_and_small_caps() -> None:
    fixed = batching.BatchSizer(cap=5000, target_s=0)
    fixed.observe(5000, 100.0)
    assert fixed.limit == 5000
    small = batching.BatchSizer(cap=40, target_s=5.0)
    assert small.limit == 40
    small.observe(40, 0.001)
    assert small.limit == 40
    with pytest.raises(ValueError, match="cap"):
        batching.BatchSizer(cap=0, target_s=1.0)
    with pytest.raises(ValueError, match="target_s"):
        batching.BatchSizer(cap=10, target_s=-1.0)


def test_group_instance_id_turns_on_static_membership() -> None:
    assert "consumer_group_instance_id" not in faust_config(Settings())
    config = faust_config(Settings(group_instance_id="scorer-0"))
    assert config["consumer_group_instance_id"] == "scorer-0"
    conf = faust.App("test-static", **config).conf
    assert conf.consumer_group_instance_id == "scorer-0"
    # The member's URL (Faust's assignor checks it) names the instance, not host or port.
    assert str(conf.canonical_url) == "http://scorer-0"


async def test_a_message_from_before_a_rebalance_never_moves_the_read_offset() -> None:
    """The fault suite's kill -9 runs lost events or stalled a partition for good: a fetch
    read across a rebalance recorded its offsets as read after the partitions had been
    sought back, so the re-fetched messages were skipped as re-reads."""
    app = faust.App("test-batching-generation", broker="kafka+batch://localhost:9092")
    consumer = app.consumer
    assert isinstance(consumer, BatchConsumer)
    consumer._thread.thread_loop.close()
    tp = TP("posts", 2)
    app.consumer_generation_id = 7
    fetched_before = message(150)
    fetched_before.generation_id = 6  # fetched in the previous generation
    consumer._read_offset[tp] = 100  # where the new assignment sought the partition
    assert not await consumer._accept(tp, fetched_before)
    assert consumer._read_offset[tp] == 100
    again = message(100)
    again.generation_id = 7
    assert await consumer._accept(tp, again)
