"""The day-boundary sweep: how long one pass over every creator held takes, and what it does
to the freshness of live events meanwhile.

A worker's pipeline in this process (the real Redis sink under a scratch prefix; with
`--kafka`, the default, the real Kafka writes too: the state's changelog records through
the worker's `TableStore`, the score-change and card records through its `KafkaSink`,
to scratch topics of the same partition count; `--no-kafka` leaves them out, and the
figures say so) is filled with `--creators` creators, each with `--posts-per-creator`
posts spread over the last 27 days (so every creator is due once the stream enters the
next day). Then:

1. **live alone**: for `--live-s` seconds, a batch of `--live-batch` new events arrives
   every `--live-every-ms` and is processed as the agent does (holding the lock the
   sweep's slices take); each batch's latency, from its arrival to its Redis write, is
   recorded;
2. **live during a sweep**: the stream time enters the next UTC day, so every creator is
   due, and `Sweeper.sweep` runs while the same live load arrives.

Reported: the pass's seconds and creators re-scored per second, and the live latency
p50/p99 in both phases with their ratio (same process, same machine state: the ratio is
what to read on a shared machine).

    .venv/bin/python -m bench.sweep --creators 100000
    .venv/bin/python -m bench.sweep --creators 1000000 --json bench/results/sweep-1m.json

Needs Redis (`creator-scores stack up`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import json
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer

from bench.common import Ctx, create_topics, delete_redis_prefix, delete_topics
from scoring.columns import DAY_MS
from streams.sweep import DEFAULT_SLICE

NOW_MS = 1_795_676_400_000


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "n": 0}
    a = np.asarray(values) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "n": len(values),
    }


class _Discard:
    async def write(self, batch: Any) -> None:
        return None


class _Table:
    """What `TableStore` needs of a Faust table: its store and its changelog topic's name."""

    def __init__(self, changelog: str) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: changelog)

    def __len__(self) -> int:
        return len(self.data)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from redis.asyncio import Redis

    from streams.agents import tune_gc
    from streams.codec import RawRecord
    from streams.keys import Keys
    from streams.pipeline import Pipeline, PipelineConfig
    from streams.settings import Settings, load_scoring_params
    from streams.sinks.kafka import KafkaSink, build_producer
    from streams.sinks.redis import RedisSink, build_redis
    from streams.state_store import DictStore, TableStore
    from streams.sweep import Sweeper
    from streams.turns import Exclusive

    settings = Settings()
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-sweep-{run}:"
    ctx = Ctx(run, settings.kafka_bootstrap_servers, settings.redis_url, Path("."),
              partitions=settings.topic_partitions)  # fmt: skip
    redis: Redis = build_redis(settings.redis_url)
    # partitions=0: records are taken where they are (one process holds every partition).
    config = dataclasses.replace(PipelineConfig.from_settings(settings, "bench-rekeyed"),
                                 partitions=0)  # fmt: skip
    topics: list[str] = []
    producer: AIOKafkaProducer | None = None
    table: DictStore | TableStore
    if args.kafka:
        topics = [f"bench-sweep-{run}-{name}" for name in
                  ("changelog", "changes", "cards", "dead")]  # fmt: skip
        await create_topics(ctx, topics)
        config = dataclasses.replace(config, changes_topic=topics[1], cards_topic=topics[2])
        producer = build_producer(settings)
        await producer.start()
        table = TableStore(_Table(topics[0]), producer, settings.topic_partitions)
        kafka: Any = KafkaSink(producer, dead_letter_topic=topics[3])
    else:
        table, kafka = DictStore(), _Discard()
    pipeline = Pipeline(
        config,
        load_scoring_params(settings),
        table,
        RedisSink(redis, Keys(prefix)),
        kafka,
        clock=lambda: NOW_MS / 1000,
    )
    tune_gc(settings.gc_gen0_threshold)
    out: dict[str, Any] = {"creators": args.creators, "prefix_deleted": True}
    try:
        started = time.perf_counter()
        rng = np.random.default_rng(7)
        regions = ("US", "GB", "ID", "MY", "VN", "PH")
        themes = ("beauty", "fashion", "home", "food", "fitness")
        batch: list[RawRecord] = []
        for i in range(args.creators):
            creator = f"cr-{i:07d}"
            for k in range(args.posts_per_creator):
                at = NOW_MS - int(rng.integers(0, 27 * DAY_MS))
                payload = {
                    "post_id": f"{creator}-p{k}", "creator_id": creator,
                    "region": regions[i % len(regions)], "content_type": "video",
                    "themes": [themes[(i + k) % len(themes)]], "posted_at": at,
                    "views": int(rng.integers(100, 50_000)), "likes": int(rng.integers(0, 2000)),
                    "comments": int(rng.integers(0, 200)), "shares": int(rng.integers(0, 100)),
                }  # fmt: skip
                batch.append(RawRecord(settings.posts_topic, 0, len(batch), creator.encode(),
                                       orjson.dumps(payload), NOW_MS))  # fmt: skip
            if len(batch) >= 20_000:
                await pipeline.process(batch)
                batch = []
        if batch:
            await pipeline.process(batch)
        out["held"] = len(table)
        out["fill_s"] = round(time.perf_counter() - started, 1)

        lock = Exclusive()
        everything = frozenset(range(settings.topic_partitions))
        sweeper = Sweeper(pipeline, table, settings.topic_partitions, lambda: everything, lock,
                          slice_size=args.slice)  # fmt: skip
        await sweeper.sweep()  # today's pass: nobody is due (as a worker does at start)

        ids = [k.decode() for k in list(table.keys())[: args.live_creators]]
        counter = [0]

        def live_batch(at_ms: int) -> list[RawRecord]:
            records = []
            for _ in range(args.live_batch):
                n = counter[0]
                counter[0] += 1
                creator = ids[n % len(ids)]
                payload = {
                    "post_id": f"live-{n}", "creator_id": creator, "region": "ID",
                    "content_type": "video", "themes": ["beauty"], "posted_at": at_ms,
                    "views": 100 + n % 50, "likes": 5, "comments": 1, "shares": 0,
                }  # fmt: skip
                records.append(RawRecord(settings.posts_topic, 0, n, creator.encode(),
                                         orjson.dumps(payload), at_ms))  # fmt: skip
            return records

        async def feed(
            seconds: float, at_ms: int, until: asyncio.Future[Any] | None
        ) -> list[float]:
            """Live batches every `live_every_ms` for `seconds` (or until `until` is done)."""
            latencies: list[float] = []
            pending: list[asyncio.Task[None]] = []
            end = time.perf_counter() + seconds

            async def one(records: list[RawRecord], arrived: float) -> None:
                async with lock.turn(settle=False) as turn:  # as the agent does
                    await pipeline.process(records, turn.settle_for)
                latencies.append(time.perf_counter() - arrived)

            while time.perf_counter() < end and not (until is not None and until.done()):
                pending.append(asyncio.ensure_future(one(live_batch(at_ms), time.perf_counter())))
                await asyncio.sleep(args.live_every_ms / 1000)
            await asyncio.gather(*pending)
            return latencies

        today = NOW_MS // DAY_MS * DAY_MS + DAY_MS // 2
        # A warm-up first, not measured: the fill's last writes (Redis, Kafka) drain, and
        # the live creators' states are decoded once, as in a worker that has been running.
        await feed(min(3.0, args.live_s), min(today, NOW_MS), None)
        alone = await feed(args.live_s, min(today, NOW_MS), None)
        out["live_alone"] = _percentiles(alone)

        next_day = (NOW_MS // DAY_MS + 1) * DAY_MS + 60_000
        pipeline.observe_stream_time(next_day)
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        sweep = asyncio.ensure_future(sweeper.sweep())
        during = await feed(3600.0, next_day, sweep)
        done = await sweep
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        out["sweep"] = {
            "seconds": round(done.seconds, 2),
            "looked_at": done.looked_at,
            "rescored": done.rescored,
            "published": done.published,
            "rescored_per_s": round(done.rescored / done.seconds) if done.seconds else None,
            "complete": done.complete,
        }
        out["live_during_sweep"] = _percentiles(during)
        a, d = out["live_alone"]["p99_ms"], out["live_during_sweep"]["p99_ms"]
        out["p99_ratio_during_over_alone"] = round(d / a, 2) if a else None
        out["kafka_writes"] = args.kafka
        if not args.kafka:
            out["left_out"] = "changelog, score-change and card records (no Kafka)"
    finally:
        if producer is not None:
            await producer.stop()
        if topics:
            await delete_topics(ctx, topics)
        await delete_redis_prefix(settings.redis_url, prefix)
        await redis.aclose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--creators", type=int, default=100_000)
    ap.add_argument("--posts-per-creator", type=int, default=2)
    ap.add_argument("--slice", type=int, default=DEFAULT_SLICE,
                    help="creators per sweep slice (default: the worker's)")  # fmt: skip
    ap.add_argument("--live-s", type=float, default=10.0, help="seconds of live load alone")
    ap.add_argument("--live-batch", type=int, default=200)
    ap.add_argument("--live-every-ms", type=float, default=100.0)
    ap.add_argument("--live-creators", type=int, default=5000)
    ap.add_argument("--json", "--out", dest="json", help="also write the figures here")
    ap.add_argument("--kafka", action=argparse.BooleanOptionalAction, default=True,
                    help="write the changelog, score-change and card records to Kafka, as a "
                         "worker does (--no-kafka: leave them out)")  # fmt: skip
    ap.add_argument(
        "--profile",
        metavar="FILE",
        help="cProfile the pass (and the live load during it) into FILE",
    )
    args = ap.parse_args()
    out = asyncio.run(run(args))
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
