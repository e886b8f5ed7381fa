"""The batch logic between Kafka records and the sinks, with no Faust in sight.

`Pipeline.process` takes a list of `RawRecord`s (however they were fetched) and
does, per batch: decode and validate each record once; dead-letter the bad ones;
forward events whose Kafka key is not their creator id to the repartition topic;
group the rest by creator; per creator read the state table once, apply all its
events, score once and write the state once; then one Redis write and one Kafka
produce for the whole batch.

Ordering is what makes at-least-once exact. The sinks are written before the
state table, and the sinks retry until they succeed, so when Faust commits a
batch's offsets (after flushing the table's changelog) Redis and the output topics
already hold its results. If the worker dies in between, the batch is read again:
events the recovered state already holds come back as duplicates, the rest are
applied again, and the snapshots converge. A creator whose score card did not
change is not written at all, which keeps a replay of old events from touching
Redis (its `updated_at` would otherwise move).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast

import orjson

from scoring.changes import diff_scores
from scoring.events import Event, EventKind
from scoring.params import Params
from scoring.scores import (
    SCORE_NAMES,
    Explanation,
    ScoreCard,
    explanations_from_basis,
    score,
)
from scoring.state import ApplyOutcome, CreatorState
from scoring.validate import ValidationError
from streams import metrics
from streams.codec import (
    RawRecord,
    dead_letter_value,
    decode,
    frame_rekeyed,
    model_error,
    topic_kinds,
    unframe_rekeyed,
    unknown_topic_error,
)
from streams.settings import Settings
from streams.sinks.base import CreatorSnapshot, OutboundRecord, RecordSink, SnapshotSink
from streams.sinks.redis import basis_json, board_scores, card_basis, creator_fields

log = logging.getLogger(__name__)

#: Longest stretch of scoring work between two returns to the event loop.
_YIELD_EVERY_S = 0.01

__all__ = [
    "BatchResult",
    "Pipeline",
    "PipelineConfig",
    "RawRecord",
    "StateCache",
    "StateEnvelope",
    "StateTable",
]


class StateTable(Protocol):
    """The per-creator state store: a Faust table in the worker, a dict in unit tests."""

    def get(self, key: bytes, /) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes, /) -> None: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class PipelineConfig:
    """The topic names and thresholds the pipeline needs, nothing else from Settings."""

    kinds: Mapping[str, EventKind]
    rekeyed_topic: str
    changes_topic: str
    dead_letter_topic: str
    change_threshold: float

    @classmethod
    def from_settings(cls, settings: Settings, rekeyed_topic: str) -> PipelineConfig:
        return cls(
            kinds=topic_kinds(*settings.source_topics),
            rekeyed_topic=rekeyed_topic,
            changes_topic=settings.changes_topic,
            dead_letter_topic=settings.dead_letter_topic,
            change_threshold=settings.change_threshold,
        )


# --------------------------------------------------------------------------- state envelope

_MAGIC: Final = b"CS\x01"
_HEADER_LEN = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class StoredCard:
    """The last published score card, as the state table keeps it.

    Everything but the explanation texts: headline scores, breakdowns (they decide the
    boards to leave) and the explanation basis (`diff_scores` names the input that moved
    a score most by comparing the points the explanations give each input). `digest`
    fingerprints the published card, so an unchanged card is recognised.
    """

    digest: str
    model_version: str
    region: str
    as_of_ms: int
    provisional: bool
    confidence: float
    values: Mapping[str, float]
    influence_by_theme: Mapping[str, float]
    influence_by_content_type: Mapping[str, float]
    overall_by_theme: Mapping[str, float]
    overall_by_content_type: Mapping[str, float]
    basis: Mapping[str, Any]

    @classmethod
    def of(cls, card: ScoreCard, digest: str, basis: Mapping[str, Any] | None = None) -> StoredCard:
        """`basis`: the card's `card_basis`, when the caller already has it."""
        if basis is None:
            basis = card_basis(card)
        return cls(
            digest=digest,
            model_version=card.model_version,
            region=card.region,
            as_of_ms=card.as_of_ms,
            provisional=card.provisional,
            confidence=card.confidence,
            values=card.values(),
            influence_by_theme=dict(card.influence_by_theme),
            influence_by_content_type=dict(card.influence_by_content_type),
            overall_by_theme=dict(card.overall_by_theme),
            overall_by_content_type=dict(card.overall_by_content_type),
            basis=basis,
        )

    def to_json(self) -> list[object]:
        """Positional (layout `_CARD_LAYOUT`): field names would be a fifth of every value.

        By hand: dataclasses.astuple deep-copies every nested value and costs more than
        scoring the card.
        """
        return [
            _CARD_LAYOUT,
            self.digest,
            self.model_version,
            self.region,
            self.as_of_ms,
            self.provisional,
            self.confidence,
            [self.values[name] for name in SCORE_NAMES],
            self.influence_by_theme,
            self.influence_by_content_type,
            self.overall_by_theme,
            self.overall_by_content_type,
            self.basis,
        ]

    def to_card(self, creator_id: str, params: Params) -> ScoreCard:
        """The card as published; its explanations are written from the basis with `params`.

        A card scored by another model version keeps no explanations (`diff_scores` then
        announces the version change and reads only the new card's).
        """
        values = {name: float(self.values[name]) for name in SCORE_NAMES}
        explanations: Mapping[str, Explanation] = (
            explanations_from_basis(self.basis, params)
            if self.model_version == params.model_version
            else {}
        )
        return ScoreCard(
            creator_id=creator_id,
            region=self.region,
            model_version=self.model_version,
            as_of_ms=self.as_of_ms,
            **values,
            provisional=self.provisional,
            confidence=self.confidence,
            influence_by_theme=self.influence_by_theme,
            influence_by_content_type=self.influence_by_content_type,
            overall_by_theme=self.overall_by_theme,
            overall_by_content_type=self.overall_by_content_type,
            explanations=explanations,
        )


@dataclass(frozen=True, slots=True)
class StateEnvelope:
    """The table value: the model's state bytes plus the last published card.

    Layout: `CS\\x01`, a 4-byte big-endian header length, the JSON header (the stored
    card, or null), then `CreatorState.to_bytes()` untouched. Not pickle: any worker
    version can read it, and a corrupt value is a ValueError, not code execution.
    """

    state: bytes
    card: StoredCard | None

    def to_bytes(self) -> bytes:
        header = orjson.dumps(None if self.card is None else self.card.to_json())
        return b"".join((_MAGIC, _HEADER_LEN.pack(len(header)), header, self.state))

    @classmethod
    def from_bytes(cls, data: bytes) -> StateEnvelope:
        """Parse a table value; ValueError (never anything else) on corrupt input."""
        if data[:3] != _MAGIC or len(data) < 7:
            raise ValueError("state envelope does not start with the CS\\x01 header")
        (size,) = _HEADER_LEN.unpack_from(data, 3)
        end = 7 + size
        if end > len(data):
            raise ValueError(f"state envelope header says {size} bytes, {len(data) - 7} present")
        try:
            raw = orjson.loads(memoryview(data)[7:end])
            card = None if raw is None else _stored_card(raw)
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
            raise ValueError(f"state envelope header is not a stored card: {exc!r}") from exc
        return cls(state=data[end:], card=card)


#: Version of `StoredCard.to_json`'s positional layout (its first element).
_CARD_LAYOUT: Final = 2


def _stored_card(raw: object) -> StoredCard | None:
    if isinstance(raw, dict):
        # Written by a worker from before this layout (a JSON object, with contribution
        # points instead of the explanation basis): treated as never published, so the
        # creator's next update publishes it afresh.
        return None
    if not isinstance(raw, list) or len(raw) != 13 or raw[0] != _CARD_LAYOUT:
        raise TypeError(f"stored card must be a layout-{_CARD_LAYOUT} list of 13 items")
    _, digest, version, region, as_of, provisional, confidence, values, *maps, basis = raw
    if not isinstance(values, list) or len(values) != len(SCORE_NAMES):
        raise TypeError(f"stored card values must be {len(SCORE_NAMES)} numbers")
    if not all(isinstance(m, dict) for m in maps) or not isinstance(basis, dict):
        raise TypeError("stored card breakdowns and basis must be objects")
    return StoredCard(
        digest=str(digest),
        model_version=str(version),
        region=str(region),
        as_of_ms=int(as_of),
        provisional=bool(provisional),
        confidence=float(confidence),
        values=dict(zip(SCORE_NAMES, map(float, values), strict=True)),
        influence_by_theme=maps[0],
        influence_by_content_type=maps[1],
        overall_by_theme=maps[2],
        overall_by_content_type=maps[3],
        basis=basis,
    )


def card_digest(card: ScoreCard, basis: str | None = None) -> str:
    """Stable fingerprint of everything a card publishes (scores, breakdowns, explanations).

    The explanations enter through their basis (`basis_json`, passed when already built
    for Redis): the same figures write the same sentences.
    """
    head = orjson.dumps(
        [
            card.creator_id,
            card.region,
            card.model_version,
            card.as_of_ms,
            card.values(),
            card.provisional,
            card.confidence,
            dict(card.influence_by_theme),
            dict(card.influence_by_content_type),
            dict(card.overall_by_theme),
            dict(card.overall_by_content_type),
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    digest = hashlib.blake2b(head, digest_size=16)
    digest.update((basis_json(card) if basis is None else basis).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- batch processing


@dataclass
class BatchResult:
    """What one batch did; the counters also feed the Prometheus metrics."""

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
    late_by_topic: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _CreatorWork:
    events: list[tuple[Event, RawRecord]] = field(default_factory=list)


@dataclass(slots=True)
class _Loaded:
    """A creator's live state and the table value it stands for.

    `stored` is the very bytes object the table held when this was loaded (or that the
    pipeline wrote last); `state_bytes` the model's part of it (None: there was no state).
    """

    state: CreatorState
    card: StoredCard | None
    state_bytes: bytes | None
    stored: bytes | None = None
    #: The published card itself when this worker computed it (None: rebuild it from `card`).
    published: ScoreCard | None = None
    #: The boards `published` sits on, with its score there (`board_scores(published)`).
    boards: Mapping[str, float] | None = None


class StateCache:
    """Live `CreatorState` objects kept between batches, so a creator is decoded only on a miss.

    The table stays the source of truth: an entry is used only while the table still holds
    the exact bytes object it was loaded from or written as (an identity check, so a value
    restored from the changelog, or written by anyone else, is a miss), and the worker clears
    the cache on every rebalance besides. The pipeline mutates entries in place while a batch
    runs and clears the cache if the batch fails, so a half-applied batch is never reused.
    Oldest entries go first when `max_entries` is exceeded: a live state costs tens of
    kilobytes (about 30 KB measured with the current model), far more than its bytes.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._entries: dict[str, _Loaded] = {}
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, creator_id: str, stored: bytes | None) -> _Loaded | None:
        entry = self._entries.get(creator_id)
        if entry is not None and entry.stored is stored:
            self.hits += 1
            return entry
        self.misses += 1
        return None

    def put(self, creator_id: str, entry: _Loaded) -> None:
        entries = self._entries
        entries[creator_id] = entry
        if len(entries) > self._max:
            # Insertion order is a good enough age: evict a tenth at once, not one per put.
            for key in list(itertools.islice(entries, len(entries) - self._max * 9 // 10)):
                del entries[key]

    def drop(self, creator_id: str) -> None:
        self._entries.pop(creator_id, None)


@dataclass(slots=True)
class _Published:
    """A creator whose new card goes to Redis; freshness is measured from these events."""

    creator_id: str
    arrivals_ms: list[int]
    event_times_ms: list[int]


class Pipeline:
    """Processes record batches into state, Redis snapshots and output records."""

    def __init__(
        self,
        config: PipelineConfig,
        params: Params,
        table: StateTable,
        redis: SnapshotSink,
        kafka: RecordSink,
        *,
        clock: Callable[[], float] = time.time,
        cache: StateCache | None = None,
    ) -> None:
        self._config = config
        self._cache = StateCache() if cache is None else cache
        self._params = params
        self._table = table
        self._redis = redis
        self._kafka = kafka
        self._clock = clock
        self._kinds = dict(config.kinds)

    @property
    def cache(self) -> StateCache:
        return self._cache

    async def process(self, records: Sequence[RawRecord]) -> BatchResult:
        """Take one batch all the way to the sinks and the state table."""
        try:
            return await self._process(records)
        except BaseException:
            # Cached states may hold this batch's events without the table holding them.
            self._cache.clear()
            raise

    async def _process(self, records: Sequence[RawRecord]) -> BatchResult:
        started = time.perf_counter()
        result = BatchResult(records=len(records))
        now_ms = int(self._clock() * 1000)
        outbound: list[OutboundRecord] = []
        work = self._decode_all(records, now_ms, outbound, result)
        snapshots: list[CreatorSnapshot] = []
        published: list[_Published] = []
        state_writes: list[tuple[str, _Loaded]] = []
        # Scoring is CPU work: hand the loop back every few milliseconds so consumer
        # heartbeats, the metrics endpoint and the producer keep running during a big batch.
        perf_counter = time.perf_counter
        yield_at = perf_counter() + _YIELD_EVERY_S
        for creator_id, creator_work in work.items():
            if perf_counter() >= yield_at:
                await asyncio.sleep(0)
                yield_at = perf_counter() + _YIELD_EVERY_S
            self._process_creator(
                creator_id,
                creator_work,
                now_ms,
                outbound,
                snapshots,
                published,
                state_writes,
                result,
            )
        result.creators = len(work)

        await asyncio.gather(self._redis.write(snapshots), self._kafka.write(outbound))
        written_at = self._clock()

        # Only now, with the sinks done, does the state move on (see the module docstring).
        table = self._table
        put = self._cache.put
        for creator_id, loaded in state_writes:
            table[creator_id.encode()] = cast(bytes, loaded.stored)
            put(creator_id, loaded)
        result.states_written = len(state_writes)
        result.snapshots_written = len(snapshots)
        self._observe(records, result, published, written_at, time.perf_counter() - started)
        return result

    # ---------------------------------------------------------------- decode / route

    def _decode_all(
        self,
        records: Sequence[RawRecord],
        now_ms: int,
        outbound: list[OutboundRecord],
        result: BatchResult,
    ) -> dict[str, _CreatorWork]:
        kinds = self._kinds
        params = self._params
        rekeyed = self._config.rekeyed_topic
        work: dict[str, _CreatorWork] = {}
        for record in records:
            topic = record.topic
            if topic == rekeyed:
                framed = unframe_rekeyed(record.value)
                if isinstance(framed, ValidationError):
                    self._dead(record, framed, now_ms, outbound, result)
                    continue
                kind, payload = framed
                decoded = decode(kind, payload, now_ms=now_ms, params=params)
            else:
                source_kind = kinds.get(topic)
                if source_kind is None:
                    self._dead(record, unknown_topic_error(topic), now_ms, outbound, result)
                    continue
                kind = source_kind
                decoded = decode(kind, record.value, now_ms=now_ms, params=params)
            if isinstance(decoded, ValidationError):
                self._dead(record, decoded, now_ms, outbound, result)
                continue
            creator_id = decoded.creator_id
            creator_key = creator_id.encode()
            if record.key != creator_key and topic != rekeyed:
                # Its partition was picked by some other key, so this worker may not own the
                # creator's state: send it round, keyed right, to land where the state lives.
                # Records already on the repartition topic are keyed by us and never bounce.
                outbound.append(
                    OutboundRecord(
                        topic=rekeyed,
                        key=creator_key,
                        value=frame_rekeyed(kind, record.value),
                        timestamp_ms=record.timestamp_ms,
                    )
                )
                result.rerouted += 1
                metrics.EVENTS_REROUTED.labels(topic).inc()
                continue
            slot = work.get(creator_id)
            if slot is None:
                slot = work[creator_id] = _CreatorWork()
            slot.events.append((decoded, record))
        return work

    def _dead(
        self,
        record: RawRecord,
        error: ValidationError,
        now_ms: int,
        outbound: list[OutboundRecord],
        result: BatchResult,
    ) -> None:
        outbound.append(
            OutboundRecord(
                topic=self._config.dead_letter_topic,
                key=record.key,
                value=dead_letter_value(record, error, now_ms=now_ms),
            )
        )
        result.dead_letters += 1
        result.dead_reasons[error.problem] += 1
        metrics.DEAD_LETTERS.labels(record.topic, error.problem).inc()

    # ---------------------------------------------------------------- per creator

    def _load(self, creator_id: str, stored: bytes | None) -> _Loaded:
        if stored is None:
            return _Loaded(CreatorState.new(creator_id), None, None)
        try:
            envelope = StateEnvelope.from_bytes(stored)
            return _Loaded(
                CreatorState.from_bytes(envelope.state), envelope.card, envelope.state, stored
            )
        except ValueError as exc:
            # A corrupt value cannot be repaired here; starting over loses this creator's
            # history but keeps the worker (and every other creator) going.
            log.error("state of creator %r is corrupt (%s); starting it afresh", creator_id, exc)
            return _Loaded(CreatorState.new(creator_id), None, None)

    def _apply(
        self,
        creator_id: str,
        stored: bytes | None,
        items: list[tuple[Event, RawRecord]],
        now_ms: int,
        outbound: list[OutboundRecord],
        result: BatchResult,
    ) -> tuple[_Loaded, list[ApplyOutcome]]:
        """Apply the creator's events; an event the model chokes on is dead-lettered alone."""
        params = self._params
        loaded = self._cache.lookup(creator_id, stored)
        if loaded is None:
            loaded = self._load(creator_id, stored)
            self._cache.put(creator_id, loaded)
        state = loaded.state
        try:
            return loaded, [state.apply(event, params) for event, _ in items]
        except Exception:
            log.exception(
                "model failed on a batch of creator %r; retrying event by event", creator_id
            )
        self._cache.drop(creator_id)
        # The failed apply may have left the state half-changed: start again from the stored
        # bytes and keep only the events that apply cleanly.
        loaded = self._load(creator_id, stored)
        outcomes: list[ApplyOutcome] = []
        kept: list[tuple[Event, RawRecord]] = []
        for event, record in items:
            before = loaded.state.to_bytes()
            try:
                outcome = loaded.state.apply(event, params)
            except Exception as exc:
                loaded.state = CreatorState.from_bytes(before)
                self._dead(record, model_error(event.kind, exc), now_ms, outbound, result)
                continue
            outcomes.append(outcome)
            kept.append((event, record))
        items[:] = kept
        return loaded, outcomes

    def _process_creator(
        self,
        creator_id: str,
        creator_work: _CreatorWork,
        now_ms: int,
        outbound: list[OutboundRecord],
        snapshots: list[CreatorSnapshot],
        published: list[_Published],
        state_writes: list[tuple[str, _Loaded]],
        result: BatchResult,
    ) -> None:
        items = creator_work.events
        loaded, outcomes = self._apply(
            creator_id, self._table.get(creator_id.encode()), items, now_ms, outbound, result
        )
        applied = False
        arrivals: list[int] = []
        event_times: list[int] = []
        for outcome, (event, record) in zip(outcomes, items, strict=True):
            if outcome is ApplyOutcome.APPLIED or outcome is ApplyOutcome.UPDATED:
                applied = True
                arrivals.append(record.timestamp_ms)
                event_times.append(event.event_time_ms)
        try:
            written = self._publish(
                creator_id, loaded, applied, now_ms, outbound, snapshots, state_writes, result
            )
        except Exception as exc:
            # A model failure on this creator's state (scoring, serialising) must not stop the
            # worker or replay forever: its events are dead-lettered, its state kept as it was.
            log.exception("model failed for creator %r; its events are dead-lettered", creator_id)
            self._cache.drop(creator_id)
            for event, record in items:
                self._dead(record, model_error(event.kind, exc), now_ms, outbound, result)
            return
        for outcome, (_, record) in zip(outcomes, items, strict=True):
            topic = record.topic
            if outcome is ApplyOutcome.APPLIED or outcome is ApplyOutcome.UPDATED:
                result.applied += 1
                result.scored_by_topic[topic] += 1
            elif outcome is ApplyOutcome.DUPLICATE:
                result.duplicates += 1
                result.scored_by_topic[topic] += 1
                result.duplicate_by_topic[topic] += 1
            else:
                result.late += 1
                result.late_by_topic[topic] += 1
        if written:
            published.append(_Published(creator_id, arrivals, event_times))

    def _publish(
        self,
        creator_id: str,
        loaded: _Loaded,
        applied: bool,
        now_ms: int,
        outbound: list[OutboundRecord],
        snapshots: list[CreatorSnapshot],
        state_writes: list[tuple[str, _Loaded]],
        result: BatchResult,
    ) -> bool:
        """Score a changed state and queue its writes; True when a snapshot goes to Redis.

        Everything is computed before anything is queued, so a failure queues nothing.
        """
        state, old = loaded.state, loaded.card
        key = creator_id.encode()
        state_bytes = state.to_bytes()
        if not applied:
            # Duplicates and late events change nothing that is scored, but may still move
            # creator attributes (a late post can carry a newer region): compare the bytes.
            before = loaded.state_bytes
            if before is None:
                before = CreatorState.new(creator_id).to_bytes()
            if state_bytes == before:
                return False  # nothing new for this creator: no state write, no snapshot
        card = score(state, self._params)
        basis = card_basis(card)
        basis_text = orjson.dumps(basis).decode()
        digest = card_digest(card, basis_text)
        if old is not None and old.digest == digest:
            # New facts, same published card: keep the state, leave Redis alone.
            envelope = StateEnvelope(state_bytes, old).to_bytes()
            written = _Loaded(state, old, state_bytes, envelope, loaded.published, loaded.boards)
            state_writes.append((creator_id, written))
            return False
        stored_card = StoredCard.of(card, digest, basis)
        envelope = StateEnvelope(state_bytes, stored_card).to_bytes()
        # The card kept from the last batch says the same as the stored one rebuilt (diffs and
        # boards read only its scores, breakdowns and contribution points), without the cost.
        old_card, previous = loaded.published, loaded.boards
        if old_card is None and old is not None:
            old_card = old.to_card(creator_id, self._params)
        if previous is None and old_card is not None:
            previous = board_scores(old_card)
        boards = board_scores(card)
        snapshot = self._snapshot(card, boards, previous, basis_text, now_ms)
        change = diff_scores(old_card, card, self._config.change_threshold)
        state_writes.append(
            (creator_id, _Loaded(state, stored_card, state_bytes, envelope, card, boards))
        )
        snapshots.append(snapshot)
        if change is not None:
            outbound.append(
                OutboundRecord(
                    topic=self._config.changes_topic, key=key, value=orjson.dumps(change.to_dict())
                )
            )
            result.score_changes += 1
        return True

    @staticmethod
    def _snapshot(
        card: ScoreCard,
        boards: Mapping[str, float],
        previous: Mapping[str, float] | None,
        basis: str,
        now_ms: int,
    ) -> CreatorSnapshot:
        """`boards`: the card's `board_scores`; `previous`: those of the card it replaces
        (None: this worker does not know it, and the sink asks Redis)."""
        fields = creator_fields(card, updated_at_ms=now_ms, basis=basis)
        if previous is None:
            return CreatorSnapshot(card.creator_id, fields, boards, previous_known=False)
        moved = {b: v for b, v in boards.items() if previous.get(b) != v}
        left = frozenset(b for b in previous if b not in boards)
        joined = frozenset(b for b in boards if b not in previous)
        return CreatorSnapshot(card.creator_id, fields, moved, left, join_boards=joined)

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
        for topic, count in result.late_by_topic.items():
            metrics.EVENTS_LATE.labels(topic).inc(count)
        metrics.BATCHES.observe(result.records)
        metrics.BATCH_SECONDS.observe(seconds)
        if result.score_changes:
            metrics.SCORE_CHANGES.inc(result.score_changes)
        metrics.CREATORS_IN_STATE.set(len(self._table))
        arrival = metrics.ARRIVAL_TO_REDIS.observe
        event_time = metrics.EVENT_TO_REDIS.observe
        written_ms = written_at * 1000.0
        for item in published:
            for ts in item.arrivals_ms:
                arrival(max(0.0, written_ms - ts) / 1000.0)
            for ts in item.event_times_ms:
                event_time(max(0.0, written_ms - ts) / 1000.0)
