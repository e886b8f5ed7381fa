"""Start-up refuses topics the worker cannot run on: checked against the real broker.

Each test creates its own topics (deleted afterwards) with the shape under test and
runs `check_topics` as worker start-up does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.app import worker_topic_specs
from streams.settings import Settings
from streams.topics import TopicLayoutError, check_topics, ensure_topics
from tests.support.kafka import delete_topics

if TYPE_CHECKING:
    from tests.integration.conftest import MakeTopics

pytestmark = pytest.mark.integration


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
    posts, orders, changelog, cards = await make_topics(
        ("posts", 4, {}),
        ("orders", 6, {}),
        ("changelog", 4, {"cleanup.policy": "delete"}),
        ("cards", 4, {"cleanup.policy": "delete"}),
    )
    with pytest.raises(TopicLayoutError) as caught:
        await check_topics(
            settings,
            co_partitioned=[posts, orders, changelog, cards],
            compacted=[changelog, cards],
        )
    message = str(caught.value)
    assert f"{orders}: 6 partitions, but CREATOR_SCORES_TOPIC_PARTITIONS is 4" in message
    for name in (changelog, cards):
        assert f"{name}: cleanup.policy=delete; a state changelog or the cards topic must be " \
            "compacted" in message  # fmt: skip
    assert posts not in message

    missing = f"{posts}-missing"
    with pytest.raises(TopicLayoutError, match=f"{missing}: missing, or not described"):
        await check_topics(settings, co_partitioned=[posts, missing], compacted=[], settle_s=1)


async def test_the_worker_creates_a_compacted_cards_topic_its_check_accepts(
    stack_settings: Settings, unique: str
) -> None:
    settings = stack_settings.model_copy(update={
        "topic_partitions": 3, "cards_topic": f"it-{unique}-cards",
        **{f: f"it-{unique}-{f}" for f in ("posts_topic", "tags_topic", "orders_topic",
                                           "changes_topic", "dead_letter_topic", "app_id")},
    })  # fmt: skip
    try:
        created = await ensure_topics(settings, worker_topic_specs(settings))
        assert settings.cards_topic in created
        await check_topics(settings, co_partitioned=[settings.cards_topic],
                           compacted=[settings.cards_topic])  # fmt: skip
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            (reply,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, settings.cards_topic)]
            )
        finally:
            await admin.close()
        configs = {entry[0]: entry[1] for r in reply.resources for entry in r[4]}
        assert configs["cleanup.policy"] == "compact"
    finally:
        await delete_topics(settings, f"it-{unique}-")
