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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedVersionError,
)
from aiokafka.partitioner import murmur2

from streams import metrics
from streams.codec import UNWRITABLE, dead_letter_key, refused_value
from streams.partitioning import partitions_for
from streams.settings import Settings
from streams.sinks.base import Backoff, OutboundRecord, UnwritableError

log = logging.getLogger(__name__)

#: (key, value, timestamp in ms or None): one record of a batch.
Record = tuple[bytes | None, bytes | None, int | None]


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


#: Produce errors no retry gets past: the record itself (too large, invalid, a timestamp
#: the topic refuses) or its topic (invalid name, not authorised, a policy). Everything
#: else (broker down, leader moving, request timed out) passes, and is retried.
PERMANENT_ERRORS: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
    InvalidTimestampError,
    PolicyViolationError,
    TopicAuthorizationFailedError,
    UnsupportedVersionError,
)


@dataclass(frozen=True, slots=True)
class Refused:
    """A record the broker refused for good, and why."""

    topic: str
    partition: int
    record: Record
    error: BaseException


async def send_batches(
    producer: AIOKafkaProducer, pending: list[Batch], backoff: Backoff, what: str
) -> list[Refused]:
    """Send every batch and wait until the broker has acknowledged or refused each record.

    Failed batches are sent again (rebuilt: a sent builder cannot be sent again): after a
    passing error with backoff, for ever; after a permanent one at once, record by record,
    to find the records at fault. Those come back as `Refused`; every other record is
    written when this returns.
    """
    refused: list[Refused] = []
    while pending:
        failed = await _send(producer, pending)
        if not failed:
            backoff.reset()
            return refused
        again: list[Batch] = []
        passing: BaseException | None = None
        for batch, error in failed:
            if not isinstance(error, PERMANENT_ERRORS):
                again.append(batch)
                passing = error
            elif len(batch.records) == 1:
                refused.append(Refused(batch.topic, batch.partition, batch.records[0], error))
            else:
                again.extend(
                    alone
                    for record in batch.records
                    for alone in batches(producer, batch.topic, batch.partition, [record])
                )
        if passing is not None:
            metrics.KAFKA_ERRORS.inc()
            await backoff.sleep(log, f"{what}: {len(failed)} batches", passing)
        pending = [
            rebuilt for b in again for rebuilt in batches(producer, b.topic, b.partition, b.records)
        ]
    return refused


async def _send(
    producer: AIOKafkaProducer, pending: list[Batch]
) -> list[tuple[Batch, BaseException]]:
    futures = []
    sent: list[Batch] = []
    failed: list[tuple[Batch, BaseException]] = []
    for i, batch in enumerate(pending):
        try:
            futures.append(
                await producer.send_batch(batch.builder, batch.topic, partition=batch.partition)
            )
        except KafkaError as exc:
            # The producer refused to queue (e.g. metadata unavailable): keep the rest for
            # the next attempt instead of queueing behind a broken state.
            failed.extend((b, exc) for b in pending[i:])
            break
        sent.append(batch)
    results = await asyncio.gather(*futures, return_exceptions=True)
    for batch, result in zip(sent, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, KafkaError | OSError):
                raise result
            failed.append((batch, result))
    return failed


class KafkaSink:
    """Writes a batch of records and returns once every one of them is acknowledged.

    A record the broker refuses for good (too large for its topic, not authorised, ...)
    is replaced by a dead letter saying so (`dead_letter_topic`); a dead letter that is
    refused in turn, or a refusal without a dead-letter topic, raises `UnwritableError`:
    the batch is then not acknowledged, and the worker stops.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        backoff: Backoff | None = None,
        *,
        dead_letter_topic: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._producer = producer
        self._backoff = backoff or Backoff()
        self._dead_letter_topic = dead_letter_topic
        self._clock = clock
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
        refused = await send_batches(self._producer, pending, self._backoff, "producing records")
        if refused:
            await self._dead_letter(refused)
        metrics.KAFKA_PRODUCE_SECONDS.observe(time.perf_counter() - started)

    async def _dead_letter(self, refused: list[Refused]) -> None:
        """Dead letters for records the broker refused for good (see the class docstring)."""
        dead_topic = self._dead_letter_topic
        first = refused[0]
        if dead_topic is None or any(r.topic == dead_topic for r in refused):
            raise UnwritableError(
                f"{len(refused)} records refused for good; the first to {first.topic!r} "
                f"({len(first.record[1] or b''):,} bytes): {type(first.error).__name__}: "
                f"{first.error}"
            )
        now_ms = int(self._clock() * 1000)
        letters = []
        for r in refused:
            key, value, _ = r.record
            letters.append(
                OutboundRecord(
                    dead_topic, dead_letter_key(key), refused_value(r.topic, key, value or b"",
                                                                    r.error, now_ms=now_ms)
                )
            )  # fmt: skip
            metrics.DEAD_LETTERS.labels(r.topic, UNWRITABLE).inc()
        log.error(
            "%d records refused by the broker for good, dead-lettered to %r instead; the "
            "first to %r (%s bytes): %s: %s",
            len(refused), dead_topic, first.topic, f"{len(first.record[1] or b''):,}",
            type(first.error).__name__, first.error,
        )  # fmt: skip
        self._dead_letter_topic = None  # a dead letter refused in turn is not dead-lettered
        try:
            await self.write(letters)
        finally:
            self._dead_letter_topic = dead_topic

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
