"""The worker writes every score-change record to Redis too: the read API's recent changes and
live feeds come from these streams, so they must hold exactly what the topic gets."""

from __future__ import annotations

import time

import orjson
import pytest
from redis.asyncio import Redis

from scoring.params import DEFAULT_PARAMS
from streams.codec import RawRecord
from streams.devtools.simulate import SimConfig, generate_events
from streams.keys import Keys
from streams.pipeline import Pipeline, PipelineConfig
from streams.sinks.base import CreatorSnapshot, OutboundRecord
from streams.sinks.redis import ChangeRetention, RedisSink
from streams.state_store import DictStore

pytestmark = pytest.mark.integration

CONFIG = PipelineConfig(
    kinds={"posts": "post", "shoppable-tags": "tag", "orders": "order"},
    rekeyed_topic="rekeyed", changes_topic="changes", dead_letter_topic="dead",
    change_threshold=1.0,
)  # fmt: skip


class Records:
    """The Kafka sink's side: every record the pipeline hands on."""

    def __init__(self) -> None:
        self.records: list[OutboundRecord] = []

    async def write(self, batch: list[OutboundRecord]) -> None:
        self.records.extend(batch)


async def _score(redis: Redis, keys: Keys, retention: ChangeRetention) -> list[OutboundRecord]:
    """A small simulated population through the pipeline in a few flushes; the changes."""
    end_ms = int(time.time() * 1000)
    config = SimConfig(end_ms=end_ms, events=6_000, creators=40, seed=5, malformed_share=0)
    events = list(generate_events(config))
    kafka = Records()
    pipeline = Pipeline(CONFIG, DEFAULT_PARAMS, DictStore(),
                        RedisSink(redis, keys, changes=retention), kafka)  # fmt: skip
    for start in range(0, len(events), 1_500):
        chunk = events[start : start + 1_500]
        await pipeline.process(
            [RawRecord(e.topic, 0, start + i, e.key, e.value, end_ms) for i, e in enumerate(chunk)]
        )
    return [r for r in kafka.records if r.topic == "changes"]


async def test_every_change_record_reaches_the_streams_word_for_word(
    redis: Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    changes = await _score(redis, keys, ChangeRetention(stream=100_000, per_creator=3))
    assert len(changes) > 40  # first cards, then moves

    stream = await redis.xrange(keys.changes())
    assert [fields[b"change"] for _, fields in stream] == [r.value for r in changes]
    assert [fields[b"creator_id"] for _, fields in stream] == [r.key for r in changes]

    by_creator: dict[bytes, list[bytes]] = {}
    for record in changes:
        assert record.key is not None
        by_creator.setdefault(record.key, []).append(record.value)
    assert max(len(v) for v in by_creator.values()) > 3  # so the cap is exercised
    for creator, values in by_creator.items():
        own = await redis.xrange(keys.creator_changes(creator.decode()))
        assert [fields[b"change"] for _, fields in own] == values[-3:]
        # The creator's hash already holds the card the newest record describes.
        newest = orjson.loads(values[-1])
        overall = await redis.hget(keys.creator(creator.decode()), "overall")
        assert float(overall) == newest["new"]["overall"]


async def test_the_global_stream_is_capped_and_zero_keeps_nothing(
    redis: Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    sink = RedisSink(redis, keys, changes=ChangeRetention(stream=0, per_creator=0))
    snap = CreatorSnapshot("c1", {"overall": "50.0"}, {}, change=b'{"creator_id":"c1"}')
    await sink.write([snap])
    assert await redis.hget(keys.creator("c1"), "overall") == b"50.0"
    assert not await redis.exists(keys.changes(), keys.creator_changes("c1"))

    sink = RedisSink(redis, keys, changes=ChangeRetention(stream=10, per_creator=2))
    for i in range(2_000):  # approximate trimming drops whole nodes (100 entries each)
        await sink.write([CreatorSnapshot("c1", {"updated_at": str(i)}, {}, change=b"%d" % i)])
    assert 10 <= await redis.xlen(keys.changes()) <= 200
    last = await redis.xrevrange(keys.changes(), count=1)
    assert last[0][1] == {b"creator_id": b"c1", b"change": b"1999"}
    own = await redis.xrange(keys.creator_changes("c1"))
    assert [fields[b"change"] for _, fields in own] == [b"1998", b"1999"]
