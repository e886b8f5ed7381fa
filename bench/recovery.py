"""Scenario 4, recovery: kill -9 a worker holding the large dataset's creators.

Worker A starts on the large dataset with its own app id and is killed with
SIGKILL once it has consumed half the events (by then it holds nearly every
creator: each has several events spread over the stream). Worker B starts at
once with the same app id: it waits for the broker to drop A from the group
(session timeout), rebuilds the state table from the changelog and resumes
from the last committed offsets, replaying what A had done but not committed.
"Serving scores again" is B's first write to Redis, timed from the kill and
from B's start. B then runs to the end, and its Redis output (every creator
hash except `updated_at`, and every global leaderboard) is compared with the
output of the undisturbed run over the same input.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, cast

from aiokafka import TopicPartition
from redis.asyncio import Redis

from bench.common import (
    BenchError,
    Ctx,
    OffsetWatcher,
    delete_redis_prefix,
    end_offsets,
    free_port,
)
from bench.consumers import Metrics, _wait_done, start_consumer, worker_spec
from bench.workload import Dataset
from streams.keys import BOARD_SCORES

VOLATILE_FIELDS = {b"updated_at"}


async def run_recovery(
    ctx: Ctx,
    dataset: Dataset,
    undisturbed_prefix: str | None,
    *,
    kill_fraction: float = 0.5,
    env_overrides: Mapping[str, str] | None = None,
    static_member: bool = True,
) -> dict[str, Any]:
    """`static_member`: A and B share a group instance id, as a pod restarted under its
    name would (B takes A's partitions at once); False: B is a new member, assigned A's
    partitions only once the broker has dropped A (the session timeout)."""
    spec = worker_spec()
    app_id = ctx.name(dataset.label, "recovery")
    total = dataset.total
    result: dict[str, Any] = {"dataset": dataset.label, "events": total}
    env_overrides = dict(env_overrides or {})
    if static_member:
        env_overrides["CREATOR_SCORES_GROUP_INSTANCE_ID"] = f"{app_id}-worker-0"
    result["group_instance_id"] = env_overrides.get("CREATOR_SCORES_GROUP_INSTANCE_ID")
    ctx.say(f"recovery: worker A on {dataset.label}, kill -9 at {kill_fraction:.0%} consumed")
    first = start_consumer(ctx, spec, dataset.topics, app_id, tag="-a", env_overrides=env_overrides)
    redis = Redis.from_url(ctx.redis_url)
    second = None
    try:
        async with Metrics(first.metrics_port) as metrics:
            held = 0.0
            consumed = 0.0
            deadline = time.time() + ctx.deadline_s
            while time.time() < deadline:
                first.proc.check_alive()
                scraped = await metrics.scrape() or {}
                consumed = scraped.get("creator_scores_events_consumed_total", 0.0)
                held = scraped.get("creator_scores_creators_in_state", held)
                if consumed >= kill_fraction * total:
                    break
                await asyncio.sleep(0.05)
            else:
                raise BenchError("recovery: worker A never reached the kill point")
        first.proc.sample()
        result["a_rss_mb_at_kill"] = round(first.proc.last_rss / 2**20, 1)
        killed_at = first.proc.kill9()
        result["a_consumed_at_kill"] = int(consumed)
        result["a_creators_held_at_kill"] = int(held)
        overrides = dict(env_overrides or {})
        overrides["CREATOR_SCORES_METRICS_PORT"] = str(free_port())
        second = start_consumer(
            ctx, spec, dataset.topics, app_id, tag="-b", env_overrides=overrides
        )
        b_start = second.proc.started_at
        # Asked after B's start so the questions cost B nothing; A is dead, nothing moves.
        async with OffsetWatcher(ctx, app_id, dataset.end_offsets) as offsets:
            result["a_committed_at_kill"] = max(0, await offsets.committed())
        result["changelog_records_to_replay"] = await changelog_length(ctx, app_id)
        ready_at = first_write_at = None
        async with Metrics(second.metrics_port) as metrics:
            while time.time() - b_start < 300:
                second.proc.check_alive()
                if ready_at is None and await metrics.ready():
                    ready_at = time.time()
                scraped = await metrics.scrape() or {}
                if scraped.get("creator_scores_last_redis_write_timestamp_seconds", 0.0) > 0:
                    first_write_at = time.time()
                    break
                await asyncio.sleep(0.05)
            if first_write_at is None:
                raise BenchError(
                    f"recovery: worker B wrote nothing in 300 s:\n{second.proc.tail()}"
                )
            result.update(
                {
                    "b_start_after_kill_s": round(b_start - killed_at, 3),
                    "b_ready_from_start_s": round(ready_at - b_start, 3) if ready_at else None,
                    "serving_again_from_kill_s": round(first_write_at - killed_at, 3),
                    "serving_again_from_b_start_s": round(first_write_at - b_start, 3),
                }
            )
            ctx.say(
                f"recovery: B serves scores {result['serving_again_from_kill_s']}s after the kill "
                f"({result['serving_again_from_b_start_s']}s after its start)"
            )
            async with OffsetWatcher(ctx, app_id, dataset.end_offsets) as offsets:
                done = await _wait_done(
                    ctx, second, dataset, offsets, metrics, redis, ctx.deadline_s
                )
            result["b_completed"] = done["completed"]
            result["b_wall_s_from_start"] = done["wall_s_from_start"]
            scraped = await metrics.scrape() or {}
            result["b_duplicates_seen"] = int(
                scraped.get("creator_scores_events_duplicate_total", 0.0)
            )
        if not done["completed"]:
            by_topic = done.get("consumed_by_topic_at_stop")
            raise BenchError(
                f"recovery: worker B did not finish the dataset: {done.get('note')}"
                + (f"; B consumed per topic: {by_topic}" if by_topic else "")
            )
        if undisturbed_prefix is None:
            result["comparison"] = "not available: no undisturbed pipeline run to compare with"
        else:
            result.update(await compare_outputs(redis, undisturbed_prefix, second.prefix))
    finally:
        first.proc.stop()
        if second is not None:
            second.proc.stop()
        await redis.aclose()
        await delete_redis_prefix(ctx.redis_url, first.prefix)
    ctx.say(
        f"recovery: {result.get('creators_compared')} creators compared, "
        f"{result.get('creators_differing')} differ"
    )
    return result


async def changelog_length(ctx: Ctx, app_id: str) -> int | None:
    """Records in the state table's changelog: what a new worker replays before serving."""
    from streams.app import TABLE_NAME

    tps = [TopicPartition(f"{app_id}-{TABLE_NAME}-changelog", p) for p in range(ctx.partitions)]
    try:
        return sum((await end_offsets(ctx, tps)).values())
    except Exception:
        return None


async def compare_outputs(redis: Redis, expected: str, actual: str) -> dict[str, Any]:
    """Compare two pipeline outputs: creator hashes (bar `updated_at`) and global boards."""
    boards_differing: list[str] = []
    members: set[str] = set()
    for score in BOARD_SCORES:
        a = cast(
            "list[tuple[bytes, float]]",
            await redis.zrange(f"{expected}lb:{score}:ALL", 0, -1, withscores=True),
        )
        b = cast(
            "list[tuple[bytes, float]]",
            await redis.zrange(f"{actual}lb:{score}:ALL", 0, -1, withscores=True),
        )
        if dict(a) != dict(b):
            boards_differing.append(score)
        members.update(m.decode() for m, _ in a)
        members.update(m.decode() for m, _ in b)
    creators = sorted(members)
    differing: list[str] = []
    details: dict[str, dict[str, dict[str, str]]] = {}
    missing = 0
    chunk = 2000
    for i in range(0, len(creators), chunk):
        part = creators[i : i + chunk]
        pipe = redis.pipeline(transaction=False)
        for cid in part:
            pipe.hgetall(f"{expected}creator:{cid}")
            pipe.hgetall(f"{actual}creator:{cid}")
        replies = await pipe.execute()
        for j, cid in enumerate(part):
            want, got = replies[2 * j], replies[2 * j + 1]
            if not want or not got:
                missing += 1
                differing.append(cid)
                continue
            for key in VOLATILE_FIELDS:
                want.pop(key, None)
                got.pop(key, None)
            if want != got:
                differing.append(cid)
                if len(details) < 5:
                    details[cid] = {
                        f.decode(): {
                            "undisturbed": (want.get(f) or b"").decode()[:200],
                            "recovered": (got.get(f) or b"").decode()[:200],
                        }
                        for f in sorted(set(want) | set(got))
                        if want.get(f) != got.get(f)
                    }
    return {
        "creators_compared": len(creators),
        "creators_differing": len(differing),
        "creators_missing_on_one_side": missing,
        "differing_examples": differing[:5],
        "differing_fields": details,
        "boards_differing": boards_differing,
        "identical_to_undisturbed": not differing and not boards_differing,
    }
