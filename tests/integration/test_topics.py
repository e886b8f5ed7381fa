"""Start-up refuses topics the worker cannot run on: checked against the real broker.

Each test creates its own topics (deleted afterwards) with the shape under test and
runs `check_topics` as worker start-up does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from streams.settings import Settings
from streams.topics import TopicLayoutError, check_topics

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
