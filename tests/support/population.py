"""A scored population in Redis, written by the worker's own pipeline and Redis sink, for tests
that read what a worker writes (the read API).

A few hundred simulated creators are scored in several flushes (so score changes follow
first cards), the stream time is shared through Redis as workers share it, and one more
creator, `QUIET`, whose posts all lie more than a window before the stream time, is swept
out of every board: its hash says inactive.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar

from redis.asyncio import Redis

from scoring.columns import DAY_MS
from scoring.params import DEFAULT_PARAMS
from streams.codec import RawRecord
from streams.devtools.simulate import SimConfig, generate_events
from streams.keys import Keys
from streams.pipeline import Pipeline, PipelineConfig
from streams.settings import Settings
from streams.sinks.base import OutboundRecord
from streams.sinks.redis import ChangeRetention, RedisSink
from streams.state_store import DictStore
from streams.sweep import StreamClock
from tests.support.redis import delete_prefix

T = TypeVar("T")

CONFIG: Final = PipelineConfig(
    kinds={"posts": "post", "shoppable-tags": "tag", "orders": "order"},
    rekeyed_topic="rekeyed", changes_topic="changes", dead_letter_topic="dead",
    change_threshold=1.0,
)  # fmt: skip
#: A creator with nothing in its window: inactive, on no board.
QUIET: Final = "cr-quiet"


class Collected:
    """Stands in for the Kafka sink: keeps the score-change records."""

    def __init__(self) -> None:
        self.changes: list[OutboundRecord] = []

    async def write(self, batch: list[OutboundRecord]) -> None:
        self.changes.extend(r for r in batch if r.topic == CONFIG.changes_topic)


@dataclass
class Population:
    pipeline: Pipeline
    store: DictStore
    collected: Collected
    end_ms: int


async def score_population(
    client: Redis, keys: Keys, *, creators: int = 300, events: int = 24_000, seed: int = 11
) -> Population:
    end_ms = int(time.time() * 1000)
    store = DictStore()
    collected = Collected()
    sink = RedisSink(client, keys, changes=ChangeRetention(stream=100_000, per_creator=5))
    pipeline = Pipeline(CONFIG, DEFAULT_PARAMS, store, sink, collected)
    quiet_end = end_ms - 35 * DAY_MS
    quiet = SimConfig(end_ms=quiet_end, events=300, creators=1, seed=seed + 1, days=5,
                      malformed_share=0, mis_keyed_share=0, duplicate_share=0)  # fmt: skip
    await pipeline.process([
        RawRecord(e.topic, 0, i, (e.key or b"").replace(b"cr-000000", QUIET.encode()),
                  e.value.replace(b"cr-000000", QUIET.encode()), quiet_end)
        for i, e in enumerate(generate_events(quiet))
    ])  # fmt: skip
    config = SimConfig(end_ms=end_ms, events=events, creators=creators, seed=seed,
                       malformed_share=0, mis_keyed_share=0, duplicate_share=0)  # fmt: skip
    records = [
        RawRecord(e.topic, 0, i, e.key, e.value, end_ms)
        for i, e in enumerate(generate_events(config))
    ]
    step = max(1, len(records) // 4)
    for start in range(0, len(records), step):
        await pipeline.process(records[start : start + step])
    await StreamClock(client, keys).sync(pipeline)
    await pipeline.sweep(list(store.keys()))
    return Population(pipeline, store, collected, end_ms)


@contextlib.contextmanager
def scored_prefix(
    settings: Settings, label: str, then: Callable[[Redis, Keys], Awaitable[T]]
) -> Iterator[tuple[Settings, T]]:
    """A prefix of its own with the population scored in it (`score_population`), then
    `then(client, keys)` run on a client that decodes responses; yields the settings with
    that prefix and what `then` returned, and deletes every key under the prefix after."""
    prefix = f"test-{label}-{uuid.uuid4().hex[:10]}:"
    scoped = settings.model_copy(update={"redis_prefix": prefix})

    async def seed() -> T:
        client = Redis.from_url(scoped.redis_url, decode_responses=True)
        try:
            await score_population(client, Keys(prefix))
            return await then(client, Keys(prefix))
        finally:
            await client.aclose()

    try:
        yield scoped, asyncio.run(seed())
    finally:
        asyncio.run(delete_prefix(scoped.redis_url, prefix))
