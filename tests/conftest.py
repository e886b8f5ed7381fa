"""Shared fixtures: settings for the real local stack, unique names per test.

Integration and end-to-end tests talk to the real Kafka and Redis that
`creator-scores stack up` started (`make test` starts them). A missing service
fails the test with a clear message; it is never skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest
from redis.asyncio import Redis

from streams.devtools.stack import port_open
from streams.settings import Settings, load_settings


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.split(",")[0].rpartition(":")
    return (host or "localhost", int(port or default_port))


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    """Settings pointing at the running stack; fails if either service is down."""
    settings = load_settings()
    host, port = _host_port(settings.kafka_bootstrap_servers, 9092)
    if not port_open(host, port):
        pytest.fail(
            f"Kafka is not reachable at {settings.kafka_bootstrap_servers}: "
            "run `creator-scores stack up` (make test does it)"
        )
    redis_host, redis_port = _host_port(
        settings.redis_url.split("//", 1)[-1].split("/", 1)[0], 6379
    )
    if not port_open(redis_host, redis_port):
        pytest.fail(
            f"Redis is not reachable at {settings.redis_url}: run `creator-scores stack up`"
        )
    return settings


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic names, group ids and Redis prefixes."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def redis_prefix(unique: str) -> Iterator[str]:
    yield f"test-{unique}:"


#: `await redis_dump(client, prefix)`: every key under a prefix with its content.
RedisDump = Callable[[Redis, str], Awaitable[dict[str, object]]]


async def _dump_prefix(client: Redis, prefix: str) -> dict[str, object]:
    """Every key under the prefix with its full content, in comparable form."""
    out: dict[str, object] = {}
    async for raw in client.scan_iter(match=f"{prefix}*", count=1000):
        key = raw.decode()
        kind = (await client.type(raw)).decode()
        if kind == "hash":
            out[key] = await client.hgetall(raw)
        elif kind == "zset":
            out[key] = await client.zrange(raw, 0, -1, withscores=True)
        elif kind == "set":
            out[key] = sorted(await client.smembers(raw))
        else:
            out[key] = (kind, await client.dump(raw))
    return out


@pytest.fixture
def redis_dump() -> RedisDump:
    """Snapshots of Redis under a prefix, for tests that compare whole Redis states."""
    return _dump_prefix
