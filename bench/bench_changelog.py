"""Changelog recovery alone: how long a worker takes to be ready over a preloaded changelog.

Scenario 4 (`make bench`) times a whole kill -9 and takeover; this script isolates the
part that grows with state: a fresh worker restoring its table from the changelog.
For each configuration it creates a fresh app (its own topics and group), writes
`--records` changelog records of `--value-bytes` random bytes under `--keys` distinct
creator keys (the partitioner places them as the worker's table does), starts
`creator-scores worker` and times how long `/readyz` takes to answer 200. Three
configurations run one after another in this script, so the ratios between them hold
on a noisy machine:

- `empty`: the same worker over an empty changelog (start-up, group join, no replay);
- `bulk`: the default (`CREATOR_SCORES_CHANGELOG_BULK=true`, `ChangelogBulk`);
- `faust`: Faust's own per-event recovery loop (`CREATOR_SCORES_CHANGELOG_BULK=false`).

    .venv/bin/python -m bench.bench_changelog --records 100000 --value-bytes 2000

Needs the stack (`creator-scores stack up`); the topics it creates are deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.common import free_port
from streams.app import TABLE_NAME
from streams.settings import Settings

CONFIGS: dict[str, tuple[bool, str]] = {
    # name: (preload the changelog, CREATOR_SCORES_CHANGELOG_BULK)
    "empty": (False, "true"),
    "bulk": (True, "true"),
    "faust": (True, "false"),
}


async def _prepare(settings: Settings, tag: str, records: int, size: int, keys: int) -> None:
    app_id = f"bench-changelog-{tag}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        partitions = settings.topic_partitions
        topics = [NewTopic(f"{name}-{tag}", partitions, 1) for name in _SOURCES]
        topics.append(
            NewTopic(
                f"{app_id}-{TABLE_NAME}-changelog",
                partitions,
                1,
                topic_configs={"cleanup.policy": "compact"},
            )
        )
        await admin.create_topics(topics)
    finally:
        await admin.close()
    if not records:
        return
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        linger_ms=20,
        max_batch_size=1 << 20,
        max_request_size=8 << 20,
    )
    await producer.start()
    try:
        value = os.urandom(size)
        topic = f"{app_id}-{TABLE_NAME}-changelog"
        for i in range(records):
            await producer.send(topic, value, key=f"c-{i % keys:07d}".encode())
            if i % 5000 == 4999:
                await producer.flush()
        await producer.flush()
    finally:
        await producer.stop()


_SOURCES = ("posts", "tags", "orders", "changes", "dead")


async def _cleanup(settings: Settings, tags: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        names = [f"{n}-{t}" for t in tags for n in _SOURCES]
        names += [f"bench-changelog-{t}-{TABLE_NAME}-changelog" for t in tags]
        names += [f"cards-{t}" for t in tags]  # created by the worker, compacted
        existing = set(await admin.list_topics())
        await admin.delete_topics([n for n in names if n in existing])
    finally:
        await admin.close()


def _ready_after(env: dict[str, str], port: int, log_path: str, deadline_s: float) -> float:
    """Start a worker; seconds until its /readyz answers 200. The worker is stopped after."""
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}; see {log_path}")
            if time.perf_counter() - started > deadline_s:
                raise RuntimeError(f"worker not ready after {deadline_s:.0f} s; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run(records: int, size: int, keys: int, deadline_s: float) -> list[dict[str, Any]]:
    settings = Settings()
    rows = []
    tags: list[str] = []
    logs = tempfile.mkdtemp(prefix="bench-changelog-")
    try:
        for name, (preload, bulk) in CONFIGS.items():
            tag = uuid.uuid4().hex[:8]
            tags.append(tag)
            n = records if preload else 0
            asyncio.run(_prepare(settings, tag, n, size, keys))
            port = free_port()
            env = {
                **os.environ,
                "CREATOR_SCORES_APP_ID": f"bench-changelog-{tag}",
                "CREATOR_SCORES_POSTS_TOPIC": f"posts-{tag}",
                "CREATOR_SCORES_TAGS_TOPIC": f"tags-{tag}",
                "CREATOR_SCORES_ORDERS_TOPIC": f"orders-{tag}",
                "CREATOR_SCORES_CHANGES_TOPIC": f"changes-{tag}",
                "CREATOR_SCORES_DEAD_LETTER_TOPIC": f"dead-{tag}",
                "CREATOR_SCORES_CARDS_TOPIC": f"cards-{tag}",
                "CREATOR_SCORES_METRICS_PORT": str(port),
                "CREATOR_SCORES_WEB_PORT": str(free_port()),
                "CREATOR_SCORES_REDIS_PREFIX": f"bench-changelog-{tag}:",
                "CREATOR_SCORES_CHANGELOG_BULK": bulk,
            }
            seconds = _ready_after(env, port, os.path.join(logs, f"{name}.log"), deadline_s)
            rows.append({"config": name, "records": n, "ready_s": round(seconds, 2)})
            print(f"  {name:>5}: {n:,} records, ready after {seconds:.1f} s", flush=True)
    finally:
        asyncio.run(_cleanup(settings, tags))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--value-bytes", type=int, default=2000)
    ap.add_argument("--keys", type=int, help="distinct creator keys (default: --records)")
    ap.add_argument("--deadline", type=float, default=600.0, help="longest wait per worker, s")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    keys = args.keys or args.records
    print(f"{args.records:,} changelog records of {args.value_bytes:,} B over {keys:,} keys")
    rows = run(args.records, args.value_bytes, keys, args.deadline)
    by = {r["config"]: r["ready_s"] for r in rows}
    replay_bulk = by["bulk"] - by["empty"]
    replay_faust = by["faust"] - by["empty"]
    print(
        f"replay beyond start-up: bulk {replay_bulk:.1f} s, Faust's loop {replay_faust:.1f} s; "
        f"bulk is {replay_faust / max(replay_bulk, 0.05):.1f}x faster "
        f"({args.records / max(replay_bulk, 0.05):,.0f} vs "
        f"{args.records / max(replay_faust, 0.05):,.0f} records/s)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
