"""The state table as a flush writes it: all of a flush's values at once, one changelog record each.

Faust writes a changelog record per `table[key] = value`, each through the producer's
per-record path and Faust's wrapping around it, which costs more per creator than
merging and scoring it. A flush here puts its values in the table's store and appends
their changelog records itself: grouped by partition (murmur2 of the key, the
partitioner Faust's `use_partitioner` tables use), packed into aiokafka record
batches, sent, and awaited, before the flush returns and its offsets can be
committed. The table, its changelog topic, compaction and Faust's recovery (and
`streams.batching.ChangelogBulk`, which applies those records a fetch at a time) are
unchanged: the records are the ones Faust would have written, raw key and value.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

from streams import metrics
from streams.partitioning import partitions_for
from streams.sinks.base import Backoff, UnwritableError
from streams.sinks.kafka import Record, batches, partition_for, send_batches

__all__ = ["DictStore", "StateStore", "TableStore", "partition_for"]


class StateStore(Protocol):
    """Where the pipeline reads and writes creators' states."""

    def get(self, key: bytes, /) -> bytes | None: ...

    async def put_many(self, items: Sequence[tuple[bytes, bytes | None]], /) -> None:
        """Write every (key, value); a None value deletes the key."""
        ...

    def __len__(self) -> int: ...


class DictStore(dict[bytes, bytes]):
    """A state store in a dict (unit tests, tools): no changelog."""

    async def put_many(self, items: Sequence[tuple[bytes, bytes | None]]) -> None:
        for key, value in items:
            if value is None:
                self.pop(key, None)
            else:
                self[key] = value


class TableStore:
    """A Faust table written in bulk: its store, and its changelog through our producer."""

    def __init__(
        self,
        table: Any,
        producer: AIOKafkaProducer,
        partitions: int,
        backoff: Backoff | None = None,
    ) -> None:
        self._table = table
        self._producer = producer
        self._partitions = partitions
        self._backoff = backoff or Backoff()

    @property
    def _store(self) -> Any:
        # The table's store: Faust's own writes go through it after the changelog send.
        return self._table.data

    def get(self, key: bytes) -> bytes | None:
        value = self._store.get(key)
        return None if value is None else bytes(value)

    def __len__(self) -> int:
        return len(self._store)

    def keys(self) -> list[bytes]:
        """The keys held now, as a list: flushes may write while the caller goes through them."""
        return [bytes(key) for key in self._store]

    async def put_many(self, items: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Append every item's changelog record, wait until the broker has them all, then
        keep the values (a failed send is retried, only the batches that failed). A None
        value deletes the key: its changelog record is a tombstone, which compaction
        removes, and which recovery applies as a deletion."""
        if not items:
            return
        started = time.perf_counter()
        topic = self._table.changelog_topic.get_topic_name()
        by_partition: dict[int, list[Record]] = {}
        where = partitions_for([key for key, _ in items], self._partitions).tolist()
        for (key, value), partition in zip(items, where, strict=True):
            by_partition.setdefault(partition, []).append((key, value, None))
        pending = [
            b
            for partition, records in by_partition.items()
            for b in batches(self._producer, topic, partition, records)
        ]
        refused = await send_batches(self._producer, pending, self._backoff, "changelog write")
        if refused:
            first = refused[0]
            key = first.record[0] or b""
            raise UnwritableError(
                f"the broker refused {len(refused)} state changelog records for good, so this "
                f"batch cannot be acknowledged; the first, creator {key[:200]!r} "
                f"({len(first.record[1] or b''):,} bytes): "
                f"{type(first.error).__name__}: {first.error}. "
                f"Raise max.message.bytes of {topic!r} (and the producer's max batch size)"
            )
        store = self._store
        for key, value in items:
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
        metrics.CHANGELOG_WRITTEN.inc(len(items))
        metrics.CHANGELOG_WRITE_SECONDS.observe(time.perf_counter() - started)
