"""Start-up refuses topics the worker cannot run on: checked against the real broker.

Each test creates its own topics (deleted afterwards) with the shape under test and
runs `check_topics` as worker start-up does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.settings import Settings
from streams.topics import TopicLayoutError, check_topics

pytestmark = pytest.mark.integration

MakeTopics = Callable[..., Awaitable[list[str]]]


@pytest.fixture
async def make_topics(stack_settings: Settings, unique: str) -> AsyncIterator[MakeTopics]:
    """`await make_topics((name, partitions, configs), ...)` -> the full topic names."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await admin.start()
    made: list[str] = []

    async def make(*specs: tuple[str, int, dict[str, str]]) -> list[str]:
        names = [f"topics-{unique}-{name}" for name, _, _ in specs]
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


COMPACT = {"cleanup.policy": "compact"}


async def test_co_partitioned_and_compacted_topics_pass(
    stack_settings: Settings, make_topics: MakeTopics
) -> None:
    settings = stack_settings.model_copy(update={"topic_partitions": 4})
    posts, tags, changelog = await make_topics(
        ("posts", 4, {}), ("tags", 4, {}), ("changelog", 4, {"cleanup.policy": "compact,delete"})
    )
    await check_topics(settings, co_partitioned=[posts, tags, changelog], compacted=[changelog])


async def test_another_partition_count_or_a_deleting_changelog_is_refused(
    stack_settings: Settings, make_topics: MakeTopics
) -> None:
    settings = stack_settings.model_copy(update={"topic_partitions": 4})
    posts, orders, changelog = await make_topics(
        ("posts", 4, {}), ("orders", 6, {}), ("changelog", 4, {"cleanup.policy": "delete"})
    )
    with pytest.raises(TopicLayoutError) as caught:
        await check_topics(
            settings, co_partitioned=[posts, orders, changelog], compacted=[changelog]
        )
    message = str(caught.value)
    assert f"{orders}: 6 partitions, but CREATOR_SCORES_TOPIC_PARTITIONS is 4" in message
    assert f"{changelog}: cleanup.policy=delete; a state changelog must be compacted" in message
    assert posts not in message

    missing = f"{posts}-missing"
    with pytest.raises(TopicLayoutError, match=f"{missing}: missing, or not described"):
        await check_topics(settings, co_partitioned=[posts, missing], compacted=[], settle_s=1)
