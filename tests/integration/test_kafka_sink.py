"""The Kafka sink delivers a flush's records in record batches, partitioned as Kafka would.

Keyed records land on the partition Kafka's default partitioner gives their key (the
creator's, for score changes and re-keyed events, which is what keeps them beside the
creator's state); unkeyed ones anywhere; timestamps given are kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from streams.settings import Settings
from streams.sinks.base import OutboundRecord
from streams.sinks.kafka import KafkaSink

if TYPE_CHECKING:
    from tests.integration.conftest import ReadTopic

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
