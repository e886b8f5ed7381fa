"""A flush: Kafka records in, creators merged and scored in bulk, sinks and the state table out.

`Pipeline.process` takes a list of `RawRecord`s (however they were fetched) and:

1. decodes and validates each record once; bad ones are dead-lettered, and events whose
   Kafka key is not their creator id go round the repartition topic;
2. reads the state of every creator the flush touches from the table and lays them
   out in columns (`scoring.packed`), merges the flush's events in (`scoring.merge`)
   and scores every creator that changed, before and after, in one pass
   (`scoring.window`, `scoring.model`);
3. publishes the creators whose card changed: the Redis fields and board entries that
   moved, a record on the score-changes topic saying what changed and why, and the card
   (a tombstone for a creator that left) on the compacted cards topic (`streams.cards`);
4. writes each changed creator's new state to the table, once.

Ordering is what makes at-least-once exact. The sinks are written before the state
table, and the sinks retry until they succeed, so when offsets are committed (after
the table's changelog is flushed) Redis and the output topics already hold the
flush's results. If the worker dies in between, the flush is read again: events the
recovered state already holds come back as duplicates, the rest are applied again,
and the records converge. A creator's published card is always the card of its
stored state (a card is published exactly when it differs from the stored state's),
so the previous card is recomputed from the stored state rather than stored twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import orjson

from scoring.changes import Published, score_changes
from scoring.columns import (
    DAY_MS,
    SEEN,
    Arrivals,
    Columns,
    Heads,
    Ints,
    Rows,
    arrivals,
    distinct,
    overlay,
    place,
    select,
    stack,
)
from scoring.events import Event, EventKind
from scoring.merge import LATE_REASONS, Outcome, merge
from scoring.model import score_totals
from scoring.names import UNKNOWN_REGION
from scoring.packed import NewerFormatError, decode_each, encode, watermark_of
from scoring.params import Params
from scoring.validate import ValidationError
from scoring.vocab import NONE, Vocabulary
from scoring.window import window_totals
from streams import envelope, metrics
from streams.cards import card_records
from streams.codec import (
    RawRecord,
    count_unmapped,
    dead_letter_key,
    dead_letter_value,
    decode,
    frame_rekeyed,
    model_error,
    too_large_error,
    topic_kinds,
    unframe_rekeyed,
    unknown_topic_error,
)
from streams.partitioning import partitions_for
from streams.publish import plan
from streams.row_cache import CachedState, RowCache, cached_columns
from streams.settings import Settings
from streams.sinks.base import CreatorSnapshot, OutboundRecord, RecordSink, SnapshotSink
from streams.state_store import StateStore

log = logging.getLogger(__name__)

__all__ = ["BatchResult", "Pipeline", "PipelineConfig", "RawRecord", "StateStore"]


@dataclass(frozen=True)
class PipelineConfig:
    """The topic names and thresholds the pipeline needs, nothing else from Settings."""

    kinds: Mapping[str, EventKind]
    rekeyed_topic: str
    changes_topic: str
    dead_letter_topic: str
    change_threshold: float
    #: The source topics' partition count: a record on another partition than Kafka's
    #: default partitioner gives its creator id is routed to where the state lives
    #: (0: records are taken where they are, as tools without a broker do).
    partitions: int = 0
    #: A record value over this many bytes is dead-lettered without being parsed.
    max_record_bytes: int = 1_000_000
    #: A creator's state is kept under this many bytes (oldest days dropped first).
    max_state_bytes: int = 900_000
    #: Windows end at the stream time (docs/scoring.md, "Stream time"). False: at each
    #: creator's own newest event, as `scoring.state` scores one creator alone (tools and
    #: tests that compare the bulk path with it).
    stream_time: bool = True
    #: The compacted topic of every creator's current card (`streams.cards`; None: none).
    cards_topic: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, rekeyed_topic: str) -> PipelineConfig:
        return cls(
            kinds=topic_kinds(*settings.source_topics),
            rekeyed_topic=rekeyed_topic,
            changes_topic=settings.changes_topic,
            dead_letter_topic=settings.dead_letter_topic,
            change_threshold=settings.change_threshold,
            partitions=settings.topic_partitions,
            max_record_bytes=settings.max_record_bytes,
            max_state_bytes=settings.max_state_bytes,
            cards_topic=settings.cards_topic,
        )


@dataclass
class BatchResult:
    """What one flush did; the counters also feed the Prometheus metrics."""

    records: int = 0
    dead_letters: int = 0
    rerouted: int = 0
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    creators: int = 0
    states_written: int = 0
    snapshots_written: int = 0
    score_changes: int = 0
    dead_reasons: Counter[str] = field(default_factory=Counter)
    scored_by_topic: Counter[str] = field(default_factory=Counter)
    duplicate_by_topic: Counter[str] = field(default_factory=Counter)
    #: Late events by (topic, reason): `scoring.merge.LATE_REASONS`.
    late_by_topic: Counter[tuple[str, str]] = field(default_factory=Counter)


#: Bytes of record values parsed between two yields to the event loop (a few ms of work).
DECODE_SLICE_BYTES = 2 * 1024 * 1024


def _seen_rows(parts: list[tuple[int, npt.NDArray[np.uint64], Ints]]) -> Rows:
    """(creator index, hashes, days) per creator as `SEEN` rows, sorted by creator, hash."""
    n = sum(len(h) for _, h, _ in parts)
    rows = np.empty(n, SEEN)
    at = 0
    for creator, hashes, days in parts:  # creators ascending, hashes ascending within
        rows["creator"][at : at + len(hashes)] = creator
        rows["h"][at : at + len(hashes)] = hashes
        rows["day"][at : at + len(hashes)] = days
        at += len(hashes)
    return rows


def _seen_of(seen: Rows, creators: Ints) -> list[tuple[npt.NDArray[np.uint64], Ints] | None]:
    """Each of `creators`' seen ids (hashes ascending, days), None for those without."""
    if not len(seen):
        return [None] * len(creators)
    c = seen["creator"]
    starts = np.searchsorted(c, creators, side="left").tolist()
    ends = np.searchsorted(c, creators, side="right").tolist()
    h, d = seen["h"], seen["day"]
    return [(h[a:b], d[a:b]) if b > a else None for a, b in zip(starts, ends, strict=True)]


# An event of the flush and the record it came in.
_Item = tuple[Event, RawRecord]


@dataclass(slots=True)
class _Published:
    """A creator whose new card goes to Redis; freshness is measured from these events."""

    creator_id: str
    arrivals_ms: list[int]
    event_times_ms: list[int]


@dataclass(slots=True)
class _Output:
    """Everything a flush hands on, collected before any of it is handed on."""

    snapshots: list[CreatorSnapshot] = field(default_factory=list)
    records: list[OutboundRecord] = field(default_factory=list)
    #: (key, new value), or (key, None): the creator's state is deleted (a tombstone).
    writes: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    published: list[_Published] = field(default_factory=list)
    #: What the written states hold, decoded: (creator ids, values, heads, rows).
    decoded: list[tuple[list[str], list[bytes], Heads, Columns]] = field(default_factory=list)
    result: BatchResult = field(default_factory=BatchResult)

    def keys(self) -> list[bytes]:
        """The creators whose state this output writes (or deletes)."""
        return [key for key, _ in self.writes]

    def absorb(self, other: _Output) -> None:
        self.snapshots.extend(other.snapshots)
        self.records.extend(other.records)
        self.writes.extend(other.writes)
        self.published.extend(other.published)
        self.decoded.extend(other.decoded)
        r, o = self.result, other.result
        for name in ("dead_letters", "applied", "duplicates", "late", "creators",
                     "states_written", "snapshots_written", "score_changes"):  # fmt: skip
            setattr(r, name, getattr(r, name) + getattr(o, name))
        for name in ("dead_reasons", "scored_by_topic", "duplicate_by_topic", "late_by_topic"):
            getattr(r, name).update(getattr(o, name))


#: A sweep slice re-scored and not yet written (`Pipeline.prepare_sweep`, `Pipeline.commit`).
Prepared = _Output


class Pipeline:
    """Processes record batches into state, Redis snapshots and output records."""

    def __init__(
        self,
        config: PipelineConfig,
        params: Params,
        table: StateStore,
        redis: SnapshotSink,
        kafka: RecordSink,
        *,
        clock: Callable[[], float] = time.time,
        vocab: Vocabulary | None = None,
        cache: RowCache | None = None,
    ) -> None:
        self._config = config
        self._params = params
        self._table = table
        self._redis = redis
        self._kafka = kafka
        self._clock = clock
        self._kinds = config.kinds
        self._vocab = Vocabulary() if vocab is None else vocab
        self._cache = RowCache(0) if cache is None else cache
        self._misrouted_topics: set[str] = set()  # topics already logged (once each)
        #: The stream time: the newest event time of the stream (-1: none seen yet).
        self._stream_ms = -1
        #: When records last reached `process` (`time.monotonic`): how long the stream has
        #: been silent here (`streams.sweep.StreamClock`).
        self.last_records_at = time.monotonic()

    @property
    def cache(self) -> RowCache:
        return self._cache

    @property
    def stream_ms(self) -> int:
        """The stream time in epoch ms (-1 before any event): windows end there (see
        docs/scoring.md, "Stream time"). It moves with this worker's events and with what
        `observe_stream_time` reports from the rest of the stream; it never goes back."""
        return self._stream_ms

    def observe_stream_time(self, ms: int) -> None:
        """The stream has reached `ms` (seen by another worker, or stored)."""
        if ms > self._stream_ms:
            self._stream_ms = ms
            metrics.STREAM_TIME.set(ms / 1000.0)

    async def process(
        self,
        records: Sequence[RawRecord],
        before_flush: Callable[[Iterable[bytes]], Awaitable[None]] | None = None,
    ) -> BatchResult:
        """Run one flush to the end: sinks written, then the state table. `before_flush` is
        awaited with the keys of the creators the flush reads, before it reads them (a
        sweep slice's deferred write may still hold some: `streams.turns`)."""
        started = time.perf_counter()
        if records:
            self.last_records_at = time.monotonic()
        now_ms = int(self._clock() * 1000)
        out = _Output()
        out.result.records = len(records)
        work = await self._decode_all(records, now_ms, out)
        if before_flush is not None:
            await before_flush([creator_id.encode() for creator_id in work])
        self._flush(work, now_ms, out)
        out.result.creators = len(work)
        written_at = await self._write(out)
        self._observe(records, out.result, out.published, written_at,
                      time.perf_counter() - started)  # fmt: skip
        return out.result

    async def sweep(self, keys: Sequence[bytes], *, rescore: bool = False) -> BatchResult:
        """Re-score the creators of `keys` that are due, and write them as a flush does
        (`prepare_sweep`, then `commit`)."""
        return await self.commit(self.prepare_sweep(keys, rescore=rescore))

    async def commit(self, prepared: Prepared) -> BatchResult:
        """Write what `prepare_sweep` made: sinks first, then the state table."""
        if prepared.result.creators:
            await self._write(prepared)
        return prepared.result

    def prepare_sweep(self, keys: Sequence[bytes], *, rescore: bool = False) -> Prepared:
        """Re-score the creators of `keys` that are due; `commit` writes them.

        Due: the stream time has entered a later UTC day than the creator's window ends
        on (its window lost a day: "window_rolled"), or the creator was last scored with
        another model version ("model_rollout"). Each is merged with no events at the
        stream time, scored, published where its card moved, and written back (or, with
        nothing left in its window and no ids to recognise, deleted: a tombstone). A
        creator swept once is not due again until the next day or model, so a slice done
        twice (a restart in the middle of a sweep) changes nothing the second time.
        With `rescore` every creator is due ("rescore": an operator asked for it).

        Pure CPU, no I/O: a sweep computes its next slice while the previous one's writes
        are on their way (`streams.turns`). Slices must not share creators.
        """
        started = time.perf_counter()
        stream_ms = self._stream_ms
        stream_day = stream_ms // DAY_MS if stream_ms >= 0 else -1
        model_version = self._params.model_version
        due: list[str] = []
        values: list[bytes] = []
        causes: dict[str, str] = {}
        for key in keys:
            value = self._table.get(key)
            if value is None:
                continue
            try:
                model, state = envelope.unwrap(value)
                watermark = watermark_of(state)
            except ValueError:
                continue  # unreadable: its next event starts it afresh (and says so)
            if model != model_version:
                cause = "model_rollout"
            elif watermark // DAY_MS < stream_day:
                cause = "window_rolled"
            elif rescore:
                cause = "rescore"
            else:
                continue
            creator_id = key.decode(errors="replace")
            due.append(creator_id)
            values.append(value)
            causes[creator_id] = cause
        out = _Output()
        if due:
            now_ms = int(self._clock() * 1000)
            try:
                self._flush_creators(due, {}, now_ms, out, causes, values)
            except NewerFormatError:
                raise
            except Exception:
                # A bug, not data: the creators stay as they are (their next event or the
                # next sweep scores them), and the worker goes on.
                log.exception("sweep of %d creators failed; they are left as they are", len(due))
                return _Output()
            out.result.creators = len(due)
        metrics.SWEPT.inc(len(keys))
        for cause, count in Counter(causes.values()).items():
            metrics.RESCORED.labels(cause).inc(count)
        log.debug("sweep of %d creators: %d due, %.3fs", len(keys), len(due),
                  time.perf_counter() - started)  # fmt: skip
        return out

    async def _write(self, out: _Output) -> float:
        """Sinks first, then the state table (see the module docstring); returns when the
        sinks were done (for the freshness metrics)."""
        await asyncio.gather(self._redis.write(out.snapshots), self._kafka.write(out.records))
        written_at = self._clock()
        # Only now, with the sinks done, does the state move on (see the module docstring).
        await self._table.put_many(out.writes)
        for written_ids, values, heads, columns in out.decoded:
            self._cache.put_flush(written_ids, values, self._params.model_version, heads, columns)
        for key, value in out.writes:
            if value is None:  # deleted: nothing of it stays cached
                self._cache.drop(key.decode(errors="replace"))
        out.result.states_written = len(out.writes)
        out.result.snapshots_written = len(out.snapshots)
        return written_at

    # ---------------------------------------------------------------- decode / route

    async def _decode_all(
        self, records: Sequence[RawRecord], now_ms: int, out: _Output
    ) -> dict[str, list[_Item]]:
        """Decode and validate every record, routing the ones this worker must not apply.

        Parsing is CPU work on the event loop: every DECODE_SLICE_BYTES of input it yields,
        so heartbeats and the sinks' I/O go on however large the batch or its records.
        """
        kinds = self._kinds
        params = self._params
        rekeyed = self._config.rekeyed_topic
        limit = self._config.max_record_bytes
        work: dict[str, list[_Item]] = {}
        parsed = 0
        for record in records:
            topic = record.topic
            size = len(record.value)
            if size > limit:
                kind_name = "unknown" if topic == rekeyed else kinds.get(topic, "unknown")
                self._dead(record, too_large_error(kind_name, size, limit), now_ms, out)
                continue
            parsed += size
            if parsed > DECODE_SLICE_BYTES:
                parsed = 0
                await asyncio.sleep(0)
            if topic == rekeyed:
                framed = unframe_rekeyed(record.value)
                if isinstance(framed, ValidationError):
                    self._dead(record, framed, now_ms, out)
                    continue
                kind, payload = framed
                decoded = decode(kind, payload, now_ms=now_ms, params=params)
            else:
                source_kind = kinds.get(topic)
                if source_kind is None:
                    self._dead(record, unknown_topic_error(topic), now_ms, out)
                    continue
                kind = source_kind
                decoded = decode(kind, record.value, now_ms=now_ms, params=params)
            if isinstance(decoded, ValidationError):
                self._dead(record, decoded, now_ms, out)
                continue
            creator_id = decoded.creator_id
            if record.key != creator_id.encode() and topic != rekeyed:
                # Its partition was picked by some other key, so this worker may not own the
                # creator's state: send it round, keyed right, to land where the state lives.
                # Records already on the repartition topic are keyed by us and never bounce.
                self._reroute(record, kind, creator_id, "key", out)
                continue
            items = work.get(creator_id)
            if items is None:
                work[creator_id] = [(decoded, record)]
            else:
                items.append((decoded, record))
        if self._config.partitions:
            self._check_partitions(work, out)
        # Counted where they are applied (not on the way round the repartition topic).
        count_unmapped(event for items in work.values() for event, _ in items)
        await asyncio.sleep(0)
        return work

    def _check_partitions(self, work: dict[str, list[_Item]], out: _Output) -> None:
        """Reroute the records that arrived on another partition than their creator's.

        A producer that keys by creator id but does not partition with murmur2 (librdkafka
        clients default to CRC32) puts most creators' records where another worker holds
        their state. Such records go round the repartition topic, whose records this worker
        writes to the creator's partition itself.
        """
        rekeyed = self._config.rekeyed_topic
        ids = list(work)
        expected = partitions_for([c.encode() for c in ids], self._config.partitions).tolist()
        for creator_id, partition in zip(ids, expected, strict=True):
            items = work[creator_id]
            if all(r.partition == partition or r.topic == rekeyed for _, r in items):
                continue
            kept = []
            for event, record in items:
                if record.partition == partition or record.topic == rekeyed:
                    kept.append((event, record))
                else:
                    self._reroute(record, event.kind, creator_id, "partition", out)
            if kept:
                work[creator_id] = kept
            else:
                del work[creator_id]

    def _reroute(
        self, record: RawRecord, kind: EventKind, creator_id: str, reason: str, out: _Output
    ) -> None:
        topic = record.topic
        out.records.append(
            OutboundRecord(
                topic=self._config.rekeyed_topic,
                key=creator_id.encode(),
                value=frame_rekeyed(kind, record.value),
                timestamp_ms=record.timestamp_ms,
            )
        )
        out.result.rerouted += 1
        metrics.EVENTS_REROUTED.labels(topic, reason).inc()
        if reason == "partition" and topic not in self._misrouted_topics:
            self._misrouted_topics.add(topic)
            log.warning(
                "records on topic %r keyed by creator id arrive on another partition than "
                "Kafka's default partitioner (murmur2) gives the key: its producer partitions "
                "differently (librdkafka clients: set partitioner=murmur2_random). They are "
                "routed through %r to the worker that holds the creator, at the cost of a "
                'second write; see creator_scores_events_rerouted_total{reason="partition"}',
                topic,
                self._config.rekeyed_topic,
            )

    def _dead(self, record: RawRecord, error: ValidationError, now_ms: int, out: _Output) -> None:
        out.records.append(
            OutboundRecord(
                topic=self._config.dead_letter_topic,
                key=dead_letter_key(record.key),
                value=dead_letter_value(record, error, now_ms=now_ms),
            )
        )
        out.result.dead_letters += 1
        out.result.dead_reasons[error.problem] += 1
        metrics.DEAD_LETTERS.labels(record.topic, error.problem).inc()

    # ---------------------------------------------------------------- the flush

    def _flush(self, work: Mapping[str, list[_Item]], now_ms: int, out: _Output) -> None:
        """Merge, score and publish every creator of `work` (see the module docstring).

        The model is written for validated events and stored states, so this does not
        fail on data; if it fails all the same (a bug, or something validation let
        through), the creators are taken one by one and only the events of a creator
        that fails alone are dead-lettered, so one bad creator never stops the others.
        """
        if not work:
            return
        try:
            part = _Output()
            self._flush_creators(list(work), work, now_ms, part)
        except NewerFormatError:
            raise  # not this data's fault: a newer release's state; the worker must stop
        except Exception:
            log.exception("flush of %d creators failed; retrying creator by creator", len(work))
        else:
            out.absorb(part)
            return
        for creator_id, items in work.items():
            part = _Output()
            try:
                self._flush_creators([creator_id], work, now_ms, part)
            except NewerFormatError:
                raise
            except Exception as exc:
                log.exception("model failed for creator %r; its events are dead-lettered",
                              creator_id)  # fmt: skip
                part = _Output()
                for event, record in items:
                    self._dead(record, model_error(event.kind, exc), now_ms, part)
            out.absorb(part)

    def _flush_creators(
        self,
        ids: list[str],
        work: Mapping[str, list[_Item]],
        now_ms: int,
        out: _Output,
        causes: Mapping[str, str] | None = None,
        values: Sequence[bytes] | None = None,
    ) -> None:
        """Merge, score and publish `ids`' creators with their events in `work` (none for a
        creator `work` lacks). `causes` names the creators re-scored without events of their
        own (`sweep`): each is scored even if nothing moved, and its change says why.
        `values`: the creators' table values, when the caller has just read them."""
        params, vocab = self._params, self._vocab
        keys = [creator_id.encode() for creator_id in ids]
        heads, columns, models, seen = self._load(ids, keys, values)

        items = [item for creator_id in ids for item in work.get(creator_id, ())]
        owners = [i for i, creator_id in enumerate(ids) for _ in work.get(creator_id, ())]
        new, items, owners = self._arrivals(items, owners, now_ms, out)
        stream_ms = self._stream_ms if self._stream_ms >= 0 and self._config.stream_time else None
        merged = merge(heads, columns, new, vocab, params.window_days, seen, params.seen_days,
                       stream_ms)  # fmt: skip
        outcomes = merged.outcomes.tolist()
        self._count(items, outcomes, out.result)
        if len(merged.heads):
            self.observe_stream_time(int(merged.heads.watermark.max()))

        flags = merged.changed
        if causes:
            flags = flags.copy()
            flags[[i for i, creator_id in enumerate(ids) if creator_id in causes]] = True
        changed = np.flatnonzero(flags)
        if not len(changed):
            return
        # The cards before (where this model can recompute them) and after, scored together.
        comparable = [i for i in changed.tolist() if models[i] == params.model_version]
        before = select(heads, columns, np.array(comparable, dtype=np.int64))
        after = select(merged.heads, merged.columns, changed)
        # Encoded before scoring: a state over the size limit is cut first, and scored as cut.
        states = encode(after[0], after[1], vocab)
        after, states = self._bounded(after, states, [ids[i] for i in changed.tolist()])
        both_heads, both_columns = stack(before, after)
        totals = window_totals(both_columns, both_heads.watermark // DAY_MS, vocab, params)
        scores = score_totals(totals, params)
        published = self._published(ids, changed, comparable, models, both_heads, causes)
        planned = plan(scores, published, vocab, now_ms)
        snapshots = planned.snapshots  # one per publishing creator, in its order
        publishing = [p for p, same in zip(published, planned.unchanged, strict=True) if not same]
        changes = score_changes(scores, publishing, self._config.change_threshold)
        for j, change in enumerate(changes):
            if change is not None:
                value = orjson.dumps(change.to_dict())
                out.records.append(
                    OutboundRecord(
                        topic=self._config.changes_topic,
                        key=change.creator_id.encode(),
                        value=value,
                    )
                )
                # The same record goes to Redis with the card, for the read API's feeds.
                snapshots[j] = replace(snapshots[j], change=value)
                out.result.score_changes += 1
        out.snapshots.extend(snapshots)
        if self._config.cards_topic is not None:
            basis_json = {s.creator_id: s.fields["basis"] for s in snapshots
                          if "basis" in s.fields}  # fmt: skip
            out.records.extend(card_records(self._config.cards_topic, scores, published,
                                            planned.unchanged, vocab, now_ms,
                                            basis_json))  # fmt: skip

        taken: dict[int, list[_Item]] = {}
        for (event, record), owner, outcome in zip(items, owners, outcomes, strict=True):
            if outcome <= Outcome.UPDATED:
                taken.setdefault(owner, []).append((event, record))
        seen_ids = _seen_of(merged.seen, changed)
        values = [
            envelope.wrap(params.model_version, state, kept)
            for state, kept in zip(states, seen_ids, strict=True)
        ]
        # A creator with nothing in its window and no ids left to recognise is deleted (a
        # tombstone, which compaction removes from the changelog); its hash says inactive.
        empty = (~scores.active[len(comparable) :]).tolist()
        gone = {j for j, kept in enumerate(seen_ids) if empty[j] and kept is None}
        if gone:
            held = [j for j in range(len(changed)) if j not in gone]
            held_heads, held_columns = select(after[0], after[1], np.array(held, dtype=np.int64))
            held_ids = [ids[changed[j]] for j in held]
            out.decoded.append((held_ids, [values[j] for j in held], held_heads, held_columns))
        else:
            out.decoded.append(([ids[i] for i in changed.tolist()], values, after[0], after[1]))
        for j, i in enumerate(changed.tolist()):
            out.writes.append((keys[i], None if j in gone else values[j]))
            if planned.unchanged[j]:
                continue  # new facts, the same card: the state moves on, Redis stays as it is
            applied = taken.get(i, [])
            out.published.append(
                _Published(
                    ids[i],
                    [record.timestamp_ms for _, record in applied],
                    [event.event_time_ms for event, _ in applied],
                )
            )

    def _bounded(
        self, after: tuple[Heads, Columns], states: list[bytes], ids: list[str]
    ) -> tuple[tuple[Heads, Columns], list[bytes]]:
        """The creators' states within `max_state_bytes`: an oversized one keeps its newest
        days only (the oldest whole days go first), so that its changelog record can always
        be written; its scores then cover the days kept. Logged and counted."""
        limit = self._config.max_state_bytes
        over = [j for j, state in enumerate(states) if len(state) > limit]
        if not over:
            return after, states
        heads, columns = after
        for j in over:
            cutoff = self._cutoff(heads, columns, j, limit)
            sections = []
            for rows in (columns.posts, columns.tags, columns.orders):
                sections.append(rows[(rows["creator"] != j) | (rows["day"] >= cutoff)])
            columns = Columns(*sections)
            metrics.STATES_TRIMMED.inc()
            log.warning(
                "state of creator %r is %s bytes, over CREATOR_SCORES_MAX_STATE_BYTES (%s): "
                "its records of days before %s are dropped, and its scores cover the days kept",
                ids[j], f"{len(states[j]):,}", f"{limit:,}",
                np.datetime64(int(cutoff), "D"),
            )  # fmt: skip
        return (heads, columns), encode(heads, columns, self._vocab)

    def _cutoff(self, heads: Heads, columns: Columns, j: int, limit: int) -> int:
        """The earliest day creator `j` can keep every record from within `limit` bytes."""
        one_heads, one = select(heads, columns, np.array([j], dtype=np.int64))
        days = distinct(np.concatenate([one.posts["day"], one.tags["day"], one.orders["day"]]))
        lo, hi = 1, len(days)  # keeping from days[hi] (nothing) always fits
        while lo < hi:
            mid = (lo + hi) // 2
            cut = int(days[mid])
            kept = Columns(*(rows[rows["day"] >= cut] for rows in (one.posts, one.tags,
                                                                    one.orders)))  # fmt: skip
            if len(encode(one_heads, kept, self._vocab)[0]) <= limit:
                hi = mid
            else:
                lo = mid + 1
        return int(days[lo]) if lo < len(days) else int(days[-1]) + 1

    def _published(
        self,
        ids: list[str],
        changed: Ints,
        comparable: list[int],
        models: list[str | None],
        heads: Heads,
        causes: Mapping[str, str] | None = None,
    ) -> list[Published]:
        """Where each changed creator's cards are in the flush's scores (the previous ones
        first, for the creators whose previous card this model can recompute)."""
        vocab, model_version = self._vocab, self._params.model_version
        old_at = {c: j for j, c in enumerate(comparable)}
        offset = len(comparable)
        regions = [UNKNOWN_REGION if r == NONE else vocab.name(r) for r in heads.region.tolist()]
        watermarks = heads.watermark.tolist()
        out = []
        for j, i in enumerate(changed.tolist()):
            old = old_at.get(i, -1)
            model = models[i]
            out.append(
                Published(
                    creator_id=ids[i],
                    new=offset + j,
                    old=old,
                    region=regions[offset + j],
                    old_region=None if old < 0 else regions[old],
                    as_of_ms=watermarks[offset + j],
                    old_as_of_ms=-1 if old < 0 else watermarks[old],
                    old_model=model if model is not None and model != model_version else None,
                    cause=causes.get(ids[i], "events") if causes else "events",
                )
            )
        return out

    def _load(
        self, ids: list[str], keys: list[bytes], values: Sequence[bytes | None] | None = None
    ) -> tuple[Heads, Columns, list[str | None], Rows]:
        """The stored state of each creator, the model its last card was scored with
        (None: no state, or one that cannot be read and starts afresh) and the ids it
        recognises after their records left the window (`SEEN` rows). States this worker
        wrote and still holds decoded (`streams.row_cache`) are not decoded again."""
        table, cache = self._table, self._cache
        models: list[str | None] = [None] * len(ids)
        states: list[bytes] = []
        where: list[int] = []
        hits: list[CachedState] = []
        hit_at: list[int] = []
        seen: list[tuple[int, envelope.Hashes, envelope.Days]] = []
        if values is None:
            values = [table.get(key) for key in keys]
        for i, value in enumerate(values):
            if value is None:
                continue
            try:
                model, state, (hashes, days) = envelope.unwrap_seen(value)
            except ValueError as exc:
                log.error("state of creator %r is unreadable (%s); starting it afresh",
                          ids[i], exc)  # fmt: skip
                continue
            if len(hashes):
                seen.append((i, hashes, days))
            entry = cache.get(ids[i], value)
            if entry is not None:
                models[i] = entry.model_version
                hits.append(entry)
                hit_at.append(i)
                continue
            models[i] = model
            states.append(state)
            where.append(i)
        heads, columns, problems = decode_each(states, self._vocab)
        for problem in problems:
            at, _, why = problem.partition(": ")
            i = where[int(at)]
            log.error("state of creator %r is corrupt (%s); starting it afresh", ids[i], why)
            models[i] = None
            seen = [s for s in seen if s[0] != i]
        heads, columns = place(heads, columns, np.array(where, dtype=np.int64), len(ids))
        if hits:
            cached = cached_columns(hits, np.array(hit_at, dtype=np.int64), len(ids))
            heads, columns = overlay((heads, columns), cached, np.array(hit_at, dtype=np.int64))
        return heads, columns, models, _seen_rows(seen)

    def _arrivals(
        self, items: list[_Item], owners: list[int], now_ms: int, out: _Output
    ) -> tuple[Arrivals, list[_Item], list[int]]:
        """The flush's events as rows; an event the model refuses is dead-lettered alone."""
        vocab = self._vocab
        try:
            return arrivals([(o, e) for o, (e, _) in zip(owners, items, strict=True)], vocab), \
                items, owners  # fmt: skip
        except ValueError:
            pass
        kept_items: list[_Item] = []
        kept_owners: list[int] = []
        for owner, (event, record) in zip(owners, items, strict=True):
            try:
                arrivals([(0, event)], vocab)
            except ValueError as exc:
                self._dead(record, model_error(event.kind, exc), now_ms, out)
                continue
            kept_items.append((event, record))
            kept_owners.append(owner)
        pairs = [(o, e) for o, (e, _) in zip(kept_owners, kept_items, strict=True)]
        return arrivals(pairs, vocab), kept_items, kept_owners

    @staticmethod
    def _count(items: list[_Item], outcomes: list[int], result: BatchResult) -> None:
        for (_, record), outcome in zip(items, outcomes, strict=True):
            topic = record.topic
            if outcome <= Outcome.UPDATED:
                result.applied += 1
                result.scored_by_topic[topic] += 1
            elif outcome == Outcome.DUPLICATE:
                result.duplicates += 1
                result.scored_by_topic[topic] += 1
                result.duplicate_by_topic[topic] += 1
            else:
                result.late += 1
                result.late_by_topic[topic, LATE_REASONS[Outcome(outcome)]] += 1

    # ---------------------------------------------------------------- metrics

    def _observe(
        self,
        records: Iterable[RawRecord],
        result: BatchResult,
        published: Sequence[_Published],
        written_at: float,
        seconds: float,
    ) -> None:
        for topic, count in Counter(r.topic for r in records).items():
            metrics.EVENTS_CONSUMED.labels(topic).inc(count)
        for topic, count in result.scored_by_topic.items():
            metrics.EVENTS_SCORED.labels(topic).inc(count)
        for topic, count in result.duplicate_by_topic.items():
            metrics.EVENTS_DUPLICATE.labels(topic).inc(count)
        for (topic, reason), count in result.late_by_topic.items():
            metrics.EVENTS_LATE.labels(topic, reason).inc(count)
        metrics.BATCHES.observe(result.records)
        metrics.BATCH_SECONDS.observe(seconds)
        if result.score_changes:
            metrics.SCORE_CHANGES.inc(result.score_changes)
        metrics.CREATORS_IN_STATE.set(len(self._table))
        written_ms = written_at * 1000.0
        arrivals = [ts for item in published for ts in item.arrivals_ms]
        event_times = [ts for item in published for ts in item.event_times_ms]
        for histogram, stamps in (
            (metrics.ARRIVAL_TO_REDIS, arrivals),
            (metrics.EVENT_TO_REDIS, event_times),
        ):
            if stamps:
                waited = np.maximum(0.0, written_ms - np.asarray(stamps, dtype=np.float64)) / 1000.0
                metrics.observe_many(histogram, waited.tolist())
