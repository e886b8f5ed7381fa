"""The worker's pipeline without Kafka: cost per event, and what a setting changes, as ratios.

`make bench` times whole consumers on the broker; this script times only
`Pipeline.process` (decode, validate, state, scoring, explanations, the real Redis
sink, a dict for the state table and a Kafka sink that keeps nothing) on simulator
events, so that a change to the pipeline or a setting can be measured in seconds.
Each configuration runs in a fresh child process (the garbage collector's state and
the state cache start equal) and is compared with the first one of the same run:
on a shared machine only those ratios mean something.

    .venv/bin/python -m bench.bench_pipeline --events 60000 --creators 10000 \\
        --config batch=5000 --config batch=20000 --config gc=0

`gc=N` tunes the collector as the worker does (`tune_gc`: young-generation
threshold N, older generations at least 50 and 100, `gc.freeze()`); `gc=0` leaves
CPython's defaults (700, 10, 10). `batch=N` is the records per `process` call. Needs Redis
(`creator-scores stack up`); keys go under a scratch prefix that is deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import subprocess
import sys
import time
import uuid
from typing import Any

DEFAULTS = {"batch": 5000, "gc": 100_000}


def parse_config(text: str) -> dict[str, int]:
    config = dict(DEFAULTS)
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in DEFAULTS:
            raise argparse.ArgumentTypeError(f"expected batch=N and/or gc=N, got {item!r}")
        config[key] = int(value)
    return config


async def run_one(events: int, creators: int, config: dict[str, int]) -> dict[str, Any]:
    """One configuration, in this process: the figures of one timed pass."""
    from redis.asyncio import Redis

    from streams.agents import tune_gc
    from streams.codec import RawRecord
    from streams.devtools.simulate import SimConfig, generate_events
    from streams.keys import Keys
    from streams.pipeline import Pipeline, PipelineConfig
    from streams.settings import Settings, load_scoring_params
    from streams.sinks.redis import RedisSink, build_redis
    from streams.state_store import DictStore

    class DiscardingSink:
        async def write(self, batch: Any) -> None:
            return None

    settings = Settings()
    now_ms = 1_795_676_400_000
    simulated = generate_events(SimConfig(end_ms=now_ms, events=events, creators=creators))
    records = [RawRecord(e.topic, 0, i, e.key, e.value, now_ms) for i, e in enumerate(simulated)]
    prefix = f"bench-pipe-{uuid.uuid4().hex[:8]}:"
    redis: Redis = build_redis(settings.redis_url)
    publishes = 0
    try:
        pipeline = Pipeline(
            # partitions=0: records are taken where they are (partition 0 here), not routed
            # round the repartition topic as records on the wrong partition would be.
            dataclasses.replace(
                PipelineConfig.from_settings(settings, "bench-rekeyed"), partitions=0
            ),
            load_scoring_params(settings),
            DictStore(),
            RedisSink(redis, Keys(prefix)),
            DiscardingSink(),
            clock=lambda: now_ms / 1000,
        )
        if config["gc"] > 0:
            tune_gc(config["gc"])  # gc=0: CPython's own thresholds (700, 10, 10), no freeze
        collections_before = sum(s["collections"] for s in gc.get_stats())
        batch = config["batch"]
        started = time.perf_counter()
        cpu_started = time.process_time()
        for i in range(0, len(records), batch):
            result = await pipeline.process(records[i : i + batch])
            publishes += result.snapshots_written
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        collections = sum(s["collections"] for s in gc.get_stats()) - collections_before
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=5000)]
        for i in range(0, len(keys), 5000):
            await redis.delete(*keys[i : i + 5000])
        await redis.aclose()
    return {
        "config": config,
        "events": len(records),
        "wall_s": round(wall, 3),
        "us_per_event": round(wall / len(records) * 1e6, 1),
        "cpu_us_per_event": round(cpu / len(records) * 1e6, 1),
        "snapshots_per_event": round(publishes / len(records), 3),
        "gc_collections": collections,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--creators", type=int, default=10_000)
    ap.add_argument(
        "--config",
        action="append",
        type=parse_config,
        help="batch=N,gc=N (repeatable; the first is the reference)",
    )
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        config = json.loads(args.child)
        print(json.dumps(asyncio.run(run_one(args.events, args.creators, config))))
        return
    configs = args.config or [dict(DEFAULTS)]
    rows = []
    for config in configs:
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_pipeline", "--events", str(args.events),
             "--creators", str(args.creators), "--child", json.dumps(config)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    reference = rows[0]
    print(f"{args.events:,} simulator events, {args.creators:,} creators; ratio = reference / this")
    for row in rows:
        ratio = reference["us_per_event"] / row["us_per_event"]
        print(
            f"  batch={row['config']['batch']:>6} gc={row['config']['gc']:>7}: "
            f"{row['us_per_event']:7.1f} us/event ({row['cpu_us_per_event']:.1f} CPU), "
            f"{row['snapshots_per_event']:.3f} snapshots/event, "
            f"{row['gc_collections']:>5} GC runs, speed {ratio:.2f}x the first"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
