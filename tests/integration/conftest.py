"""Shared helpers of the integration tests: reading back what a test wrote to a topic."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from streams.settings import Settings

ReadTopic = Callable[[str, int], Awaitable[list[Any]]]


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
