"""Declares the topics the pipeline reads and writes, with the right shape.

Auto topic creation is off on the broker, so topics are created explicitly:
the three source topics with one partition count (co-partitioned by creator
id), the score-change and dead-letter topics beside them. Creating a topic
that exists is not an error, which keeps `stack up` and worker start-up
idempotent.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings


def topic_specs(settings: Settings) -> list[NewTopic]:
    parts, repl = settings.topic_partitions, settings.topic_replication
    specs = [NewTopic(name, parts, repl) for name in settings.source_topics]
    specs.append(
        NewTopic(settings.changes_topic, parts, repl, topic_configs={"retention.ms": "604800000"})
    )
    specs.append(
        NewTopic(
            settings.dead_letter_topic, parts, repl, topic_configs={"retention.ms": "2592000000"}
        )
    )
    return specs


async def ensure_topics(settings: Settings, specs: list[NewTopic] | None = None) -> list[str]:
    """Create the missing topics; return the names that were created."""
    wanted = specs if specs is not None else topic_specs(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if not missing:
            return []
        # A concurrent creator may win the race; the topic is then there all the same.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()
