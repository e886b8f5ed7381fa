"""The worker as a real process on the real stack: Kafka in, Redis and Kafka out.

Expected results come from the pure model applied to the same events in this
process, so "the worker got it right" means: the same scores, the same boards,
nothing extra, whatever the batching, keying or crashes on the way.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest
from aiokafka.partitioner import murmur2
from confluent_kafka import Producer
from redis.asyncio import Redis

from scoring.explain import ScoreCard
from scoring.params import DEFAULT_PARAMS
from scoring.state import CreatorState, score
from scoring.validate import ValidationError, validate
from streams.app import changelog_topic_name, rekeyed_topic_name
from streams.keys import Keys
from streams.layout import board_scores, creator_fields
from streams.partitioning import partitions_for
from streams.settings import Settings, load_scoring_params
from tests.support.contracts import cards_in_redis, latest_cards

#: A record to produce: (topic, key, value).
Produced = tuple[str, bytes | None, bytes]

if TYPE_CHECKING:
    from tests.e2e.conftest import PrivateRedis, WorkerEnv

CLI = Path(sys.executable).with_name("creator-scores")

pytestmark = pytest.mark.e2e


def expected_cards(
    payloads: Sequence[tuple[str, Mapping[str, object]]], now_ms: int
) -> dict[str, ScoreCard]:
    """What an undisturbed run must end with: every valid event applied once, then scored."""
    params = load_scoring_params(Settings())
    assert params.model_version == DEFAULT_PARAMS.model_version
    states: dict[str, CreatorState] = {}
    for kind, payload in payloads:
        event = validate(kind, payload, now_ms=now_ms, params=params)  # type: ignore[arg-type]
        assert not isinstance(event, ValidationError), event
        state = states.setdefault(event.creator_id, CreatorState.new(event.creator_id))
        state.apply(event, params)
    # Every window ends at the stream time: the newest event time of all (the sweep rolls
    # the windows of creators whose own events stopped earlier).
    stream_ms = max(state.watermark_ms for state in states.values())
    for state in states.values():
        state.roll(stream_ms, params)
    return {creator: score(state, params) for creator, state in states.items()}


def expected_redis(cards: Mapping[str, ScoreCard], prefix: str) -> dict[str, object]:
    """The full Redis content under the prefix, `updated_at` left out (it is wall-clock)."""
    keys = Keys(prefix)
    out: dict[str, object] = {}
    boards: dict[str, dict[bytes, float]] = defaultdict(dict)
    for creator, card in cards.items():
        fields = creator_fields(card, updated_at_ms=0)
        del fields["updated_at"]
        out[keys.creator(creator)] = {k.encode(): v.encode() for k, v in fields.items()}
        mine = board_scores(card)
        if mine:  # (Redis holds no empty set: an inactive creator has no membership key)
            out[keys.creator_boards(creator)] = sorted((prefix + b).encode() for b in mine)
        for board, value in mine.items():
            boards[prefix + board][creator.encode()] = value
    for board, members in boards.items():
        out[board] = sorted(members.items(), key=lambda kv: (kv[1], kv[0]))
    if cards:  # the stream time the workers share: every card is as of it
        out[keys.stream_time()] = [(b"stream", float(max(c.as_of_ms for c in cards.values())))]
    return out


def without_updated_at(dump: Mapping[str, object]) -> dict[str, object]:
    out = dict(dump)
    for key, value in dump.items():
        if isinstance(value, dict) and b"updated_at" in value:
            out[key] = {k: v for k, v in value.items() if k != b"updated_at"}
    return out


def malformed(settings: Settings) -> list[tuple[Produced, str]]:
    """Bad records, each with the reason it must be dead-lettered for."""
    ok_order = {
        "order_id": "o-bad",
        "creator_id": "cr-bad",
        "product_id": "sku",
        "brand_id": "b",
        "theme": "food",
        "quantity": 1,
        "amount": "10.00",
        "status": "placed",
        "ordered_at": "2020-01-01T00:00:00Z",
    }
    return [
        ((settings.posts_topic, b"cr-x", b"{not json"), "bad_json"),
        ((settings.posts_topic, None, b"\xff\xfe\x00binary"), "bad_json"),
        ((settings.tags_topic, b"cr-x", b"[1, 2, 3]"), "not_an_object"),
        ((settings.tags_topic, b"cr-x", orjson.dumps({"tag_id": "t"})), "missing"),
        ((settings.orders_topic, b"cr-bad", orjson.dumps({**ok_order, "currency": "XXX"})),
         "unknown_currency"),
        ((settings.orders_topic, b"cr-bad", orjson.dumps({**ok_order, "currency": "USD",
                                                          "ordered_at": "2999-01-01T00:00:00Z"})),
         "future"),
    ]  # fmt: skip


async def test_events_to_redis_changes_and_dead_letters(worker_env: WorkerEnv, now_ms: int) -> None:
    settings = worker_env.settings
    prefix = settings.redis_prefix
    events = worker_env.make_events(creators=12, posts_per_creator=5, seed=7, now_ms=now_ms)
    bad = malformed(settings)
    half = len(events.records) // 2
    # Bad records in the middle: what comes after them must be processed all the same.
    records = events.records[:half] + [r for r, _ in bad] + events.records[half:]
    creator_keys = {c.encode() for c in events.creators}
    assert any(k is None for _, k, _ in records), "no unkeyed records to re-key"
    assert any(k is not None and k not in creator_keys for _, k, _ in events.records), (
        "no records keyed by something else than their creator"
    )

    proc = worker_env.start()
    await worker_env.produce(records)
    sources = [*settings.source_topics, rekeyed_topic_name(settings)]
    await worker_env.wait_caught_up(settings.source_topics, proc)
    await worker_env.wait_caught_up(sources, proc)

    # Redis holds exactly what the model says, and nothing else.
    cards = expected_cards(events.payloads, now_ms)
    first = await worker_env.dump()
    assert without_updated_at(first) == expected_redis(cards, prefix)
    for key, value in first.items():
        if key.startswith(prefix + "creator:"):
            assert isinstance(value, dict)
            assert abs(int(value[b"updated_at"]) - time.time() * 1000) < 120_000

    # Every bad record is dead-lettered once, with where it came from and its exact bytes.
    dead = await worker_env.read_topic(settings.dead_letter_topic, at_least=len(bad))
    assert len(dead) == len(bad)
    envelopes = [orjson.loads(r.value) for r in dead]
    by_bytes = {base64.b64decode(e["value_b64"]): e for e in envelopes}
    for (topic, key, value), reason in bad:
        env = by_bytes[value]
        assert env["topic"] == topic
        assert env["reason"] == reason, env
        assert env["key"] == (None if key is None else key.decode())
        assert isinstance(env["partition"], int) and isinstance(env["offset"], int)

    # The cards topic read from the beginning, the last value per key: every creator's card
    # exactly as Redis holds it.
    card_records = await worker_env.read_topic(settings.cards_topic, at_least=len(cards))
    assert latest_cards(card_records) == cards_in_redis(first, prefix)
    assert set(latest_cards(card_records)) == set(cards)

    # Score changes: a first card per creator, the last one within the threshold of the end.
    changes = await worker_env.read_topic(settings.changes_topic, at_least=len(cards))
    per_creator: dict[str, list[dict[str, object]]] = defaultdict(list)
    for record in sorted(changes, key=lambda r: (r.partition, r.offset)):
        change = orjson.loads(record.value)
        assert record.key == change["creator_id"].encode()
        per_creator[change["creator_id"]].append(change)
    assert set(per_creator) == set(cards)
    for creator, seen in per_creator.items():
        assert seen[0]["old"] is None
        assert seen[0]["model_version"] == cards[creator].model_version
        last = seen[-1]["new"]
        assert isinstance(last, dict)
        for name, value in cards[creator].values().items():
            assert abs(last[name] - value) <= settings.change_threshold + 1e-9

    # Each creator's state lives in the changelog partition of the creator's own records.
    changelog = await worker_env.read_topic(changelog_topic_name(settings), at_least=len(cards))
    assert {r.key for r in changelog} == {c.encode() for c in cards}
    for record in changelog:
        assert record.key is not None
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % settings.topic_partitions
    source_partition = {}
    for topic in settings.source_topics:
        for record in await worker_env.read_topic(topic):
            if record.key is not None and record.key.decode() in cards:
                source_partition[record.key] = record.partition
    for record in changelog:
        if record.key in source_partition:
            assert record.partition == source_partition[record.key]

    # The same events again: all duplicates, so Redis does not change by a single byte.
    await worker_env.produce(events.records)
    await worker_env.wait_caught_up(sources, proc)
    assert await worker_env.dump() == first
    assert len(await worker_env.read_topic(settings.cards_topic)) == len(card_records)

    # A clean stop, a new worker recovering the state from the changelog, the events once
    # more: still not a byte of difference (without recovery every card would be rewritten).
    assert worker_env.stop(proc) == 0
    proc = worker_env.start("worker2")
    await worker_env.produce(events.records)
    await worker_env.wait_caught_up(sources, proc)
    assert await worker_env.dump() == first
    assert "Traceback" not in worker_env.log_text() + worker_env.log_text("worker2")


def produce_with_librdkafka(settings: Settings, records: Sequence[Produced]) -> None:
    """Produce as kcat and confluent-kafka clients do by default: CRC32 of the key picks the
    partition (librdkafka's `consistent_random`), not Kafka's murmur2."""
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "partitioner": "consistent_random"}
    )
    for topic, key, value in records:
        producer.produce(topic, value=value, key=key)
        producer.poll(0)
    assert producer.flush(30) == 0, "librdkafka producer did not deliver everything"


async def test_a_crc32_producer_and_a_murmur2_producer_give_the_same_results(
    worker_env: WorkerEnv, now_ms: int
) -> None:
    settings = worker_env.settings
    events = worker_env.make_events(creators=40, posts_per_creator=4, seed=5, now_ms=now_ms)
    keys = [c.encode() for c in events.creators]
    crc = [(zlib.crc32(k) & 0x7FFFFFFF) % settings.topic_partitions for k in keys]
    home = partitions_for(keys, settings.topic_partitions).tolist()
    assert sum(a != b for a, b in zip(crc, home, strict=True)) > len(keys) // 2

    proc = worker_env.start()
    half = len(events.records) // 2
    produce_with_librdkafka(settings, events.records[:half])
    # A second worker joins in between (a rebalance), then the rest comes from a Java-like
    # (murmur2) producer: every creator's events must meet its state all the same.
    proc2 = worker_env.start("worker2")
    await worker_env.produce(events.records[half:])
    sources = [*settings.source_topics, rekeyed_topic_name(settings)]
    for p in (proc, proc2):
        await worker_env.wait_caught_up(settings.source_topics, p)
        await worker_env.wait_caught_up(sources, p)
    cards = expected_cards(events.payloads, now_ms)
    assert without_updated_at(await worker_env.dump()) == expected_redis(
        cards, settings.redis_prefix
    )
    logs = worker_env.log_text() + worker_env.log_text("worker2")
    assert "partitioner=murmur2_random" in logs  # the operator is told how to fix it
    assert "Traceback" not in logs


# Faust's own stream path (once `CREATOR_SCORES_INGEST=stream`) failed this test in about one
# run in seven: a source partition whose committed offset never moved again, or results that
# differed from an undisturbed run (docs/benchmarks.md, "Recovery"). It was removed.
async def test_kill_9_and_restart_matches_undisturbed_run(
    worker_env: WorkerEnv, now_ms: int
) -> None:
    settings = worker_env.settings
    prefix = settings.redis_prefix
    events = worker_env.make_events(creators=150, posts_per_creator=6, seed=11, now_ms=now_ms)
    cards = expected_cards(events.payloads, now_ms)
    await worker_env.produce(events.records)

    # Small batches so the crash lands in the middle of the work.
    proc = worker_env.start(CREATOR_SCORES_BATCH_SIZE="40")
    redis = Redis.from_url(settings.redis_url)
    try:

        async def some_written() -> bool:
            found = 0
            async for _ in redis.scan_iter(match=f"{prefix}creator:*", count=1000):
                found += 1
            return found >= 20

        await worker_env.wait_for(
            some_written, timeout=60, proc=proc, what="the first creators in Redis"
        )
        worker_env.kill9(proc)
        partial = await worker_env.dump()
        assert without_updated_at(partial) != expected_redis(cards, prefix), (
            "the worker finished before it was killed; the test proves nothing"
        )
    finally:
        await redis.aclose()
    # What the first worker left in the changelog: the state the second one must restore.
    left = len(await worker_env.read_topic(changelog_topic_name(settings)))

    proc = worker_env.start("worker2", CREATOR_SCORES_BATCH_SIZE="40")
    sources = [*settings.source_topics, rekeyed_topic_name(settings)]
    await worker_env.wait_caught_up(settings.source_topics, proc, timeout=90)
    await worker_env.wait_caught_up(sources, proc, timeout=60)
    final = await worker_env.dump()
    assert without_updated_at(final) == expected_redis(cards, prefix)
    # The second worker rebuilt its state from every changelog record the first one
    # wrote, through the bulk path (streams.batching.ChangelogBulk), not Faust's loop.
    restored = await worker_env.metric(proc, "creator_scores_changelog_records_applied_total")
    assert restored == left
    assert worker_env.stop(proc) == 0


async def test_sigterm_during_a_redis_outage_exits_in_time_and_acknowledges_nothing(
    worker_env: WorkerEnv, private_redis: PrivateRedis, now_ms: int
) -> None:
    settings = worker_env.settings
    events = worker_env.make_events(creators=30, posts_per_creator=4, seed=21, now_ms=now_ms)
    half = len(events.records) // 2
    sources = [*settings.source_topics, rekeyed_topic_name(settings)]
    on_private = {"REDIS_URL": private_redis.url}
    proc = worker_env.start(**on_private, CREATOR_SCORES_STOP_BATCH_WAIT_S="3")
    await worker_env.produce(events.records[:half])
    await worker_env.wait_caught_up(settings.source_topics, proc)
    await worker_env.wait_caught_up(sources, proc)

    # Redis hangs; the rest arrives, and the worker's batch retries it until told to stop.
    private_redis.freeze()
    await worker_env.produce(events.records[half:])
    await asyncio.sleep(4)
    started = time.monotonic()
    status = worker_env.stop(proc, timeout=25)
    took = time.monotonic() - started
    log = worker_env.log_text()
    assert "abandoning it unacknowledged" in log, log[-3000:]
    assert took < 20, f"took {took:.1f}s to stop; the compose grace period is 30 s"
    assert status == 0

    # Nothing of the abandoned batch was acknowledged: the next worker processes it, and
    # Redis ends exactly as if there had been no outage.
    private_redis.thaw()
    proc2 = worker_env.start("worker2", **on_private)
    await worker_env.wait_caught_up(settings.source_topics, proc2)
    await worker_env.wait_caught_up(sources, proc2)
    dump = await worker_env.dump(private_redis.url)
    cards = expected_cards(events.payloads, now_ms)
    assert without_updated_at(dump) == expected_redis(cards, settings.redis_prefix)
    assert "Traceback" not in worker_env.log_text("worker2")


async def test_a_rebalance_during_a_redis_outage_fences_the_stuck_batch(
    worker_env: WorkerEnv, private_redis: PrivateRedis, now_ms: int
) -> None:
    settings = worker_env.settings
    events = worker_env.make_events(creators=30, posts_per_creator=4, seed=22, now_ms=now_ms)
    half = len(events.records) // 2
    sources = [*settings.source_topics, rekeyed_topic_name(settings)]
    env = {"REDIS_URL": private_redis.url, "CREATOR_SCORES_STOP_BATCH_WAIT_S": "3"}
    proc = worker_env.start(**env)
    await worker_env.produce(events.records[:half])
    await worker_env.wait_caught_up(sources, proc)

    private_redis.freeze()
    await worker_env.produce(events.records[half:])
    await asyncio.sleep(4)
    # A second worker joins while the first is stuck on Redis: the rebalance must not wait
    # for the stuck batch for ever; the batch is given up, unacknowledged.
    proc2 = worker_env.start("worker2", **env)

    async def abandoned() -> bool:
        return "abandoning it unacknowledged" in worker_env.log_text()

    await worker_env.wait_for(abandoned, timeout=60, proc=proc, what="the batch given up")
    private_redis.thaw()
    for p in (proc, proc2):
        await worker_env.wait_caught_up(sources, p)
    dump = await worker_env.dump(private_redis.url)
    cards = expected_cards(events.payloads, now_ms)
    assert without_updated_at(dump) == expected_redis(cards, settings.redis_prefix)


async def test_redis_emptied_is_written_again_from_the_state(
    worker_env: WorkerEnv, now_ms: int
) -> None:
    """Redis loses every key of the deployment: the worker notices (its partition markers
    are gone) and writes every creator again from its state; `republish` forces the same."""
    settings = worker_env.settings
    prefix = settings.redis_prefix
    events = worker_env.make_events(creators=40, posts_per_creator=4, seed=13, now_ms=now_ms)
    cards = expected_cards(events.payloads, now_ms)
    proc = worker_env.start(CREATOR_SCORES_REDIS_REPAIR_INTERVAL_S="0.5")
    await worker_env.produce(events.records)
    sources = [*settings.source_topics, rekeyed_topic_name(settings)]
    await worker_env.wait_caught_up(settings.source_topics, proc)
    await worker_env.wait_caught_up(sources, proc)
    expected = expected_redis(cards, prefix)
    assert without_updated_at(await worker_env.dump()) == expected

    async def all_marked() -> bool:
        return await worker_env.markers() == dict.fromkeys(range(4), b"done")

    await worker_env.wait_for(all_marked, timeout=30, proc=proc, what="the partition markers")
    before = await worker_env.metric(proc, "creator_scores_redis_republished_creators_total")

    # Redis comes back empty (this test's keys only: the Redis is shared).
    redis = Redis.from_url(settings.redis_url)
    try:
        lost = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        assert len(lost) > len(cards)
        await redis.delete(*lost)
    finally:
        await redis.aclose()

    async def repaired() -> bool:
        return without_updated_at(await worker_env.dump()) == expected and await all_marked()

    await worker_env.wait_for(repaired, timeout=30, proc=proc, what="Redis written again")
    after = await worker_env.metric(proc, "creator_scores_redis_republished_creators_total")
    assert after - before == len(cards)
    assert f"Redis repair: republished {len(cards)} creators of partitions 0,1,2,3" in (
        worker_env.log_text()
    )

    # An operator forces it: the markers go, the worker writes everything once more.
    forced = subprocess.run(
        [str(CLI), "republish"], env=worker_env.env, capture_output=True, text=True, timeout=60
    )
    assert forced.returncode == 0, forced.stderr
    assert "deleted 4 partition markers" in forced.stdout

    async def republished() -> bool:
        done = await worker_env.metric(proc, "creator_scores_redis_republished_creators_total")
        return done == after + len(cards) and await all_marked()

    await worker_env.wait_for(republished, timeout=30, proc=proc, what="the forced republish")
    assert without_updated_at(await worker_env.dump()) == expected
    assert worker_env.stop(proc) == 0
    assert "Traceback" not in worker_env.log_text()
