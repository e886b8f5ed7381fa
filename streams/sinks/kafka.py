"""Produces the pipeline's outbound records (score changes, dead letters, re-keyed events).

A flush's records are packed into aiokafka record batches per partition (the
partition Kafka's default partitioner gives the key; a random one for unkeyed
records), sent, and awaited as a whole: per-record `send` costs more than the rest of
the pipeline spends on a record. Batches that fail are retried with backoff, and only
those: records that went through are not produced twice by our own retry. The state
table's changelog (`streams.state_store`) goes out the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from streams import metrics
from streams.partitioning import partitions_for
from streams.settings import Settings
from streams.sinks.base import Backoff, OutboundRecord

log = logging.getLogger(__name__)

#: (key, value, timestamp in ms or None): one record of a batch.
Record = tuple[bytes | None, bytes, int | None]


def build_producer(settings: Settings) -> AIOKafkaProducer:
    """The producer our sinks use, tuned from Settings (acks=all: these records matter)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        linger_ms=settings.producer_linger_ms,
        max_batch_size=settings.producer_max_batch_size,
        client_id=f"{settings.app_id}-sinks",
    )


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (and Faust's `use_partitioner`) picks."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


class Batch:
    """One record batch for one partition, with its records (to build it again for a retry)."""

    __slots__ = ("builder", "partition", "records", "topic")

    def __init__(self, topic: str, partition: int, builder: Any, records: list[Record]) -> None:
        self.topic = topic
        self.partition = partition
        self.builder = builder
        self.records = records


def batches(
    producer: AIOKafkaProducer, topic: str, partition: int, records: Iterable[Record]
) -> Iterator[Batch]:
    """`records` packed into as few batches for one partition as the batch size allows."""
    builder = producer.create_batch()
    kept: list[Record] = []
    for key, value, ts in records:
        # A full batch refuses a record; an empty one takes any (a value larger than the
        # batch size goes alone, as aiokafka sends one).
        if builder.append(key=key, value=value, timestamp=ts) is None:
            yield Batch(topic, partition, builder, kept)
            builder = producer.create_batch()
            kept = []
            builder.append(key=key, value=value, timestamp=ts)
        kept.append((key, value, ts))
    if kept:
        yield Batch(topic, partition, builder, kept)


async def send_batches(
    producer: AIOKafkaProducer, pending: list[Batch], backoff: Backoff, what: str
) -> None:
    """Send every batch and wait for the broker to acknowledge them all; retry the ones
    that fail (rebuilt: a sent builder cannot be sent again), with backoff, for ever."""
    while pending:
        failed, error = await _send(producer, pending)
        if not failed:
            backoff.reset()
            return
        metrics.KAFKA_ERRORS.inc()
        assert error is not None
        await backoff.sleep(log, f"{what}: {len(failed)} batches", error)
        pending = [
            rebuilt
            for b in failed
            for rebuilt in batches(producer, b.topic, b.partition, b.records)
        ]


async def _send(
    producer: AIOKafkaProducer, pending: list[Batch]
) -> tuple[list[Batch], BaseException | None]:
    futures = []
    sent: list[Batch] = []
    failed: list[Batch] = []
    error: BaseException | None = None
    for i, batch in enumerate(pending):
        try:
            futures.append(
                await producer.send_batch(batch.builder, batch.topic, partition=batch.partition)
            )
        except KafkaError as exc:
            # The producer refused to queue (e.g. metadata unavailable): keep the rest for
            # the next attempt instead of queueing behind a broken state.
            failed.extend(pending[i:])
            error = exc
            break
        sent.append(batch)
    results = await asyncio.gather(*futures, return_exceptions=True)
    for batch, result in zip(sent, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, KafkaError | OSError):
                raise result
            failed.append(batch)
            error = result
    return failed, error


class KafkaSink:
    """Writes a batch of records and returns once every one of them is acknowledged."""

    def __init__(self, producer: AIOKafkaProducer, backoff: Backoff | None = None) -> None:
        self._producer = producer
        self._backoff = backoff or Backoff()
        self._partitions: dict[str, tuple[float, list[int]]] = {}

    async def write(self, batch: Sequence[OutboundRecord]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        by_topic: dict[str, list[OutboundRecord]] = {}
        for record in batch:
            by_topic.setdefault(record.topic, []).append(record)
        by_tp: dict[tuple[str, int], list[Record]] = {}
        for topic, records in by_topic.items():
            partitions = await self._partitions_of(topic)
            keyed = [r.key for r in records if r.key is not None]
            picked = iter(partitions_for(keyed, len(partitions)).tolist() if keyed else ())
            for record in records:
                if record.key is None:
                    partition = random.choice(partitions)
                else:
                    partition = partitions[next(picked)]
                by_tp.setdefault((topic, partition), []).append(
                    (record.key, record.value, record.timestamp_ms)
                )
        pending = [
            b
            for (topic, partition), records in by_tp.items()
            for b in batches(self._producer, topic, partition, records)
        ]
        await send_batches(self._producer, pending, self._backoff, "producing records")
        metrics.KAFKA_PRODUCE_SECONDS.observe(time.perf_counter() - started)

    async def _partitions_of(self, topic: str) -> list[int]:
        """The topic's partitions, from the producer's metadata (read again after a while:
        partitions may be added to a topic)."""
        now = time.monotonic()
        known = self._partitions.get(topic)
        if known is not None and now - known[0] < PARTITIONS_TTL_S:
            return known[1]
        while True:
            try:
                found = await self._producer.partitions_for(topic)
            except KafkaError as exc:
                metrics.KAFKA_ERRORS.inc()
                await self._backoff.sleep(log, f"metadata of {topic}", exc)
                continue
            break
        partitions = sorted(found)
        self._partitions[topic] = (now, partitions)
        return partitions


#: How long a topic's partition list is used before the producer's metadata is read again.
PARTITIONS_TTL_S = 60.0
