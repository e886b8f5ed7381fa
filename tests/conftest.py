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
from streams.settings import Settings, load_settings, redacted
from tests.support.redis import dump_prefix


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
            f"Redis is not reachable at {redacted(settings.redis_url)}: "
            "run `creator-scores stack up`"
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


@pytest.fixture
def redis_dump() -> RedisDump:
    """Snapshots of Redis under a prefix, for tests that compare whole Redis states."""
    return dump_prefix
