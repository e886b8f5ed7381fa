"""Scenario 2, freshness: from the moment an event is produced to its score in Redis.

A worker runs on its own empty topics. The harness produces valid posts, tags
and orders at a steady rate (half the pipeline's measured maximum) for a fixed
population of creators. Each event's own time is the wall clock at the moment
the harness hands it to the producer, made strictly increasing per creator, so
every event moves its creator's watermark and the creator hash's `event_time`
field (the watermark the worker publishes) reaches exactly that value once the
event is reflected. For a sample of creators the harness remembers (event time,
produce time) and polls Redis every few milliseconds with one pipelined HGET
per creator that still has events outstanding; an event's latency is the time
the reply showing it arrived minus its produce time. Resolution is the poll
interval plus one Redis round trip; the first seconds (warm-up) are left out.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from bench.common import BenchError, Ctx, create_topics, delete_redis_prefix, percentile
from bench.consumers import Metrics, start_consumer, worker_spec
from bench.workload import BatchProducer

REGIONS = (("US", "USD", "19.99"), ("GB", "GBP", "15.99"), ("ID", "IDR", "149000"))
THEMES = ("beauty", "fashion", "home", "food")
CONTENT_TYPES = ("video", "photo", "short", "live")
TICK_S = 0.01
POLL_S = 0.005


class LiveEvents:
    """Valid events stamped with the produce time, strictly increasing per creator."""

    def __init__(self, creators: int, seed: int = 5) -> None:
        self.creators = [f"fr-{i:06d}" for i in range(creators)]
        self.last_ms: dict[str, int] = {}
        self.rng = random.Random(seed)
        self.seq = 0
        self.posts: dict[str, str] = {}

    def next(self, now_ms: int) -> tuple[str, str, bytes, int]:
        """(kind, creator id, value, event time ms) of the next event."""
        rng = self.rng
        idx = int(rng.random() * len(self.creators))
        cid = self.creators[idx]
        region, currency, price = REGIONS[idx % len(REGIONS)]
        at = max(now_ms, self.last_ms.get(cid, 0) + 1)
        self.last_ms[cid] = at
        self.seq += 1
        roll = rng.random()
        theme = THEMES[idx % len(THEMES)]
        post_id = self.posts.get(cid)
        if roll < 0.55 or post_id is None:
            post_id = f"fp-{self.seq:09d}"
            self.posts[cid] = post_id
            payload: dict[str, object] = {
                "post_id": post_id,
                "creator_id": cid,
                "region": region,
                "content_type": CONTENT_TYPES[self.seq % len(CONTENT_TYPES)],
                "themes": [theme],
                "posted_at": at,
                "views": int(rng.random() * 50_000),
                "likes": int(rng.random() * 2_000),
                "comments": int(rng.random() * 200),
                "shares": int(rng.random() * 100),
            }
            return "post", cid, orjson.dumps(payload), at
        if roll < 0.85:
            payload = {
                "tag_id": f"ft-{self.seq:09d}",
                "post_id": post_id,
                "creator_id": cid,
                "product_id": f"pr-{idx % 97:03d}",
                "brand_id": f"br-{idx % 31:03d}",
                "theme": theme,
                "tagged_at": at,
            }
            return "tag", cid, orjson.dumps(payload), at
        payload = {
            "order_id": f"fo-{self.seq:09d}",
            "creator_id": cid,
            "post_id": post_id,
            "product_id": f"pr-{idx % 97:03d}",
            "brand_id": f"br-{idx % 31:03d}",
            "theme": theme,
            "quantity": 1,
            "amount": price,
            "currency": currency,
            "status": "placed",
            "ordered_at": at,
        }
        return "order", cid, orjson.dumps(payload), at


def check_events_valid(gen: LiveEvents) -> None:
    """Fail loudly if the model would reject what this scenario produces."""
    from scoring.params import DEFAULT_PARAMS
    from scoring.validate import ValidationError, validate

    probe = LiveEvents(len(gen.creators), seed=99)
    now = int(time.time() * 1000)
    for _ in range(200):
        kind, _cid, value, _at = probe.next(now)
        result = validate(kind, orjson.loads(value), now_ms=now, params=DEFAULT_PARAMS)  # type: ignore[arg-type]
        if isinstance(result, ValidationError):
            raise BenchError(f"freshness generator makes invalid {kind} events: {result.message}")


async def run_freshness(
    ctx: Ctx,
    *,
    rate: float,
    creators: int,
    seconds: float,
    warmup_s: float,
    target_measured: int,
    env_overrides: dict[str, str] | None = None,
) -> dict[str, Any]:
    gen = LiveEvents(creators)
    check_events_valid(gen)
    names = (ctx.name("fresh", "posts"), ctx.name("fresh", "tags"), ctx.name("fresh", "orders"))
    topic_of = {"post": names[0], "tag": names[1], "order": names[2]}
    await create_topics(ctx, names)
    app_id = ctx.name("fresh", "pipeline")
    run = start_consumer(ctx, worker_spec(), names, app_id, env_overrides=env_overrides)
    # Sample enough creators that about `target_measured` events get timed: the poll
    # only asks about creators with events outstanding, so its cost follows the rate.
    expected = max(1.0, rate * max(0.1, seconds - warmup_s))
    share = min(1.0, target_measured / expected)
    size = max(min(100, creators), min(creators, round(creators * share)))
    sampled = set(random.Random(3).sample(gen.creators, size))
    pending: dict[str, deque[tuple[int, float]]] = {}
    latencies_ms: list[float] = []
    redis = Redis.from_url(ctx.redis_url)
    producer = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap, linger_ms=0, acks=1)
    result: dict[str, Any] = {"rate_target": round(rate, 1), "creators": creators}
    try:
        async with Metrics(run.metrics_port) as metrics:
            ready_at = await _wait_ready(run, metrics, timeout=120.0)
            result["worker_ready_s"] = round(ready_at - run.proc.started_at, 2)
            await producer.start()
            sender = BatchProducer(producer, ctx.partitions)
            stop = asyncio.Event()
            poller = asyncio.create_task(_poll(redis, run.prefix, pending, latencies_ms, stop, run))
            sent, produce_s = await _produce(
                gen, sender, topic_of, rate, seconds, warmup_s, sampled, pending, run
            )
            # Let the tail drain, then stop polling.
            deadline = time.time() + 30.0
            while any(pending.values()) and time.time() < deadline:
                run.proc.check_alive()
                await asyncio.sleep(0.05)
            stop.set()
            await poller
            scraped = await metrics.scrape() or {}
        unresolved = sum(len(q) for q in pending.values())
        result.update(
            {
                "events_sent": sent,
                "rate_achieved": round(sent / produce_s, 1),
                "seconds": round(produce_s, 1),
                "warmup_s": warmup_s,
                "sampled_creators": len(sampled),
                "measured_events": len(latencies_ms),
                "unresolved_events": unresolved,
                "method": "produce wall time -> creator hash event_time reaches the event's "
                f"time; pipelined HGET poll every {POLL_S * 1000:.0f} ms",
            }
        )
        if latencies_ms:
            result.update(
                {
                    "p50_ms": round(percentile(latencies_ms, 50), 1),
                    "p95_ms": round(percentile(latencies_ms, 95), 1),
                    "p99_ms": round(percentile(latencies_ms, 99), 1),
                    "max_ms": round(max(latencies_ms), 1),
                }
            )
        count = scraped.get("creator_scores_arrival_to_redis_seconds_count", 0.0)
        if count:
            total = scraped.get("creator_scores_arrival_to_redis_seconds_sum", 0.0)
            result["worker_arrival_to_redis_mean_ms"] = round(total / count * 1000, 1)
        if unresolved:
            raise BenchError(
                f"freshness: {unresolved} sampled events never reached Redis within 30 s"
            )
    finally:
        run.proc.stop()
        await producer.stop()
        await redis.aclose()
        await delete_redis_prefix(ctx.redis_url, run.prefix)
    ctx.say(
        f"freshness at {result.get('rate_achieved')} ev/s: p50 {result.get('p50_ms')} ms, "
        f"p95 {result.get('p95_ms')} ms, p99 {result.get('p99_ms')} ms "
        f"({result.get('measured_events')} events measured)"
    )
    return result


async def _wait_ready(run: Any, metrics: Metrics, timeout: float) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run.proc.check_alive()
        if await metrics.ready():
            return time.time()
        await asyncio.sleep(0.1)
    raise BenchError(f"worker not ready after {timeout:.0f}s:\n{run.proc.tail()}")


async def _produce(
    gen: LiveEvents,
    sender: BatchProducer,
    topic_of: dict[str, str],
    rate: float,
    seconds: float,
    warmup_s: float,
    sampled: set[str],
    pending: dict[str, deque[tuple[int, float]]],
    run: Any,
) -> tuple[int, float]:
    started = time.time()
    sent = 0
    while True:
        now = time.time()
        elapsed = now - started
        if elapsed >= seconds:
            break
        run.proc.check_alive()
        due = int(rate * elapsed) - sent
        measure = elapsed >= warmup_s
        for _ in range(max(0, due)):
            stamp = time.time()
            kind, cid, value, at = gen.next(int(stamp * 1000))
            await sender.add(topic_of[kind], cid.encode(), value, timestamp_ms=at)
            if measure and cid in sampled:
                pending.setdefault(cid, deque()).append((at, stamp))
            sent += 1
        await sender.flush()
        await asyncio.sleep(max(0.0, TICK_S - (time.time() - now)))
    return sent, time.time() - started


async def _poll(
    redis: Redis,
    prefix: str,
    pending: dict[str, deque[tuple[int, float]]],
    latencies_ms: list[float],
    stop: asyncio.Event,
    run: Any,
) -> None:
    while not stop.is_set():
        waiting = [cid for cid, q in pending.items() if q]
        if waiting:
            pipe = redis.pipeline(transaction=False)
            for cid in waiting:
                pipe.hget(f"{prefix}creator:{cid}", "event_time")
            values = await pipe.execute()
            seen_at = time.time()
            for cid, raw in zip(waiting, values, strict=True):
                if raw is None:
                    continue
                shown = int(raw)
                queue = pending[cid]
                while queue and queue[0][0] <= shown:
                    _at, produced = queue.popleft()
                    latencies_ms.append((seen_at - produced) * 1000.0)
        await asyncio.sleep(POLL_S)
