"""A Redis that lost its data is written again from the state table, without reading any topic.

The worker writes Redis as differences (`streams.publish`), so a Redis that comes back
empty would stay without the hashes, board entries and memberships of every creator no
later event touches. Each partition of the state table therefore has a marker in Redis
(`Keys.partition_marker`) saying that the creators of that partition have been written
there in full; a Redis that lost its data lost its markers with it. Every few seconds
a worker reads the markers of the partitions it owns (one MGET). For each partition
whose marker is missing it republishes, from its state table, the full card, board
entries and board memberships of every creator it holds there (`previous_known` false,
so the sink writes complete sets), in slices that let the event loop and the flushes
through, and then sets the marker. An operator forces the same by deleting the markers
(`creator-scores republish`). Nothing is written to the state table or to any topic.

Two races are closed here. A flush writes Redis before the table, so a slice that read
a creator's state between the two would write the card before that flush's; flushes and
slices therefore take turns on `exclusive` (the agent holds it around each batch). And
a Redis that loses its data again while a republish runs: the marker is set `pending`
before the first slice and turned `done` only if it is still there (SET XX), so the
next check starts over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from scoring.changes import Published
from scoring.columns import DAY_MS
from scoring.model import score_totals
from scoring.names import UNKNOWN_REGION
from scoring.packed import decode_each
from scoring.params import Params
from scoring.vocab import NONE, Vocabulary
from scoring.window import window_totals
from streams import envelope, metrics
from streams.keys import Keys
from streams.periodic import run_every
from streams.publish import plan
from streams.sinks.base import CreatorSnapshot, SnapshotSink
from streams.sinks.kafka import partition_for
from streams.turns import Exclusive

log = logging.getLogger(__name__)

__all__ = [
    "Cards", "HeldStates", "Republisher", "delete_markers", "full_cards", "marked_done",
    "owned_partitions",
]  # fmt: skip

#: Marker values: every held creator of the partition is in Redis / a republish is under way.
DONE = b"done"
PENDING = b"pending"

#: Creators whose partition is looked up per slice (murmur2 costs microseconds a key);
#: the slice's cards are computed and written only for the creators of missing partitions.
DEFAULT_SLICE = 2000


class HeldStates(Protocol):
    """The state table as the republish reads it (`streams.state_store.TableStore`)."""

    def get(self, key: bytes, /) -> bytes | None: ...

    def keys(self) -> Iterable[bytes]: ...


#: The partitions this worker owns now, or None while it cannot tell (a rebalance, or
#: the table still recovering: its states are not all there yet).
Ownership = Callable[[], "frozenset[int] | None"]


@dataclass(frozen=True, slots=True)
class Cards:
    """The full Redis writes of some creators, and how many states could not be read."""

    snapshots: list[CreatorSnapshot]
    unreadable: list[str]


def full_cards(
    ids: Sequence[str],
    values: Sequence[bytes],
    params: Params,
    vocab: Vocabulary,
    updated_at_ms: int,
) -> Cards:
    """The complete card of each creator from its state-table value, as a first card is
    published: every hash field and every board (`CreatorSnapshot.previous_known` false).

    The cards are those of the current model, whatever model a state's last card was
    scored with (the next flush of such a creator announces the model as usual). A value
    that cannot be decoded is left out and named in `unreadable`.
    """
    states: list[bytes] = []
    kept: list[str] = []
    unreadable: list[str] = []
    for creator_id, value in zip(ids, values, strict=True):
        try:
            _, state = envelope.unwrap(value)
        except ValueError:
            unreadable.append(creator_id)
            continue
        states.append(state)
        kept.append(creator_id)
    if not states:
        return Cards([], unreadable)
    heads, columns, problems = decode_each(states, vocab)
    corrupt = {int(problem.partition(":")[0]) for problem in problems}
    unreadable.extend(kept[i] for i in sorted(corrupt))
    totals = window_totals(columns, heads.watermark // DAY_MS, vocab, params)
    scores = score_totals(totals, params)
    regions = heads.region.tolist()
    watermarks = heads.watermark.tolist()
    published = [
        Published(
            creator_id=creator_id,
            new=j,
            old=-1,
            region=UNKNOWN_REGION if regions[j] == NONE else vocab.name(regions[j]),
            old_region=None,
            as_of_ms=watermarks[j],
        )
        for j, creator_id in enumerate(kept)
        if j not in corrupt
    ]
    return Cards(plan(scores, published, vocab, updated_at_ms).snapshots, unreadable)


class Republisher:
    """Checks the markers of the partitions this worker owns and republishes missing ones."""

    def __init__(
        self,
        states: HeldStates,
        partitions: int,
        owned: Ownership,
        client: Redis,
        sink: SnapshotSink,
        keys: Keys,
        params: Params,
        *,
        clock: Callable[[], float] = time.time,
        slice_size: int = DEFAULT_SLICE,
    ) -> None:
        if slice_size < 1:
            raise ValueError(f"slice_size must be at least 1, got {slice_size}")
        self._states = states
        self._partitions = partitions
        self._owned = owned
        self._redis = client
        self._sink = sink
        self._keys = keys
        self._params = params
        self._clock = clock
        self._slice = slice_size
        # Names seen in held states; grows like the pipeline's own vocabulary.
        self._vocab = Vocabulary()
        #: Held by each flush and by each slice of a republish, so the two take turns.
        self.exclusive = Exclusive()

    async def run(self, interval_s: float) -> None:
        """Check every `interval_s` seconds until cancelled; a Redis that does not answer is
        said once, when it starts and when it stops failing, not at every check."""
        await run_every(interval_s, self.check, "Redis repair check", log)

    async def check(self) -> int | None:
        """One check: republish the owned partitions whose marker is missing.

        Returns how many creators were republished, or None when nothing was to be done
        (every marker there, or ownership unknown) or the republish stopped half-way (a
        rebalance, or Redis losing its data again): the next check takes it up.
        """
        owned = self._owned()
        if not owned:
            return None
        missing = owned - await marked_done(self._redis, self._keys, owned)
        if not missing:
            return None
        return await self.republish(missing)

    async def republish(self, partitions: frozenset[int]) -> int | None:
        """Write every held creator of `partitions` to Redis in full, then set their markers."""
        started = time.perf_counter()
        marker = self._keys.partition_marker
        await self._redis.mset({marker(p): PENDING for p in partitions})
        keys = list(self._states.keys())
        written = 0
        unreadable = 0
        n = self._partitions
        for start in range(0, len(keys), self._slice):
            chunk = keys[start : start + self._slice]
            async with self.exclusive.turn():
                owned = self._owned()
                if owned is None or not partitions <= owned:
                    log.info("Redis repair of partitions %s stopped by a rebalance after %d "
                             "creators; the next owner's check takes it up",
                             _spans(partitions), written)  # fmt: skip
                    return None
                ids: list[str] = []
                values: list[bytes] = []
                for key in chunk:
                    if partition_for(bytes(key), n) not in partitions:
                        continue
                    value = self._states.get(key)
                    if value is None:
                        continue  # (a state gone since the keys were listed)
                    ids.append(bytes(key).decode(errors="replace"))
                    values.append(value)
                if ids:
                    cards = full_cards(ids, values, self._params, self._vocab,
                                       int(self._clock() * 1000))  # fmt: skip
                    await self._sink.write(cards.snapshots)
                    written += len(cards.snapshots)
                    unreadable += len(cards.unreadable)
                    for creator_id in cards.unreadable:
                        log.error("state of creator %r is unreadable; not republished", creator_id)
            await asyncio.sleep(0)  # let flushes and heartbeats through between slices
        finished = await self._finish(partitions)
        seconds = time.perf_counter() - started
        metrics.REDIS_REPUBLISHES.inc()
        metrics.REDIS_REPUBLISHED_CREATORS.inc(written)
        if finished != partitions:
            lost = _spans(partitions - finished)
            log.warning("Redis lost its data again while %d creators of partitions %s were "
                        "republished; starting over", written, lost)  # fmt: skip
            return None
        log.info("Redis repair: republished %d creators of partitions %s in %.2fs "
                 "(their markers were missing: Redis lost its data or an operator asked)%s",
                 written, _spans(partitions), seconds,
                 f"; {unreadable} unreadable states skipped" if unreadable else "")  # fmt: skip
        return written

    async def _finish(self, partitions: frozenset[int]) -> frozenset[int]:
        """Turn the pending markers done; those Redis no longer holds stay missing."""
        parts = sorted(partitions)
        async with self._redis.pipeline(transaction=False) as pipe:
            for p in parts:
                pipe.set(self._keys.partition_marker(p), DONE, xx=True)
            replies: list[Any] = await pipe.execute()
        return frozenset(p for p, ok in zip(parts, replies, strict=True) if ok)


async def marked_done(client: Redis, keys: Keys, partitions: Iterable[int]) -> frozenset[int]:
    """The partitions among `partitions` whose marker says Redis holds all their creators."""
    parts = sorted(partitions)
    values = await client.mget([keys.partition_marker(p) for p in parts])
    return frozenset(p for p, v in zip(parts, values, strict=True) if v == DONE)


async def delete_markers(client: Redis, keys: Keys) -> int:
    """Delete every partition marker under the prefix: each worker republishes what it holds
    at its next check. Returns how many markers there were."""
    found = [k async for k in client.scan_iter(match=keys.markers_pattern(), count=1000)]
    if not found:
        return 0
    deleted: int = await client.delete(*found)
    return deleted


def owned_partitions(app: Any, changelog_topic: str) -> frozenset[int] | None:
    """The state-table partitions a Faust worker owns, or None while it rebalances or
    recovers (its table does not hold all their states yet)."""
    if app.rebalancing or app.tables.recovery.in_recovery:
        return None
    return frozenset(
        tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog_topic
    )


def _spans(partitions: Iterable[int]) -> str:
    return ",".join(str(p) for p in sorted(partitions))
