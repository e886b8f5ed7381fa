"""The Faust side of the worker: one thin agent, the sinks it owns, and the worker's start-up.

The agent takes events from the source topics in batches, turns each into a plain
`RawRecord` and hands the list to `Pipeline.process`; everything else happens
there. Faust acknowledges a batch's records only after the agent is done with it,
so offsets are committed for work that reached Redis, Kafka and the state table,
never before.

`run_worker` is what `creator-scores worker` runs: create the topics, start the
observability endpoint, then run the Faust worker until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import faust
import mode
from faust.streams import Stream
from faust.tables.manager import TableManager

from scoring.params import Params
from streams import batching, metrics
from streams.app import (
    AGENT_NAME,
    ScoringApp,
    build_app,
    rekeyed_topic_name,
    use_event_loop,
    worker_topic_specs,
)
from streams.batching import BatchIngest, BatchSizer
from streams.codec import RawRecord
from streams.keys import Keys
from streams.log_limit import install_repeat_limiter
from streams.observability import HealthState, ObservabilityRunner, start_observability
from streams.pipeline import Pipeline, PipelineConfig
from streams.row_cache import RowCache
from streams.settings import Settings, load_scoring_params
from streams.sinks.kafka import KafkaSink, build_producer
from streams.sinks.redis import RedisSink, build_redis
from streams.state_store import TableStore
from streams.topics import ensure_topics

log = logging.getLogger(__name__)

#: Exit status when the pipeline fails in a way it cannot retry (see `_run_batch`).
EXIT_PIPELINE_FAILED = 70
#: How long a batch may wait for its changelog records to leave Faust's buffer.
CHANGELOG_FLUSH_TIMEOUT_S = 60.0


def to_records(events: Iterable[faust.types.EventT[Any]]) -> list[RawRecord]:
    """Faust events as the pipeline's plain records (the stream path's events carry messages)."""
    return batching.to_records(event.message for event in events)


async def flush_changelog(app: faust.App) -> None:
    """Hand every buffered changelog record to Kafka and wait until the broker has them.

    Table writes only enter Faust's producer buffer. Before committing offsets Faust
    flushes that buffer, but `ProducerBuffer.flush` gives up when no record leaves it
    within 0.1 s, so under load a commit can overtake state changes still buffered: a
    worker killed then has committed offsets whose state changes never reached the
    changelog, and the worker that takes over recovers a state missing those events and
    never reprocesses them. Draining the buffer to empty before a batch is acknowledged
    closes that window.
    """
    producer = app.producer
    deadline = asyncio.get_running_loop().time() + CHANGELOG_FLUSH_TIMEOUT_S
    while producer.buffer.size:
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(
                f"{producer.buffer.size} changelog records still buffered after "
                f"{CHANGELOG_FLUSH_TIMEOUT_S:.0f}s"
            )
        await producer.buffer.flush()
    await producer.flush()


async def _run_batch(
    pipeline: Pipeline,
    records: Sequence[RawRecord],
    app: faust.App,
    health: HealthState | None = None,
) -> None:
    """Run one batch to the end (changelog writes included) even when the agent is being stopped.

    Faust acknowledges the batch's records as soon as the agent moves on, whether it
    finished or was cancelled; so a shutdown waits for the batch instead of abandoning it
    half-written. A failure the sinks do not retry (a bug) ends the process at once, before
    anything is acknowledged: a restart then reprocesses the batch, which is safe, whereas
    carrying on would commit offsets for events that never reached Redis.
    """

    async def run() -> None:
        await pipeline.process(records)
        await flush_changelog(app)

    if health is not None:
        health.batch_started()  # /readyz fails if this batch outlasts ready_batch_timeout_s
    task = asyncio.ensure_future(run())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            log.info("stopping: finishing the batch in progress (%d records) first", len(records))
            with contextlib.suppress(asyncio.CancelledError):
                await task
        raise
    except Exception:
        log.critical(
            "pipeline failed on a batch of %d records; exiting", len(records), exc_info=True
        )
        logging.shutdown()
        os._exit(EXIT_PIPELINE_FAILED)
    if health is not None:
        health.batch_finished()


async def _drain_ingest(
    app: faust.App,
    ingest: BatchIngest,
    pipeline: Pipeline,
    sizer: BatchSizer,
    health: HealthState | None = None,
) -> None:
    """Batch mode's agent loop: take fetched messages, run them, then acknowledge them.

    Acknowledging only after `_run_batch` returns is what keeps commits behind the sinks:
    Faust commits an offset once every message up to it is acked. `sizer` sets how many
    records each batch may take (more under a backlog, within a time target).
    """
    consumer = app.consumer
    while True:
        messages = batching.current(app, await ingest.take(sizer.limit))
        if not messages:
            continue
        started = time.perf_counter()
        batching.track(consumer, messages)
        await _run_batch(pipeline, batching.to_records(messages), app, health)
        batching.ack(consumer, messages)
        sizer.observe(len(messages), time.perf_counter() - started)


def install_pipeline(
    bundle: ScoringApp, params: Params, health: HealthState | None = None
) -> faust.types.AgentT[Any]:
    """Register the scoring agent (and rebalance/recovery hooks) on the app."""
    settings = bundle.settings
    app = bundle.app
    config = PipelineConfig.from_settings(settings, rekeyed_topic_name(settings))
    batch_size, within = settings.batch_size, settings.batch_within_s
    # Outlives the agent's pipeline object so the rebalance hooks below can empty it.
    cache = RowCache(settings.state_cache_mb * 2**20)
    ingest: BatchIngest | None = None
    if settings.ingest == "batch":
        ingest = BatchIngest(
            frozenset((*settings.source_topics, rekeyed_topic_name(settings))),
            max_pending_records=batch_size,
            bulk_changelog=settings.changelog_bulk,
        )
        batching.attach(app, ingest)

    async def score(stream: faust.StreamT[Any]) -> None:
        redis = build_redis(settings.redis_url)
        producer = build_producer(settings)
        await producer.start()
        try:
            pipeline = Pipeline(
                config,
                params,
                TableStore(bundle.table, producer, settings.topic_partitions),
                RedisSink(redis, Keys(settings.redis_prefix)),
                KafkaSink(producer),
                cache=cache,
            )
            if ingest is not None:
                # The consumer bypasses the stream (streams.batching): fetches arrive whole.
                sizer = BatchSizer(batch_size, settings.batch_target_s)
                await _drain_ingest(app, ingest, pipeline, sizer, health)
                return
            # take_events (not take): the pipeline needs each record's topic, partition,
            # offset, key and timestamp, which only the events carry.
            batches = cast("Stream[bytes]", stream).take_events(batch_size, within)
            async for events in batches:
                await _run_batch(pipeline, to_records(events), app, health)
        finally:
            await producer.stop()
            await redis.aclose()

    agent = app.agent(bundle.source, name=AGENT_NAME)(score)

    # Faust sends signals as receiver(sender, *args, signal=..., **kwargs).
    async def on_assigned(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        cache.clear()  # (entries check the table's values anyway; this frees their memory)
        metrics.REBALANCES.inc()
        if health is not None:
            assigned = args[0] if args else kwargs.get("assigned")
            health.set_assigned(bool(assigned))

    async def on_revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        cache.clear()
        if health is not None:
            health.set_recovered(False)

    async def on_recovered(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        metrics.RECOVERY_REMAINING.set(0)
        if health is not None:
            health.set_recovered(True)

    # mode's handler annotation (mypy_extensions VarArg/NamedArg) rejects every function,
    # including one with its exact signature; the handlers match what mode calls.
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_rebalance_complete.connect(on_recovered)  # type: ignore[arg-type]

    async def recovery_progress() -> None:
        recovery = cast(TableManager, app.tables).recovery
        if recovery.in_recovery:
            metrics.RECOVERY_REMAINING.set(recovery.active_remaining_total())

    app.timer(1.0, name="recovery-progress")(recovery_progress)
    return agent


class WorkerSupport(mode.Service):
    """Starts before the app: creates the topics, then serves /metrics, /healthz, /readyz."""

    def __init__(self, settings: Settings, health: HealthState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._health = health
        self._runner: ObservabilityRunner | None = None

    async def on_start(self) -> None:
        # Logging is set up by now (mode does it first): a broker outage costs a few lines.
        install_repeat_limiter()
        created = await ensure_topics(self._settings, worker_topic_specs(self._settings))
        if created:
            log.info("created topics: %s", ", ".join(created))
        self._runner = await start_observability(
            self._settings, self._health, [self._settings.app_id]
        )

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.stop()


def build_worker(settings: Settings, *, loglevel: str = "info") -> faust.Worker:
    """The Faust worker for our app, with the observability endpoint beside it."""
    use_event_loop(settings)
    bundle = build_app(settings)
    # Faust creates its data directory but not the parents; with the memory store it stays empty.
    Path(bundle.app.conf.datadir).mkdir(parents=True, exist_ok=True)
    health = HealthState(batch_timeout_s=settings.ready_batch_timeout_s)
    install_pipeline(bundle, load_scoring_params(settings), health)
    worker = faust.Worker(
        bundle.app,
        WorkerSupport(settings, health),
        loglevel=loglevel,
        redirect_stdouts=False,
        stdout=sys.stdout,
        stderr=sys.stderr,
    )
    # At --loglevel warning or above Faust starts a terminal spinner that turns on every
    # log record, and sets the root logger to DEBUG for it: every debug call in aiokafka
    # and Faust (one per record produced) then builds a LogRecord for nothing (~4 % of a
    # busy worker's CPU). No spinner: the root logger keeps the level asked for.
    worker.spinner = None
    return worker


def tune_gc(gen0_threshold: int) -> None:
    """Collect the young generation less often, and never scan what start-up created.

    A worker keeps thousands of live creator states (many small objects each) and
    allocates heavily per batch; with CPython's default threshold (700) the collector
    ran thousands of times per 60,000 events and took over a fifth of the pipeline's time
    (`bench/commentary.md`). The model creates no reference cycles of note, so
    collecting every `gen0_threshold` allocations instead changes memory very little.
    """
    if gen0_threshold > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, max(gen1, 50), max(gen2, 100))
    gc.freeze()


def run_worker(settings: Settings, *, loglevel: str = "info") -> None:
    """Run a worker until SIGTERM/SIGINT; mode's worker exits the process when it stops."""
    worker = build_worker(settings, loglevel=loglevel)
    tune_gc(settings.gc_gen0_threshold)
    worker.execute_from_commandline()
