"""A flush's state writes reach the changelog as Faust would have written them, in bulk.

`TableStore.put_many` appends one record per value, on the partition Kafka's default
partitioner picks for the key (as Faust's `use_partitioner` tables do), raw key and
value, and keeps the values in the table's store only once the broker has them all.
A value larger than the batch size goes in a batch of its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from streams.settings import Settings
from streams.sinks.base import Backoff, UnwritableError
from streams.state_store import TableStore, partition_for

if TYPE_CHECKING:
    from tests.integration.conftest import MakeTopics, ReadTopic

pytestmark = pytest.mark.integration

PARTITIONS = 4


@dataclass
class _Topic:
    name: str

    def get_topic_name(self) -> str:
        return self.name


@dataclass
class _Table:
    """The two things `TableStore` uses of a Faust table: its store and changelog topic."""

    changelog_topic: _Topic
    data: dict[bytes, bytes] = field(default_factory=dict)


async def _topic(settings: Settings, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()


async def test_values_reach_the_changelog_partitioned_like_faust(
    stack_settings: Settings, unique: str, read_topic: ReadTopic
) -> None:
    topic = f"it-changelog-{unique}"
    await _topic(stack_settings, topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=stack_settings.kafka_bootstrap_servers, max_batch_size=16_384
    )
    await producer.start()
    table = _Table(_Topic(topic))
    store = TableStore(table, producer, PARTITIONS)
    # More than one batch per partition (16 KB batches), values of many sizes, two larger
    # than a batch.
    items = [(f"cr-{i:06d}".encode(), bytes([i % 251]) * (i % 700 + 1)) for i in range(3000)]
    items[10] = (items[10][0], b"x" * 40_000)
    items[11] = (items[11][0], b"y" * 20_000)
    try:
        await store.put_many(items)
        assert table.data == dict(items)
        assert store.get(b"cr-000007") == items[7][1] and len(store) == 3000
        assert sorted(store.keys()) == sorted(key for key, _ in items)
    finally:
        await producer.stop()
    records = await read_topic(topic, 3000)
    assert sorted((r.key, r.value) for r in records) == sorted(items)
    partitioner = DefaultPartitioner()
    for r in records:
        expected = partitioner(r.key, list(range(PARTITIONS)), list(range(PARTITIONS)))
        assert r.partition == expected == partition_for(r.key, PARTITIONS)


async def test_a_deleted_state_is_a_tombstone_in_the_changelog(
    stack_settings: Settings, unique: str, read_topic: ReadTopic
) -> None:
    topic = f"it-changelog-{unique}"
    await _topic(stack_settings, topic)
    producer = AIOKafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await producer.start()
    table = _Table(_Topic(topic))
    store = TableStore(table, producer, PARTITIONS)
    try:
        await store.put_many([(b"cr-1", b"state-1"), (b"cr-2", b"state-2")])
        await store.put_many([(b"cr-1", None)])
        assert table.data == {b"cr-2": b"state-2"} and store.get(b"cr-1") is None
    finally:
        await producer.stop()
    records = await read_topic(topic, 3)
    in_order = sorted(records, key=lambda r: (r.partition, r.offset))
    assert [(r.key, r.value) for r in in_order if r.key == b"cr-1"] == [
        (b"cr-1", b"state-1"), (b"cr-1", None),
    ]  # fmt: skip
    assert {r.partition for r in records if r.key == b"cr-1"} == {
        partition_for(b"cr-1", PARTITIONS)
    }


async def test_a_state_the_changelog_refuses_stops_the_batch_and_keeps_nothing(
    stack_settings: Settings, make_topics: MakeTopics, read_topic: ReadTopic
) -> None:
    """No commit without the changelog: a refused state raises, and the store is untouched
    (the worker then exits without acknowledging the batch, which is redone on restart)."""
    (topic,) = await make_topics(("changelog", PARTITIONS, {"max.message.bytes": "2000"}))
    producer = AIOKafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await producer.start()
    table = _Table(_Topic(topic))
    store = TableStore(table, producer, PARTITIONS, Backoff(initial_s=0.01))
    items = [(f"cr-{i}".encode(), b"s" * 100) for i in range(8)] + [(b"cr-huge", b"H" * 5000)]
    try:
        with pytest.raises(UnwritableError, match=r"b'cr-huge' \(5,000 bytes\).*max.message"):
            async with asyncio.timeout(30):
                await store.put_many(items)
    finally:
        await producer.stop()
    assert table.data == {}
