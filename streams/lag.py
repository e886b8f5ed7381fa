"""Consumer lag read from the broker, with a Burrow-style status per group.

A worker's own metrics fall silent when the worker stops, which looks the same
as "nothing to do". Lag read from the broker (the group's committed offsets
against each partition's log-end offset) keeps growing instead, so this module
asks Kafka, never the worker. Lag in seconds is the age of the oldest record
not yet processed: the record at the committed offset is fetched and its
timestamp subtracted from now (kafka-lag-exporter interpolates from a table of
offset/time samples instead; fetching is exact and cheap at our partition
counts). The status rules live in `StatusTracker`, which only takes samples,
so they are unit-tested without a broker. `LagCollector` exports the figures
under kafka-lag-exporter's metric names.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.settings import Settings

log = logging.getLogger(__name__)

#: A partition as (topic, partition); plain tuples keep the pure part free of aiokafka.
Partition = tuple[str, int]

DEFAULT_INTERVAL_S = 5.0


class LagError(RuntimeError):
    """The broker could not be asked, or the group or a topic does not exist."""


class Status(enum.IntEnum):
    """Group and partition health, worst last; the value is the exported gauge value."""

    OK = 0
    WARN = 1
    STALL = 2
    STOP = 3


@dataclass(frozen=True, slots=True)
class Offsets:
    """One partition as seen in one sample.

    `committed` is None when the group never committed on the partition; the
    lag then counts every retained record (`end - start`), which is what a
    consumer starting from the earliest offset would have to read.
    """

    committed: int | None
    end: int
    start: int = 0

    def __post_init__(self) -> None:
        for name in ("end", "start"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"Offsets.{name} must be a non-negative int, got {value!r}")
        if self.committed is not None and (type(self.committed) is not int or self.committed < 0):
            raise ValueError(
                f"Offsets.committed must be None or a non-negative int, got {self.committed!r}"
            )
        if self.start > self.end:
            raise ValueError(f"Offsets.start ({self.start}) is past Offsets.end ({self.end})")

    @property
    def lag(self) -> int:
        # A committed offset past the log end (truncated log) is not negative lag.
        base = self.start if self.committed is None else self.committed
        return max(0, self.end - base)


@dataclass(frozen=True)
class StatusRules:
    """Sliding-window sizes, in samples (one sample per refresh interval).

    window: how many samples WARN looks back over.
    stall_samples: how many trailing samples with an unmoved committed offset
        (and lag in every one of them) make a STALL.
    warn_samples: the fewest samples WARN needs before it can judge growth.
    """

    window: int = 10
    stall_samples: int = 4
    warn_samples: int = 5

    @classmethod
    def allowing(cls, longest_commit_gap_s: float, interval_s: float = DEFAULT_INTERVAL_S) -> Self:
        """Rules under which a worker that commits at least every `longest_commit_gap_s` (its
        longest flush) is never called STALL: an unmoved offset must outlast that gap by two
        samples first."""
        defaults = cls()
        needed = math.ceil(max(0.0, longest_commit_gap_s) / interval_s) + 2
        return cls(stall_samples=min(defaults.window, max(defaults.stall_samples, needed)))

    def __post_init__(self) -> None:
        if not 2 <= self.stall_samples <= self.window:
            raise ValueError(
                f"stall_samples must be in 2..window ({self.window}), got {self.stall_samples}"
            )
        if not 2 <= self.warn_samples <= self.window:
            raise ValueError(
                f"warn_samples must be in 2..window ({self.window}), got {self.warn_samples}"
            )


@dataclass(frozen=True, slots=True)
class PartitionVerdict:
    status: Status
    reason: str


@dataclass(frozen=True)
class Verdict:
    """The outcome of one sample: a status per partition and the group's (the worst)."""

    status: Status
    reason: str
    partitions: Mapping[Partition, PartitionVerdict]
    samples: int  # samples in the window of the partition with the longest history


@dataclass(frozen=True, slots=True)
class _Sample:
    at_s: float
    offsets: Offsets


def _name(p: Partition) -> str:
    return f"{p[0]}[{p[1]}]"


class StatusTracker:
    """Burrow-style status for one consumer group, fed one sample per refresh.

    Rules, per partition, on the newest sample and the window behind it; the
    first that matches wins:

    1. lag is 0                                                -> OK
    2. the group has no active members                         -> STOP
    3. the partition's lag was > 0 in each of the last `stall_samples` samples
       and its owner (the member it is assigned to; partitions without a known
       owner count as one owner) committed nothing on any partition meanwhile
                                                               -> STALL
    4. over the window (at least `warn_samples` samples) the partition's
       committed offset advanced, its lag was > 0 in each sample, never shrank
       from one sample to the next and ended higher than it started  -> WARN
    5. otherwise                                               -> OK

    STALL is judged per owner, not per partition, because a consumer that is
    behind reaches a sparse partition's next record only every so often: its
    offset stands still for a while with lag, yet nothing is stuck as long as
    the same consumer commits elsewhere.

    The group's status is its worst partition's (OK when it has none), raised
    to WARN when the group's total lag follows rule 4 (per-partition lag is
    noisy; the sum shows a group falling behind). A partition's history
    restarts when its committed or end offset goes backwards (offsets reset,
    topic recreated) and is dropped when the partition leaves the sample; the
    group's history restarts when its set of partitions changes.
    """

    def __init__(self, rules: StatusRules | None = None) -> None:
        self.rules = rules or StatusRules()
        self._history: dict[Partition, deque[_Sample]] = {}
        self._group: deque[tuple[float, int, int]] = deque(maxlen=self.rules.window)
        self._group_parts: frozenset[Partition] = frozenset()
        self._last_at: float | None = None

    def observe(
        self,
        at_s: float,
        offsets: Mapping[Partition, Offsets],
        *,
        has_members: bool,
        owners: Mapping[Partition, str] | None = None,
    ) -> Verdict:
        """Add one sample; `owners` maps partitions to the member id they are assigned to."""
        if self._last_at is not None and at_s <= self._last_at:
            raise ValueError(
                f"samples must move forward in time: {at_s} is not after {self._last_at}"
            )
        self._last_at = at_s
        owners = owners or {}
        for gone in set(self._history) - set(offsets):
            del self._history[gone]
        for part in sorted(offsets):
            off = offsets[part]
            hist = self._history.get(part)
            if hist is None or _went_backwards(hist[-1].offsets, off):
                hist = deque(maxlen=self.rules.window)
                self._history[part] = hist
            hist.append(_Sample(at_s, off))
        committing: set[str | None] = {
            owners.get(part) for part in offsets if self._moved_lately(part)
        }
        verdicts = {
            part: self._judge(part, owners.get(part), committing, has_members)
            for part in sorted(offsets)
        }
        group_warn = self._group_growth(offsets)
        if not verdicts:
            reason = "no partitions: nothing committed and no topics to watch"
            return Verdict(Status.OK, reason, verdicts, 0)
        worst = max(verdicts.values(), key=lambda v: v.status).status
        samples = max(len(h) for h in self._history.values())
        if worst <= Status.WARN and group_warn is not None:
            return Verdict(Status.WARN, group_warn, verdicts, samples)
        culprits = [p for p, v in verdicts.items() if v.status == worst]
        reason = verdicts[culprits[0]].reason
        if worst is not Status.OK and len(culprits) > 1:
            reason += f" (and {len(culprits) - 1} more partitions {worst.name})"
        if worst is Status.OK:
            reason = f"{len(verdicts)} partitions OK"
        return Verdict(worst, reason, verdicts, samples)

    def _moved_lately(self, part: Partition) -> bool:
        tail = list(self._history[part])[-self.rules.stall_samples :]
        return len({s.offsets.committed for s in tail}) > 1

    def _judge(
        self, part: Partition, owner: str | None, committing: set[str | None], has_members: bool
    ) -> PartitionVerdict:
        samples = list(self._history[part])
        newest = samples[-1].offsets
        if newest.lag == 0:
            return PartitionVerdict(Status.OK, f"{_name(part)} caught up")
        if not has_members:
            return PartitionVerdict(
                Status.STOP, f"{_name(part)}: no active members while {newest.lag} records wait"
            )
        tail = samples[-self.rules.stall_samples :]
        if (
            len(tail) == self.rules.stall_samples
            and all(s.offsets.lag > 0 for s in tail)
            and owner not in committing
        ):
            span = tail[-1].at_s - tail[0].at_s
            where = "never committed" if newest.committed is None else f"at {newest.committed}"
            who = f"its consumer {owner}" if owner else "the group (no known owner)"
            return PartitionVerdict(
                Status.STALL,
                f"{_name(part)}: committed offset {where} while lag is {newest.lag}; {who} "
                f"committed nothing over {len(tail)} samples ({span:.0f}s)",
            )
        growth = _growth([s.offsets for s in samples], self.rules.warn_samples)
        if growth is not None:
            return PartitionVerdict(
                Status.WARN,
                f"{_name(part)}: consuming but lag grew from {growth[0]} to {growth[1]} "
                f"over {len(samples)} samples",
            )
        return PartitionVerdict(Status.OK, f"{_name(part)} consuming")

    def _group_growth(self, offsets: Mapping[Partition, Offsets]) -> str | None:
        parts = frozenset(offsets)
        if parts != self._group_parts:
            self._group.clear()
            self._group_parts = parts
        committed = sum(o.committed or 0 for o in offsets.values())
        if self._group and committed < self._group[-1][2]:
            self._group.clear()  # an offset reset: totals are not comparable across it
        assert self._last_at is not None
        self._group.append((self._last_at, sum(o.lag for o in offsets.values()), committed))
        samples = list(self._group)
        if len(samples) < self.rules.warn_samples:
            return None
        lags = [lag for _, lag, _ in samples]
        if (
            samples[-1][2] > samples[0][2]
            and all(x > 0 for x in lags)
            and all(b >= a for a, b in itertools.pairwise(lags))
            and lags[-1] > lags[0]
        ):
            return (
                f"group consuming but total lag grew from {lags[0]} to {lags[-1]} "
                f"over {len(samples)} samples"
            )
        return None


def _growth(samples: Sequence[Offsets], min_samples: int) -> tuple[int, int] | None:
    """(first lag, last lag) when rule 4 holds over `samples`, else None."""
    if len(samples) < min_samples:
        return None
    first, last = samples[0], samples[-1]
    lags = [s.lag for s in samples]
    if (
        first.committed is not None
        and last.committed is not None
        and last.committed > first.committed
        and all(x > 0 for x in lags)
        and all(b >= a for a, b in itertools.pairwise(lags))
        and lags[-1] > lags[0]
    ):
        return lags[0], lags[-1]
    return None


def _went_backwards(old: Offsets, new: Offsets) -> bool:
    if new.end < old.end:
        return True
    if old.committed is None:
        return False
    return new.committed is None or new.committed < old.committed


# -- broker side ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    client_id: str
    host: str
    partitions: frozenset[Partition]


@dataclass(frozen=True)
class GroupOffsets:
    """What the broker says about one group at one moment."""

    group: str
    state: str  # the coordinator's view: Stable, PreparingRebalance, Empty, Dead, ...
    members: tuple[Member, ...]
    offsets: Mapping[Partition, Offsets]
    missing_topics: tuple[str, ...] = ()  # watched topics that do not exist (yet)

    def owner(self, part: Partition) -> Member | None:
        for member in self.members:
            if part in member.partitions:
                return member
        return None


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int
    start: int
    lag: int
    lag_seconds: float | None  # None when the oldest unprocessed record could not be read
    status: Status
    reason: str
    consumer_id: str | None
    host: str | None
    client_id: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end": self.end,
            "start": self.start,
            "lag": self.lag,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "status": self.status.name,
            "reason": self.reason,
            "consumer_id": self.consumer_id,
            "host": self.host,
            "client_id": self.client_id,
        }


@dataclass(frozen=True)
class GroupLag:
    """One refresh of one group: figures per partition plus the group's status."""

    group: str
    state: str
    members: int
    at_s: float  # unix time of the sample
    status: Status
    reason: str
    samples: int
    partitions: tuple[PartitionLag, ...]
    missing_topics: tuple[str, ...] = ()

    @property
    def sum_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def max_lag(self) -> int:
        return max((p.lag for p in self.partitions), default=0)

    @property
    def max_lag_seconds(self) -> float:
        return max((p.lag_seconds or 0.0 for p in self.partitions), default=0.0)

    def topic_sum_lag(self) -> dict[str, int]:
        sums: dict[str, int] = {}
        for p in self.partitions:
            sums[p.topic] = sums.get(p.topic, 0) + p.lag
        return sums

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "state": self.state,
            "members": self.members,
            "at": round(self.at_s, 3),
            "status": self.status.name,
            "reason": self.reason,
            "samples": self.samples,
            "sum_lag": self.sum_lag,
            "max_lag": self.max_lag,
            "max_lag_seconds": round(self.max_lag_seconds, 3),
            "partitions": [p.to_dict() for p in self.partitions],
            "missing_topics": list(self.missing_topics),
        }


def _decode_assignment(raw: bytes) -> frozenset[Partition]:
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    if not raw:
        return frozenset()
    try:
        decoded: Any = ConsumerProtocolMemberAssignment.decode(raw)
        return frozenset((str(topic), int(p)) for topic, parts in decoded.assignment for p in parts)
    except Exception:
        # Not the standard consumer layout (e.g. Kafka Connect): owners stay unknown.
        return frozenset()


class LagReader:
    """Reads committed, log-start and log-end offsets and record timestamps from Kafka.

    Holds one admin client (group metadata, committed offsets) and one consumer
    without a group (offsets, record fetches), so it never joins or disturbs
    the groups it watches.
    """

    def __init__(self, bootstrap_servers: str, *, request_timeout_ms: int = 10_000) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._timeout_ms = request_timeout_ms
        self._admin: Any = None
        self._consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaError

        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            request_timeout_ms=self._timeout_ms,
            client_id="creator-scores-lag",
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            # Past-retention committed offsets: the next record the group would read.
            auto_offset_reset="earliest",
            request_timeout_ms=self._timeout_ms,
            # Only the first record of each batch is wanted; keep fetches small.
            max_partition_fetch_bytes=64 * 1024,
            fetch_max_bytes=1024 * 1024,
            client_id="creator-scores-lag",
        )
        try:
            await admin.start()
            await consumer.start()
        except (KafkaError, OSError) as exc:
            with contextlib.suppress(Exception):
                await admin.close()
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise LagError(f"cannot reach Kafka at {self.bootstrap_servers}: {exc}") from exc
        self._admin, self._consumer = admin, consumer

    async def close(self) -> None:
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()

    @property
    def started(self) -> bool:
        return self._admin is not None

    def _started(self) -> tuple[Any, Any]:
        if self._admin is None or self._consumer is None:
            raise LagError("LagReader is not started")
        return self._admin, self._consumer

    async def describe(self, group: str) -> tuple[str, tuple[Member, ...]]:
        admin, _ = self._started()
        # One group per request: aiokafka parses v3 replies with the v2 layout,
        # which only holds up while a reply carries a single group.
        responses = await admin.describe_consumer_groups([group])
        for response in responses:
            for entry in response.groups:
                error_code, group_id, state, protocol_type = entry[0], entry[1], entry[2], entry[3]
                if group_id != group:
                    continue
                if error_code:
                    from aiokafka.errors import for_code

                    raise LagError(f"describe group {group!r}: {for_code(error_code).__name__}")
                members = tuple(
                    Member(
                        member_id=str(m[0]),
                        client_id=str(m[1]),
                        host=str(m[2]).lstrip("/"),
                        partitions=_decode_assignment(bytes(m[4]))
                        if protocol_type == "consumer"
                        else frozenset(),
                    )
                    for m in entry[5]
                )
                return str(state), members
        return "Dead", ()

    async def committed(self, group: str) -> dict[Partition, int]:
        admin, _ = self._started()
        raw = await admin.list_consumer_group_offsets(group)
        return {
            (str(tp.topic), int(tp.partition)): int(meta.offset)
            for tp, meta in raw.items()
            if int(meta.offset) >= 0
        }

    async def _topic_partitions(self) -> dict[str, set[int]]:
        admin, _ = self._started()
        # A fresh metadata request each time: topics created or grown since show up.
        described: list[dict[str, Any]] = await admin.describe_topics()
        return {
            str(t["topic"]): {int(p["partition"]) for p in t.get("partitions", ())}
            for t in described
            if not t.get("error_code")
        }

    async def log_offsets(
        self, parts: Iterable[Partition]
    ) -> tuple[dict[Partition, int], dict[Partition, int]]:
        """(log start, log end) offsets for each partition (metadata must be known)."""
        from aiokafka import TopicPartition

        _, consumer = self._started()
        tps = [TopicPartition(t, p) for t, p in sorted(set(parts))]
        if not tps:
            return {}, {}
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        return (
            {(tp.topic, tp.partition): int(o) for tp, o in starts.items()},
            {(tp.topic, tp.partition): int(o) for tp, o in ends.items()},
        )

    async def read_group(self, group: str, topics: Iterable[str] = ()) -> GroupOffsets:
        """Committed offsets of `group` against log ends.

        Partitions listed: every one the group has committed on (on topics that
        still exist), plus every partition of `topics` (uncommitted ones with
        `committed=None`).
        """
        state, members = await self.describe(group)
        committed = await self.committed(group)
        layout = await self._topic_partitions()
        wanted = set(topics)
        # A watched topic that does not exist yet (the worker creates it) is noted, not fatal.
        missing = tuple(sorted(wanted - set(layout)))
        parts = {p for p in committed if p[1] in layout.get(p[0], ())}
        parts.update((t, p) for t in wanted - set(missing) for p in layout[t])
        starts, ends = await self.log_offsets(parts)
        offsets = {
            p: Offsets(committed=committed.get(p), end=ends[p], start=min(starts[p], ends[p]))
            for p in sorted(parts)
            if p in ends and p in starts
        }
        return GroupOffsets(group, state, members, offsets, missing)

    async def record_timestamps(
        self, positions: Mapping[Partition, int], timeout_s: float = 3.0
    ) -> dict[Partition, int]:
        """Timestamp (ms) of the first record at or after each offset.

        Partitions whose record does not arrive within `timeout_s` are left out.
        """
        from aiokafka import TopicPartition

        _, consumer = self._started()
        if not positions:
            return {}
        tps = {TopicPartition(t, p): off for (t, p), off in positions.items()}
        consumer.assign(list(tps))
        for tp, off in tps.items():
            consumer.seek(tp, off)
        found: dict[Partition, int] = {}
        pending = set(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while pending:
                left = deadline - loop.time()
                if left <= 0:
                    break
                # One record per call: aiokafka unpacks lazily, so asking for more would
                # decode a whole fetch (thousands of records under a backlog) per refresh.
                batch = await consumer.getmany(*pending, timeout_ms=int(left * 1000), max_records=1)
                for tp, records in batch.items():
                    if tp in pending and records:
                        found[(tp.topic, tp.partition)] = int(records[0].timestamp)
                        pending.discard(tp)
                        # Stop prefetching what is no longer needed.
                        consumer.pause(tp)
        finally:
            consumer.assign([])
        return found


@dataclass
class _TimestampCache:
    """The record at an unchanged committed offset is the same record: fetch it once."""

    entries: dict[Partition, tuple[int, int]] = field(default_factory=dict)

    def get(self, part: Partition, offset: int) -> int | None:
        hit = self.entries.get(part)
        return hit[1] if hit is not None and hit[0] == offset else None

    def put(self, part: Partition, offset: int, ts_ms: int) -> None:
        self.entries[part] = (offset, ts_ms)

    def keep_only(self, parts: Iterable[Partition]) -> None:
        keep = set(parts)
        for gone in set(self.entries) - keep:
            del self.entries[gone]


class LagMonitor:
    """Samples a set of groups from the broker and keeps each one's latest `GroupLag`.

    `groups` maps a group id to topics whose partitions are listed even when
    never committed (the worker's source topics for its own group), so a
    worker that never ran still shows the backlog it left.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        groups: Mapping[str, Sequence[str]],
        *,
        rules: StatusRules | None = None,
        clock: Callable[[], float] = time.time,
        timestamp_timeout_s: float = 3.0,
    ) -> None:
        if not groups:
            raise ValueError("LagMonitor needs at least one consumer group")
        for group in groups:
            if not isinstance(group, str) or not group:
                raise ValueError(f"consumer group ids must be non-empty strings, got {group!r}")
        self.reader = LagReader(bootstrap_servers)
        self.groups = {g: tuple(t) for g, t in groups.items()}
        self.rules = rules or StatusRules()
        self._clock = clock
        self._ts_timeout = timestamp_timeout_s
        self._trackers = {g: StatusTracker(self.rules) for g in self.groups}
        self._ts_cache = {g: _TimestampCache() for g in self.groups}
        self._latest: dict[str, GroupLag] = {}
        self.errors: dict[str, int] = dict.fromkeys(self.groups, 0)
        self.last_error: dict[str, str] = {}
        self.last_refresh_s: dict[str, float] = {}
        self.last_duration_s: float | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_settings(
        cls, settings: Settings, groups: Iterable[str] | None = None, **kwargs: Any
    ) -> LagMonitor:
        """The app's own group watches the topics it reads (the source topics and the re-key
        topic), so their backlog counts from the log start before its first commit there;
        other groups their commits only."""
        from streams.app import rekeyed_topic_name  # Faust only when asked for lag

        wanted = list(groups) if groups is not None else [settings.app_id]
        own = (*settings.source_topics, rekeyed_topic_name(settings))
        mapping = {g: own if g == settings.app_id else () for g in wanted}
        # A catching-up worker commits once per flush; a flush may overrun its target.
        kwargs.setdefault("rules", StatusRules.allowing(3 * settings.batch_target_s))
        return cls(settings.kafka_bootstrap_servers, mapping, **kwargs)

    async def start(self) -> None:
        """Connect now (`refresh` would connect lazily); raises `LagError`."""
        if not self.reader.started:
            await self.reader.start()

    async def close(self) -> None:
        await self.reader.close()

    def snapshot(self) -> dict[str, GroupLag]:
        return dict(self._latest)

    async def refresh(self) -> dict[str, GroupLag]:
        """Sample every group once; a group that fails keeps no stale figures."""
        async with self._lock:
            began = time.monotonic()
            if not self.reader.started:
                try:
                    await self.reader.start()
                except LagError as exc:
                    for group in self.groups:
                        self._failed(group, exc)
                    self.last_duration_s = time.monotonic() - began
                    return self.snapshot()
            for group, topics in self.groups.items():
                try:
                    self._latest[group] = await self._refresh_group(group, topics)
                    self.last_refresh_s[group] = self._clock()
                    self.last_error.pop(group, None)
                except Exception as exc:
                    self._failed(group, exc)
            self.last_duration_s = time.monotonic() - began
            return self.snapshot()

    def _failed(self, group: str, exc: Exception) -> None:
        # Stale lag would look healthy; better no series and a counted error.
        self._latest.pop(group, None)
        self.errors[group] += 1
        message = f"{type(exc).__name__}: {exc}"
        # Once per distinct failure, not every few seconds while Kafka is away.
        level = logging.DEBUG if self.last_error.get(group) == message else logging.WARNING
        log.log(level, "lag refresh for group %r failed: %s", group, message)
        self.last_error[group] = message

    async def _refresh_group(self, group: str, topics: Sequence[str]) -> GroupLag:
        raw = await self.reader.read_group(group, topics)
        now = self._clock()
        cache = self._ts_cache[group]
        cache.keep_only(raw.offsets)
        wanted: dict[Partition, int] = {}
        stamps: dict[Partition, int] = {}
        for part, off in raw.offsets.items():
            if off.lag == 0:
                continue
            position = off.start if off.committed is None else off.committed
            cached = cache.get(part, position)
            if cached is None:
                wanted[part] = position
            else:
                stamps[part] = cached
        if wanted:
            fetched = await self.reader.record_timestamps(wanted, self._ts_timeout)
            for part, ts in fetched.items():
                cache.put(part, wanted[part], ts)
            stamps.update(fetched)
        has_members = len(raw.members) > 0
        # Monotonic time for the window: a wall clock stepped back must not break the tracker.
        owners = {part: member.member_id for member in raw.members for part in member.partitions}
        verdict = self._trackers[group].observe(
            time.monotonic(), raw.offsets, has_members=has_members, owners=owners
        )
        rows = []
        for part, off in raw.offsets.items():
            owner = raw.owner(part)
            if off.lag == 0:
                seconds: float | None = 0.0
            elif part in stamps:
                # Producer clocks may run ahead of ours; lag is never negative.
                seconds = max(0.0, now - stamps[part] / 1000.0)
            else:
                seconds = None
            pv = verdict.partitions[part]
            rows.append(
                PartitionLag(
                    topic=part[0],
                    partition=part[1],
                    committed=off.committed,
                    end=off.end,
                    start=off.start,
                    lag=off.lag,
                    lag_seconds=seconds,
                    status=pv.status,
                    reason=pv.reason,
                    consumer_id=owner.member_id if owner else None,
                    host=owner.host if owner else None,
                    client_id=owner.client_id if owner else None,
                )
            )
        return GroupLag(
            group=group,
            state=raw.state,
            members=len(raw.members),
            at_s=now,
            status=verdict.status,
            reason=verdict.reason,
            samples=verdict.samples,
            partitions=tuple(rows),
            missing_topics=raw.missing_topics,
        )

    async def run(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        """Refresh forever, every `interval_s` seconds, until cancelled."""
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        while True:
            began = time.monotonic()
            await self.refresh()
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - began)))


# -- Prometheus -------------------------------------------------------------------

#: Every metric name `LagCollector` exports (as they appear in the exposition).
LAG_METRICS: dict[str, str] = {
    "kafka_consumergroup_group_offset": "Last committed offset, per group and partition.",
    "kafka_consumergroup_group_lag": "Records not yet processed (log end - committed).",
    "kafka_consumergroup_group_lag_seconds": (
        "Age of the oldest unprocessed record: now - timestamp of the record at the committed "
        "offset (0 when caught up)."
    ),
    "kafka_partition_latest_offset": "Log-end offset (high watermark) of the partition.",
    "kafka_partition_earliest_offset": "Log-start offset of the partition.",
    "kafka_consumergroup_group_sum_lag": "Sum of the group's lag over all partitions.",
    "kafka_consumergroup_group_topic_sum_lag": "Sum of the group's lag over a topic's partitions.",
    "kafka_consumergroup_group_max_lag": "Largest partition lag of the group, in records.",
    "kafka_consumergroup_group_max_lag_seconds": "Largest partition lag of the group, in seconds.",
    "kafka_consumergroup_group_status": "Group status: 0 OK, 1 WARN, 2 STALL, 3 STOP.",
    "kafka_consumergroup_partition_status": "Partition status: 0 OK, 1 WARN, 2 STALL, 3 STOP.",
    "kafka_consumergroup_group_members": "Active members of the group, per the coordinator.",
    "kafka_consumergroup_poll_time_ms": "Time the last lag refresh took, in milliseconds.",
    "creator_scores_lag_last_refresh_timestamp_seconds": "Unix time of the last good refresh.",
    "creator_scores_lag_refresh_errors_total": "Lag refreshes that failed, per group.",
}

_PART_LABELS = ["group", "topic", "partition"]


class LagCollector(Collector):
    """Exports a `LagMonitor`'s latest figures at scrape time.

    A custom collector rather than labelled gauges, so that a partition or a
    group that disappears (or fails to refresh) leaves no stale series behind.
    """

    def __init__(self, monitor: LagMonitor) -> None:
        self.monitor = monitor

    def describe(self) -> Iterator[Metric]:
        yield from self._families(with_samples=False)

    def collect(self) -> Iterator[Metric]:
        yield from self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        d = LAG_METRICS
        offset = GaugeMetricFamily(
            "kafka_consumergroup_group_offset", d["kafka_consumergroup_group_offset"],
            labels=_PART_LABELS,
        )  # fmt: skip
        lag = GaugeMetricFamily(
            "kafka_consumergroup_group_lag", d["kafka_consumergroup_group_lag"],
            labels=_PART_LABELS,
        )  # fmt: skip
        lag_s = GaugeMetricFamily(
            "kafka_consumergroup_group_lag_seconds", d["kafka_consumergroup_group_lag_seconds"],
            labels=_PART_LABELS,
        )  # fmt: skip
        latest = GaugeMetricFamily(
            "kafka_partition_latest_offset", d["kafka_partition_latest_offset"],
            labels=["topic", "partition"],
        )  # fmt: skip
        earliest = GaugeMetricFamily(
            "kafka_partition_earliest_offset", d["kafka_partition_earliest_offset"],
            labels=["topic", "partition"],
        )  # fmt: skip
        sum_lag = GaugeMetricFamily(
            "kafka_consumergroup_group_sum_lag", d["kafka_consumergroup_group_sum_lag"],
            labels=["group"],
        )  # fmt: skip
        topic_sum = GaugeMetricFamily(
            "kafka_consumergroup_group_topic_sum_lag",
            d["kafka_consumergroup_group_topic_sum_lag"], labels=["group", "topic"],
        )  # fmt: skip
        max_lag = GaugeMetricFamily(
            "kafka_consumergroup_group_max_lag", d["kafka_consumergroup_group_max_lag"],
            labels=["group"],
        )  # fmt: skip
        max_lag_s = GaugeMetricFamily(
            "kafka_consumergroup_group_max_lag_seconds",
            d["kafka_consumergroup_group_max_lag_seconds"], labels=["group"],
        )  # fmt: skip
        status = GaugeMetricFamily(
            "kafka_consumergroup_group_status", d["kafka_consumergroup_group_status"],
            labels=["group"],
        )  # fmt: skip
        p_status = GaugeMetricFamily(
            "kafka_consumergroup_partition_status", d["kafka_consumergroup_partition_status"],
            labels=_PART_LABELS,
        )  # fmt: skip
        members = GaugeMetricFamily(
            "kafka_consumergroup_group_members", d["kafka_consumergroup_group_members"],
            labels=["group"],
        )  # fmt: skip
        poll = GaugeMetricFamily(
            "kafka_consumergroup_poll_time_ms", d["kafka_consumergroup_poll_time_ms"], labels=[]
        )
        last_ok = GaugeMetricFamily(
            "creator_scores_lag_last_refresh_timestamp_seconds",
            d["creator_scores_lag_last_refresh_timestamp_seconds"], labels=["group"],
        )  # fmt: skip
        errors = CounterMetricFamily(
            "creator_scores_lag_refresh_errors",
            d["creator_scores_lag_refresh_errors_total"], labels=["group"],
        )  # fmt: skip
        if with_samples:
            mon = self.monitor
            seen: set[Partition] = set()
            for group, g in sorted(mon.snapshot().items()):
                for p in g.partitions:
                    labels = [group, p.topic, str(p.partition)]
                    if p.committed is not None:
                        offset.add_metric(labels, p.committed)
                    lag.add_metric(labels, p.lag)
                    if p.lag_seconds is not None:
                        lag_s.add_metric(labels, p.lag_seconds)
                    p_status.add_metric(labels, int(p.status))
                    if (p.topic, p.partition) not in seen:
                        seen.add((p.topic, p.partition))
                        latest.add_metric([p.topic, str(p.partition)], p.end)
                        earliest.add_metric([p.topic, str(p.partition)], p.start)
                sum_lag.add_metric([group], g.sum_lag)
                for topic, total in sorted(g.topic_sum_lag().items()):
                    topic_sum.add_metric([group, topic], total)
                max_lag.add_metric([group], g.max_lag)
                max_lag_s.add_metric([group], g.max_lag_seconds)
                status.add_metric([group], int(g.status))
                members.add_metric([group], g.members)
            for group in sorted(mon.groups):
                if group in mon.last_refresh_s:
                    last_ok.add_metric([group], mon.last_refresh_s[group])
                errors.add_metric([group], mon.errors.get(group, 0))
            if mon.last_duration_s is not None:
                poll.add_metric([], mon.last_duration_s * 1000.0)
        yield from (offset, lag, lag_s, latest, earliest, sum_lag, topic_sum, max_lag)
        yield from (max_lag_s, status, p_status, members, poll, last_ok, errors)


# -- command line rendering ------------------------------------------------------------


def _human_seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def render_table(g: GroupLag, rules: StatusRules | None = None) -> str:
    """The `creator-scores lag` table: one line per topic and partition."""
    rules = rules or StatusRules()
    head = (
        f"group {g.group}  state {g.state}  members {g.members}  status {g.status.name}"
        f"  lag {g.sum_lag}  oldest unprocessed {_human_seconds(g.max_lag_seconds)}"
    )
    cols = ("TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "LAG-SECONDS", "STATUS", "CONSUMER")
    rows = [
        (
            p.topic,
            str(p.partition),
            "-" if p.committed is None else str(p.committed),
            str(p.end),
            str(p.lag),
            "?" if p.lag_seconds is None else f"{p.lag_seconds:.1f}",
            p.status.name,
            p.client_id or "-",
        )
        for p in g.partitions
    ]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    right = {1, 2, 3, 4, 5}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [head, line(cols), *(line(r) for r in rows)]
    if not rows:
        out.append("(no partitions: the group committed nothing and watches no topics)")
    out.append(f"status: {g.reason}")
    if g.missing_topics:
        out.append(f"topics not found on the broker: {', '.join(g.missing_topics)}")
    if g.samples < min(rules.stall_samples, rules.warn_samples):
        out.append(
            f"({g.samples} sample(s) so far: WARN and STALL need a few samples, see --watch)"
        )
    return "\n".join(out)


# -- the `creator-scores lag` command ------------------------------------------------


async def lag_report(
    settings: Settings,
    groups: Sequence[str],
    *,
    as_json: bool,
    watch: bool,
    interval_s: float = DEFAULT_INTERVAL_S,
    echo: Callable[[str], None] = print,
    clear: Callable[[], None] | None = None,
    max_refreshes: int | None = None,
) -> None:
    """Print the lag of `groups` (default: the app's group) once, or every `interval_s`.

    Raises `LagError` when Kafka cannot be reached or a group is unknown on the
    first refresh; while watching, later failures are printed and retried.
    """
    if interval_s <= 0:
        raise LagError(f"--interval must be > 0 seconds, got {interval_s}")
    wanted = list(dict.fromkeys(groups)) or [settings.app_id]
    monitor = LagMonitor.for_settings(settings, wanted)
    try:
        await monitor.start()
        refreshes = 0
        while True:
            began = time.monotonic()
            snap = await monitor.refresh()
            refreshes += 1
            if refreshes == 1:
                _check_first(monitor, snap, wanted)
            if clear is not None and not as_json:
                clear()
            if as_json:
                doc = {
                    "at": round(time.time(), 3),
                    "groups": [snap[g].to_dict() for g in wanted if g in snap],
                    "errors": {g: monitor.last_error[g] for g in wanted if g in monitor.last_error},
                }
                echo(json.dumps(doc, separators=(",", ":") if watch else (", ", ": ")))
            else:
                blocks = [
                    render_table(snap[g], monitor.rules)
                    if g in snap
                    else f"group {g}: refresh failed: {monitor.last_error.get(g, '?')}"
                    for g in wanted
                ]
                echo("\n\n".join(blocks))
            if not watch or (max_refreshes is not None and refreshes >= max_refreshes):
                return
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - began)))
    finally:
        await monitor.close()


def _check_first(monitor: LagMonitor, snap: Mapping[str, GroupLag], wanted: Sequence[str]) -> None:
    for group in wanted:
        if group not in snap:
            raise LagError(f"group {group!r}: {monitor.last_error.get(group, 'refresh failed')}")
        g = snap[group]
        if not g.partitions and g.members == 0:
            raise LagError(
                f"consumer group {group!r} is unknown to the broker: "
                "no active members and no committed offsets"
            )
