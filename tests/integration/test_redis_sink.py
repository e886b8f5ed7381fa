"""The Redis sink against the real Redis: snapshots, board moves, idempotence, retries."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from streams import metrics
from streams.devtools.stack import LocalStack
from streams.keys import Keys
from streams.sinks.base import Backoff, CreatorSnapshot
from streams.sinks.redis import RedisSink, build_redis

pytestmark = pytest.mark.integration


def _fields(region: str, overall: float) -> dict[str, str]:
    return {"overall": repr(overall), "region": region, "updated_at": "1"}


def _boards(region: str, overall: float, theme: str) -> dict[str, float]:
    ids = Keys("")
    return {
        ids.board("overall"): overall,
        ids.board("overall", region): overall,
        ids.theme_board("overall", "ALL", theme): overall,
        ids.theme_board("overall", region, theme): overall,
    }


async def test_new_creator_gets_hash_boards_and_membership(redis: Redis, redis_prefix: str) -> None:
    keys = Keys(redis_prefix)
    sink = RedisSink(redis, keys)
    snap = CreatorSnapshot(
        "c1", _fields("SG", 71.5), _boards("SG", 71.5, "beauty"), previous_known=False
    )
    await sink.write([snap])

    assert await redis.hgetall(keys.creator("c1")) == {
        b"overall": b"71.5",
        b"region": b"SG",
        b"updated_at": b"1",
    }
    assert await redis.zscore(keys.board("overall"), "c1") == 71.5
    assert await redis.zscore(keys.board("overall", "SG"), "c1") == 71.5
    assert await redis.zscore(keys.theme_board("overall", "SG", "beauty"), "c1") == 71.5
    members = {m.decode() for m in await redis.smembers(keys.creator_boards("c1"))}
    assert members == {redis_prefix + b for b in snap.set_boards}


async def test_region_and_theme_change_leaves_old_boards(redis: Redis, redis_prefix: str) -> None:
    keys = Keys(redis_prefix)
    sink = RedisSink(redis, keys)
    first = _boards("SG", 40.0, "beauty")
    await sink.write([CreatorSnapshot("c1", _fields("SG", 40.0), first, previous_known=False)])
    await sink.write([CreatorSnapshot("c2", _fields("SG", 55.0), _boards("SG", 55.0, "beauty"))])

    second = _boards("MY", 42.0, "food")
    left = frozenset(set(first) - set(second))
    joined = frozenset(set(second) - set(first))
    await sink.write([CreatorSnapshot("c1", _fields("MY", 42.0), second, left, join_boards=joined)])

    assert await redis.zscore(keys.board("overall", "SG"), "c1") is None
    assert await redis.zscore(keys.theme_board("overall", "ALL", "beauty"), "c1") is None
    assert await redis.zscore(keys.board("overall", "MY"), "c1") == 42.0
    assert await redis.zscore(keys.theme_board("overall", "MY", "food"), "c1") == 42.0
    # The other creator on the boards c1 left is untouched.
    assert await redis.zscore(keys.board("overall", "SG"), "c2") == 55.0
    members = {m.decode() for m in await redis.smembers(keys.creator_boards("c1"))}
    assert members == {redis_prefix + b for b in second}


async def test_unknown_previous_boards_are_read_from_redis(redis: Redis, redis_prefix: str) -> None:
    """A creator whose state was lost still leaves the boards Redis says it sits on."""
    keys = Keys(redis_prefix)
    sink = RedisSink(redis, keys)
    await sink.write([CreatorSnapshot("c1", _fields("SG", 40.0), _boards("SG", 40.0, "beauty"))])

    fresh = _boards("VN", 10.0, "tech")
    await sink.write([CreatorSnapshot("c1", _fields("VN", 10.0), fresh, previous_known=False)])

    boards = [k async for k in redis.scan_iter(match=keys.boards_pattern())]
    on = {k.decode() for k in boards if await redis.zscore(k, "c1") is not None}
    assert on == {redis_prefix + b for b in fresh}


async def test_same_batch_twice_leaves_redis_identical(
    redis: Redis,
    redis_prefix: str,
    redis_dump: Callable[[Redis, str], Awaitable[dict[str, object]]],
) -> None:
    keys = Keys(redis_prefix)
    sink = RedisSink(redis, keys)
    batch = [
        CreatorSnapshot(
            f"c{i}",
            _fields("SG", float(i)),
            _boards("SG", float(i), "beauty"),
            previous_known=False,
        )
        for i in range(50)
    ]
    await sink.write(batch)
    first = await redis_dump(redis, redis_prefix)
    await sink.write(batch)
    assert await redis_dump(redis, redis_prefix) == first
    assert len(first) == 50 * 2 + 4  # hash and membership per creator, four boards


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_write_retries_until_redis_comes_back(redis_prefix: str) -> None:
    """With Redis down the write neither fails nor gives up; it lands once Redis is up."""
    port = _free_port()
    client = build_redis(f"redis://127.0.0.1:{port}/0")
    keys = Keys(redis_prefix)
    sink = RedisSink(client, keys, Backoff(initial_s=0.02, max_s=0.1))
    errors_before = metrics.REDIS_ERRORS._value.get()
    write = asyncio.ensure_future(
        sink.write([CreatorSnapshot("c1", _fields("SG", 1.0), _boards("SG", 1.0, "x"))])
    )
    await asyncio.sleep(0.5)
    assert not write.done()
    assert metrics.REDIS_ERRORS._value.get() > errors_before

    server = subprocess.Popen(
        [LocalStack.redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.wait_for(write, timeout=10)
        assert await client.hget(keys.creator("c1"), "region") == b"SG"
    finally:
        await client.aclose()
        server.terminate()
        server.wait(5)
