"""End-to-end harness: a real `creator-scores worker` process on the real stack.

Each test gets its own topics, app id (so consumer group and changelog), Redis
prefix and working directory, all passed to the worker through the environment
exactly as an operator would. Helpers produce events, read output topics, wait
for the worker to catch up (from the broker's committed offsets, not from sleeps)
and dump every Redis key under the prefix for exact comparisons. Every record of the
output topics (score changes, dead letters, cards) is checked against its published
schema, when a test reads it and again when the test ends. Everything the test
created (topics, keys) is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiokafka import ConsumerRecord
from redis.asyncio import Redis

from streams.app import worker_topic_specs
from streams.devtools.stack import LocalStack, free_port, port_open
from streams.keys import Keys
from streams.settings import Settings
from streams.topics import ensure_topics
from tests.support.contracts import check_records, output_topics
from tests.support.events import HOUR_MS, EventSet, make_events
from tests.support.kafka import (
    Produced,
    delete_topics,
    produce,
    read_topic,
    wait_caught_up,
    wait_for,
)
from tests.support.redis import delete_prefix
from tests.support.workers import kill9, start_worker, stop_worker

__all__ = ["EventSet", "Produced", "WorkerEnv"]

PARTITIONS = 4


@dataclass
class WorkerEnv:
    """One test's deployment: settings as the worker will see them, and its environment."""

    settings: Settings
    env: dict[str, str]
    workdir: Path
    #: the root conftest's `redis_dump` (tests/conftest.py)
    redis_dump: Callable[[Redis, str], Awaitable[dict[str, object]]]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    named: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str = "worker", **overrides: str) -> subprocess.Popen[bytes]:
        proc = start_worker({**self.env, **overrides}, self.workdir, name)
        self.processes.append(proc)
        self.named[name] = proc
        return proc

    def log_text(self, name: str = "worker") -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit status (SIGKILL if it would not stop)."""
        return stop_worker(proc, timeout)

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        kill9(proc)

    # The helpers below are reached through the fixture, so tests need no import of this file.

    def make_events(
        self, *, creators: int, posts_per_creator: int, seed: int, now_ms: int
    ) -> EventSet:
        return make_events(
            self.settings, creators=creators, posts_per_creator=posts_per_creator, seed=seed,
            now_ms=now_ms,
        )  # fmt: skip

    async def produce(self, records: Sequence[Produced]) -> None:
        await produce(self.settings, records)

    async def read_topic(
        self, topic: str, *, at_least: int = 0, timeout: float = 30.0
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Every record of `topic`; those of an output topic checked against their published
        schema first (`tests.support.contracts`)."""
        records = await read_topic(self.settings, topic, at_least=at_least, timeout=timeout)
        check_records(self.settings, topic, records)
        return records

    async def check_outputs(self) -> dict[str, int]:
        """Every record the workers wrote to the output topics, checked against its schema
        (run when the test ends); records checked per topic."""
        return {
            topic: check_records(self.settings, topic, await read_topic(self.settings, topic))
            for topic in output_topics(self.settings)
        }

    async def wait_caught_up(
        self, topics: Sequence[str], proc: subprocess.Popen[bytes], timeout: float = 60.0
    ) -> None:
        try:
            await wait_caught_up(self.settings, topics, proc, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await self.worker_report(proc)}") from None

    async def metric(self, proc: subprocess.Popen[bytes], name: str) -> float:
        """The sum of a worker's samples of metric `name` (all label sets), from its /metrics."""
        worker = next((n for n, p in self.named.items() if p is proc), "worker")
        found = re.findall(r"observability endpoint on [^:]+:(\d+)", self.log_text(worker))
        assert found, f"{worker}: no observability endpoint in its log"
        timeout = aiohttp.ClientTimeout(total=5)
        url = f"http://127.0.0.1:{found[-1]}/metrics"
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
            text = await resp.text()
        samples = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + " ", name + "{"))
        ]
        assert samples, f"{worker} exports no {name}"
        return sum(samples)

    async def worker_report(self, proc: subprocess.Popen[bytes]) -> str:
        """What a stuck worker says about itself: readiness and its pipeline counters."""
        name = next((n for n, p in self.named.items() if p is proc), "worker")
        found = re.findall(r"observability endpoint on [^:]+:(\d+)", self.log_text(name))
        if not found:
            return f"{name}: no observability endpoint in its log"
        base = f"http://127.0.0.1:{found[-1]}"
        lines = [f"{name} at {base}:"]
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                async with http.get(base + "/readyz") as resp:
                    lines.append(f"  /readyz {resp.status} {(await resp.text()).strip()[:300]}")
                async with http.get(base + "/metrics") as resp:
                    text = await resp.text()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return f"{name}: endpoint did not answer ({exc!r})"
        wanted = (
            "creator_scores_events_", "creator_scores_batch_size_count",
            "creator_scores_rebalances", "creator_scores_table_recovery",
            "creator_scores_last_redis",
        )  # fmt: skip
        lines += [
            f"  {ln}" for ln in text.splitlines()
            if ln.startswith(wanted) and not ln.endswith(" 0.0")
        ][:40]  # fmt: skip
        return "\n".join(lines)

    async def dump(self, redis_url: str | None = None) -> dict[str, object]:
        """Every key under the prefix but the partition markers (`streams.repair`): those are
        the worker's bookkeeping, written on its own clock (`markers` reads them). From the
        stack's Redis, or the one at `redis_url`."""
        client = Redis.from_url(redis_url or self.settings.redis_url)
        try:
            found = await self.redis_dump(client, self.settings.redis_prefix)
        finally:
            await client.aclose()
        markers = Keys(self.settings.redis_prefix).markers_pattern().removesuffix("*")
        return {k: v for k, v in found.items() if not k.startswith(markers)}

    async def markers(self) -> dict[int, bytes]:
        """The partition markers the workers wrote: partition -> value."""
        keys = Keys(self.settings.redis_prefix)
        client = Redis.from_url(self.settings.redis_url)
        try:
            found = [k async for k in client.scan_iter(match=keys.markers_pattern())]
            values = await client.mget(found) if found else []
        finally:
            await client.aclose()
        return {int(k.rsplit(b":", 1)[1]): v for k, v in zip(found, values, strict=True)}

    async def wait_for(
        self, check: object, *, timeout: float, proc: subprocess.Popen[bytes], what: str
    ) -> None:
        await wait_for(check, timeout=timeout, proc=proc, what=what)


@pytest.fixture
async def worker_env(
    stack_settings: Settings,
    unique: str,
    redis_prefix: str,
    tmp_path: Path,
    redis_dump: Callable[[Redis, str], Awaitable[dict[str, object]]],
) -> AsyncIterator[WorkerEnv]:
    base = f"e2e-{unique}"
    values = {
        "CREATOR_SCORES_APP_ID": f"{base}-app",
        "CREATOR_SCORES_POSTS_TOPIC": f"{base}-posts",
        "CREATOR_SCORES_TAGS_TOPIC": f"{base}-tags",
        "CREATOR_SCORES_ORDERS_TOPIC": f"{base}-orders",
        "CREATOR_SCORES_CHANGES_TOPIC": f"{base}-changes",
        "CREATOR_SCORES_DEAD_LETTER_TOPIC": f"{base}-dead",
        "CREATOR_SCORES_CARDS_TOPIC": f"{base}-cards",
        "CREATOR_SCORES_TOPIC_PARTITIONS": str(PARTITIONS),
        "CREATOR_SCORES_REDIS_PREFIX": redis_prefix,
        "CREATOR_SCORES_METRICS_PORT": "0",
        "CREATOR_SCORES_BATCH_WITHIN_S": "0.1",
        "CREATOR_SCORES_STACK_DIR": str(tmp_path / "stack"),
        "KAFKA_BOOTSTRAP_SERVERS": stack_settings.kafka_bootstrap_servers,
        "REDIS_URL": stack_settings.redis_url,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREATOR_SCORES_")}
    env.update(values)
    settings = Settings(
        app_id=values["CREATOR_SCORES_APP_ID"],
        posts_topic=values["CREATOR_SCORES_POSTS_TOPIC"],
        tags_topic=values["CREATOR_SCORES_TAGS_TOPIC"],
        orders_topic=values["CREATOR_SCORES_ORDERS_TOPIC"],
        changes_topic=values["CREATOR_SCORES_CHANGES_TOPIC"],
        dead_letter_topic=values["CREATOR_SCORES_DEAD_LETTER_TOPIC"],
        cards_topic=values["CREATOR_SCORES_CARDS_TOPIC"],
        topic_partitions=PARTITIONS,
        redis_prefix=redis_prefix,
        kafka_bootstrap_servers=stack_settings.kafka_bootstrap_servers,
        redis_url=stack_settings.redis_url,
    )
    await ensure_topics(settings, worker_topic_specs(settings))
    harness = WorkerEnv(settings=settings, env=env, workdir=tmp_path, redis_dump=redis_dump)
    try:
        yield harness
    finally:
        # Shown by pytest only when the test failed: the end of every worker's log, without
        # the rows of Faust's ASCII tables, which would push the telling lines out.
        for log in sorted(tmp_path.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            tail = [ln for ln in lines if not ln.startswith(("|", "+", "│"))][-60:]
            print(f"----- {log.name} (last {len(tail)} lines)", *tail, sep="\n")
        for proc in harness.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        try:
            # Whatever the test looked at, every output record keeps its published contract.
            await harness.check_outputs()
        finally:
            await delete_topics(settings, base)
            await delete_prefix(settings.redis_url, redis_prefix)


@pytest.fixture
def now_ms() -> Iterator[int]:
    # Whole hours keep event times readable in failures; all events lie in the past.
    yield (int(time.time() * 1000) // HOUR_MS) * HOUR_MS


@dataclass
class PrivateRedis:
    """A Redis server of the test's own (on a free port), which the test may freeze or stop:
    the shared stack's Redis must never be disturbed."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    port = free_port()
    (tmp_path / "redis").mkdir()
    proc = subprocess.Popen(
        [LocalStack.redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path / "redis")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        assert proc.poll() is None, f"private redis exited with {proc.returncode}"
        assert time.monotonic() < deadline, "private redis did not start in 10 s"
        time.sleep(0.05)
    server = PrivateRedis(proc, port)
    try:
        yield server
    finally:
        server.thaw()
        proc.kill()
        proc.wait(10)
