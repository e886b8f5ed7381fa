"""Whole-prefix Redis snapshots, for comparing what two runs left behind."""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis


async def dump_prefix(client: Redis, prefix: str) -> dict[str, object]:
    """Every key under the prefix with its full content, in comparable form.

    Streams are left out: they are the score-change logs (`Keys.changes`,
    `Keys.creator_changes`), whose entry ids are wall-clock times and whose records are at
    least once, so no two runs hold the same; they are checked in test_change_streams.
    """
    out: dict[str, object] = {}
    async for raw in client.scan_iter(match=f"{prefix}*", count=1000):
        key = raw.decode()
        kind = (await client.type(raw)).decode()
        if kind == "stream":
            continue
        if kind == "hash":
            out[key] = await client.hgetall(raw)
        elif kind == "zset":
            out[key] = await client.zrange(raw, 0, -1, withscores=True)
        elif kind == "set":
            out[key] = sorted(await client.smembers(raw))
        else:
            out[key] = (kind, await client.dump(raw))
    return out


async def delete_prefix(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


def without_updated_at(dump: Mapping[str, object]) -> dict[str, object]:
    """A dump without the creator hashes' `updated_at` (wall-clock, differs between runs)."""
    out = dict(dump)
    for key, value in dump.items():
        if isinstance(value, dict) and b"updated_at" in value:
            out[key] = {k: v for k, v in value.items() if k != b"updated_at"}
    return out
