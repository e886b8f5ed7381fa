"""Runs one consumer (the worker or a baseline) over a preloaded dataset and times it.

Every consumer is a subprocess started the same way and observed from the
outside the same way: the clock starts just before the process is spawned; the
first record is seen through the worker's `/metrics` (events consumed > 0) or
the baseline's marker file; "done" is when the consumer group's committed
offsets equal the end offsets of every source partition (read from the broker
with the admin client), and, for the worker, also when its repartition topic is
caught up and Redis shows the newest event time for a sample of creators.
Throughput is events / (done - first record); the time from process start,
which includes imports and group join, is reported beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bench.common import (
    CLK_TCK,
    Ctx,
    OffsetWatcher,
    Proc,
    delete_redis_prefix,
    end_offsets,
    free_port,
    python_argv,
)
from bench.marker import read_marker
from bench.workload import Dataset

POLL_S = 0.1
#: Below this much processing CPU, /proc's 10 ms ticks make a per-core rate meaningless
#: (at 0.1 s the tick is a tenth of it: coarse, but a smoke run's peers, which finish
#: 5,000 events in about that, still get a figure; full runs take tens of seconds).
MIN_CPU_WINDOW_S = 0.1


@dataclass(frozen=True)
class ConsumerSpec:
    """How to start one consumer and what it is."""

    name: str
    title: str
    argv: tuple[str, ...]
    #: the worker (metrics endpoint, Redis output, repartition topic) or a baseline
    is_worker: bool = False
    env: Mapping[str, str] = field(default_factory=dict)


def worker_spec(name: str = "pipeline", env: Mapping[str, str] | None = None) -> ConsumerSpec:
    title = "full pipeline" if name == "pipeline" else f"full pipeline ({name})"
    return ConsumerSpec(
        name=name,
        title=title,
        argv=tuple(
            python_argv(
                "-m",
                "streams.cli",
                "worker",
                "--loglevel",
                # info shows Faust's recovery and rebalance steps (with --keep-logs).
                os.environ.get("BENCH_WORKER_LOGLEVEL", "warning"),
            )
        ),
        is_worker=True,
        env=dict(env or {}),
    )


BASELINES: dict[str, ConsumerSpec] = {
    "naive_faust": ConsumerSpec(
        "naive_faust",
        "(a) naive Faust: table update + Redis write per event",
        tuple(python_argv("-m", "bench.faust_naive")),
    ),
    "noop_faust": ConsumerSpec(
        "noop_faust", "(b) Faust agent doing nothing", tuple(python_argv("-m", "bench.faust_noop"))
    ),
    "raw_aiokafka": ConsumerSpec(
        "raw_aiokafka",
        "(c) aiokafka getmany + orjson",
        tuple(python_argv("-m", "bench.raw_aiokafka")),
    ),
    "quix": ConsumerSpec(
        "quix",
        "(d) Quix Streams: 60 s tumbling count per creator",
        tuple(python_argv("-m", "bench.quix_peer")),
    ),
}


def consumer_env(
    ctx: Ctx, app_id: str, topics: tuple[str, str, str], cwd: Path, marker: Path
) -> dict[str, str]:
    """The worker's environment (every baseline reads the same variables)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": ctx.bootstrap,
        "REDIS_URL": ctx.redis_url,
        "CREATOR_SCORES_APP_ID": app_id,
        "CREATOR_SCORES_POSTS_TOPIC": topics[0],
        "CREATOR_SCORES_TAGS_TOPIC": topics[1],
        "CREATOR_SCORES_ORDERS_TOPIC": topics[2],
        "CREATOR_SCORES_CHANGES_TOPIC": f"{app_id}-changes",
        "CREATOR_SCORES_DEAD_LETTER_TOPIC": f"{app_id}-dead-letters",
        "CREATOR_SCORES_CARDS_TOPIC": f"{app_id}-cards",
        "CREATOR_SCORES_REDIS_PREFIX": f"{app_id}:",
        "CREATOR_SCORES_TOPIC_PARTITIONS": str(ctx.partitions),
        "CREATOR_SCORES_METRICS_PORT": str(free_port()),
        "CREATOR_SCORES_WEB_PORT": str(free_port()),
        "CREATOR_SCORES_STACK_DIR": str(cwd / "stack"),
        # Faust reads this variable over any value in code: every Faust app (worker and
        # baselines) commits on the same 1 s cadence, which is also "done" detection's grain.
        "BROKER_COMMIT_INTERVAL": str(ctx.commit_interval_s),
        "BENCH_COMMIT_INTERVAL_S": str(ctx.commit_interval_s),
        "BENCH_MARKER_FILE": str(marker),
        "BENCH_STATE_DIR": str(cwd / "state"),
    }


class Metrics:
    """Scrapes the worker's /metrics into {sample name: summed value}."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Metrics:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def scrape(self) -> dict[str, float] | None:
        assert self._session is not None
        try:
            async with self._session.get(self.url + "/metrics") as resp:
                if resp.status != 200:
                    return None
                text = await resp.text()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[sample.name] = out.get(sample.name, 0.0) + float(sample.value)
        return out

    async def consumed_by_topic(self) -> dict[str, float]:
        """The worker's consumed-records counter per source topic (for diagnostics)."""
        assert self._session is not None
        try:
            async with self._session.get(self.url + "/metrics") as resp:
                text = await resp.text()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return {}
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "creator_scores_events_consumed_total":
                    topic = sample.labels.get("topic", "")
                    out[topic] = out.get(topic, 0.0) + float(sample.value)
        return out

    async def ready(self) -> bool:
        assert self._session is not None
        try:
            async with self._session.get(self.url + "/readyz") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False


async def redis_reflects(redis: Redis, prefix: str, expected: Mapping[str, int]) -> int:
    """How many sampled creators' hashes show at least their newest valid event time."""
    if not expected:
        return 0
    pipe = redis.pipeline(transaction=False)
    creators = list(expected)
    for cid in creators:
        pipe.hget(f"{prefix}creator:{cid}", "event_time")
    values = await pipe.execute()
    ok = 0
    for cid, raw in zip(creators, values, strict=True):
        if raw is not None and int(raw) >= expected[cid]:
            ok += 1
    return ok


@dataclass
class Running:
    """A consumer in flight: its process, names and the times seen so far."""

    spec: ConsumerSpec
    proc: Proc
    app_id: str
    prefix: str
    env: dict[str, str]
    marker: Path
    metrics_port: int
    first_record_at: float | None = None
    rss_at_first_record: int = 0
    cpu_at_first_record: float = 0.0
    cpu_at_done: float | None = None


def batch_window_s(env: Mapping[str, str]) -> float:
    """How long a worker may hold records before its first flush starts, seconds: at most
    one fetch wait (the step back over it keeps the first-record estimate early, never late)."""
    raw = env.get("CREATOR_SCORES_BATCH_WITHIN_S")
    return float(raw) if raw is not None else FIRST_FLUSH_WAIT_S


#: The default of `batch_window_s` (what the worker's stream path once waited to fill a batch).
FIRST_FLUSH_WAIT_S = 0.25


def start_consumer(
    ctx: Ctx,
    spec: ConsumerSpec,
    topics: tuple[str, str, str],
    app_id: str,
    tag: str = "",
    env_overrides: Mapping[str, str] | None = None,
) -> Running:
    cwd = ctx.workdir / (app_id + tag)
    cwd.mkdir(parents=True, exist_ok=True)
    marker = cwd / "first-record"
    env = consumer_env(ctx, app_id, topics, cwd, marker)
    env.update(spec.env)
    env.update(env_overrides or {})
    proc = Proc(spec.name, spec.argv, env, cwd, cwd / "consumer.log")
    return Running(
        spec=spec,
        proc=proc,
        app_id=app_id,
        prefix=env["CREATOR_SCORES_REDIS_PREFIX"],
        env=env,
        marker=marker,
        metrics_port=int(env["CREATOR_SCORES_METRICS_PORT"]),
    )


async def watch_first_record(run: Running, metrics: Metrics | None) -> None:
    """Fill `first_record_at` once the consumer has read anything."""
    if run.first_record_at is not None:
        return
    seen: float | None = None
    step_back = 0.0
    cpu_at_first: float | None = None
    if metrics is not None:
        sample = await metrics.scrape()
        if sample and sample.get("creator_scores_events_consumed_total", 0.0) > 0:
            # The counter moves when a batch is done: step back over the batches' processing
            # time and a whole batch window, so the estimate is never after the true first
            # record (which can only make the worker's rate look lower, not higher). The
            # same step is taken off its CPU clock (one busy core at most).
            step_back = sample.get("creator_scores_batch_seconds_sum", 0.0) + batch_window_s(
                run.env
            )
            seen = time.time() - step_back
    else:
        marker = read_marker(run.marker)
        if marker is not None:
            seen, cpu_at_first = marker
    if seen is not None:
        run.first_record_at = seen
        run.proc.sample()
        run.rss_at_first_record = run.proc.last_rss
        if cpu_at_first is None:
            cpu_at_first = max(0.0, run.proc.cpu_s - step_back)
        run.cpu_at_first_record = cpu_at_first


async def measure(
    ctx: Ctx,
    spec: ConsumerSpec,
    dataset: Dataset,
    *,
    max_seconds: float | None = None,
    keep_output: bool = False,
    after_done: Callable[[Running, dict[str, Any]], Awaitable[None]] | None = None,
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """Run `spec` over `dataset` to the end (or `max_seconds`); return its figures.

    `deadline_s` replaces the run's deadline for a dataset of another size than the
    run's (the scale profile).
    """
    app_id = ctx.name(dataset.label, spec.name)
    limit = ctx.deadline_s if deadline_s is None else deadline_s
    ctx.say(f"{dataset.label}: starting {spec.name} ({dataset.total:,} events)")
    run = start_consumer(ctx, spec, dataset.topics, app_id)
    result: dict[str, Any] = {
        "consumer": spec.name,
        "title": spec.title,
        "dataset": dataset.label,
        "creators": dataset.creators,
        "events": dataset.total,
        "app_id": app_id,
    }
    redis = Redis.from_url(ctx.redis_url)
    try:
        async with (
            OffsetWatcher(ctx, app_id, dataset.end_offsets) as offsets,
            Metrics(run.metrics_port) as metrics,
        ):
            outcome = await _wait_done(
                ctx, run, dataset, offsets, metrics, redis, limit, max_seconds
            )
            result.update(outcome)
            if spec.is_worker:
                scraped = await metrics.scrape() or {}
                result["worker_metrics"] = {
                    k: v
                    for k, v in scraped.items()
                    if k.startswith("creator_scores_")
                    and not k.endswith(("_bucket", "_created"))
                    and "top_creator" not in k
                }
            if after_done is not None:
                await after_done(run, result)
    finally:
        run.proc.sample()
        run.proc.stop()
        await redis.aclose()
    result.update(_process_figures(run, result))
    if not keep_output:  # the worker's scores, or the naive baseline's hashes
        await delete_redis_prefix(ctx.redis_url, run.prefix)
    ctx.say(_line(result))
    return result


async def _wait_done(
    ctx: Ctx,
    run: Running,
    dataset: Dataset,
    offsets: OffsetWatcher,
    metrics: Metrics,
    redis: Redis,
    limit: float,
    budget: float | None = None,
) -> dict[str, Any]:
    """Poll until done, `limit` seconds after start, or `budget` seconds after the first record.

    A consumer stopped by its budget gets a rate from its committed events (noted).
    """
    total = dataset.total
    started = run.proc.started_at
    committed_at: float | None = None
    done_at: float | None = None
    committed = 0
    rekeyed: list[TopicPartition] = []
    if run.spec.is_worker:
        rekeyed = [TopicPartition(f"{run.app_id}-rekeyed", p) for p in range(ctx.partitions)]
    next_sample = 0.0
    redis_ok = 0
    rekeyed_ok = False
    while True:
        run.proc.check_alive()
        now = time.time()
        if now >= next_sample:
            run.proc.sample()
            next_sample = now + 0.5
        await watch_first_record(run, metrics if run.spec.is_worker else None)
        committed = await offsets.committed()
        if committed >= total and committed_at is None:
            committed_at = time.time()
        if committed_at is not None:
            if not run.spec.is_worker:
                done_at = committed_at
                break
            # The worker re-keys mis-keyed records through its own topic; they count too.
            rekeyed_ok = await _rekeyed_caught_up(ctx, run.app_id, rekeyed)
            if rekeyed_ok:
                redis_ok = await redis_reflects(redis, run.prefix, dataset.expected_watermarks)
                if redis_ok == len(dataset.expected_watermarks):
                    done_at = time.time()
                    break
        if now - started > limit:
            break
        first_at = run.first_record_at
        if budget is not None and first_at is not None and now - first_at > budget:
            break
        await asyncio.sleep(POLL_S)
    end = done_at if done_at is not None else time.time()
    # CPU is read at "done", before the idle wind-down and any after-work of the harness.
    run.proc.sample()
    run.cpu_at_done = run.proc.cpu_s
    first = run.first_record_at
    out: dict[str, Any] = {
        "completed": done_at is not None,
        "committed_events": max(0, committed),
        "wall_s_from_start": round(end - started, 3),
        "join_s": round(first - started, 3) if first else None,
    }
    if done_at is None:
        out["note"] = (
            f"stopped after {end - started:.0f} s with {committed:,}/{total:,} events "
            "committed; rate from committed events"
        )
        if offsets.behind:
            out["note"] += "; behind: " + ", ".join(offsets.behind[:8])
        if run.spec.is_worker:
            # Did the worker read the records it has not committed? (Diagnoses a stall.)
            consumed = await metrics.consumed_by_topic()
            if consumed:
                out["consumed_by_topic_at_stop"] = consumed
        if run.spec.is_worker and committed_at is not None:
            out["note"] += (
                f"; repartition topic {'caught up' if rekeyed_ok else 'NOT caught up'}, "
                f"Redis showed {redis_ok}/{len(dataset.expected_watermarks)} sampled creators"
            )
    done_events = total if done_at is not None else max(0, committed)
    if first is not None and end > first:
        out["wall_s_from_first_record"] = round(end - first, 3)
        out["events_per_s"] = round(done_events / (end - first), 1)
    out["events_per_s_from_start"] = round(done_events / (end - started), 1)
    if committed_at is not None and done_at is not None:
        out["redis_lag_after_commit_s"] = round(done_at - committed_at, 3)
    if run.spec.is_worker:
        out["redis_sample_ok"] = f"{redis_ok}/{len(dataset.expected_watermarks)}"
    return out


async def _rekeyed_caught_up(ctx: Ctx, group: str, tps: list[TopicPartition]) -> bool:
    if not tps:
        return True
    try:
        ends = await end_offsets(ctx, tps)
    except Exception:
        return False
    target = sum(ends.values())
    if target == 0:
        return True
    async with OffsetWatcher(ctx, group, ends) as watcher:
        return await watcher.committed() >= target


def _process_figures(run: Running, result: Mapping[str, Any]) -> dict[str, Any]:
    proc = run.proc
    cpu = run.cpu_at_done if run.cpu_at_done is not None else proc.cpu_s
    out: dict[str, Any] = {
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(proc.peak_rss / 2**20, 1),
        "end_rss_mb": round(proc.last_rss / 2**20, 1),
        "rss_at_first_record_mb": round(run.rss_at_first_record / 2**20, 1),
    }
    done_events = result["events"] if result.get("completed") else result.get("committed_events")
    busy = cpu - run.cpu_at_first_record
    if run.first_record_at is not None and busy >= MIN_CPU_WINDOW_S and done_events:
        # Per core, while processing: imports and start-up CPU are left out.
        out["cpu_s_processing"] = round(busy, 2)
        out["events_per_cpu_s"] = round(done_events / busy, 1)
    elif run.first_record_at is not None:
        out["cpu_note"] = (
            f"processing took {max(busy, 0.0):.2f} CPU-s, too little to measure against "
            f"/proc's {1 / CLK_TCK:.2f} s ticks"
        )
    if cpu > 0 and done_events:
        out["events_per_cpu_s_with_startup"] = round(done_events / cpu, 1)
    return out


def _line(r: Mapping[str, Any]) -> str:
    rate = r.get("events_per_s")
    rate_text = f"{rate:,.0f} ev/s" if rate else "no rate"
    cpu = r.get("events_per_cpu_s")
    cpu_text = f", {cpu:,.0f} ev/cpu-s" if cpu else ""
    status = "" if r.get("completed") else " (INCOMPLETE)"
    return (
        f"{r['dataset']}: {r['consumer']}: {rate_text}{cpu_text}, "
        f"{r.get('wall_s_from_start')}s from start, join {r.get('join_s')}s, "
        f"peak RSS {r.get('peak_rss_mb')} MB{status}"
    )


async def stop_quietly(run: Running) -> None:
    with contextlib.suppress(Exception):
        run.proc.stop()
