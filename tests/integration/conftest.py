"""Shared helpers of the integration tests: topics of a given shape, reading them back, and
clients of the stack's Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis import Redis as BlockingRedis
from redis.asyncio import Redis

from streams.readers import connect
from streams.settings import Settings
from tests.support.redis import delete_prefix

ReadTopic = Callable[[str, int], Awaitable[list[Any]]]
#: `await make_topics((name, partitions, topic configs), ...)` -> the topics' full names.
MakeTopics = Callable[..., Awaitable[list[str]]]


@pytest.fixture
async def redis(stack_settings: Settings, redis_prefix: str) -> AsyncIterator[Redis]:
    """A client of the stack's Redis; every key under the test's prefix is deleted after."""
    client = Redis.from_url(stack_settings.redis_url)
    try:
        yield client
    finally:
        await client.aclose()
        await delete_prefix(stack_settings.redis_url, redis_prefix)


@pytest.fixture
def client(stack_settings: Settings, redis_prefix: str) -> Iterator[BlockingRedis]:
    """A plain (blocking) client of the stack's Redis, as the read commands use
    (`streams.readers.connect`); every key under the test's prefix is deleted after.
    Modules that need another kind of `client` define their own."""
    c = connect(stack_settings.redis_url)
    try:
        yield c
    finally:
        stale = list(c.scan_iter(match=f"{redis_prefix}*", count=1000))
        if stale:
            c.delete(*stale)
        c.close()


@pytest.fixture
def direct(seeded: Any) -> Iterator[BlockingRedis]:
    """A plain client that decodes replies, to read what the API should answer (for the
    modules that seed a population: `seeded.settings`)."""
    c = BlockingRedis.from_url(seeded.settings.redis_url, decode_responses=True)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def read_topic(stack_settings: Settings) -> ReadTopic:
    """Read a topic from the beginning until `count` records came back (30 s at most)."""

    async def read(topic: str, count: int) -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=stack_settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        out: list[Any] = []
        try:
            async with asyncio.timeout(30):
                while len(out) < count:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        out.extend(records)
        finally:
            await consumer.stop()
        return out

    return read


@pytest.fixture
async def make_topics(stack_settings: Settings, unique: str) -> AsyncIterator[MakeTopics]:
    """Topics of the shape a test needs (names made unique), deleted afterwards."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await admin.start()
    made: list[str] = []

    async def make(*specs: tuple[str, int, dict[str, str]]) -> list[str]:
        names = [f"it-{unique}-{name}" for name, _, _ in specs]
        await admin.create_topics(
            [
                NewTopic(full, parts, 1, topic_configs=configs)
                for full, (_, parts, configs) in zip(names, specs, strict=True)
            ]
        )
        made.extend(names)
        return names

    try:
        yield make
    finally:
        if made:
            await admin.delete_topics(made)
        await admin.close()
