"""What the pipeline hands to its sinks, and the small protocols sinks implement.

The pipeline knows nothing about Redis commands or Kafka clients: it builds plain
values (a creator's snapshot, records to produce) and awaits `write(batch)` once per
batch per sink. A sink owns its retries: `write` returns only once the whole batch
is stored, so the offsets Faust commits afterwards never cover work that was lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CreatorSnapshot:
    """One creator's new Redis state, as the difference from what Redis already holds.

    Board ids are Redis keys without the prefix (`lb:overall:ALL`), so the state table
    never records a deployment's prefix. `set_boards` holds the boards whose score is new
    or moved; `leave_boards` the boards the creator no longer belongs to; `join_boards` the
    boards it newly belongs to (None: all of `set_boards`), which are added to its
    membership set. With `previous_known` false the pipeline had no record of the
    creator's boards (new state over an existing Redis), so `set_boards` is complete and
    the sink asks Redis which boards to leave. `change` is the creator's score-change record
    (the JSON of the score-changes topic) when the flush emitted one: the sink appends it to
    the Redis change streams the read API serves.
    """

    creator_id: str
    fields: Mapping[str, str]
    set_boards: Mapping[str, float]
    leave_boards: frozenset[str] = frozenset()
    previous_known: bool = True
    join_boards: frozenset[str] | None = None
    change: bytes | None = None


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """A record to produce: score changes, dead letters, re-keyed events, cards (a value of
    None is a tombstone: the key's record is deleted from a compacted topic)."""

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


class UnwritableError(RuntimeError):
    """Records the broker refused for good and that cannot be dead-lettered either (or state
    changes: a changelog record is never dropped). The batch must not be acknowledged."""


class SnapshotSink(Protocol):
    """Where creator snapshots go (Redis)."""

    async def write(self, batch: Sequence[CreatorSnapshot]) -> None: ...


class RecordSink(Protocol):
    """Where outbound records go (Kafka)."""

    async def write(self, batch: Sequence[OutboundRecord]) -> None: ...


@dataclass
class Backoff:
    """Exponential backoff with jitter for retry-forever sinks."""

    initial_s: float = 0.05
    max_s: float = 5.0
    factor: float = 2.0
    _next: float = field(default=0.0, init=False)

    def reset(self) -> None:
        self._next = 0.0

    def next_delay(self) -> float:
        self._next = (
            self.initial_s if self._next == 0.0 else min(self.max_s, self._next * self.factor)
        )
        # Jitter keeps several workers from hammering a recovering server in lockstep.
        return self._next * random.uniform(0.5, 1.0)

    async def sleep(self, log: logging.Logger, what: str, exc: BaseException) -> None:
        delay = self.next_delay()
        log.warning("%s failed (%s: %s); retrying in %.2fs", what, type(exc).__name__, exc, delay)
        await asyncio.sleep(delay)
