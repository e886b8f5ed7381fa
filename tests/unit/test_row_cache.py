"""Decoded states kept between flushes change nothing but the work: same tables, same outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.params import DEFAULT_PARAMS
from streams.codec import RawRecord
from streams.devtools.simulate import SimConfig, generate_events
from streams.pipeline import Pipeline, PipelineConfig
from streams.row_cache import RowCache
from streams.state_store import DictStore

NOW_MS = 1_795_676_400_000
CONFIG = PipelineConfig(
    kinds={"posts": "post", "shoppable-tags": "tag", "orders": "order"},
    rekeyed_topic="rekeyed",
    changes_topic="changes",
    dead_letter_topic="dead",
    change_threshold=1.0,
)


def _records(sim: SimConfig) -> list[RawRecord]:
    return [
        RawRecord(e.topic, 0, i, e.key, e.value, NOW_MS) for i, e in enumerate(generate_events(sim))
    ]


class _Keep:
    def __init__(self) -> None:
        self.items: list[Any] = []

    async def write(self, batch: Any) -> None:
        self.items.extend(batch)


async def _run(cache: RowCache, records: list[RawRecord]) -> tuple[dict[bytes, bytes], list[Any]]:
    table = DictStore()
    redis, kafka = _Keep(), _Keep()
    pipeline = Pipeline(CONFIG, DEFAULT_PARAMS, table, redis, kafka, clock=lambda: NOW_MS / 1000,
                        cache=cache)  # fmt: skip
    for i in range(0, len(records), 700):
        await pipeline.process(records[i : i + 700])
    return dict(table), [*redis.items, *(r for r in kafka.items)]


async def test_a_cache_changes_nothing_but_the_decoding() -> None:
    sim = SimConfig(end_ms=NOW_MS, events=8_000, creators=150)
    records = [
        RawRecord(e.topic, 0, i, e.key, e.value, NOW_MS) for i, e in enumerate(generate_events(sim))
    ]
    cache = RowCache(64 * 2**20)
    cached_table, cached_out = await _run(cache, records)
    plain_table, plain_out = await _run(RowCache(0), records)
    # Every stored value was written by this pipeline: all are found decoded.
    assert cache.hits > 500 and cache.misses == 0
    assert cached_table == plain_table
    assert cached_out == plain_out


async def test_an_entry_is_used_only_for_the_value_it_was_written_as() -> None:
    cache = RowCache(2**20)
    sim = SimConfig(end_ms=NOW_MS, events=400, creators=5)
    records = [
        RawRecord(e.topic, 0, i, e.key, e.value, NOW_MS) for i, e in enumerate(generate_events(sim))
    ]
    table = DictStore()
    pipeline = Pipeline(CONFIG, DEFAULT_PARAMS, table, _Keep(), _Keep(),
                        clock=lambda: NOW_MS / 1000, cache=cache)  # fmt: skip
    await pipeline.process(records[:200])
    key = next(iter(table))
    value = table[key]
    assert cache.get(key.decode(), value) is not None
    # An equal value that is another object (read back from the changelog, say) is a miss.
    assert cache.get(key.decode(), bytes(bytearray(value))) is None


def test_entries_past_the_budget_go_oldest_first() -> None:
    from scoring.columns import Columns, Heads

    cache = RowCache(700)
    heads = Heads.empty(1)
    for i in range(5):
        cache.put_flush([f"c{i}"], [b"v%d" % i], "m", heads, Columns.empty())
    assert len(cache) == 3 and cache.bytes <= 700  # 200 bytes of bookkeeping each
    assert cache.get("c0", b"v0") is None
    np.testing.assert_equal(cache.get("c4", _same(cache, "c4")) is not None, True)


def _same(cache: RowCache, creator: str) -> bytes:
    return cache._entries[creator].value
