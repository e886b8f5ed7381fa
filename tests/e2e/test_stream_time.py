"""Time moves scores, on the real stack: dormant creators leave the boards when the stream
moves on, a restart in the middle changes nothing, and a replay from offset 0 ends in the
same Redis state as the live run (docs/scoring.md, "Stream time")."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from redis.asyncio import Redis

from scoring.columns import DAY_MS
from streams.app import rekeyed_topic_name
from streams.keys import Keys
from tests.e2e.test_worker import CLI, expected_cards, expected_redis, without_updated_at
from tests.support.contracts import cards_in_redis, latest_cards
from tests.support.payloads import HOUR, order, post, tag
from tests.support.redis import dump_prefix

if TYPE_CHECKING:
    from tests.e2e.conftest import Produced, WorkerEnv

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

EARLY = ("cr-quiet-1", "cr-quiet-2", "cr-both")
LATER = ("cr-both", "cr-new")


def _events(
    now_ms: int,
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """Events 40 days ago for EARLY, events of today for LATER (ids kept apart)."""
    then = now_ms - 40 * DAY_MS
    early: list[tuple[str, dict[str, Any]]] = []
    for c in EARLY:
        for n in range(5):
            early.append(("post", post(c, n, posted_at=then - n * 5 * HOUR)))
            early.append(("tag", tag(c, n, tagged_at=then - n * 5 * HOUR + 1000)))
        early.append(("order", order(c, 0, ordered_at=then - HOUR)))
    later: list[tuple[str, dict[str, Any]]] = []
    for c in LATER:
        for n in range(10, 15):
            later.append(("post", post(c, n, posted_at=now_ms - (n - 9) * 5 * HOUR)))
        later.append(("order", order(c, 10, ordered_at=now_ms - 2 * HOUR)))
    return early, later


def _records(env: WorkerEnv, payloads: list[tuple[str, dict[str, Any]]]) -> list[Produced]:
    topics = {"post": env.settings.posts_topic, "tag": env.settings.tags_topic,
              "order": env.settings.orders_topic}  # fmt: skip
    return [(topics[k], str(p["creator_id"]).encode(), orjson.dumps(p)) for k, p in payloads]


async def _boards(redis: Redis, keys: Keys) -> set[str]:
    return {m.decode() for m in await redis.zrange(keys.board("overall"), 0, -1)}


async def test_dormant_creators_leave_the_boards_and_a_replay_equals_live(
    worker_env: WorkerEnv, now_ms: int, redis_prefix: str
) -> None:
    settings = worker_env.settings
    keys = Keys(settings.redis_prefix)
    early, later = _events(now_ms)
    sources = [*settings.source_topics, rekeyed_topic_name(settings)]
    redis = Redis.from_url(settings.redis_url)
    try:
        proc = worker_env.start(CREATOR_SCORES_SWEEP_INTERVAL_S="0.2")
        await worker_env.produce(_records(worker_env, early))
        await worker_env.wait_caught_up(sources, proc)
        assert await _boards(redis, keys) == set(EARLY)

        await worker_env.produce(_records(worker_env, later))
        await worker_env.wait_caught_up(sources, proc)

        async def quiet_ones_left() -> bool:
            return await _boards(redis, keys) == set(LATER)

        await worker_env.wait_for(quiet_ones_left, timeout=30, proc=proc,
                                  what="the quiet creators leaving the boards")  # fmt: skip
        for creator in ("cr-quiet-1", "cr-quiet-2"):
            card = await redis.hgetall(keys.creator(creator))
            assert card[b"active"] == b"0" and card[b"provisional"] == b"1"
            assert not await redis.exists(keys.creator_boards(creator))
        assert (await redis.hgetall(keys.creator("cr-both")))[b"active"] == b"1"

        # Their score changes say why: the window rolled, and they left the boards.
        changes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in await worker_env.read_topic(settings.changes_topic, at_least=7):
            change = orjson.loads(record.value)
            changes[change["creator_id"]].append(change)
        for creator in ("cr-quiet-1", "cr-quiet-2"):
            last = changes[creator][-1]
            assert last["cause"] == "window_rolled" and last["active"] is False, last
            assert last["reasons"]["window"].startswith("Window rolled"), last
        assert changes["cr-new"][-1]["cause"] == "events"

        # The cards topic says the same: the last record of a quiet creator is a tombstone,
        # every other creator's is its card in Redis (written with Redis, so waited for).
        async def cards_as_redis() -> bool:
            topic = latest_cards(await worker_env.read_topic(settings.cards_topic))
            return topic == cards_in_redis(await worker_env.dump(), settings.redis_prefix)

        await worker_env.wait_for(cards_as_redis, timeout=30, proc=proc,
                                  what="the cards topic to agree with Redis")  # fmt: skip
        topic = latest_cards(await worker_env.read_topic(settings.cards_topic))
        assert topic["cr-quiet-1"] is None and topic["cr-quiet-2"] is None
        assert {c for c, card in topic.items() if card is not None} == set(LATER)

        # A restart changes nothing: the new worker's pass finds nobody due.
        live = without_updated_at(await worker_env.dump())
        assert worker_env.stop(proc) == 0
        proc = worker_env.start("worker2", CREATOR_SCORES_SWEEP_INTERVAL_S="0.2")
        await worker_env.wait_caught_up(sources, proc)
        await worker_env.wait_for(
            lambda: _swept(worker_env, proc), timeout=30, proc=proc, what="a sweep pass"
        )
        assert without_updated_at(await worker_env.dump()) == live
        assert worker_env.stop(proc) == 0

        # The model's answer: every creator's events, scored as of the stream's day.
        cards = expected_cards([*early, *later], now_ms)
        assert live == expected_redis(cards, settings.redis_prefix)

        # A replay of the same topics from offset 0, all at once (another group, another
        # prefix): the same Redis state, although its flushes saw the events in another order.
        replay_prefix = f"{redis_prefix.removesuffix(':')}-replay:"
        markers = Keys(replay_prefix).markers_pattern().removesuffix("*")
        proc = worker_env.start(
            "replay",
            CREATOR_SCORES_APP_ID=f"{settings.app_id}-replay",
            CREATOR_SCORES_REDIS_PREFIX=replay_prefix,
            CREATOR_SCORES_SWEEP_INTERVAL_S="0.2",
        )

        async def replay_done() -> bool:
            found = await dump_prefix(redis, replay_prefix)
            dumped = without_updated_at({k: v for k, v in found.items()
                                         if not k.startswith(markers)})  # fmt: skip
            return _unprefixed(dumped, replay_prefix) == _unprefixed(live, settings.redis_prefix)

        await worker_env.wait_caught_up(settings.source_topics, proc)
        await worker_env.wait_for(replay_done, timeout=60, proc=proc,
                                  what="the replay reaching the live Redis state")  # fmt: skip
        assert worker_env.stop(proc) == 0
    finally:
        await redis.aclose()


async def _scored(env: WorkerEnv, now_ms: int) -> subprocess.Popen[bytes]:
    """A worker that has scored every event of `_events`, still running."""
    early, later = _events(now_ms)
    proc = env.start(CREATOR_SCORES_SWEEP_INTERVAL_S="0.2")
    await env.produce(_records(env, [*early, *later]))
    await env.wait_caught_up([*env.settings.source_topics, rekeyed_topic_name(env.settings)], proc)
    return proc


async def _swept(env: WorkerEnv, proc: Any) -> bool:
    try:
        return await env.metric(proc, "creator_scores_sweeps_total") >= 1
    except (AssertionError, OSError):  # its endpoint is not up yet
        return False


def _unprefixed(dump: dict[str, object], prefix: str) -> dict[str, object]:
    """Keys without the prefix, and board memberships (which name boards) too."""
    out: dict[str, object] = {}
    for key, value in dump.items():
        if isinstance(value, list) and value and isinstance(value[0], bytes):
            value = sorted(v.replace(prefix.encode(), b"") for v in value)
        out[key.removeprefix(prefix)] = value
    return out


async def test_rescore_reaches_every_creator_and_reports_progress(
    worker_env: WorkerEnv, now_ms: int
) -> None:
    settings = worker_env.settings
    proc = await _scored(worker_env, now_ms)
    await worker_env.wait_for(lambda: _swept(worker_env, proc), timeout=30, proc=proc,
                              what="the first sweep")  # fmt: skip
    before = without_updated_at(await worker_env.dump())
    cards_before = len(await worker_env.read_topic(settings.cards_topic))

    done = subprocess.run(
        [str(CLI), "rescore", "--timeout", "60"],
        env={**worker_env.env, "CREATOR_SCORES_SWEEP_INTERVAL_S": "0.2"},
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    held = len(EARLY) + len(LATER) - 1  # cr-both is one creator
    assert f"done: {held} creators looked at in {settings.topic_partitions} partitions" in (
        done.stdout
    ), done.stdout
    rescored = await worker_env.metric(proc, "creator_scores_rescored_creators_total")
    assert rescored >= held
    # Every creator was scored again, with the same model and the same events: nothing moved
    # (beside the request and its progress).
    after = without_updated_at(await worker_env.dump())
    request = Keys(settings.redis_prefix).rescore()
    assert {k: v for k, v in after.items() if not k.startswith(request)} == before

    # A rescore writes every creator's card (or tombstone) to the cards topic again, so an
    # empty or new topic can be filled; the last record per key still is Redis's card.
    async def rewritten() -> bool:
        records = await worker_env.read_topic(settings.cards_topic)
        return len(records) >= cards_before + held

    await worker_env.wait_for(rewritten, timeout=30, proc=proc, what="every card written again")
    records = await worker_env.read_topic(settings.cards_topic)
    assert latest_cards(records) == cards_in_redis(await worker_env.dump(), settings.redis_prefix)
    assert worker_env.stop(proc) == 0


async def test_a_new_model_reaches_every_creator_without_new_events(
    worker_env: WorkerEnv, now_ms: int, tmp_path: Path
) -> None:
    settings = worker_env.settings
    keys = Keys(settings.redis_prefix)
    assert worker_env.stop(await _scored(worker_env, now_ms)) == 0

    # The same parameters under a new version: every creator is re-scored at start, none
    # has a new event.
    defaults = (REPO / "scoring" / "default_params.toml").read_text()
    params = tmp_path / "params.toml"
    params.write_text(defaults.replace('model_version = "creator-scores-1.0"',
                                       'model_version = "creator-scores-1.1-e2e"'))  # fmt: skip
    proc = worker_env.start("worker2", CREATOR_SCORES_SWEEP_INTERVAL_S="0.2",
                            CREATOR_SCORES_SCORING_PARAMS_FILE=str(params))  # fmt: skip
    creators = sorted({*EARLY, *LATER})
    redis = Redis.from_url(settings.redis_url)
    try:

        async def all_on_the_new_model() -> bool:
            versions = [await redis.hget(keys.creator(c), "model_version") for c in creators]
            return versions == [b"creator-scores-1.1-e2e"] * len(creators)

        await worker_env.wait_for(all_on_the_new_model, timeout=60, proc=proc,
                                  what="every creator on the new model")  # fmt: skip
    finally:
        await redis.aclose()
    rollout: set[str] = set()

    async def every_rollout_recorded() -> bool:
        # Redis and the topic are written together, not in order: wait for the topic too.
        records = await worker_env.read_topic(settings.changes_topic)
        rollout.clear()
        rollout.update(orjson.loads(r.value)["creator_id"] for r in records
                       if orjson.loads(r.value)["cause"] == "model_rollout")  # fmt: skip
        return rollout == set(creators)

    await worker_env.wait_for(every_rollout_recorded, timeout=30, proc=proc,
                              what="a model_rollout change for every creator")  # fmt: skip
    assert worker_env.stop(proc) == 0


async def test_a_kill_in_the_middle_of_a_sweep_ends_as_an_undisturbed_run(
    worker_env: WorkerEnv, now_ms: int
) -> None:
    settings = worker_env.settings
    sources = [*settings.source_topics, rekeyed_topic_name(settings)]
    yesterday = (now_ms // DAY_MS - 1) * DAY_MS + 12 * HOUR
    creators = [f"cr-many-{i:04d}" for i in range(2000)]
    early = [("post", post(c, 0, posted_at=yesterday)) for c in creators]
    later = [("post", post("cr-today", 0, posted_at=now_ms - HOUR))]
    # One creator a slice: the pass is long enough to be cut in the middle.
    slow = {"CREATOR_SCORES_SWEEP_INTERVAL_S": "0.2", "CREATOR_SCORES_SWEEP_SLICE": "1"}
    proc = worker_env.start(**slow)
    await worker_env.produce(_records(worker_env, early))
    await worker_env.wait_caught_up(sources, proc, timeout=90)
    await worker_env.wait_for(lambda: _swept(worker_env, proc), timeout=30, proc=proc,
                              what="the start-up pass")  # fmt: skip

    # Today begins: every creator is due. Kill the worker with the pass half done.
    await worker_env.produce(_records(worker_env, later))

    async def half_done() -> bool:
        try:
            left = await worker_env.metric(proc, "creator_scores_sweep_remaining_creators")
        except (AssertionError, OSError):
            return False
        return 0 < left < len(creators) * 0.7

    await worker_env.wait_for(half_done, timeout=60, proc=proc, what="the pass half done")
    worker_env.kill9(proc)

    proc = worker_env.start("worker2", **slow)
    await worker_env.wait_caught_up(sources, proc, timeout=90)

    cards = expected_cards([*early, *later], now_ms)
    want = expected_redis(cards, settings.redis_prefix)

    async def as_undisturbed() -> bool:
        return without_updated_at(await worker_env.dump()) == want

    await worker_env.wait_for(as_undisturbed, timeout=120, proc=proc,
                              what="the Redis state of an undisturbed run")  # fmt: skip
    assert worker_env.stop(proc) == 0


async def test_a_silent_stream_still_rolls_windows_by_the_wall_clock(
    worker_env: WorkerEnv, now_ms: int
) -> None:
    """Events of 40 days ago, then silence: the stream time follows the wall clock
    (CREATOR_SCORES_STREAM_IDLE_S behind it) and the creators leave every board."""
    settings = worker_env.settings
    keys = Keys(settings.redis_prefix)
    early, _ = _events(now_ms)
    sources = [*settings.source_topics, rekeyed_topic_name(settings)]
    redis = Redis.from_url(settings.redis_url)
    try:
        proc = worker_env.start(CREATOR_SCORES_SWEEP_INTERVAL_S="0.2",
                                CREATOR_SCORES_STREAM_IDLE_S="6")  # fmt: skip
        await worker_env.produce(_records(worker_env, early))
        await worker_env.wait_caught_up(sources, proc)
        assert await _boards(redis, keys) == set(EARLY)  # on the boards while events come

        async def left() -> bool:
            return not await _boards(redis, keys)

        what = "the creators leaving the boards after the silence"
        await worker_env.wait_for(left, timeout=60, proc=proc, what=what)
        stream_s = await redis.zscore(keys.stream_time(), "stream")
        assert stream_s is not None and stream_s > now_ms - 2 * HOUR
        for creator in EARLY:
            assert (await redis.hgetall(keys.creator(creator)))[b"active"] == b"0"
        changes = [orjson.loads(r.value) for r in
                   await worker_env.read_topic(settings.changes_topic, at_least=6)]  # fmt: skip
        rolled = {c["creator_id"] for c in changes if c["cause"] == "window_rolled"}
        assert rolled == set(EARLY)
        assert worker_env.stop(proc) == 0
    finally:
        await redis.aclose()
