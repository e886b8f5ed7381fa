"""Producing, reading back and following a consumer group on the real broker."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streams.settings import Settings

#: A record to produce: (topic, key, value).
Produced = tuple[str, bytes | None, bytes]


async def produce(settings: Settings, records: Sequence[Produced]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(t, v, key=k) for t, k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(
    settings: Settings, topic: str, *, at_least: int = 0, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the topic, waiting up to `timeout` for at least `at_least` of them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Dead letters of hostile records can be near the broker's record limit.
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while True:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                out.extend(records)
            ends = await consumer.end_offsets(parts)
            caught_up = all([await consumer.position(tp) >= ends[tp] for tp in parts])
            if (caught_up and len(out) >= at_least) or time.monotonic() > deadline:
                return out
    finally:
        await consumer.stop()


class GroupWatch:
    """End offsets of topics and a group's committed offsets, asked of the broker."""

    def __init__(self, settings: Settings, topics: Sequence[str]) -> None:
        self.settings = settings
        self.parts = [
            TopicPartition(t, p) for t in topics for p in range(settings.topic_partitions)
        ]
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None
        )
        self._admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)

    async def __aenter__(self) -> GroupWatch:
        await self._consumer.start()
        await self._admin.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def ends(self) -> dict[TopicPartition, int]:
        return dict(await self._consumer.end_offsets(self.parts))

    async def committed(self) -> dict[TopicPartition, int]:
        found = await self._admin.list_consumer_group_offsets(self.settings.app_id)
        return {tp: (found[tp].offset if tp in found else 0) for tp in self.parts}

    async def behind(self, targets: dict[TopicPartition, int] | None = None) -> dict[str, int]:
        """Records not yet committed, by "topic:partition", against `targets` or the log ends."""
        ends = targets if targets is not None else await self.ends()
        committed = await self.committed()
        return {
            f"{tp.topic}:{tp.partition}": ends[tp] - committed[tp]
            for tp in self.parts
            if ends[tp] > committed[tp]
        }


async def wait_caught_up(
    settings: Settings,
    topics: Sequence[str],
    procs: Sequence[subprocess.Popen[bytes]] | subprocess.Popen[bytes],
    timeout: float = 60.0,
) -> None:
    """Wait until the worker's group has committed every record of `topics`."""
    alive = [procs] if isinstance(procs, subprocess.Popen) else list(procs)
    deadline = time.monotonic() + timeout
    async with GroupWatch(settings, topics) as watch:
        while True:
            for proc in alive:
                assert proc.poll() is None, f"worker exited with {proc.returncode}"
            try:
                behind = await watch.behind()
            except KafkaError as exc:
                # A broker moving a coordinator or leader answers with a retriable error.
                if not exc.retriable or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)
                continue
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"worker still behind after {timeout}s: {behind}")
            await asyncio.sleep(0.25)


async def delete_topics(settings: Settings, marker: str) -> None:
    """Delete every topic whose name contains `marker`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if marker in t]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


async def wait_for(
    check: object, *, timeout: float, proc: subprocess.Popen[bytes], what: str
) -> None:
    """Poll an async predicate until true; fail early if the worker died."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not await check():
        assert proc.poll() is None, f"worker exited with {proc.returncode} while waiting for {what}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)
