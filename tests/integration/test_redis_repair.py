"""A Redis that lost its data comes back equal to an undisturbed run's, from the state alone.

The pipeline runs over a dict state table and writes the real Redis under the test's
prefix; "Redis lost its data" is every key under that prefix deleted (the Redis is
shared: never FLUSHALL). The republisher then runs its checks, and the whole prefix is
compared with the Redis of the same flushes run without the loss.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import orjson
import pytest
from redis.asyncio import Redis

from scoring.params import DEFAULT_PARAMS
from streams import metrics
from streams.codec import RawRecord
from streams.keys import Keys
from streams.pipeline import Pipeline
from streams.repair import DONE, Republisher, delete_markers
from streams.settings import Settings
from streams.sinks.base import CreatorSnapshot, OutboundRecord
from streams.sinks.kafka import partition_for
from streams.sinks.redis import RedisSink, build_redis
from streams.state_store import DictStore
from tests.support.payloads import CONFIG, HOUR, NOW_MS

pytestmark = pytest.mark.integration

PARTITIONS = 4
CREATORS = 30
RedisDump = Callable[[Redis, str], Awaitable[dict[str, object]]]
REGIONS = ("SG", "MY", "ID", "VN")
THEMES = ("beauty", "food", "travel", "tech")
TYPES = ("video", "live", "photo")


@pytest.fixture
async def client(stack_settings: Settings) -> AsyncIterator[Redis]:
    redis = build_redis(stack_settings.redis_url)
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.fixture
def prefixes(unique: str) -> list[str]:
    return [f"test-{unique}-{i}:" for i in range(3)]


@pytest.fixture(autouse=True)
async def _cleanup(client: Redis, prefixes: list[str]) -> AsyncIterator[None]:
    yield
    for prefix in prefixes:
        await lose_data(client, prefix)


async def lose_data(client: Redis, prefix: str) -> int:
    """What a Redis restarted empty looks like to this test: nothing under its prefix."""
    found = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
    if found:
        await client.delete(*found)
    return len(found)


class Records:
    """The score-change and dead-letter records (Redis is what these tests compare)."""

    def __init__(self) -> None:
        self.records: list[OutboundRecord] = []

    async def write(self, batch: Sequence[OutboundRecord]) -> None:
        self.records.extend(batch)


def flushes() -> list[list[tuple[str, dict[str, object]]]]:
    """Three flushes over CREATORS creators: first cards, then new themes, content types,
    tags and orders, then region moves, themes dropped and refunds."""
    out: list[list[tuple[str, dict[str, object]]]] = [[], [], []]
    for c in range(CREATORS):
        creator = f"c{c:03d}"
        region = REGIONS[c % len(REGIONS)]
        for n in range(3):
            out[0].append(("posts", {
                "post_id": f"{creator}-p{n}", "creator_id": creator, "region": region,
                "content_type": TYPES[(c + n) % len(TYPES)],
                "themes": [THEMES[(c + n) % len(THEMES)]],
                "posted_at": NOW_MS - (n + 2) * 7 * HOUR, "views": 500 + 97 * c + 10 * n,
                "likes": 20 + c, "comments": n, "shares": c % 3,
            }))  # fmt: skip
        out[1].append(("tags", {
            "tag_id": f"{creator}-t0", "post_id": f"{creator}-p0", "creator_id": creator,
            "product_id": "sku", "brand_id": f"brand-{c % 5}", "theme": THEMES[c % 4],
            "tagged_at": NOW_MS - 13 * HOUR,
        }))  # fmt: skip
        out[1].append(("orders", {
            "order_id": f"{creator}-o0", "creator_id": creator, "post_id": f"{creator}-p0",
            "product_id": "sku", "brand_id": f"brand-{c % 5}", "theme": THEMES[(c + 1) % 4],
            "quantity": 1 + c % 3, "amount": f"{10 + c}.50", "currency": "USD",
            "status": "placed", "ordered_at": NOW_MS - 12 * HOUR,
        }))  # fmt: skip
        if c % 3 == 0:
            out[2].append(("posts", {
                "post_id": f"{creator}-p9", "creator_id": creator,
                "region": REGIONS[(c + 1) % len(REGIONS)], "content_type": "live",
                "themes": ["travel", "food"], "posted_at": NOW_MS - HOUR,
                "views": 40_000, "likes": 3_000, "comments": 200, "shares": 90,
            }))  # fmt: skip
        if c % 4 == 1:
            out[2].append(("orders", {
                "order_id": f"{creator}-o0", "creator_id": creator, "post_id": f"{creator}-p0",
                "product_id": "sku", "brand_id": f"brand-{c % 5}", "theme": THEMES[(c + 1) % 4],
                "quantity": 1 + c % 3, "amount": f"{10 + c}.50", "currency": "USD",
                "status": "refunded", "ordered_at": NOW_MS - 12 * HOUR,
            }))  # fmt: skip
    return out


class Run:
    """One worker's pipeline and republisher over the real Redis, under one prefix."""

    def __init__(
        self,
        client: Redis,
        prefix: str,
        *,
        owned: Callable[[], frozenset[int] | None] = lambda: frozenset(range(PARTITIONS)),
        slice_size: int = 7,
        sink: RedisSink | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.table = DictStore()
        self.records = Records()
        self.pipeline = Pipeline(CONFIG, DEFAULT_PARAMS, self.table, RedisSink(client, self.keys),
                                 self.records, clock=lambda: NOW_MS / 1000)  # fmt: skip
        self.repair = Republisher(
            self.table, PARTITIONS, owned, client, sink or RedisSink(client, self.keys),
            self.keys, DEFAULT_PARAMS, clock=lambda: NOW_MS / 1000, slice_size=slice_size,
        )  # fmt: skip
        self._offset = 0

    async def flush(self, events: list[tuple[str, dict[str, object]]]) -> None:
        records = []
        for topic, payload in events:
            self._offset += 1
            key = str(payload["creator_id"]).encode()
            records.append(RawRecord(topic, 0, self._offset, key, orjson.dumps(payload), NOW_MS))
        async with self.repair.exclusive.turn():
            await self.pipeline.process(records)

    async def dump(self, redis_dump: RedisDump) -> dict[str, object]:
        """The prefix's keys without the prefix (and membership sets' board keys without
        it too), so two runs under two prefixes compare."""
        raw = await redis_dump(self.client, self.prefix)
        out: dict[str, object] = {}
        prefix = self.prefix.encode()
        for key, value in raw.items():
            if key.startswith(f"{self.prefix}creator-boards:") and isinstance(value, list):
                value = [m.removeprefix(prefix) for m in value]
            out[key.removeprefix(self.prefix)] = value
        return out


async def undisturbed(client: Redis, prefix: str, redis_dump: RedisDump) -> dict[str, object]:
    run = Run(client, prefix)
    for events in flushes():
        await run.flush(events)
    assert await run.repair.check() == CREATORS  # no markers yet: the first check writes them
    return await run.dump(redis_dump)


async def test_redis_emptied_mid_stream_is_repaired_to_the_undisturbed_state(
    client: Redis, prefixes: list[str], redis_dump: RedisDump
) -> None:
    expected = await undisturbed(client, prefixes[0], redis_dump)
    assert {key for key in expected if key.startswith("meta:")} == {
        f"meta:published:{p}" for p in range(PARTITIONS)
    }
    assert sum(key.startswith("creator:") for key in expected) == CREATORS

    run = Run(client, prefixes[1])
    first, second, third = flushes()
    await run.flush(first)
    await run.flush(second)
    assert await run.repair.check() == CREATORS
    assert await run.repair.check() is None  # the markers are there: nothing to do

    # Redis restarts empty; the next flush writes its differences onto nothing.
    assert await lose_data(client, run.prefix) > 0
    await run.flush(third)
    assert await run.dump(redis_dump) != expected
    republishes = metrics.REDIS_REPUBLISHES._value.get()
    creators = metrics.REDIS_REPUBLISHED_CREATORS._value.get()
    records = len(run.records.records)
    table = dict(run.table)

    assert await run.repair.check() == CREATORS
    assert await run.dump(redis_dump) == expected
    assert metrics.REDIS_REPUBLISHES._value.get() == republishes + 1
    assert metrics.REDIS_REPUBLISHED_CREATORS._value.get() == creators + CREATORS
    # From the state only: no record produced, the state table untouched.
    assert len(run.records.records) == records
    assert dict(run.table) == table

    # An operator forces it: the markers go, the next check writes everything again.
    assert await delete_markers(client, run.keys) == PARTITIONS
    assert await run.repair.check() == CREATORS
    assert await run.dump(redis_dump) == expected


async def test_redis_emptied_during_a_republish_starts_it_over(
    client: Redis, prefixes: list[str], redis_dump: RedisDump
) -> None:
    expected = await undisturbed(client, prefixes[0], redis_dump)

    class LosingOnce(RedisSink):
        """Redis loses its data right after the first slice of the republish is written."""

        lost = False

        async def write(self, batch: Sequence[CreatorSnapshot]) -> None:
            await super().write(batch)
            if not self.lost:
                self.lost = True
                await lose_data(client, prefixes[1])

    run = Run(client, prefixes[1], sink=LosingOnce(client, Keys(prefixes[1])))
    for events in flushes():
        await run.flush(events)
    assert await run.repair.check() is None  # the pending markers were lost: not done
    assert not [m async for m in client.scan_iter(match=run.keys.markers_pattern())]
    assert await run.repair.check() == CREATORS
    assert await run.dump(redis_dump) == expected


async def test_only_owned_partitions_are_republished_and_a_rebalance_stops_it(
    client: Redis, prefixes: list[str], redis_dump: RedisDump
) -> None:
    expected = await undisturbed(client, prefixes[0], redis_dump)
    owned: list[frozenset[int] | None] = [frozenset({0, 1})]
    run = Run(client, prefixes[1], owned=lambda: owned[0], slice_size=5)
    for events in flushes():
        await run.flush(events)
    mine = {
        f"c{c:03d}" for c in range(CREATORS) if partition_for(f"c{c:03d}".encode(), PARTITIONS) < 2
    }
    assert 0 < len(mine) < CREATORS
    assert await run.repair.check() == len(mine)
    await lose_data(client, run.prefix)

    # A rebalance starts after the first slice: the republish stops, its markers pending.
    class Rebalancing(RedisSink):
        async def write(self, batch: Sequence[CreatorSnapshot]) -> None:
            await super().write(batch)
            owned[0] = None

    run.repair = Republisher(run.table, PARTITIONS, lambda: owned[0], client,
                             Rebalancing(client, run.keys), run.keys, DEFAULT_PARAMS,
                             clock=lambda: NOW_MS / 1000, slice_size=5)  # fmt: skip
    assert await run.repair.check() is None
    markers = [run.keys.partition_marker(p) for p in range(PARTITIONS)]
    assert await client.mget(markers) == [b"pending", b"pending", None, None]

    # The worker owns them again: the next check finishes the job.
    owned[0] = frozenset({0, 1})
    run.repair = Republisher(run.table, PARTITIONS, lambda: owned[0], client,
                             RedisSink(client, run.keys), run.keys, DEFAULT_PARAMS,
                             clock=lambda: NOW_MS / 1000, slice_size=5)  # fmt: skip
    assert await run.repair.check() == len(mine)
    assert await client.mget(markers) == [DONE, DONE, None, None]

    got = await run.dump(redis_dump)
    assert {k.removeprefix("creator:") for k in got if k.startswith("creator:")} == mine
    for key, value in got.items():
        if key.startswith(("creator:", "creator-boards:")):
            assert value == expected[key]
        elif key.startswith("lb:"):
            # The boards hold exactly the owned creators' entries of the undisturbed run.
            entries = expected[key]
            assert isinstance(entries, list)
            assert value == [(m, s) for m, s in entries if m.decode() in mine]
