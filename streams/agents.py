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
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import faust
import mode
from faust.tables.manager import TableManager

from scoring.packed import NewerFormatError
from scoring.params import Params
from streams import batching, metrics
from streams.app import (
    AGENT_NAME,
    ScoringApp,
    build_app,
    changelog_topic_name,
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
from streams.repair import Republisher, owned_partitions
from streams.row_cache import RowCache
from streams.settings import Settings, load_scoring_params, redacted
from streams.sinks.base import UnwritableError
from streams.sinks.kafka import KafkaSink, build_producer
from streams.sinks.redis import ChangeRetention, RedisSink, build_redis
from streams.state_store import TableStore
from streams.sweep import RescoreRequests, StreamClock, Sweeper
from streams.topics import TopicLayoutError, check_topics, ensure_topics
from streams.turns import Exclusive

log = logging.getLogger(__name__)

#: Exit status when the pipeline fails in a way it cannot retry (see `_run_batch`).
EXIT_PIPELINE_FAILED = 70
#: Exit status when existing topics cannot be run on (`streams.topics.check_topics`).
EXIT_TOPIC_LAYOUT = 78
#: How long a batch may wait for its changelog records to leave Faust's buffer.
CHANGELOG_FLUSH_TIMEOUT_S = 60.0


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
    abandon: asyncio.Event,
    health: HealthState | None = None,
    before_flush: Callable[[Iterable[bytes]], Awaitable[None]] | None = None,
) -> bool:
    """Run one batch to the end (changelog writes included); False if it was abandoned.
    `before_flush`: see `Pipeline.process`.

    The batch is not given up when the agent is cancelled: Faust acknowledges a batch's
    records as soon as the agent moves on, so a shutdown or rebalance first waits for the
    batch (`streams.batching.BatchConsumer.wait_empty`), which sets `abandon` if the batch
    takes too long (Redis or Kafka down). An abandoned batch is cancelled where it stands
    and its records stay unacknowledged: it writes nothing more, and whoever owns its
    partitions next processes it again. A failure the sinks do not retry ends the process
    at once, before anything is acknowledged: a restart then reprocesses the batch, which
    is safe, whereas carrying on would commit offsets for events that never reached Redis.
    """

    async def run() -> None:
        await pipeline.process(records, before_flush)
        await flush_changelog(app)

    if health is not None:
        health.batch_started()  # /readyz fails if this batch outlasts ready_batch_timeout_s
    task = asyncio.ensure_future(run())
    given_up = asyncio.ensure_future(abandon.wait())
    try:
        while True:
            try:
                await asyncio.wait({task, given_up}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                if task.done() or given_up.done():
                    raise
                log.info("stopping: finishing the batch in progress (%d records) first",
                         len(records))  # fmt: skip
                await asyncio.wait({task, given_up}, return_when=asyncio.FIRST_COMPLETED)
                if given_up.done() and not task.done():
                    await _cancel(task)
                elif not task.cancelled() and task.exception() is not None:
                    _exit_failed(task.exception(), len(records))
                raise
            if task.done():
                if not task.cancelled() and task.exception() is not None:
                    _exit_failed(task.exception(), len(records))
                return True
            if given_up.done():
                await _cancel(task)
                return False
    finally:
        given_up.cancel()
        if health is not None:
            health.batch_finished()


async def _cancel(task: asyncio.Future[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _exit_failed(exc: BaseException | None, records: int) -> None:
    """End the process at once, before anything of the batch is acknowledged."""
    if isinstance(exc, NewerFormatError | UnwritableError):
        # Not a bug, and nothing a retry mends: say what happened and what to do, once.
        log.critical("%s; stopping without acknowledging the batch of %d records (it is "
                     "processed again on restart)", exc, records)  # fmt: skip
    else:
        log.critical("pipeline failed on a batch of %d records; exiting", records,
                     exc_info=exc)  # fmt: skip
    logging.shutdown()
    os._exit(EXIT_PIPELINE_FAILED)


async def _drain_ingest(
    app: faust.App,
    ingest: BatchIngest,
    pipeline: Pipeline,
    sizer: BatchSizer,
    exclusive: Exclusive,
    health: HealthState | None = None,
) -> None:
    """Batch mode's agent loop: take fetched messages, run them, then acknowledge them.

    Acknowledging only after `_run_batch` returns is what keeps commits behind the sinks:
    Faust commits an offset once every message up to it is acked. `sizer` sets how many
    records each batch may take (more under a backlog, within a time target). A batch runs
    holding `exclusive`, which a Redis repair's slices take too (`streams.repair`).
    """
    consumer = app.consumer
    while True:
        messages = await batching.when_ready(app, await ingest.take(sizer.limit))
        if not messages:
            continue
        started = time.perf_counter()
        batching.track(consumer, messages)
        ingest.abandon.clear()
        # A sweep slice's writes may still be on their way: the batch waits for them only
        # if it holds one of their creators (streams.turns).
        async with exclusive.turn(settle=False) as turn:
            records = batching.to_records(messages)
            done = await _run_batch(pipeline, records, app, ingest.abandon, health,
                                    turn.settle_for)  # fmt: skip
        if not done:
            continue  # abandoned: its records stay unacknowledged (see _run_batch)
        batching.ack(consumer, messages)
        sizer.observe(len(messages), time.perf_counter() - started)


def install_pipeline(
    bundle: ScoringApp, params: Params, health: HealthState | None = None
) -> faust.types.AgentT[Any]:
    """Register the scoring agent (and rebalance/recovery hooks) on the app."""
    settings = bundle.settings
    app = bundle.app
    config = PipelineConfig.from_settings(settings, rekeyed_topic_name(settings))
    batch_size = settings.batch_size
    # Outlives the agent's pipeline object so the rebalance hooks below can empty it.
    cache = RowCache(settings.state_cache_mb * 2**20)
    ingest = BatchIngest(
        frozenset((*settings.source_topics, rekeyed_topic_name(settings))),
        max_pending_records=batch_size,
        bulk_changelog=settings.changelog_bulk,
        stop_wait_s=settings.stop_batch_wait_s,
    )
    batching.attach(app, ingest)

    changelog = bundle.table.changelog_topic.get_topic_name()

    def owned() -> frozenset[int] | None:
        return owned_partitions(app, changelog)

    async def score(stream: faust.StreamT[Any]) -> None:
        redis = build_redis(settings.redis_url)
        producer = build_producer(settings)
        await producer.start()
        repairing: asyncio.Future[None] | None = None
        sweeping: asyncio.Future[None] | None = None
        repair: Republisher | None = None
        try:
            pipeline = Pipeline(
                config,
                params,
                TableStore(bundle.table, producer, settings.topic_partitions),
                RedisSink(
                    redis,
                    Keys(settings.redis_prefix),
                    changes=ChangeRetention(
                        settings.redis_changes_maxlen, settings.redis_changes_per_creator
                    ),
                ),
                KafkaSink(producer, dead_letter_topic=settings.dead_letter_topic),
                cache=cache,
            )
            # Writes Redis again from the state when it lost its data (streams.repair).
            repair = Republisher(
                TableStore(bundle.table, producer, settings.topic_partitions),
                settings.topic_partitions, owned, redis,
                RedisSink(redis, Keys(settings.redis_prefix)), Keys(settings.redis_prefix), params,
            )  # fmt: skip
            if settings.redis_repair_interval_s:
                repairing = asyncio.ensure_future(repair.run(settings.redis_repair_interval_s))
            # Rolls every held creator's window with the stream time (streams.sweep).
            sweeper = Sweeper(
                pipeline, TableStore(bundle.table, producer, settings.topic_partitions),
                settings.topic_partitions, owned, repair.exclusive,
                clock=StreamClock(redis, Keys(settings.redis_prefix),
                                  idle_s=settings.stream_idle_s),
                requests=RescoreRequests(redis, Keys(settings.redis_prefix)),
                slice_size=settings.sweep_slice,
            )  # fmt: skip
            if settings.sweep_interval_s:
                sweeping = asyncio.ensure_future(sweeper.run(settings.sweep_interval_s))
            # The consumer bypasses the stream (streams.batching): fetches arrive whole.
            sizer = BatchSizer(batch_size, settings.batch_target_s)
            await _drain_ingest(app, ingest, pipeline, sizer, repair.exclusive, health)
        finally:
            for task in (repairing, sweeping):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if repair is not None:
                # A sweep slice's writes may still be on their way (streams.turns): let them
                # land while the producer is up. Past the bound, its creators stay due.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(repair.exclusive.settle(), timeout=10.0)
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
        settings = self._settings
        log.info("using Kafka %s, Redis %s (prefix %r)", settings.kafka_bootstrap_servers,
                 redacted(settings.redis_url), settings.redis_prefix)  # fmt: skip
        created = await ensure_topics(settings, worker_topic_specs(settings))
        if created:
            log.info("created topics: %s", ", ".join(created))
        try:
            await check_topics(
                settings,
                co_partitioned=[*settings.source_topics, rekeyed_topic_name(settings),
                                changelog_topic_name(settings), settings.cards_topic],
                compacted=[changelog_topic_name(settings), settings.cards_topic],
            )  # fmt: skip
        except TopicLayoutError as exc:
            # Running anyway would split creators' state between workers: refuse, and say why.
            log.critical("%s", exc)
            logging.shutdown()
            os._exit(EXIT_TOPIC_LAYOUT)
        self._runner = await start_observability(
            self._settings, self._health, [self._settings.app_id]
        )

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.stop()


class BoundedWorker(faust.Worker):
    """Faust's worker, with a bound on how long it may take to stop.

    A worker whose broker is gone for good never finishes a graceful stop: Faust's
    consumer thread waits for a group coordinator that does not come back, and mode's
    shutdown then waits on it with no bound (seen: still running minutes after SIGTERM,
    only kill -9 ended it). Once told to stop, a watchdog thread (not a task: the event
    loop may be the thing that is stuck) ends the process after `stop_timeout_s`, saying
    so. That is safe: offsets are committed only after Redis, the output topics and the
    changelog have a batch, so whatever was not committed is redone by the next owner, as
    after a kill -9 (docs/reliability.md).
    """

    #: Exit status of a stop that had to be cut short.
    FORCED_EXIT = 70

    def __init__(self, *services: Any, stop_timeout_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*services, **kwargs)
        self._stop_timeout_s = stop_timeout_s
        self._watchdog: threading.Timer | None = None

    def _schedule_shutdown(self, signal: Any) -> None:
        if self._watchdog is None and self._stop_timeout_s > 0:
            self._watchdog = threading.Timer(self._stop_timeout_s, self._exit_now, (signal,))
            self._watchdog.daemon = True
            self._watchdog.start()
        super()._schedule_shutdown(signal)

    def _exit_now(self, signal: Any) -> None:
        log.error(
            "still stopping %.0fs after %s (Kafka or Redis unreachable?): exiting now; "
            "what was not committed is processed again by the partitions' next owner "
            "(CREATOR_SCORES_STOP_TIMEOUT_S)",
            self._stop_timeout_s,
            getattr(signal, "name", signal),
        )
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(self.FORCED_EXIT)


def build_worker(settings: Settings, *, loglevel: str = "info") -> faust.Worker:
    """The Faust worker for our app, with the observability endpoint beside it."""
    use_event_loop(settings)
    bundle = build_app(settings)
    # Faust creates its data directory but not the parents; with the memory store it stays empty.
    Path(bundle.app.conf.datadir).mkdir(parents=True, exist_ok=True)
    health = HealthState(batch_timeout_s=settings.ready_batch_timeout_s)
    install_pipeline(bundle, load_scoring_params(settings), health)
    worker = BoundedWorker(
        bundle.app,
        WorkerSupport(settings, health),
        stop_timeout_s=settings.stop_timeout_s,
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
