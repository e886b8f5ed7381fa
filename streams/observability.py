"""The worker's operations endpoint: Prometheus metrics, liveness and readiness.

One small aiohttp server runs inside the worker's own asyncio loop on
`Settings.metrics_port` and serves `/metrics` (the pipeline's metrics in
`streams.metrics.REGISTRY`, broker-side consumer lag from `streams.lag`, and
the current top creators read back from the Redis leaderboard), `/healthz`
(the process and its loop answer) and `/readyz` (partitions assigned, tables
recovered, Redis and Kafka reachable, no batch stuck; 503 otherwise). The
pipeline only flips flags on a `HealthState`; everything slow (lag and
metadata from Kafka, the leaderboard from Redis) is refreshed by background
tasks so a scrape never waits on the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from streams.keys import GLOBAL_REGION, Keys
from streams.lag import DEFAULT_INTERVAL_S, LAG_METRICS, LagCollector, LagMonitor
from streams.metrics import REGISTRY
from streams.settings import Settings

log = logging.getLogger(__name__)

RedisCheck = Callable[[], Awaitable[bool]]

TOP_CREATORS_METRIC = "creator_scores_top_creator_score"
TOP_CREATORS_BOARD = "overall"
DEFAULT_TOP_N = 10


class ObservabilityError(RuntimeError):
    """The endpoint could not be started (port taken, bad argument)."""


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, bool]
    detail: dict[str, str]

    def to_dict(self) -> dict[str, object]:
        return {"ready": self.ready, "checks": self.checks, "detail": self.detail}


class HealthState:
    """Flags the pipeline sets; `/readyz` reads them and asks Redis.

    Ready means: partitions assigned to this worker, its tables recovered from
    their changelogs, Redis answering within `redis_timeout_s`, Kafka answering
    the last metadata probe (`KafkaProbe`), and no batch in progress for longer
    than `batch_timeout_s` (a worker retrying a write that never succeeds, or
    waiting on a dependency that is down, is alive but makes no progress).
    """

    def __init__(
        self,
        redis_check: RedisCheck | None = None,
        redis_timeout_s: float = 1.0,
        *,
        batch_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if redis_timeout_s <= 0:
            raise ValueError(f"redis_timeout_s must be > 0, got {redis_timeout_s}")
        if batch_timeout_s <= 0:
            raise ValueError(f"batch_timeout_s must be > 0, got {batch_timeout_s}")
        self._assigned = False
        self._recovered = False
        self._redis_check = redis_check
        self.redis_timeout_s = redis_timeout_s
        self.batch_timeout_s = batch_timeout_s
        self._clock = clock
        self._kafka: bool | None = None  # None: no probe has answered yet
        self._kafka_detail = "no Kafka check has run yet"
        self._batch_since: float | None = None
        self.started_at = time.time()

    def set_assigned(self, assigned: bool) -> None:
        self._assigned = bool(assigned)

    def set_recovered(self, recovered: bool) -> None:
        self._recovered = bool(recovered)

    def set_redis_check(self, check: RedisCheck | None) -> None:
        self._redis_check = check

    def set_kafka(self, reachable: bool, detail: str = "") -> None:
        """The outcome of the latest Kafka probe; `detail` says why it failed."""
        self._kafka = bool(reachable)
        self._kafka_detail = detail or "Kafka did not answer"

    def batch_started(self) -> None:
        self._batch_since = self._clock()

    def batch_finished(self) -> None:
        self._batch_since = None

    @property
    def assigned(self) -> bool:
        return self._assigned

    @property
    def recovered(self) -> bool:
        return self._recovered

    @property
    def has_redis_check(self) -> bool:
        return self._redis_check is not None

    def batch_age_s(self) -> float | None:
        """How long the batch in progress has run; None between batches."""
        return None if self._batch_since is None else self._clock() - self._batch_since

    async def readiness(self) -> Readiness:
        detail: dict[str, str] = {}
        if not self._assigned:
            detail["assigned"] = "no partitions assigned to this worker yet"
        if not self._recovered:
            detail["recovered"] = "tables still recovering from their changelogs"
        redis_ok = False
        if self._redis_check is None:
            detail["redis"] = "no Redis check configured"
        else:
            try:
                redis_ok = bool(
                    await asyncio.wait_for(self._redis_check(), timeout=self.redis_timeout_s)
                )
                if not redis_ok:
                    detail["redis"] = "Redis check returned false"
            except TimeoutError:
                detail["redis"] = f"Redis did not answer within {self.redis_timeout_s}s"
            except Exception as exc:
                detail["redis"] = f"{type(exc).__name__}: {exc}"
        kafka_ok = self._kafka is True
        if not kafka_ok:
            detail["kafka"] = self._kafka_detail
        age = self.batch_age_s()
        progressing = age is None or age <= self.batch_timeout_s
        if not progressing:
            detail["progress"] = (
                f"a batch has been in progress for {age:.0f}s "
                f"(more than {self.batch_timeout_s:g}s): a dependency is down or a write keeps "
                "failing"
            )
        checks = {
            "assigned": self._assigned,
            "recovered": self._recovered,
            "redis": redis_ok,
            "kafka": kafka_ok,
            "progress": progressing,
        }
        return Readiness(all(checks.values()), checks, detail)


class KafkaProbe:
    """Asks the cluster for its metadata, the cheapest request that needs a live broker.

    Run every few seconds by the observability endpoint; each answer (or its absence
    within `timeout_s`) goes to `HealthState.set_kafka`. Its own client, so the probe
    measures whether this process can reach Kafka now, whatever the consumer's state.
    """

    def __init__(
        self, bootstrap_servers: str, health: HealthState, *, timeout_s: float = 3.0
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.bootstrap_servers = bootstrap_servers
        self.health = health
        self.timeout_s = timeout_s
        self.failures = 0
        self._client: Any = None
        self._last_error: str | None = None

    async def check(self) -> bool:
        try:
            await asyncio.wait_for(self._ask(), timeout=self.timeout_s)
        except Exception as exc:
            self.failures += 1
            message = (
                f"Kafka at {self.bootstrap_servers} did not answer within {self.timeout_s:g}s"
                if isinstance(exc, TimeoutError)
                else f"cannot reach Kafka at {self.bootstrap_servers}: {type(exc).__name__}: {exc}"
            )
            # Once per distinct failure, not every few seconds while Kafka is away.
            level = logging.DEBUG if message == self._last_error else logging.WARNING
            log.log(level, "Kafka probe failed: %s", message)
            self._last_error = message
            await self.close()  # a fresh client next time: bootstrap again from the list
            self.health.set_kafka(False, message)
            return False
        if self._last_error is not None:
            log.info("Kafka probe: %s answers again", self.bootstrap_servers)
            self._last_error = None
        self.health.set_kafka(True)
        return True

    async def _ask(self) -> None:
        if self._client is None:
            from aiokafka.client import AIOKafkaClient

            client = AIOKafkaClient(
                bootstrap_servers=self.bootstrap_servers,
                request_timeout_ms=int(self.timeout_s * 1000),
                client_id="creator-scores-readiness",
            )
            self._client = client
            await client.bootstrap()
        await self._client.fetch_all_metadata()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()


def redis_ping_check(client: Any) -> RedisCheck:
    """A readiness check that PINGs a `redis.asyncio` client."""

    async def check() -> bool:
        return bool(await client.ping())

    return check


# -- top creators -----------------------------------------------------------------


@dataclass
class TopCreators:
    """The head of the global `overall` leaderboard, re-read from Redis in the background.

    Exported as a gauge so Grafana needs no Redis plugin; only `top_n` series
    exist at a time, so cardinality stays bounded however many creators there are.
    """

    keys: Keys
    top_n: int = DEFAULT_TOP_N
    board: str = TOP_CREATORS_BOARD
    entries: list[tuple[str, float]] = field(default_factory=list)
    errors: int = 0
    last_error: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.top_n <= 100:
            raise ValueError(f"top_n must be in 1..100, got {self.top_n}")

    async def refresh(self, client: Any) -> None:
        try:
            raw = await client.zrevrange(
                self.keys.board(self.board, GLOBAL_REGION), 0, self.top_n - 1, withscores=True
            )
            self.entries = [
                (m.decode() if isinstance(m, bytes) else str(m), float(s)) for m, s in raw
            ]
            self.last_error = None
        except Exception as exc:
            self.entries = []
            self.errors += 1
            message = f"{type(exc).__name__}: {exc}"
            # Once per distinct failure, not every few seconds while Redis is away.
            level = logging.DEBUG if message == self.last_error else logging.WARNING
            log.log(level, "top creators refresh failed: %s", message)
            self.last_error = message


class TopCreatorsCollector(Collector):
    def __init__(self, top: TopCreators) -> None:
        self.top = top

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            TOP_CREATORS_METRIC,
            "Leaderboard score of the current top creators (global region), read from Redis.",
            labels=["board", "rank", "creator_id"],
        )
        for rank, (creator, value) in enumerate(self.top.entries, start=1):
            family.add_metric([self.top.board, str(rank), creator], value)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(TOP_CREATORS_METRIC, "", labels=["board", "rank", "creator_id"])


# -- exposition ---------------------------------------------------------------------


class _Union(Collector):
    """Several collectors exposed as one, without registering into the shared REGISTRY."""

    def __init__(self, *parts: Collector) -> None:
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()


def exported_metric_names(extra: Iterable[Collector] = ()) -> set[str]:
    """Every series name a worker's `/metrics` can hold (counters as `_total`, histograms
    as `_bucket`/`_sum`/`_count`), from the metric definitions rather than from samples,
    so a metric that has not been touched yet is still known."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
        "stateset": ("",),
        "unknown": ("",),
    }
    names: set[str] = set()
    for collector in (REGISTRY, *extra):
        for family in collector.collect():
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    names.update(LAG_METRICS)
    names.add(TOP_CREATORS_METRIC)
    return names


# -- the server ---------------------------------------------------------------------


@dataclass
class ObservabilityRunner:
    """The running endpoint and its background tasks; `await runner.stop()` ends them."""

    host: str
    port: int
    health: HealthState
    monitor: LagMonitor | None
    top: TopCreators
    _runner: web.AppRunner
    _tasks: list[asyncio.Task[None]]
    _redis: Any
    _stopped: bool = False
    probe: KafkaProbe | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._runner.cleanup()
        if self.probe is not None:
            await self.probe.close()
        if self.monitor is not None:
            await self.monitor.close()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()


async def _every(interval_s: float, work: Callable[[], Awaitable[Any]], what: str) -> None:
    while True:
        began = time.monotonic()
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A failing refresh must never take the worker's loop down with it.
            log.exception("%s refresh failed", what)
        await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - began)))


def _app(
    exposed: Collector, readiness: Callable[[], Awaitable[Readiness]], started_at: float
) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        # Same negotiation as prometheus_client's own server: OpenMetrics when asked for.
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(exposed), headers={"Content-Type": content_type})

    async def healthz(_: web.Request) -> web.Response:
        # Answering at all is the proof: the handler runs on the worker's own loop.
        uptime = round(time.time() - started_at, 3)
        return web.json_response({"live": True, "uptime_s": uptime})

    async def readyz(_: web.Request) -> web.Response:
        state = await readiness()
        return web.Response(
            text=json.dumps(state.to_dict()),
            status=200 if state.ready else 503,
            content_type="application/json",
        )

    async def index(_: web.Request) -> web.Response:
        return web.Response(text="creator-scores: /metrics /healthz /readyz\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", index)
    return app


async def _listen(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    if not 0 <= port <= 65535:
        raise ObservabilityError(f"port must be in 0..65535, got {port}")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ObservabilityError(f"cannot listen on {host}:{port}: {exc}") from exc
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


async def start_observability(
    settings: Settings,
    health: HealthState,
    lag_groups: Iterable[str] = (),
    *,
    host: str = "0.0.0.0",
    port: int | None = None,
    lag_interval_s: float = DEFAULT_INTERVAL_S,
    top_interval_s: float = DEFAULT_INTERVAL_S,
    kafka_interval_s: float = DEFAULT_INTERVAL_S,
    top_n: int = DEFAULT_TOP_N,
    registry: CollectorRegistry = REGISTRY,
) -> ObservabilityRunner:
    """Serve /metrics, /healthz and /readyz on `port` (default `settings.metrics_port`;
    0 picks a free one) and start refreshing lag for `lag_groups` every `lag_interval_s`.

    The worker passes `[settings.app_id]`; its source topics are watched even
    before anything is committed. When `health` has no Redis check, one that
    PINGs `settings.redis_url` is installed; Kafka is probed every `kafka_interval_s`.
    """
    if lag_interval_s <= 0 or top_interval_s <= 0 or kafka_interval_s <= 0:
        raise ObservabilityError("refresh intervals must be > 0 seconds")
    listen_port = settings.metrics_port if port is None else port
    groups = list(dict.fromkeys(lag_groups))
    import redis.asyncio as aioredis

    redis_client: Any = aioredis.Redis.from_url(
        settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
    )
    if not health.has_redis_check:
        health.set_redis_check(redis_ping_check(redis_client))
    top = TopCreators(Keys(settings.redis_prefix), top_n=top_n)
    monitor = LagMonitor.for_settings(settings, groups) if groups else None
    parts: list[Collector] = [registry, TopCreatorsCollector(top)]
    if monitor is not None:
        parts.append(LagCollector(monitor))
    try:
        runner, bound = await _listen(
            _app(_Union(*parts), health.readiness, health.started_at), host, listen_port
        )
    except ObservabilityError:
        with contextlib.suppress(Exception):
            await redis_client.aclose()
        raise
    probe = KafkaProbe(settings.kafka_bootstrap_servers, health)
    tasks: list[asyncio.Task[None]] = [
        asyncio.create_task(
            _every(top_interval_s, lambda: top.refresh(redis_client), "top creators"),
            name="observability-top-creators",
        ),
        asyncio.create_task(
            _every(kafka_interval_s, probe.check, "Kafka probe"), name="observability-kafka"
        ),
    ]
    if monitor is not None:
        tasks.append(
            asyncio.create_task(
                _every(lag_interval_s, monitor.refresh, "consumer lag"), name="observability-lag"
            )
        )
    log.info("observability endpoint on %s:%s (lag groups: %s)", host, bound, groups or "none")
    return ObservabilityRunner(
        host=host,
        port=bound,
        health=health,
        monitor=monitor,
        top=top,
        _runner=runner,
        _tasks=tasks,
        _redis=redis_client,
        probe=probe,
    )


async def stop_observability(runner: ObservabilityRunner) -> None:
    await runner.stop()


# -- a stand-alone lag exporter -------------------------------------------------------


async def serve_lag(
    settings: Settings,
    groups: Iterable[str],
    *,
    host: str = "0.0.0.0",
    port: int,
    interval_s: float = DEFAULT_INTERVAL_S,
    ready_within_s: float | None = None,
) -> ObservabilityRunner:
    """Serve only the lag metrics of `groups` (default: the app's group) on `port`.

    Run beside the workers (`creator-scores lag --serve PORT`) so lag is still
    reported, and alerts still fire, when every worker is down. Ready once
    every group refreshed successfully within `ready_within_s` (default three
    intervals).
    """
    if interval_s <= 0:
        raise ObservabilityError(f"interval must be > 0 seconds, got {interval_s}")
    wanted = list(dict.fromkeys(groups)) or [settings.app_id]
    monitor = LagMonitor.for_settings(settings, wanted)
    window = ready_within_s if ready_within_s is not None else 3 * interval_s
    health = HealthState()

    async def readiness() -> Readiness:
        now = time.time()
        checks = {g: now - monitor.last_refresh_s.get(g, float("-inf")) <= window for g in wanted}
        detail = {
            g: monitor.last_error.get(g, f"no successful refresh in the last {window:g}s")
            for g, ok in checks.items()
            if not ok
        }
        return Readiness(all(checks.values()), checks, detail)

    runner, bound = await _listen(
        _app(LagCollector(monitor), readiness, health.started_at), host, port
    )
    task = asyncio.create_task(
        _every(interval_s, monitor.refresh, "consumer lag"), name="lag-exporter"
    )
    log.info("lag exporter on %s:%s for groups %s", host, bound, wanted)
    return ObservabilityRunner(
        host=host,
        port=bound,
        health=health,
        monitor=monitor,
        top=TopCreators(Keys(settings.redis_prefix)),
        _runner=runner,
        _tasks=[task],
        _redis=None,
    )


async def run_lag_exporter(
    settings: Settings, groups: Iterable[str], *, port: int, interval_s: float
) -> None:
    """`serve_lag` until cancelled (Ctrl-C); SIGTERM's default action ends the process."""
    runner = await serve_lag(settings, groups, port=port, interval_s=interval_s)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.stop()
