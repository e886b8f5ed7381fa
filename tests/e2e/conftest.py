"""End-to-end harness: a real `creator-scores worker` process on the real stack.

Each test gets its own topics, app id (so consumer group and changelog), Redis
prefix and working directory, all passed to the worker through the environment
exactly as an operator would. Helpers produce events, read output topics, wait
for the worker to catch up (from the broker's committed offsets, not from sleeps)
and dump every Redis key under the prefix for exact comparisons. Everything the
test created (topics, keys) is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from redis.asyncio import Redis

from streams.app import worker_topic_specs
from streams.devtools.stack import LocalStack, free_port, port_open
from streams.keys import Keys
from streams.settings import Settings
from streams.topics import ensure_topics

CLI = Path(sys.executable).with_name("creator-scores")
PARTITIONS = 4
HOUR_MS = 3_600_000

#: A record to produce: (topic, key, value).
Produced = tuple[str, bytes | None, bytes]


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
        with (self.workdir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [str(CLI), "worker", "-l", "info"],
                env={**self.env, **overrides},
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.processes.append(proc)
        self.named[name] = proc
        return proc

    def log_text(self, name: str = "worker") -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit status (SIGKILL if it would not stop)."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        return proc.returncode

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

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
        return await read_topic(self.settings, topic, at_least=at_least, timeout=timeout)

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
        await _delete_topics(settings, base)
        await _delete_prefix(settings, redis_prefix)


async def _delete_topics(settings: Settings, marker: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if marker in t]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


async def _delete_prefix(settings: Settings, prefix: str) -> None:
    client = Redis.from_url(settings.redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


# ----------------------------------------------------------------------------- Kafka helpers


async def produce(settings: Settings, records: Sequence[Produced]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(t, v, key=k) for t, k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(
    settings: Settings, topic: str, *, at_least: int = 0, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the topic, waiting up to `timeout` for at least `at_least` of them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while True:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                out.extend(records)
            ends = await consumer.end_offsets(parts)
            caught_up = all([await consumer.position(tp) >= ends[tp] for tp in parts])
            if (caught_up and len(out) >= at_least) or time.monotonic() > deadline:
                return out
    finally:
        await consumer.stop()


async def wait_caught_up(
    settings: Settings, topics: Sequence[str], proc: subprocess.Popen[bytes], timeout: float = 60.0
) -> None:
    """Wait until the worker's group has committed every record of `topics`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    await admin.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"worker exited with {proc.returncode}"
            try:
                ends = await consumer.end_offsets(parts)
                committed = await admin.list_consumer_group_offsets(settings.app_id)
            except KafkaError as exc:
                # A broker moving a coordinator or leader answers with a retriable error.
                if not exc.retriable or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)
                continue
            behind = {
                tp: ends[tp] - (committed[tp].offset if tp in committed else 0)
                for tp in parts
                if ends[tp] > (committed[tp].offset if tp in committed else 0)
            }
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"worker still behind after {timeout}s: {behind}")
            await asyncio.sleep(0.25)
    finally:
        await consumer.stop()
        await admin.close()


# ----------------------------------------------------------------------------- Redis helpers


async def wait_for(
    check: object, *, timeout: float, proc: subprocess.Popen[bytes], what: str
) -> None:
    """Poll an async predicate until true; fail early if the worker died."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not await check():
        assert proc.poll() is None, f"worker exited with {proc.returncode} while waiting for {what}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True)
class EventSet:
    """Deterministic events for a few creators, each as it goes on the wire."""

    records: list[Produced]
    payloads: list[tuple[str, Mapping[str, object]]]  # (kind, payload) of the valid events
    creators: list[str]


def make_events(
    settings: Settings, *, creators: int, posts_per_creator: int, seed: int, now_ms: int
) -> EventSet:
    """Posts, tags and orders over the last two weeks; keys mixed on purpose.

    Most records are keyed by creator id; some carry no key and some the post/order id,
    which the worker must re-key to reach the creator's partition.
    """
    rng = random.Random(seed)
    regions = ["SG", "MY", "ID", "VN", "PH"]
    themes = ["beauty", "fashion", "food", "tech", "home"]
    types = ["video", "photo", "live"]
    records: list[Produced] = []
    payloads: list[tuple[str, Mapping[str, object]]] = []
    ids = [f"cr-{seed}-{i:04d}" for i in range(creators)]

    def key_for(creator: str, other: str) -> bytes | None:
        roll = rng.random()
        if roll < 0.15:
            return None
        if roll < 0.3:
            return other.encode()
        return creator.encode()

    topics = {"post": settings.posts_topic, "tag": settings.tags_topic}
    topics["order"] = settings.orders_topic
    for creator in ids:
        region = rng.choice(regions)
        for j in range(posts_per_creator):
            post_id = f"{creator}-p{j}"
            posted = now_ms - rng.randint(1, 14 * 24) * HOUR_MS
            post: dict[str, object] = {
                "post_id": post_id,
                "creator_id": creator,
                "region": region,
                "content_type": rng.choice(types),
                "themes": rng.sample(themes, rng.randint(1, 2)),
                "posted_at": posted,
                "views": rng.randint(100, 50_000),
                "likes": rng.randint(0, 3_000),
                "comments": rng.randint(0, 300),
                "shares": rng.randint(0, 200),
                "brand_id": rng.choice([None, "brand-a", "brand-b"]),
            }
            payloads.append(("post", post))
            if rng.random() < 0.6:
                tag = {
                    "tag_id": f"{post_id}-t",
                    "post_id": post_id,
                    "creator_id": creator,
                    "product_id": f"sku-{rng.randint(1, 50)}",
                    "brand_id": rng.choice(["brand-a", "brand-b", "brand-c"]),
                    "theme": rng.choice(themes),
                    "tagged_at": posted + 60_000,
                }
                payloads.append(("tag", tag))
                for k in range(rng.randint(0, 3)):
                    order = {
                        "order_id": f"{post_id}-o{k}",
                        "creator_id": creator,
                        "post_id": post_id,
                        "product_id": tag["product_id"],
                        "brand_id": tag["brand_id"],
                        "theme": tag["theme"],
                        "quantity": rng.randint(1, 3),
                        "amount": f"{rng.randint(500, 20_000) / 100:.2f}",
                        "currency": "USD",
                        "status": rng.choice(["placed", "placed", "placed", "refunded"]),
                        "ordered_at": min(posted + rng.randint(1, 48) * HOUR_MS, now_ms - 60_000),
                    }
                    payloads.append(("order", order))
    for kind, payload in payloads:
        creator = str(payload["creator_id"])
        other = str(payload.get(f"{kind}_id") or payload["post_id"])
        records.append((topics[kind], key_for(creator, other), orjson.dumps(payload)))
    return EventSet(records=records, payloads=payloads, creators=ids)


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
