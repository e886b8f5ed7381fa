"""Batch ingest: hand each Kafka fetch to the pipeline whole instead of message by message.

Faust's consumer delivers every record on its own (a task per message, the conductor,
a channel queue, the stream iterator), which costs far more CPU per event than scoring
it. This module keeps everything else Faust does (subscription, rebalancing, changelog
recovery, tables, offset commits) and replaces only that per-message delivery, for the
topics the scoring agent reads.

How it fits in: `BatchTransport` is the aiokafka transport with `BatchConsumer` as its
consumer, registered under the URL scheme `kafka+batch` (the worker uses it for
`broker_consumer` only). `BatchConsumer._drain_messages` takes each `getmany` result,
sends records of other topics (the table changelog above all, which recovery reads
through the very same consumer) to `ChangelogBulk` or down Faust's normal callback,
and puts the records of the batch topics on the `BatchIngest` queue attached to the app,
waiting while the queue is full. The scoring agent takes batches off that queue, tracks
their messages as unacked, runs the pipeline, and only then acknowledges them; Faust's
own commit logic therefore commits exactly the offsets whose batch reached the sinks
and the table.

Changelog records pay the same per-message price: Faust's recovery takes each one off a
queue in its own loop turn, so a worker replaying its state table spent far longer
recovering than reading the records (bench/commentary.md). `ChangelogBulk` applies a fetch's
changelog records to their table in one `apply_changelog_batch` call and does the
recovery service's bookkeeping for them (offsets, the end-of-recovery signal, standbys
ready), the same steps `Recovery._slurp_changelogs` takes per event.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import AppT, CollectionT, ConsumerT, EventT, Message
from mode import Service, ServiceT

from streams import metrics
from streams.codec import RawRecord

#: URL scheme under which `BatchTransport` is registered (also as a `faust.transports`
#: entry point in pyproject.toml).
SCHEME: Final = "kafka+batch"

#: Fetches that may wait for the pipeline before the consumer stops fetching.
DEFAULT_MAX_PENDING: Final = 8
#: Records that may wait for the pipeline (the worker passes its flush cap).
DEFAULT_MAX_PENDING_RECORDS: Final = 20_000


@dataclass
class BatchIngest:
    """The hand-over point between the consumer and the agent, attached to one app.

    Fetched records wait here for the agent, up to `max_pending` fetches and
    `max_pending_records` records (whichever comes first): under a backlog the consumer
    would otherwise fetch ahead as fast as the broker serves, and every record waiting
    is a Faust message object, so memory grew with the backlog, not with the state.
    """

    topics: frozenset[str]
    max_pending: int = DEFAULT_MAX_PENDING
    max_pending_records: int = DEFAULT_MAX_PENDING_RECORDS
    #: Apply table changelog records a fetch at a time (`ChangelogBulk`); False leaves
    #: them to Faust's per-event recovery loop.
    bulk_changelog: bool = True
    #: How long a rebalance or shutdown waits for the batch in flight before abandoning it.
    stop_wait_s: float = 20.0
    queue: asyncio.Queue[list[Message]] = field(init=False)
    #: Set when the batch in flight must be given up unacknowledged (see `BatchConsumer`).
    abandon: asyncio.Event = field(init=False)
    #: The part of a fetch that did not fit in the last batch taken.
    _rest: list[Message] = field(init=False, default_factory=list)
    #: Records queued or in `_rest` (taken batches no longer count).
    pending_records: int = field(init=False, default=0)
    _room: asyncio.Event = field(init=False)

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError("batch ingest needs at least one topic")
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {self.max_pending}")
        if self.max_pending_records < 1:
            raise ValueError(
                f"max_pending_records must be at least 1, got {self.max_pending_records}"
            )
        self.queue = asyncio.Queue()  # bounded by `put`, which may have to exceed the bound
        self.abandon = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    async def put(self, messages: list[Message], *, wait_for_room: bool = True) -> None:
        """Queue a fetch, once the fetches and records already waiting leave room (one fetch
        always fits when nothing waits, however big). Without `wait_for_room` it is queued
        at once: the consumer must not stop fetching while the worker cannot take records
        (a recovery reads the changelog through the same fetches)."""
        while wait_for_room and (
            self.queue.qsize() >= self.max_pending
            or (
                self.pending_records
                and self.pending_records + len(messages) > self.max_pending_records
            )
        ):
            self._room.clear()
            await self._room.wait()
        self.pending_records += len(messages)
        self.queue.put_nowait(messages)

    async def take(self, max_records: int) -> list[Message]:
        """At most `max_records` messages: what is queued now, or the next fetch to arrive.

        Fetches are joined until the limit and split at it; the rest of a split fetch
        comes first next time, so records keep their fetch order.
        """
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, got {max_records}")
        queue = self.queue
        out = self._rest if self._rest else await queue.get()
        while len(out) < max_records and not queue.empty():
            out.extend(queue.get_nowait())
        self._rest = out[max_records:]
        del out[max_records:]
        self.pending_records -= len(out)
        self._room.set()
        return out


@dataclass
class BatchSizer:
    """How many records the next batch may take: more while batches finish in time.

    A batch scores each creator it touches once, however many of its events it holds,
    so under a backlog bigger batches cost less per event (`bench/commentary.md`). But a
    batch in progress delays a rebalance or a shutdown, and redoes its work after a
    crash. The limit therefore doubles after each full batch that took under
    `target_s`, and shrinks to what would have taken `target_s` after one that took
    longer; it stays between `floor` and `cap`. Batches that were not full (the worker
    is keeping up) leave it alone. `target_s` 0 makes every limit `cap`.
    """

    cap: int
    target_s: float
    floor: int = 1000
    limit: int = field(init=False)

    def __post_init__(self) -> None:
        if self.cap < 1:
            raise ValueError(f"cap must be at least 1, got {self.cap}")
        if self.target_s < 0:
            raise ValueError(f"target_s must not be negative, got {self.target_s}")
        self.floor = max(1, min(self.floor, self.cap))
        self.limit = self.floor if self.target_s > 0 else self.cap

    def observe(self, records: int, seconds: float) -> None:
        """Record that a batch of `records` took `seconds`."""
        if self.target_s <= 0 or records <= 0:
            return
        if seconds > self.target_s:
            fitting = int(records * self.target_s / seconds)
            self.limit = max(self.floor, min(self.limit, fitting))
        elif records >= self.limit:
            fitting = int(records * self.target_s / max(seconds, 1e-6))
            self.limit = min(self.cap, 2 * self.limit, max(self.limit, fitting))


_INGESTS: weakref.WeakKeyDictionary[AppT, BatchIngest] = weakref.WeakKeyDictionary()


def attach(app: AppT, ingest: BatchIngest) -> None:
    """Make `app`'s consumer deliver `ingest.topics` to `ingest` (only with `BatchTransport`)."""
    _INGESTS[app] = ingest


def ingest_for(app: AppT) -> BatchIngest | None:
    return _INGESTS.get(app)


def batch_url(url: str) -> str:
    """A broker URL with the batch transport's scheme (`kafka://h:p` -> `kafka+batch://h:p`)."""
    _, sep, rest = url.partition("://")
    return f"{SCHEME}://{rest if sep else url}"


def to_records(messages: Iterable[Message]) -> list[RawRecord]:
    """Faust messages as the pipeline's plain records."""
    return [
        RawRecord(
            m.topic,
            m.partition,
            m.offset,
            m.key,
            # A null value (tombstone) is no event; as empty bytes it is dead-lettered.
            m.value if m.value is not None else b"",
            int(m.timestamp * 1000),
        )
        for m in messages
    ]


def current(app: AppT, messages: Sequence[Message]) -> list[Message]:
    """The messages fetched in the consumer's current generation.

    A message fetched before a rebalance may belong to another worker by now; it is
    left unacked and read again from the committed offset by whoever owns its partition.
    """
    generation = app.consumer_generation_id
    return [m for m in messages if m.generation_id == generation]


def ready(app: AppT) -> bool:
    """Whether the worker may process records now: no rebalance or table recovery under
    way (the state of newly assigned partitions is complete) and the flow is on."""
    return (
        app.flow_control.is_active()
        and not app.rebalancing
        and not getattr(app, "in_recovery", False)
    )


async def when_ready(app: AppT, messages: Sequence[Message], poll_s: float = 0.05) -> list[Message]:
    """`messages` of the current generation, once the worker may process them.

    Messages of the current generation taken while a rebalance or recovery is under way
    are held until it is over, never dropped: the consumer has read past them, so a
    dropped one would never come again, and its offset would be a gap no commit passes
    (the partition stalls) or one a commit skips (its events are lost). Processing them
    at once would be worse: their creators' states may not be recovered yet. Messages
    whose generation ends while they wait are dropped, as `current` drops them.
    """
    while True:
        kept = current(app, messages)
        if not kept or ready(app):
            return kept
        await asyncio.sleep(poll_s)


def track(consumer: ConsumerT, messages: Iterable[Message]) -> None:
    """Count messages as in flight, so a rebalance or shutdown waits for their batch."""
    for message in messages:
        if not message.tracked:
            message.tracked = True
            consumer.track_message(message)


def ack(consumer: ConsumerT, messages: Iterable[Message]) -> None:
    """Acknowledge processed messages: their offsets become committable."""
    for message in messages:
        message.ack(consumer)


log = logging.getLogger(__name__)


class ChangelogBulk:
    """Applies changelog records a fetch at a time, in place of Faust's per-event recovery loop.

    Every record of a table's changelog takes this path, never Faust's queue, so the two
    cannot reorder one partition's records. Per record it does what the recovery loop
    does: skip offsets already applied, advance the partition's active or standby offset,
    and apply the table change; per fetch it then checks, as that loop does after each
    event, whether the actives are complete (then it ends recovery) and whether the
    standbys have caught up.
    """

    def __init__(self, app: AppT) -> None:
        self.app = app
        #: Changelog records applied this way (for the end-of-recovery log line).
        self.applied = 0

    async def apply(self, messages: list[Message]) -> None:
        """Apply `messages` (changelog records of one fetch, in fetch order)."""
        # The recovery service is not part of Faust's TableManagerT interface.
        recovery = cast(Any, self.app.tables).recovery
        tp_to_table = recovery.tp_to_table
        active_tps, standby_tps = recovery.active_tps, recovery.standby_tps
        batches: dict[CollectionT, list[EventT[Any]]] = {}
        now = time.monotonic()
        for message in messages:
            tp = message.tp
            if tp in active_tps:
                offsets = recovery.active_offsets
                recovery._active_events_received_at[tp] = now
            elif tp in standby_tps:
                offsets = recovery.standby_offsets
                recovery._standby_events_received_at[tp] = now
            else:
                # Faust warns and (by a bug it documents) applies such a record to the
                # previous record's table; it is a partition no longer ours: skip it.
                log.warning("changelog record for %s, which is not being recovered", tp)
                continue
            seen = offsets.get(tp)
            if seen is not None and message.offset <= seen:
                continue
            offsets[tp] = message.offset
            table = tp_to_table[tp]
            event = await table.changelog_topic.decode(message)
            if event is None:  # undecodable: Faust's decoder logged it; the offset moves on
                continue
            await table.on_changelog_event(event)
            batches.setdefault(table, []).append(event)
        for table, events in batches.items():
            table.apply_changelog_batch(events)
            self.applied += len(events)
            metrics.CHANGELOG_APPLIED.inc(len(events))
        self._check_done(recovery)

    def _check_done(self, recovery: Any) -> None:
        if recovery.in_recovery and not recovery.need_recovery():
            recovery.flush_buffers()
            recovery._set_recovery_ended()
            log.info("changelog recovery complete (%d records applied in bulk)", self.applied)
            recovery.signal_recovery_end.set()
        tables = cast(Any, self.app.tables)
        standby_ready = recovery._standbys_span is None and tables.standbys_ready
        if not standby_ready and not recovery.standby_remaining_total():
            if recovery._standbys_span is not None:
                recovery._standbys_span.finish()
                recovery._standbys_span = None
            tables.on_standbys_ready()


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering the batch topics' records one fetch at a time.

    A rebalance or a shutdown first waits for the messages in flight to be acknowledged
    (`wait_empty`); Faust waits for ever, which during a Redis or Kafka outage means a
    worker that cannot stop, and that keeps retrying writes for partitions the group has
    meanwhile given to another member. Here it waits `stop_wait_s` at most, then tells
    the agent to abandon its batch unacknowledged (`BatchIngest.abandon`): the batch
    writes nothing more, and whoever owns its partitions next reads it again from the
    committed offsets.
    """

    async def wait_empty(self) -> None:
        ingest = ingest_for(self.app)
        if ingest is None:
            await super().wait_empty()
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ingest.stop_wait_s
        while not self.should_stop and self._unacked_messages:
            await self.commit()
            self._clean_unacked_messages()
            left = deadline - loop.time()
            if not self._unacked_messages or left <= 0:
                break
            await self._wait_for_ack(timeout=min(1.0, left))
            self._clean_unacked_messages()
        if self._unacked_messages:
            log.warning(
                "the batch in flight (%d records) is still not written after %.0fs (are "
                "Redis and Kafka up?); abandoning it unacknowledged: it is processed again "
                "by whoever owns its partitions next",
                len(self._unacked_messages),
                ingest.stop_wait_s,
            )
            ingest.abandon.set()
            self._unacked_messages.clear()
        await self.commit_and_end_transactions()

    async def perform_seek(self) -> None:
        """Seek every partition to its committed offset, including those never committed.

        aiokafka's `seek_to_committed` leaves a partition alone when nothing was committed
        on it yet, so a partition this worker keeps through a rebalance stays at its fetch
        position. The records it fetched before the rebalance and dropped as stale (they
        belong to the old generation) are then never read again, and with no committed
        offset Faust's commit does not notice the gap at the head: those events are lost.
        The batch topics' partitions with no commit go back to their first offset, which
        is where a worker taking them over would start (`auto_offset_reset=earliest`).
        """
        await super().perform_seek()
        ingest = ingest_for(self.app)
        if ingest is None:
            return
        uncommitted = [
            tp
            for tp in self.assignment()
            if tp.topic in ingest.topics and not self._committed_offset.get(tp)
        ]
        if not uncommitted:
            return
        await self._thread.seek_to_beginning(
            *(faust_aiokafka.ensure_aiokafka_TP(tp) for tp in uncommitted)
        )
        for tp in uncommitted:
            self._read_offset[tp] = None

    async def _wait_next_records(self, timeout: float) -> Any:
        """Faust's wait for records, alive to aiokafka while a rebalance holds the flow.

        A worker whose batch was stuck (Redis or Kafka down, the queue full) past the poll
        timeout (`CREATOR_SCORES_MAX_POLL_INTERVAL_S`) leaves the group, as it should. But
        aiokafka rejoins only a consumer that fetches, and Faust stops fetching until the
        rebalance is over: the worker never came back (found by the chaos scenario
        redis-frozen-past-poll). While the flow is held, the consumer therefore tells
        aiokafka every second that it is alive, which lets it rejoin.
        """
        while not self.flow_active and not self.should_stop:
            consumer = cast(Any, self._thread)._consumer
            if consumer is not None:
                with consumer._fetcher._subscriptions.fetch_context():
                    pass
            await self.wait_first(self.can_resume_flow.wait(), timeout=1.0)
        return await super()._wait_next_records(timeout)

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        ingest = ingest_for(self.app)
        if ingest is None:
            # Not set up for batches (a client-only app, a tool): behave like Faust's own.
            await super()._drain_messages(fetcher)
            return
        self.log.info("batch ingest for topics: %s", ", ".join(sorted(ingest.topics)))
        try:
            await self._drain_batches(fetcher, ingest)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
            self.log.info("Broker stopped consumer, shutting down...")
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise
            self.log.info("Consumer shutting down for user cancel.")

    async def _drain_batches(self, fetcher: ServiceT, ingest: BatchIngest) -> None:
        consumer_stopped = cast(Service, self)._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        batch_topics = ingest.topics
        callback = self.callback
        bulk = ChangelogBulk(self.app)
        changelog_topics = self.app.tables.changelog_topics if ingest.bulk_changelog else set()
        while not (consumer_stopped() or fetcher_stopped()):
            self.diag.set_flag(CONSUMER_FETCHING)
            try:
                fetched = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                batch: list[Message] = []
                changes: list[Message] = []
                async for tp, message in fetched:
                    if not await self._accept(tp, message):
                        continue
                    if message.generation_id != self.app.consumer_generation_id:
                        # A rebalance happened while this fetch was being read (`_accept`
                        # and the callbacks await): the partitions were sought back to
                        # their committed offsets, and recording this message as read
                        # would skip those offsets when they come again (lost events, or
                        # an offset that never moves). The rest of the fetch is stale too.
                        break
                    topic = message.topic
                    if topic in batch_topics:
                        batch.append(message)
                    elif topic in changelog_topics:
                        changes.append(message)
                    else:
                        # Anything else: Faust's normal path, unchanged.
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                    self._read_offset[tp] = message.offset
                if changes:
                    await bulk.apply(changes)
                if batch:
                    await self._deliver(ingest, batch)
            finally:
                self.diag.unset_flag(CONSUMER_FETCHING)

    #: How long a recovering changelog partition may go without a record before
    #: `_mend_recovery` compares its position with what was applied.
    RECOVERY_STALL_S: ClassVar[float] = 3.0

    @Service.task
    async def _mend_recovery(self) -> None:
        """Read again the changelog records a recovery fetched but never applied.

        A rebalance can land between a fetch and its delivery: Faust then drops the
        fetched records (the flow is stopped, or the generation moved on) and seeks the
        stream partitions back to their committed offsets, but not the changelog
        partitions, which have none. A partition taken over from a dead worker was then
        read to its end and applied nowhere, and the recovery waited for its records for
        ever ("No event received for active tp ... since recovery start"). Every second
        during a recovery, a changelog partition that got nothing for `RECOVERY_STALL_S`
        while its position is past the records applied is sought back to the first
        record not applied. Applying a record twice changes nothing (`ChangelogBulk`
        skips offsets it has).
        """
        while not self.should_stop:
            await self.sleep(1.0)
            recovery = cast(Any, self.app.tables).recovery
            # (`app.rebalancing` stays true until the recovery ends; the flow is held only
            # while the group itself rebalances.)
            if not recovery.in_recovery or not self.flow_active:
                continue
            now = time.monotonic()
            started = getattr(recovery, "_recovery_started_at", None) or 0.0
            for tp in list(recovery.active_tps):
                applied = recovery.active_offsets.get(tp)
                highwater = recovery.active_highwaters.get(tp)
                if applied is None or highwater is None or applied >= highwater:
                    continue
                last = recovery._active_events_received_at.get(tp) or started
                if now - last < self.RECOVERY_STALL_S:
                    continue
                if tp not in self.assignment():
                    continue
                try:
                    position = await asyncio.wait_for(self.position(tp), timeout=1.0)
                except Exception:  # not assigned any more, or the broker does not answer
                    continue
                if position is None or position <= applied + 1:
                    continue
                log.warning(
                    "changelog partition %s: read up to offset %d but applied only up to %d "
                    "(records dropped by a rebalance); reading it again from %d",
                    tp, position, applied, applied + 1,
                )  # fmt: skip
                metrics.CHANGELOG_REREAD.inc()
                await self.seek(tp, applied + 1)
                recovery._active_events_received_at[tp] = now

    async def _accept(self, tp: Any, message: Message) -> bool:
        """Faust's read-offset bookkeeping: skip re-reads, record gaps (e.g. compaction).
        A message fetched before the current generation is refused untouched."""
        if message.generation_id != self.app.consumer_generation_id:
            return False
        offset = message.offset
        last = self._read_offset[tp]
        if last is not None and offset < last:
            return False
        if last and offset - last > 1 and self.app.topics.acks_enabled_for(message.topic):
            await self._add_gap(tp, last + 1, offset)
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()
        return True

    async def _deliver(self, ingest: BatchIngest, batch: list[Message]) -> None:
        app = self.app
        # The same gates the conductor applies to every message: no delivery while a
        # rebalance holds the flow, nor while the producer's buffer is over its limit.
        await app.flow_control.acquire()
        await app.producer.buffer.wait_until_ebb()
        if batch[0].generation_id != app.consumer_generation_id:
            return  # fetched before a rebalance: read again from the committed offsets
        # A full queue blocks fetching (back-pressure); a rebalance abandons the batch,
        # which is read again from the committed offsets. While the worker cannot take
        # records (a recovery is under way) the batch waits in the queue without blocking:
        # the recovery's changelog records come through these same fetches.
        await self.wait_first(ingest.put(batch, wait_for_room=ready(app)), self.suspend_flow.wait())


class BatchTransport(faust_aiokafka.Transport):
    """The aiokafka transport with `BatchConsumer`; producers are unchanged."""

    Consumer: ClassVar[type[ConsumerT]] = BatchConsumer


def register() -> None:
    """Make `kafka+batch://` resolvable without relying on installed entry points."""
    TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:BatchTransport")


register()
