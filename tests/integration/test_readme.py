"""The README's examples run, as written, against what the worker wrote.

"Reading scores": a private Redis (free port: the shared one's `cs:` prefix may be
someone's demo) is filled by the real pipeline from simulated events, under the
README's prefix `cs:`. Then every line of the README's example block runs:
`creator-scores ...` lines as the CLI, `redis-cli ...` lines as the same command sent
with redis-py (redis-cli itself is not a dependency). Each must succeed and print
something: a stale id, an unknown option or a board name that no longer exists fails
here, not for a newcomer.

"Downstream services": the example consumer reads a cards topic the real pipeline wrote
on the real Kafka, and must give exactly the cards the same flushes wrote to Redis.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
import redis
from click.testing import CliRunner
from redis.asyncio import Redis as AsyncRedis

from scoring.columns import DAY_MS
from scoring.params import DEFAULT_PARAMS
from streams.cli import main
from streams.codec import RawRecord
from streams.devtools.simulate import SimConfig, generate_events
from streams.devtools.stack import LocalStack, free_port, port_open
from streams.keys import Keys
from streams.pipeline import Pipeline, PipelineConfig
from streams.settings import Settings
from streams.sinks.base import OutboundRecord
from streams.sinks.kafka import KafkaSink, build_producer
from streams.sinks.redis import RedisSink
from streams.state_store import DictStore
from tests.support.contracts import cards_in_redis, check_records, latest_cards
from tests.support.kafka import read_topic
from tests.support.payloads import post
from tests.support.redis import delete_prefix, dump_prefix

if TYPE_CHECKING:
    from tests.integration.conftest import MakeTopics

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def example_lines() -> list[str]:
    """The command lines of the README's example block under "Reading scores"."""
    text = README.read_text()
    section = text.split("## Reading scores", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert block, "no ```sh block under Reading scores"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture
def readme_redis(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [LocalStack.redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        assert proc.poll() is None and time.monotonic() < deadline, "private redis did not start"
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)


class _Discard:
    async def write(self, batch: list[OutboundRecord]) -> None:
        pass


async def _fill(url: str) -> None:
    """What a worker writes for 100 simulated creators, under the README's prefix."""
    end_ms = int(time.time() * 1000)
    config = SimConfig(end_ms=end_ms, events=6_000, creators=100, seed=3, malformed_share=0)
    records = [
        RawRecord(e.topic, 0, i, e.key, e.value, end_ms)
        for i, e in enumerate(generate_events(config))
    ]
    client = AsyncRedis.from_url(url)
    try:
        pipeline = Pipeline(
            PipelineConfig(
                kinds={"posts": "post", "shoppable-tags": "tag", "orders": "order"},
                rekeyed_topic="rekeyed", changes_topic="changes", dead_letter_topic="dead",
                change_threshold=1.0,
            ),
            DEFAULT_PARAMS, DictStore(), RedisSink(client, Keys("cs:")), _Discard(),
        )  # fmt: skip
        await pipeline.process(records)
    finally:
        await client.aclose()


def test_every_reading_example_runs_as_written(readme_redis: str) -> None:
    asyncio.run(_fill(readme_redis))
    lines = example_lines()
    assert any(line.startswith("creator-scores ") for line in lines)
    direct = redis.Redis.from_url(readme_redis)
    env = {"REDIS_URL": readme_redis, "CREATOR_SCORES_REDIS_PREFIX": "cs:"}
    try:
        for line in lines:
            program, *args = shlex.split(line, comments=True)
            if program == "redis-cli":
                reply = direct.execute_command(*args)
                assert reply, f"{line!r} found nothing"
            else:
                assert program == "creator-scores", line
                result = CliRunner().invoke(main, args, env=env)
                assert result.exit_code == 0, f"{line!r}: {result.output}"
                assert result.output.strip() and "no creators" not in result.output, (
                    f"{line!r} printed nothing useful: {result.output}"
                )
    finally:
        direct.close()


def downstream_example() -> str:
    """The Python block of the README's "Downstream services" section."""
    text = README.read_text()
    section = text.split("## Downstream services", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert block, "no ```python block under Downstream services"
    return block.group(1)


async def test_the_downstream_example_gives_every_card_redis_holds(
    stack_settings: Settings, make_topics: MakeTopics, redis_prefix: str
) -> None:
    cards, changes, dead = await make_topics(
        ("cards", 3, {"cleanup.policy": "compact"}), ("changes", 3, {}), ("dead", 3, {})
    )
    settings = stack_settings.model_copy(
        update={"cards_topic": cards, "changes_topic": changes, "dead_letter_topic": dead,
                "topic_partitions": 3}
    )  # fmt: skip
    end_ms = int(time.time() * 1000)
    config = SimConfig(end_ms=end_ms, events=3_000, creators=40, seed=5, malformed_share=0,
                       mis_keyed_share=0)  # fmt: skip
    payloads = [orjson.loads(e.value) | {"_topic": e.topic} for e in generate_events(config)]
    # One creator whose only post is 40 days old: the sweep after the flushes finds its
    # window empty, and it leaves (a tombstone).
    payloads.append({**post("cr-long-gone", 0, posted_at=end_ms - 40 * DAY_MS), "_topic": "posts"})
    records = [
        RawRecord(p.pop("_topic"), 0, i, str(p["creator_id"]).encode(), orjson.dumps(p), end_ms)
        for i, p in enumerate(payloads)
    ]
    redis_client = AsyncRedis.from_url(settings.redis_url)
    producer = build_producer(settings)
    await producer.start()
    try:
        store = DictStore()
        pipeline = Pipeline(
            PipelineConfig(
                kinds={"posts": "post", "shoppable-tags": "tag", "orders": "order"},
                rekeyed_topic="rekeyed", changes_topic=changes, dead_letter_topic=dead,
                change_threshold=1.0, cards_topic=cards,
            ),
            DEFAULT_PARAMS, store, RedisSink(redis_client, Keys(redis_prefix)),
            KafkaSink(producer, dead_letter_topic=dead),
        )  # fmt: skip
        third = len(records) // 3 + 1
        for start in range(0, len(records), third):  # a creator's card written again and again
            await pipeline.process(records[start : start + third])
        await pipeline.sweep(list(store))

        namespace: dict[str, Any] = {"__name__": "readme"}
        exec(compile(downstream_example(), "<README: Downstream services>", "exec"), namespace)
        found = await namespace["current_cards"](settings.kafka_bootstrap_servers, cards)

        redis_cards = cards_in_redis(await dump_prefix(redis_client, redis_prefix), redis_prefix)
        assert found == {c: card for c, card in redis_cards.items() if card is not None}
        assert redis_cards["cr-long-gone"] is None and "cr-long-gone" not in found
        assert len(found) > 30
        written = await read_topic(settings, cards)
        assert len(written) > len(redis_cards)  # the example did skip older cards
        assert latest_cards(written) == redis_cards
        assert check_records(settings, cards, written) == len(written)
    finally:
        await producer.stop()
        await redis_client.aclose()
        await delete_prefix(settings.redis_url, redis_prefix)
