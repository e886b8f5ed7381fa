"""The shared stream time, and its wall-clock fallback for a silent stream, on the real Redis.

Workers share the stream time through one sorted-set member that only grows; when the
whole stream goes silent for `idle_s`, the stream time follows the wall clock `idle_s`
behind it (`streams.sweep.StreamClock`). The clocks here are driven by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from scoring.columns import DAY_MS
from scoring.params import DEFAULT_PARAMS
from streams import metrics
from streams.keys import Keys
from streams.pipeline import Pipeline
from streams.state_store import DictStore
from streams.sweep import StreamClock
from tests.support.payloads import CONFIG, NOW_MS

pytestmark = pytest.mark.integration

IDLE_S = 600.0


class _Discard:
    async def write(self, batch: Any) -> None:
        return None


class _Time:
    """A hand-driven wall clock and monotonic clock, moving together."""

    def __init__(self, wall_s: float) -> None:
        self.wall_s = wall_s
        self.mono = 1000.0

    def wall(self) -> float:
        return self.wall_s

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall_s += seconds
        self.mono += seconds


def _pipeline() -> Pipeline:
    return Pipeline(CONFIG, DEFAULT_PARAMS, DictStore(), _Discard(), _Discard())


async def test_workers_share_the_newest_stream_time(redis: Redis, redis_prefix: str) -> None:
    a, b = _pipeline(), _pipeline()
    clock_a, clock_b = (
        StreamClock(redis, Keys(redis_prefix)),
        StreamClock(redis, Keys(redis_prefix)),
    )
    a.observe_stream_time(NOW_MS)
    assert await clock_a.sync(a) == NOW_MS
    assert await clock_b.sync(b) == NOW_MS  # b had seen nothing: it takes a's
    b.observe_stream_time(NOW_MS + DAY_MS)
    await clock_b.sync(b)
    assert await clock_a.sync(a) == NOW_MS + DAY_MS
    # It never goes back, whatever a worker still holds.
    stale = _pipeline()
    stale.observe_stream_time(NOW_MS - DAY_MS)
    assert await StreamClock(redis, Keys(redis_prefix)).sync(stale) == NOW_MS + DAY_MS


async def test_a_silent_stream_follows_the_wall_clock_idle_s_behind(
    redis: Redis, redis_prefix: str
) -> None:
    t = _Time(wall_s=NOW_MS / 1000 + 3 * 86400)  # the wall clock is 3 days past the events
    pipeline = _pipeline()
    pipeline.last_records_at = t.mono
    pipeline.observe_stream_time(NOW_MS)
    clock = StreamClock(redis, Keys(redis_prefix), idle_s=IDLE_S, wall=t.wall,
                        monotonic=t.monotonic)  # fmt: skip
    before = metrics.STREAM_TIME_IDLE_ADVANCES._value.get()
    assert await clock.sync(pipeline) == NOW_MS
    t.advance(IDLE_S - 1)
    assert await clock.sync(pipeline) == NOW_MS  # not silent long enough yet
    t.advance(1)
    expected = int((t.wall_s - IDLE_S) * 1000)
    assert await clock.sync(pipeline) == expected
    # Shared with the other workers, like any stream time.
    assert await StreamClock(redis, Keys(redis_prefix)).sync(_pipeline()) == expected
    # It keeps following the wall clock while the stream stays silent.
    t.advance(30)
    assert await clock.sync(pipeline) == expected + 30_000
    assert metrics.STREAM_TIME_IDLE_ADVANCES._value.get() == before + 2


async def test_records_or_a_moving_stream_time_hold_the_wall_clock_back(
    redis: Redis, redis_prefix: str
) -> None:
    t = _Time(wall_s=NOW_MS / 1000 + 3 * 86400)
    pipeline = _pipeline()
    pipeline.last_records_at = t.mono
    pipeline.observe_stream_time(NOW_MS)
    clock = StreamClock(redis, Keys(redis_prefix), idle_s=IDLE_S, wall=t.wall,
                        monotonic=t.monotonic)  # fmt: skip
    await clock.sync(pipeline)
    # Records keep arriving (older than the stream time: it does not move): not silent.
    for _ in range(3):
        t.advance(IDLE_S / 2)
        pipeline.last_records_at = t.mono
        assert await clock.sync(pipeline) == NOW_MS
    # Another worker's events move the shared stream time: not silent either.
    other = _pipeline()
    for step in range(1, 4):
        t.advance(IDLE_S / 2)
        other.observe_stream_time(NOW_MS + step * 60_000)
        await StreamClock(redis, Keys(redis_prefix)).sync(other)
        assert await clock.sync(pipeline) == NOW_MS + step * 60_000


async def test_idle_zero_never_moves_the_stream_time(redis: Redis, redis_prefix: str) -> None:
    t = _Time(wall_s=NOW_MS / 1000 + 3 * 86400)
    pipeline = _pipeline()
    pipeline.last_records_at = t.mono
    pipeline.observe_stream_time(NOW_MS)
    clock = StreamClock(redis, Keys(redis_prefix), wall=t.wall, monotonic=t.monotonic)
    await clock.sync(pipeline)
    t.advance(10 * 86400)
    assert await clock.sync(pipeline) == NOW_MS
