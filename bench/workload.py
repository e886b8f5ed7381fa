"""Input for the benchmarks: the simulator's stream, preloaded once per creator count.

Every consumer of one creator count (the pipeline and all baselines) reads the
same preloaded topics with its own consumer group, so they all see identical
bytes in identical order. Records are produced with aiokafka's batch API
(`create_batch` + `send_batch`, one open batch per partition), partitioned with
the default murmur2 partitioner on the key exactly as the simulator's own
producer does, so the pipeline's co-partitioning holds.

While producing, the harness remembers, for a sample of creators, the newest
valid event time the pipeline should end up publishing for them
(`creator hash event_time`); that is how "every event is reflected in Redis" is
checked without reading all of Redis.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from bench.common import BenchError, Ctx, create_topics, end_offsets, source_partitions
from streams.devtools.simulate import SimConfig, SimEvent, SimStats, SimTopics, generate_events

SAMPLE_CREATORS = 200


@dataclass
class Dataset:
    """One preloaded input: three source topics and what the harness knows about them."""

    label: str
    creators: int
    events: int
    topics: tuple[str, str, str]
    partitions: int
    end_offsets: dict[TopicPartition, int]
    #: creator id -> newest valid event time (ms) among that creator's events
    expected_watermarks: dict[str, int]
    distinct_keys: int
    value_bytes: int
    generate_s: float
    produce_s: float
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.end_offsets.values())

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "creators": self.creators,
            "events": self.total,
            "distinct_keys": self.distinct_keys,
            "mean_value_bytes": round(self.value_bytes / max(1, self.total), 1),
            "topics": list(self.topics),
            "partitions": self.partitions,
            "generate_s": round(self.generate_s, 2),
            "preload_s": round(self.produce_s, 2),
            "preload_events_per_s": round(self.total / self.produce_s) if self.produce_s else None,
            "expected_sample_creators": len(self.expected_watermarks),
            **self.stats,
        }


class WatermarkTracker:
    """Newest valid event time per sampled creator, judged by the model's own validator."""

    def __init__(self, creators: Iterable[str], now_ms: int) -> None:
        self.wanted = set(creators)
        self.now_ms = now_ms
        self.watermarks: dict[str, int] = {}
        try:
            from scoring.params import DEFAULT_PARAMS
            from scoring.validate import validate
        except ImportError as exc:  # the model is not there yet: offsets alone decide "done"
            self.validate: Any = None
            self.reason = f"scoring.validate unavailable ({exc}); Redis check skipped"
        else:
            self.validate = validate
            self.params = DEFAULT_PARAMS
            self.reason = ""

    def observe(self, kind: str, value: bytes) -> None:
        if self.validate is None:
            return
        try:
            payload = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if not isinstance(payload, dict) or payload.get("creator_id") not in self.wanted:
            return
        event = self.validate(kind, payload, now_ms=self.now_ms, params=self.params)
        if hasattr(event, "event_time_ms"):
            cid = event.creator_id
            self.watermarks[cid] = max(self.watermarks.get(cid, 0), event.event_time_ms)


class BatchProducer:
    """Many records per request: one open aiokafka batch per (topic, partition)."""

    def __init__(self, producer: AIOKafkaProducer, partitions: int) -> None:
        self.producer = producer
        self.partitions = list(range(partitions))
        self._partitioner = DefaultPartitioner()
        self._cache: dict[bytes, int] = {}
        self._rng = random.Random(7)
        self._open: dict[tuple[str, int], Any] = {}
        self._futures: list[asyncio.Future[Any]] = []

    def partition_of(self, key: bytes | None) -> int:
        if key is None:
            return self._rng.choice(self.partitions)
        part = self._cache.get(key)
        if part is None:
            part = int(self._partitioner(key, self.partitions, self.partitions))
            self._cache[key] = part
        return part

    async def add(
        self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int | None = None
    ) -> None:
        slot = (topic, self.partition_of(key))
        batch = self._open.get(slot)
        if batch is None:
            batch = self._open[slot] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
            await self._send(slot, batch)
            batch = self._open[slot] = self.producer.create_batch()
            if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
                raise BenchError(f"a {len(value)}-byte record does not fit in an empty batch")

    async def _send(self, slot: tuple[str, int], batch: Any) -> None:
        topic, partition = slot
        self._futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        if len(self._futures) >= 64:
            await asyncio.gather(*self._futures)
            self._futures.clear()

    async def flush(self) -> None:
        for slot, batch in list(self._open.items()):
            if batch.record_count():
                await self._send(slot, batch)
        self._open.clear()
        await asyncio.gather(*self._futures)
        self._futures.clear()


def simulator_events(
    creators: int, events: int, topics: SimTopics, seed: int, end_ms: int, stats: SimStats
) -> Iterator[SimEvent]:
    config = SimConfig(end_ms=end_ms, events=events, creators=creators, seed=seed, topics=topics)
    return generate_events(config, stats)


async def preload(ctx: Ctx, label: str, creators: int, events: int, seed: int = 42) -> Dataset:
    """Create three source topics and fill them with `events` simulator records."""
    topics = SimTopics(
        posts=ctx.name(label, "posts"),
        tags=ctx.name(label, "tags"),
        orders=ctx.name(label, "orders"),
    )
    names = (topics.posts, topics.tags, topics.orders)
    kinds = {topics.posts: "post", topics.tags: "tag", topics.orders: "order"}
    await create_topics(ctx, names)
    now_ms = int(time.time() * 1000)
    rng = random.Random(seed)
    sample = [f"cr-{i:06d}" for i in rng.sample(range(creators), min(SAMPLE_CREATORS, creators))]
    tracker = WatermarkTracker(sample, now_ms + 60_000)
    stats = SimStats()
    producer = AIOKafkaProducer(
        bootstrap_servers=ctx.bootstrap,
        linger_ms=5,
        max_batch_size=1_048_576,
        max_request_size=4 * 1_048_576,
        acks=1,
    )
    await producer.start()
    keys: set[bytes] = set()
    value_bytes = 0
    gen_s = 0.0
    started = time.perf_counter()
    try:
        sender = BatchProducer(producer, ctx.partitions)
        it = simulator_events(creators, events, topics, seed, now_ms, stats)
        while True:
            t0 = time.perf_counter()
            chunk = [e for _, e in zip(range(10_000), it, strict=False)]
            gen_s += time.perf_counter() - t0
            if not chunk:
                break
            for ev in chunk:
                if ev.key is not None:
                    keys.add(ev.key)
                value_bytes += len(ev.value)
                tracker.observe(kinds[ev.topic], ev.value)
                await sender.add(ev.topic, ev.key, ev.value)
        await sender.flush()
    finally:
        await producer.stop()
    elapsed = time.perf_counter() - started
    offsets = await end_offsets(ctx, source_partitions(names, ctx.partitions))
    total = sum(offsets.values())
    if total != stats.total:
        raise BenchError(f"preload {label}: broker holds {total} records, produced {stats.total}")
    dataset = Dataset(
        label=label,
        creators=creators,
        events=events,
        topics=names,
        partitions=ctx.partitions,
        end_offsets=offsets,
        expected_watermarks=tracker.watermarks,
        distinct_keys=len(keys),
        value_bytes=value_bytes,
        generate_s=gen_s,
        produce_s=elapsed - gen_s,
        stats={
            "malformed": stats.malformed,
            "unkeyed": stats.unkeyed,
            "duplicates": stats.duplicates,
            "by_topic": dict(stats.by_topic),
            "redis_check": tracker.reason or "sampled creators' event_time",
        },
    )
    ctx.say(
        f"preloaded {label}: {total:,} events, {len(keys):,} keyed creators, "
        f"generated in {gen_s:.1f}s, produced in {elapsed - gen_s:.1f}s"
    )
    return dataset


async def preload_apart(ctx: Ctx, label: str, creators: int, events: int) -> Dataset:
    """`preload` in a child process, whose memory goes back to the system when it ends.

    The simulator's population costs the producing process kilobytes per creator, and
    CPython keeps most of it after the population is dropped: at a million creators
    that is gigabytes the harness would go on holding while the worker it measures
    runs on the same machine.
    """
    spawn = multiprocessing.get_context("spawn")  # no fork of a process running a loop
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        dataset, said = await asyncio.get_running_loop().run_in_executor(
            pool, _preload_in_child, ctx, label, creators, events
        )
    ctx.log.extend(said)
    return dataset


def _preload_in_child(
    ctx: Ctx, label: str, creators: int, events: int
) -> tuple[Dataset, list[str]]:
    """The child's side of `preload_apart`: the dataset, and the log lines said meanwhile."""
    before = len(ctx.log)
    dataset = asyncio.run(preload(ctx, label, creators, events))
    return dataset, ctx.log[before:]
