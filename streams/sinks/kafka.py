"""Produces the pipeline's outbound records (score changes, dead letters, re-keyed events).

A batch is handed to aiokafka in one go (every `send` only appends to the
producer's accumulator, so records share request batches) and then awaited as a
whole. Records that fail are retried with backoff, and only those: the ones that
went through are not produced twice by our own retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams import metrics
from streams.settings import Settings
from streams.sinks.base import Backoff, OutboundRecord

log = logging.getLogger(__name__)


def build_producer(settings: Settings) -> AIOKafkaProducer:
    """The producer our sinks use, tuned from Settings (acks=all: these records matter)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        linger_ms=settings.producer_linger_ms,
        max_batch_size=settings.producer_max_batch_size,
        client_id=f"{settings.app_id}-sinks",
    )


class KafkaSink:
    """Writes a batch of records and returns once every one of them is acknowledged."""

    def __init__(self, producer: AIOKafkaProducer, backoff: Backoff | None = None) -> None:
        self._producer = producer
        self._backoff = backoff or Backoff()

    async def write(self, batch: Sequence[OutboundRecord]) -> None:
        pending = list(batch)
        while pending:
            started = time.perf_counter()
            failed, error = await self._send_all(pending)
            if not failed:
                metrics.KAFKA_PRODUCE_SECONDS.observe(time.perf_counter() - started)
                self._backoff.reset()
                return
            metrics.KAFKA_ERRORS.inc()
            assert error is not None
            await self._backoff.sleep(log, f"producing {len(failed)} records", error)
            pending = failed

    async def _send_all(
        self, batch: Sequence[OutboundRecord]
    ) -> tuple[list[OutboundRecord], BaseException | None]:
        futures: list[asyncio.Future[object]] = []
        sent: list[OutboundRecord] = []
        failed: list[OutboundRecord] = []
        error: BaseException | None = None
        send = self._producer.send
        for i, record in enumerate(batch):
            try:
                fut = await send(
                    record.topic, record.value, key=record.key, timestamp_ms=record.timestamp_ms
                )
            except KafkaError as exc:
                # The producer refused to queue (e.g. metadata unavailable): keep the rest for
                # the next attempt instead of queueing behind a broken state.
                failed.extend(batch[i:])
                error = exc
                break
            futures.append(fut)
            sent.append(record)
        results = await asyncio.gather(*futures, return_exceptions=True)
        for record, result in zip(sent, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, KafkaError | OSError):
                    raise result
                failed.append(record)
                error = result
        return failed, error
