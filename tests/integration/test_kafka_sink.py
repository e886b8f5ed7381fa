"""The Kafka sink delivers a flush's records in record batches, partitioned as Kafka would.

Keyed records land on the partition Kafka's default partitioner gives their key (the
creator's, for score changes and re-keyed events, which is what keeps them beside the
creator's state); unkeyed ones anywhere; timestamps given are kept.
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from streams.settings import Settings
from streams.sinks.base import Backoff, OutboundRecord, UnwritableError
from streams.sinks.kafka import KafkaSink

if TYPE_CHECKING:
    from tests.integration.conftest import MakeTopics, ReadTopic

pytestmark = pytest.mark.integration


async def test_records_are_delivered_partitioned_by_key(
    stack_settings: Settings, unique: str, read_topic: ReadTopic
) -> None:
    changes, dead = f"it-changes-{unique}", f"it-dead-{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(changes, 5, 1), NewTopic(dead, 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=stack_settings.kafka_bootstrap_servers, max_batch_size=4096
    )
    await producer.start()
    keyed = [
        OutboundRecord(changes, f"cr-{i}".encode(), b"v" * (i % 300), timestamp_ms=1_000_000 + i)
        for i in range(500)
    ]
    unkeyed = [OutboundRecord(dead, None, f"bad-{i}".encode()) for i in range(50)]
    try:
        await KafkaSink(producer).write([*keyed, *unkeyed])
    finally:
        await producer.stop()
    got = await read_topic(changes, 500)
    partitioner = DefaultPartitioner()
    assert sorted((r.key, r.value, r.timestamp) for r in got) == sorted(
        (r.key, r.value, r.timestamp_ms) for r in keyed
    )
    for r in got:
        assert r.partition == partitioner(r.key, list(range(5)), list(range(5)))
    assert sorted(r.value for r in await read_topic(dead, 50)) == sorted(r.value for r in unkeyed)


async def test_a_record_the_broker_refuses_for_good_is_dead_lettered_and_the_rest_written(
    stack_settings: Settings, make_topics: MakeTopics, read_topic: ReadTopic
) -> None:
    # The topic takes messages up to 2,000 bytes: the 5,000-byte record can never be written.
    out, dead = await make_topics(("out", 3, {"max.message.bytes": "2000"}), ("dead", 2, {}))
    producer = AIOKafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await producer.start()
    small = [OutboundRecord(out, f"cr-{i}".encode(), b"s" * 100) for i in range(20)]
    big = OutboundRecord(out, b"cr-big", b"B" * 5000)
    try:
        sink = KafkaSink(producer, Backoff(initial_s=0.01), dead_letter_topic=dead)
        async with asyncio.timeout(30):  # refused records are not retried for ever
            await sink.write([*small[:10], big, *small[10:]])
    finally:
        await producer.stop()
    assert sorted(r.key for r in await read_topic(out, 20)) == sorted(r.key for r in small)
    (letter,) = await read_topic(dead, 1)
    envelope = orjson.loads(letter.value)
    assert letter.key == b"cr-big"
    assert envelope["topic"] == out and envelope["reason"] == "unwritable"
    assert "MessageSizeTooLargeError" in envelope["error"]["message"]
    assert envelope["value_bytes"] == 5000 and base64.b64decode(envelope["value_b64"]) == big.value


async def test_a_refused_dead_letter_stops_the_batch(
    stack_settings: Settings, make_topics: MakeTopics
) -> None:
    out, dead = await make_topics(
        ("out", 1, {"max.message.bytes": "2000"}), ("dead", 1, {"max.message.bytes": "1000"})
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        sink = KafkaSink(producer, Backoff(initial_s=0.01), dead_letter_topic=dead)
        with pytest.raises(UnwritableError, match=r"records refused for good.*MessageSizeTooLarge"):
            await sink.write([OutboundRecord(out, b"k", b"B" * 5000)])
    finally:
        await producer.stop()
