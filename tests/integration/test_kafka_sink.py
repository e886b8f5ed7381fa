"""The Kafka sink delivers a flush's records in record batches, partitioned as Kafka would.

Keyed records land on the partition Kafka's default partitioner gives their key (the
creator's, for score changes and re-keyed events, which is what keeps them beside the
creator's state); unkeyed ones anywhere; timestamps given are kept.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from streams.settings import Settings
from streams.sinks.base import OutboundRecord
from streams.sinks.kafka import KafkaSink

pytestmark = pytest.mark.integration


async def _read(settings: Settings, topic: str, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(out) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out.extend(records)
    finally:
        await consumer.stop()
    return out


async def test_records_are_delivered_partitioned_by_key(
    stack_settings: Settings, unique: str
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
    got = await _read(stack_settings, changes, 500)
    partitioner = DefaultPartitioner()
    assert sorted((r.key, r.value, r.timestamp) for r in got) == sorted(
        (r.key, r.value, r.timestamp_ms) for r in keyed
    )
    for r in got:
        assert r.partition == partitioner(r.key, list(range(5)), list(range(5)))
    assert sorted(r.value for r in await _read(stack_settings, dead, 50)) == sorted(
        r.value for r in unkeyed
    )
