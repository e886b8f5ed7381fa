"""Declares the topics the pipeline reads and writes, with the right shape.

Auto topic creation is off on the broker, so topics are created explicitly:
the three source topics with one partition count (co-partitioned by creator
id), the score-change and dead-letter topics beside them, and the compacted
`creator-scores` topic of every creator's current card (the same partition
count, so a creator's card sits on the partition number of its events). Creating a topic
that exists is not an error, which keeps `stack up` and worker start-up
idempotent; but a topic that exists with another shape than the worker needs
(a source topic with its own partition count, a changelog that is not
compacted) would quietly split or lose creators' state, so `check_topics`
refuses it with what to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
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
    specs.append(NewTopic(settings.cards_topic, parts, repl, topic_configs=CARDS_TOPIC_CONFIG))
    return specs


#: The cards topic keeps the last record of every key for ever (a tombstone, once
#: compacted, after `delete.retention.ms`): a reader from offset 0 gets the current card of
#: every creator. Compacted somewhat eagerly, so that a bootstrap reads little history.
CARDS_TOPIC_CONFIG: Final[dict[str, str]] = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.1",
    "segment.ms": str(60 * 60 * 1000),
    "delete.retention.ms": str(24 * 60 * 60 * 1000),
}


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


#: How a problem ends when the broker did not describe the topic (yet).
UNDESCRIBED: Final = ": missing, or not described by the broker"


class TopicLayoutError(RuntimeError):
    """Existing topics have a shape the worker cannot run on safely."""


async def check_topics(
    settings: Settings,
    co_partitioned: Sequence[str],
    compacted: Sequence[str],
    *,
    settle_s: float = 15.0,
) -> None:
    """Raise TopicLayoutError unless every `co_partitioned` topic has the configured
    partition count and every `compacted` topic is compacted.

    A creator's events, its repartitioned events and its state changelog must share a
    partition number, so every one of those topics needs `topic_partitions` partitions; a
    changelog with `cleanup.policy=delete` loses the state of creators quiet for longer
    than its retention, which recovery then silently starts afresh; a cards topic with it
    loses the cards of those creators, which a service bootstrapping from it then lacks.

    A topic created moments ago may not be described by every broker yet: topics the
    broker does not describe are asked about again for up to `settle_s` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_s
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        while True:
            described = await admin.describe_topics(list(co_partitioned))
            configs = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in compacted]
            )
            problems = partition_problems(described, co_partitioned, settings.topic_partitions)
            problems += compaction_problems(configs, compacted)
            unsettled = any(p.endswith(UNDESCRIBED) for p in problems)
            if not unsettled or loop.time() >= deadline:
                break
            await asyncio.sleep(0.25)
    finally:
        await admin.close()
    if problems:
        raise TopicLayoutError(
            "topics not laid out for this worker:\n  - " + "\n  - ".join(problems)
        )


def partition_problems(
    described: list[dict[str, Any]], names: Sequence[str], partitions: int
) -> list[str]:
    """What is wrong with the partition counts of `names` (admin `describe_topics` replies)."""
    counts = {d["topic"]: len(d.get("partitions") or ()) for d in described if not d["error_code"]}
    problems = []
    for name in names:
        count = counts.get(name)
        if count is None:
            problems.append(f"{name}{UNDESCRIBED}")
        elif count != partitions:
            problems.append(
                f"{name}: {count} partitions, but CREATOR_SCORES_TOPIC_PARTITIONS is "
                f"{partitions}: the source topics, the repartition topic, the changelog and "
                "the cards topic must all have it (co-partitioned by creator id); set the "
                "setting to the source topics' count, or recreate the topic"
            )
    return problems


def compaction_problems(replies: list[Any], names: Sequence[str]) -> list[str]:
    """Which of `names` are not compacted (admin `describe_configs` replies)."""
    policies: dict[str, str] = {}
    for reply in replies:
        for error_code, _, _, name, entries in (r[:5] for r in reply.resources):
            if error_code:
                continue
            for entry in entries:
                if entry[0] == "cleanup.policy":
                    policies[name] = str(entry[1])
    problems = []
    for name in names:
        policy = policies.get(name)
        if policy is None:
            problems.append(f"{name}{UNDESCRIBED}")
        elif "compact" not in policy.split(","):
            problems.append(
                f"{name}: cleanup.policy={policy}; a state changelog or the cards topic must "
                "be compacted, as each keeps the latest record of every creator (kafka-configs "
                f"--alter --entity-type topics --entity-name {name} "
                "--add-config cleanup.policy=compact)"
            )
    return problems
