"""Baseline (c): a bare aiokafka `getmany` loop with orjson, the broker-and-parse ceiling.

No framework, no state, no output: fetch batches from the three source topics,
decode every value with orjson, commit the group's offsets every
`BENCH_COMMIT_INTERVAL_S` seconds (and when caught up). Whatever the pipeline
does on top of this is the price of its features; nothing in Python that reads
and parses these records can go faster on this machine.

Run: `python -m bench.raw_aiokafka` with the worker's environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import orjson
from aiokafka import AIOKafkaConsumer

from bench.marker import FirstRecord
from streams.settings import load_settings


async def consume() -> None:
    settings = load_settings()
    interval = float(os.environ.get("BENCH_COMMIT_INTERVAL_S", "1.0"))
    consumer = AIOKafkaConsumer(
        *settings.source_topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.app_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    first = FirstRecord()
    await consumer.start()
    loads = orjson.loads
    decoded = bad = 0
    last_commit = time.monotonic()
    dirty = False
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                if records:
                    first.seen()
                    dirty = True
                for record in records:
                    try:
                        loads(record.value)
                        decoded += 1
                    except orjson.JSONDecodeError:
                        bad += 1
            now = time.monotonic()
            if dirty and (not batch or now - last_commit >= interval):
                await consumer.commit()
                last_commit = now
                dirty = False
    finally:
        with contextlib.suppress(Exception):
            if dirty:
                await consumer.commit()
        await consumer.stop()
        print(f"raw_aiokafka: decoded {decoded}, malformed {bad}", flush=True)


def main() -> None:
    asyncio.run(consume())


if __name__ == "__main__":
    main()
