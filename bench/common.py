"""Plumbing every scenario shares: names, Kafka and Redis housekeeping, processes.

Each benchmark run owns a run id; every topic, consumer group, app id and Redis
prefix it creates contains `bench-<runid>-`, so cleaning up means deleting exactly
what carries that id and nothing another engineer (or test) is using on the same
stack. Consumers run as subprocesses, and `Proc` samples their memory and CPU
from /proc so that every consumer is measured by the same outside observer.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from redis.asyncio import Redis

REPO_ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class BenchError(RuntimeError):
    """A scenario could not produce a figure (a consumer died, a deadline passed...)."""


def new_run_id() -> str:
    return time.strftime("%Y%m%dt%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class Ctx:
    """What one benchmark run knows: where the stack is, its id, its scratch space."""

    run_id: str
    bootstrap: str
    redis_url: str
    workdir: Path
    partitions: int = 8
    commit_interval_s: float = 1.0
    deadline_s: float = 900.0
    keep_going: bool = True
    log: list[str] = field(default_factory=list)

    def name(self, *parts: str) -> str:
        """A unique name for a topic, group, app id or Redis prefix of this run."""
        return "-".join(("bench", self.run_id, *parts))

    def say(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        self.log.append(line)
        print(line, flush=True)


# --------------------------------------------------------------------------- Kafka


async def create_topics(
    ctx: Ctx, names: Iterable[str], partitions: int | None = None, **configs: str
) -> None:
    parts = partitions or ctx.partitions
    admin = AIOKafkaAdminClient(bootstrap_servers=ctx.bootstrap)
    await admin.start()
    try:
        specs = [NewTopic(n, parts, 1, topic_configs=dict(configs)) for n in names]
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(specs)
    finally:
        await admin.close()
    # A freshly created topic may not have a leader for a moment; producing before that
    # only costs retries, but waiting here keeps preload timings clean.
    await wait_for_leaders(ctx, list(names), parts)


async def wait_for_leaders(ctx: Ctx, names: Sequence[str], partitions: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap)
    await consumer.start()
    try:
        for _ in range(100):
            await consumer._client.force_metadata_update()
            if all(
                len(consumer._client.cluster.partitions_for_topic(n) or ()) == partitions
                for n in names
            ):
                return
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
    raise BenchError(f"topics {list(names)} have no leaders after 10 s")


async def topics_of_run(ctx: Ctx) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=ctx.bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if f"bench-{ctx.run_id}" in t)
    finally:
        await admin.close()


async def delete_topics(ctx: Ctx, names: Sequence[str]) -> None:
    if not names:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=ctx.bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


def delete_groups(ctx: Ctx, groups: Sequence[str]) -> str:
    """Delete consumer groups (aiokafka has no call for it; confluent-kafka does)."""
    if not groups:
        return "none"
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        return "confluent-kafka not installed: groups left to expire"
    admin = AdminClient({"bootstrap.servers": ctx.bootstrap})
    futures = admin.delete_consumer_groups(list(groups), request_timeout=10)
    deleted = absent = 0
    failures: list[str] = []
    for group, fut in futures.items():
        try:
            fut.result(timeout=15)
            deleted += 1
        except Exception as exc:
            # Kafka drops an empty group once its topics (and so its offsets) are deleted.
            if "GROUP_ID_NOT_FOUND" in str(exc):
                absent += 1
            else:
                failures.append(f"{group}: {exc}")
    text = f"deleted {deleted}, already gone {absent}"
    return text + (f", failed {failures}" if failures else "")


def source_partitions(topics: Sequence[str], partitions: int) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in range(partitions)]


async def end_offsets(ctx: Ctx, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(list(tps)))
    finally:
        await consumer.stop()


class OffsetWatcher:
    """Asks the broker how far a consumer group has committed on given partitions."""

    def __init__(self, ctx: Ctx, group: str, targets: Mapping[TopicPartition, int]) -> None:
        self.ctx = ctx
        self.group = group
        self.targets = dict(targets)
        self.total = sum(self.targets.values())
        #: partitions still short of their target at the last ask ("topic[p] committed/end")
        self.behind: list[str] = []
        self._admin: AIOKafkaAdminClient | None = None

    async def __aenter__(self) -> OffsetWatcher:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.ctx.bootstrap)
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._admin is not None:
            await self._admin.close()

    async def committed(self) -> int:
        """Sum over the target partitions of the committed offset (0 where none)."""
        assert self._admin is not None
        try:
            offsets = await self._admin.list_consumer_group_offsets(
                self.group, partitions=list(self.targets)
            )
        except Exception:
            # The coordinator may be moving while the group forms: ask again next poll.
            return -1
        done = 0
        behind: list[str] = []
        for tp in self.targets:
            meta = offsets.get(tp)
            at = meta.offset if meta is not None and meta.offset is not None else 0
            done += min(max(at, 0), self.targets[tp])
            if at < self.targets[tp]:
                behind.append(f"{tp.topic}[{tp.partition}] {max(at, 0)}/{self.targets[tp]}")
        self.behind = behind
        return done


# --------------------------------------------------------------------------- Redis


async def delete_redis_prefix(redis_url: str, prefix: str) -> int:
    """Delete every key under `prefix` (SCAN + UNLINK); returns how many went."""
    if not prefix.startswith("bench-"):
        raise BenchError(f"refusing to delete Redis keys outside the bench namespace: {prefix}")
    client = Redis.from_url(redis_url)
    removed = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                removed += await client.unlink(*batch)
                batch = []
        if batch:
            removed += await client.unlink(*batch)
    finally:
        await client.aclose()
    return removed


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_stat(pid: int) -> tuple[int, int, int] | None:
    """(utime+stime ticks, process group, rss pages) of one process, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    # Fields after the ")" start at field 3 (state): pgrp is 5, utime 14, stime 15, rss 24.
    return int(fields[11]) + int(fields[12]), int(fields[2]), int(fields[21])


def group_cpu_and_rss(pgid: int) -> tuple[float, int]:
    """CPU seconds and RSS bytes summed over every live process in a process group."""
    ticks = 0
    rss = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _read_stat(int(entry.name))
        if stat is not None and stat[1] == pgid:
            ticks += stat[0]
            rss += stat[2] * PAGE_SIZE
    return ticks / CLK_TCK, rss


class Proc:
    """One consumer process in its own session, with its log, CPU and memory sampled."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log
        full_env = dict(os.environ)
        full_env.update(env)
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), full_env.get("PYTHONPATH", "")) if p
        )
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        cwd.mkdir(parents=True, exist_ok=True)
        self._log = log.open("ab")
        self.started_at = time.time()
        self.popen = subprocess.Popen(
            self.argv,
            env=full_env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.peak_rss = 0
        self.last_rss = 0
        self.cpu_s = 0.0

    def sample(self) -> None:
        """Refresh RSS (peak and last) and cumulative CPU of the process group."""
        cpu, rss = group_cpu_and_rss(self.pid)
        if rss:
            self.last_rss = rss
            self.peak_rss = max(self.peak_rss, rss)
            self.cpu_s = max(self.cpu_s, cpu)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(
                f"{self.name} exited with status {self.popen.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def kill9(self) -> float:
        """SIGKILL the whole process group; returns the wall time of the kill."""
        at = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait()
        self._log.close()
        return at

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait()
        # Leftover children (none expected) share the session: take them down too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self._log.close()


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    versions: dict[str, str] = {}
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("faust-streaming", "aiokafka", "redis", "orjson", "quixstreams", "matplotlib"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "cpu_model": model,
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
    }


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation), the convention latency tools use."""
    if not values:
        raise BenchError("percentile of an empty sample")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100.0 * len(ordered))))
    return ordered[rank - 1]
