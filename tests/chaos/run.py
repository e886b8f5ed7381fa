"""One deployment of the worker on the suite's events, and what it left behind.

A `Run` has its own topics, app id (so consumer group and changelog) and Redis
prefix on the suite's stack; its workers are real `creator-scores worker`
processes running this checkout's code. A `Feed` produces the events at a steady
pace (so faults land under load), optionally part of them the way a librdkafka
client would partition them. `Snapshot` is everything compared afterwards:
Redis under the prefix, the score-change records and the dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from redis.asyncio import Redis

from streams.app import rekeyed_topic_name, worker_topic_specs
from streams.keys import Keys
from streams.repair import marked_done
from streams.settings import Settings
from streams.topics import ensure_topics
from tests.chaos.stack import ExternalStack, PrivateStack
from tests.support.kafka import GroupWatch, Produced, delete_topics, read_topic
from tests.support.redis import delete_prefix, dump_prefix
from tests.support.workers import kill9, rss_bytes, start_worker, stop_worker, worker_env

REPO_ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 8
#: Canonical topic names the events are generated with; each run maps them to its own.
CANONICAL = Settings(topic_partitions=PARTITIONS)

Via = Literal["murmur2", "crc32"]


@dataclass(frozen=True)
class Send:
    """A record to produce and how: `murmur2` (aiokafka, Java's partitioner) or `crc32`."""

    topic: str  # canonical name
    key: bytes | None
    value: bytes
    via: Via = "murmur2"
    label: str | None = None  # hostile records are labelled, to find their dead letters


class Run:
    """Topics, group and prefix of one run, and its worker processes."""

    def __init__(self, stack: PrivateStack | ExternalStack, base: str, workdir: Path) -> None:
        s = stack.settings
        self.stack = stack
        self.base = base
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.settings = Settings(
            app_id=f"{base}-app",
            posts_topic=f"{base}-posts",
            tags_topic=f"{base}-tags",
            orders_topic=f"{base}-orders",
            changes_topic=f"{base}-changes",
            dead_letter_topic=f"{base}-dead",
            cards_topic=f"{base}-cards",
            topic_partitions=PARTITIONS,
            redis_prefix=f"{base}:",
            kafka_bootstrap_servers=s.kafka_bootstrap_servers,
            redis_url=s.redis_url,
        )
        self.topic_map = {
            CANONICAL.posts_topic: self.settings.posts_topic,
            CANONICAL.tags_topic: self.settings.tags_topic,
            CANONICAL.orders_topic: self.settings.orders_topic,
        }
        self.env = worker_env(
            REPO_ROOT,
            {
                "CREATOR_SCORES_APP_ID": self.settings.app_id,
                "CREATOR_SCORES_POSTS_TOPIC": self.settings.posts_topic,
                "CREATOR_SCORES_TAGS_TOPIC": self.settings.tags_topic,
                "CREATOR_SCORES_ORDERS_TOPIC": self.settings.orders_topic,
                "CREATOR_SCORES_CHANGES_TOPIC": self.settings.changes_topic,
                "CREATOR_SCORES_DEAD_LETTER_TOPIC": self.settings.dead_letter_topic,
                "CREATOR_SCORES_CARDS_TOPIC": self.settings.cards_topic,
                "CREATOR_SCORES_TOPIC_PARTITIONS": str(PARTITIONS),
                "CREATOR_SCORES_REDIS_PREFIX": self.settings.redis_prefix,
                "CREATOR_SCORES_METRICS_PORT": "0",
                "CREATOR_SCORES_BATCH_WITHIN_S": "0.1",
                "CREATOR_SCORES_STACK_DIR": str(workdir / "stack"),
                "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
                "REDIS_URL": s.redis_url,
            },
        )
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.retired: list[subprocess.Popen[bytes]] = []
        self.exits: dict[str, list[int]] = defaultdict(list)
        self.static = False  # workers join with a group instance id
        self.notes: list[str] = []

    @property
    def sources(self) -> list[str]:
        return [*self.settings.source_topics, rekeyed_topic_name(self.settings)]

    async def create_topics(self) -> None:
        await ensure_topics(self.settings, worker_topic_specs(self.settings))

    # -- workers -------------------------------------------------------------
    def start(self, name: str, *, static: bool = False) -> subprocess.Popen[bytes]:
        env = dict(self.env)
        if static:
            env["CREATOR_SCORES_GROUP_INSTANCE_ID"] = f"{self.base}-{name}"
        proc = start_worker(env, self.workdir, name)
        self.workers[name] = proc
        return proc

    def kill9(self, name: str) -> None:
        proc = self.workers.pop(name)
        kill9(proc)
        self.retired.append(proc)
        self.exits[name].append(-9)

    def sigterm(self, name: str, timeout: float = 30.0) -> int:
        proc = self.workers.pop(name)
        code = stop_worker(proc, timeout)
        self.retired.append(proc)
        self.exits[name].append(code)
        return code

    def crashed(self) -> dict[str, int]:
        """Workers that exited by themselves (none of our doing)."""
        return {n: p.returncode for n, p in self.workers.items() if p.poll() is not None}

    def rss(self) -> dict[str, int]:
        return {n: r for n, p in self.workers.items() if (r := rss_bytes(p.pid)) is not None}

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        kept = [ln for ln in text.splitlines() if not ln.startswith(("|", "+", "│"))]
        return "\n".join(kept[-lines:])

    def error_lines(self) -> int:
        count = 0
        for log in self.workdir.glob("*.log"):
            with log.open(errors="replace") as lines:
                count += sum(1 for ln in lines if "ERROR" in ln)
        return count

    def stop_all(self) -> None:
        for name in list(self.workers):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.sigterm(name)

    # -- progress ------------------------------------------------------------
    async def ends(self) -> dict[TopicPartition, int]:
        async with GroupWatch(self.settings, self.sources) as watch:
            return await watch.ends()

    async def lag(self) -> int | None:
        """Records of the sources not yet committed by the group; None if the broker is away."""
        try:
            async with GroupWatch(self.settings, self.sources) as watch:
                return sum((await watch.behind()).values())
        except (KafkaError, OSError):
            return None

    async def behind(self) -> dict[str, int] | str:
        try:
            async with GroupWatch(self.settings, self.sources) as watch:
                return await watch.behind()
        except (KafkaError, OSError) as exc:
            return repr(exc)

    async def wait_reached(
        self, targets: Mapping[TopicPartition, int] | None, *, timeout: float, since: float
    ) -> float | None:
        """Seconds from `since` until the group committed up to `targets` (or the log ends)."""
        deadline = time.monotonic() + timeout
        watch: GroupWatch | None = None
        try:
            while time.monotonic() < deadline:
                try:
                    if watch is None:
                        watch = await GroupWatch(self.settings, self.sources).__aenter__()
                    behind = await watch.behind(dict(targets) if targets is not None else None)
                    if not behind:
                        return time.monotonic() - since
                except (KafkaError, OSError):
                    # The broker may be the fault: ask again once it is back.
                    if watch is not None:
                        with contextlib.suppress(Exception):
                            await watch.__aexit__()
                        watch = None
                await asyncio.sleep(0.25)
            return None
        finally:
            if watch is not None:
                with contextlib.suppress(Exception):
                    await watch.__aexit__()

    async def wait_redis_complete(self, timeout: float) -> float | None:
        """Wait until every partition's marker says Redis holds all its creators
        (`streams.repair`): after a Redis that lost its data, the workers republish from
        their state, and only then is Redis final. Seconds waited, or None at the timeout."""
        keys = Keys(self.settings.redis_prefix)
        partitions = range(self.settings.topic_partitions)
        client = Redis.from_url(self.settings.redis_url)
        started = time.monotonic()
        try:
            while time.monotonic() - started < timeout:
                with contextlib.suppress(Exception):
                    if len(await marked_done(client, keys, partitions)) == len(partitions):
                        return time.monotonic() - started
                await asyncio.sleep(0.5)
            return None
        finally:
            await client.aclose()

    # -- results -------------------------------------------------------------
    async def snapshot(self) -> Snapshot:
        client = Redis.from_url(self.settings.redis_url)
        try:
            raw = await dump_prefix(client, self.settings.redis_prefix)
        finally:
            await client.aclose()
        changes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        records = await read_topic(self.settings, self.settings.changes_topic, timeout=60)
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            change = orjson.loads(record.value)
            changes[change["creator_id"]].append(change)
        dead = [
            orjson.loads(r.value)
            for r in await read_topic(self.settings, self.settings.dead_letter_topic, timeout=60)
        ]
        return Snapshot(
            redis=normalise(raw, self.settings.redis_prefix), changes=dict(changes), dead=dead
        )

    async def cleanup(self) -> None:
        for proc in [*self.workers.values(), *self.retired]:
            if proc.poll() is None:
                kill9(proc)
        with contextlib.suppress(Exception):
            await delete_topics(self.settings, self.base)
        with contextlib.suppress(Exception):
            await delete_prefix(self.settings.redis_url, self.settings.redis_prefix)


@dataclass
class Snapshot:
    """What a run left: Redis (normalised), score changes by creator, dead letters."""

    redis: dict[str, object]
    changes: dict[str, list[dict[str, Any]]]
    dead: list[dict[str, Any]]


def normalise(dump: Mapping[str, object], prefix: str) -> dict[str, object]:
    """Keys and board references without the run's prefix; hashes without `updated_at`.

    `updated_at` is the wall-clock time of the write: the one field two runs on the same
    events may legitimately differ in.
    """
    out: dict[str, object] = {}
    for key, value in dump.items():
        bare = key.removeprefix(prefix)
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != b"updated_at"}
        elif bare.startswith("creator-boards:") and isinstance(value, list):
            value = sorted(m.removeprefix(prefix.encode()) for m in value)
        out[bare] = value
    return out


@dataclass
class Feed:
    """Produces `sends` into a run's topics over about `seconds`, in steady slices.

    `crc32` sends go the way a librdkafka client (kcat, confluent-kafka) sends them:
    through confluent-kafka itself when it is installed, else emulated (CRC-32 of the
    key modulo the partition count, unkeyed ones to a seeded random partition) and
    produced to that explicit partition with aiokafka. `librdkafka` says which.
    """

    run: Run
    sends: Sequence[Send]
    seconds: float
    sent: int = 0
    placed: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    librdkafka: str = "not used"
    _resume: asyncio.Event = field(default_factory=asyncio.Event)
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self._resume.set()

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    async def reached(self, fraction: float) -> float:
        """Wait until `fraction` of the records went out; return the monotonic time."""
        goal = int(len(self.sends) * fraction)
        async with self._progress:
            await self._progress.wait_for(lambda: self.sent >= goal)
        return time.monotonic()

    async def run_feed(self) -> None:
        settings = self.run.settings
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            linger_ms=5,
            max_request_size=2 * 1024 * 1024,
            request_timeout_ms=60_000,
        )
        rdk = _librdkafka_producer(settings) if any(s.via == "crc32" for s in self.sends) else None
        self.librdkafka = (
            "not used"
            if not any(s.via == "crc32" for s in self.sends)
            else ("confluent-kafka " + _ck_version() if rdk else "emulated (zlib.crc32)")
        )
        rng = random.Random(13)
        await producer.start()
        try:
            slices = max(1, int(self.seconds * 10))
            size = max(1, -(-len(self.sends) // slices))
            started = time.monotonic()
            for n, first in enumerate(range(0, len(self.sends), size)):
                await self._resume.wait()
                chunk = self.sends[first : first + size]
                futures = []
                for s in chunk:
                    topic = self.run.topic_map[s.topic]
                    if s.via == "crc32" and rdk is not None:
                        rdk.produce(topic, value=s.value, key=s.key)
                        rdk.poll(0)
                        continue
                    partition = None
                    if s.via == "crc32":
                        partition = (
                            zlib.crc32(s.key) % PARTITIONS
                            if s.key is not None
                            else rng.randrange(PARTITIONS)
                        )
                    fut = await producer.send(topic, s.value, key=s.key, partition=partition)
                    futures.append((s, fut))
                for s, fut in futures:
                    try:
                        meta = await fut
                    except KafkaError as exc:
                        if s.label is None:
                            raise
                        self.placed[s.label] = ("rejected by the broker: " + repr(exc), -1, -1)
                        continue
                    if s.label is not None:
                        self.placed[s.label] = (meta.topic, meta.partition, meta.offset)
                if rdk is not None:
                    await asyncio.to_thread(rdk.flush, 30)
                async with self._progress:
                    self.sent = first + len(chunk)
                    self._progress.notify_all()
                ahead = started + (n + 1) * self.seconds / slices - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        finally:
            await producer.stop()
            if rdk is not None:
                await asyncio.to_thread(rdk.flush, 30)


def _ck_version() -> str:
    import confluent_kafka

    version = confluent_kafka.version()
    version = version[0] if isinstance(version, tuple) else version
    return f"{version} (librdkafka {confluent_kafka.libversion()[0]})"


def _librdkafka_producer(settings: Settings) -> Any:
    """A confluent-kafka producer with librdkafka's default partitioner, or None."""
    try:
        import confluent_kafka
    except ImportError:
        return None
    # No `partitioner` setting: librdkafka's default, consistent_random (CRC-32 of the key).
    return confluent_kafka.Producer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "linger.ms": 5}
    )


def as_sends(records: Sequence[Produced]) -> list[Send]:
    return [Send(topic, key, value) for topic, key, value in records]
