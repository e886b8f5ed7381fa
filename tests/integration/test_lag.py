"""Lag read from the real broker agrees with Kafka's own tool and reacts to consumers.

Each test makes its own topic (deleted afterwards) and its own consumer group,
commits offsets with a plain aiokafka consumer, and compares what
`streams.lag` reports with `kafka-consumer-groups --describe` run from the
broker's own jars, with the `creator-scores lag` command, and with the
worker's `/metrics`, `/healthz` and `/readyz` endpoints.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from streams.app import rekeyed_topic_name
from streams.cli import main
from streams.devtools.stack import LocalStack
from streams.keys import GLOBAL_REGION, Keys
from streams.lag import LagMonitor, LagReader, Status, StatusRules, lag_report
from streams.observability import HealthState, KafkaProbe, serve_lag, start_observability
from streams.settings import Settings

pytestmark = pytest.mark.integration

TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
PARTITIONS = 3


@dataclass(frozen=True)
class Topic:
    name: str
    bootstrap: str


@pytest.fixture
async def topic(stack_settings: Settings, unique: str) -> AsyncIterator[Topic]:
    name = f"it-lag-{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
        yield Topic(name, stack_settings.kafka_bootstrap_servers)
    finally:
        try:
            await admin.delete_topics([name])
        finally:
            await admin.close()


async def produce(t: Topic, counts: dict[int, int], *, timestamp_ms: int | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=t.bootstrap)
    await producer.start()
    try:
        for partition, n in counts.items():
            for i in range(n):
                await producer.send(
                    t.name, f"r{i}".encode(), partition=partition, timestamp_ms=timestamp_ms
                )
        await producer.flush()
    finally:
        await producer.stop()


def group_consumer(t: Topic, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        t.name,
        bootstrap_servers=t.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )


async def joined(consumer: AIOKafkaConsumer, parts: int = PARTITIONS) -> None:
    async with asyncio.timeout(30):
        while len(consumer.assignment()) < parts:
            await consumer.getmany(timeout_ms=200)


async def commit_and_leave(
    t: Topic, group: str, offsets: dict[int, int], parts: int = PARTITIONS
) -> None:
    consumer = group_consumer(t, group)
    await consumer.start()
    try:
        await joined(consumer, parts)
        await consumer.commit({TopicPartition(t.name, p): o for p, o in offsets.items()})
    finally:
        await consumer.stop()


def describe_with_kafka_tool(settings: Settings, group: str) -> dict[int, dict[str, str]]:
    """Rows of `kafka-consumer-groups --describe`, by partition."""
    libs = LocalStack(settings).kafka_libs()
    proc = subprocess.run(
        ["java", "-Xmx256m", "-cp", f"{libs}/*", TOOL,
         "--bootstrap-server", settings.kafka_bootstrap_servers, "--describe", "--group", group],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    header_at = next(i for i, cells in enumerate(lines) if cells[:2] == ["GROUP", "TOPIC"])
    header = lines[header_at]
    rows = [dict(zip(header, cells, strict=True)) for cells in lines[header_at + 1 :]]
    return {int(r["PARTITION"]): r for r in rows if r["GROUP"] == group}


async def test_lag_agrees_with_kafka_consumer_groups_describe(
    stack_settings: Settings, topic: Topic, unique: str
) -> None:
    group = f"it-lag-g-{unique}"
    await produce(topic, {0: 12, 1: 7, 2: 5})
    await commit_and_leave(topic, group, {0: 4, 1: 7})
    await produce(topic, {0: 3})

    monitor = LagMonitor(topic.bootstrap, {group: ()})
    await monitor.start()
    try:
        ours = (await monitor.refresh())[group]
    finally:
        await monitor.close()
    theirs = await asyncio.to_thread(describe_with_kafka_tool, stack_settings, group)

    assert {p.partition for p in ours.partitions} == set(theirs) == {0, 1}
    for p in ours.partitions:
        row = theirs[p.partition]
        assert (str(p.committed), str(p.end), str(p.lag)) == (
            row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"],
        )  # fmt: skip
    assert [(p.committed, p.end, p.lag) for p in ours.partitions] == [(4, 15, 11), (7, 7, 0)]
    assert (ours.members, ours.status) == (0, Status.STOP)


async def test_active_member_and_uncommitted_partition_agree_with_the_tool(
    stack_settings: Settings, topic: Topic, unique: str
) -> None:
    group = f"it-lag-g-{unique}"
    await produce(topic, {0: 6, 1: 6, 2: 6})
    consumer = group_consumer(topic, group)
    await consumer.start()
    try:
        await joined(consumer)
        await consumer.commit({TopicPartition(topic.name, 0): 2, TopicPartition(topic.name, 1): 6})
        reader = LagReader(topic.bootstrap)
        await reader.start()
        try:
            ours = await reader.read_group(group, [topic.name])
        finally:
            await reader.close()
        theirs = await asyncio.to_thread(describe_with_kafka_tool, stack_settings, group)
    finally:
        await consumer.stop()

    assert ours.state == "Stable"
    (member,) = ours.members
    assert member.partitions == {(topic.name, p) for p in range(PARTITIONS)}
    assert set(theirs) == {0, 1, 2}
    for p in range(PARTITIONS):
        off, row = ours.offsets[(topic.name, p)], theirs[p]
        committed = "-" if off.committed is None else str(off.committed)
        assert (committed, str(off.end)) == (row["CURRENT-OFFSET"], row["LOG-END-OFFSET"])
        assert row["CONSUMER-ID"] == member.member_id
        assert row["CLIENT-ID"] == member.client_id
    assert theirs[0]["LAG"] == str(ours.offsets[(topic.name, 0)].lag) == "4"
    # The tool prints "-" for a partition without a commit; we count what is retained.
    assert theirs[2]["LAG"] == "-"
    assert ours.offsets[(topic.name, 2)].lag == 6


async def test_lag_seconds_is_the_age_of_the_record_at_the_committed_offset(
    topic: Topic, unique: str
) -> None:
    group = f"it-lag-g-{unique}"
    now_ms = int(time.time() * 1000)
    await produce(topic, {0: 3}, timestamp_ms=now_ms - 300_000)  # offsets 0..2, 5 minutes old
    await produce(topic, {0: 3}, timestamp_ms=now_ms - 60_000)  # offsets 3..5, 1 minute old
    await produce(topic, {1: 2}, timestamp_ms=now_ms - 30_000)
    await commit_and_leave(topic, group, {0: 3, 1: 2})

    monitor = LagMonitor(topic.bootstrap, {group: ()})
    await monitor.start()
    try:
        before = time.time()
        g = (await monitor.refresh())[group]
        after = time.time()
    finally:
        await monitor.close()
    p0, p1 = g.partitions
    assert p0.lag == 3
    assert p0.lag_seconds is not None
    # The oldest unprocessed record is offset 3 (one minute old), not offset 0 or 5.
    assert before - now_ms / 1000 + 60 - 0.01 <= p0.lag_seconds <= after - now_ms / 1000 + 60.01
    assert (p1.lag, p1.lag_seconds) == (0, 0.0)
    assert g.max_lag_seconds == p0.lag_seconds


async def test_stopping_the_consumer_turns_the_group_stop_and_lag_keeps_growing(
    topic: Topic, unique: str
) -> None:
    group = f"it-lag-g-{unique}"
    await produce(topic, {0: 5, 1: 5, 2: 5})
    monitor = LagMonitor(topic.bootstrap, {group: ()})
    await monitor.start()
    consumer = group_consumer(topic, group)
    await consumer.start()
    try:
        await joined(consumer)
        await consumer.commit({TopicPartition(topic.name, p): 5 for p in range(PARTITIONS)})
        running = (await monitor.refresh())[group]
        assert (running.status, running.members, running.sum_lag) == (Status.OK, 1, 0)
        await consumer.stop()  # leaves the group at once, like a worker shut down cleanly

        await produce(topic, {0: 4, 2: 1})
        stopped = (await monitor.refresh())[group]
        assert (stopped.status, stopped.members, stopped.sum_lag) == (Status.STOP, 0, 5)
        assert stopped.state == "Empty"
        await asyncio.sleep(1.0)
        await produce(topic, {1: 2})
        later = (await monitor.refresh())[group]
        assert later.sum_lag == 7
        assert later.max_lag_seconds > stopped.max_lag_seconds
    finally:
        await consumer.stop()
        await monitor.close()


async def test_member_that_stops_committing_is_stall_then_ok_when_it_resumes(
    topic: Topic, unique: str
) -> None:
    group = f"it-lag-g-{unique}"
    await produce(topic, {0: 10})
    rules = StatusRules(window=5, stall_samples=3, warn_samples=3)
    monitor = LagMonitor(topic.bootstrap, {group: ()}, rules=rules)
    await monitor.start()
    consumer = group_consumer(topic, group)
    await consumer.start()
    try:
        await joined(consumer)
        await consumer.commit({TopicPartition(topic.name, 0): 4})
        statuses = []
        for _ in range(3):
            statuses.append((await monitor.refresh())[group].status)
            await produce(topic, {0: 1})
        assert statuses == [Status.OK, Status.OK, Status.STALL]
        await consumer.commit({TopicPartition(topic.name, 0): 13})
        assert (await monitor.refresh())[group].status is Status.OK
    finally:
        await consumer.stop()
        await monitor.close()


def test_lag_command_json_and_table_match_the_tool(stack_settings: Settings, unique: str) -> None:
    async def setup() -> Topic:
        t = Topic(f"it-lag-{unique}", stack_settings.kafka_bootstrap_servers)
        admin = AIOKafkaAdminClient(bootstrap_servers=t.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(t.name, PARTITIONS, 1)])
        finally:
            await admin.close()
        await produce(t, {0: 9, 1: 4, 2: 1})
        await commit_and_leave(t, group, {0: 2, 1: 4, 2: 0})
        return t

    async def teardown(t: Topic) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=t.bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([t.name])
        finally:
            await admin.close()

    group = f"it-lag-g-{unique}"
    t = asyncio.run(setup())
    try:
        env = {"KAFKA_BOOTSTRAP_SERVERS": stack_settings.kafka_bootstrap_servers}
        result = CliRunner().invoke(main, ["lag", "--group", group, "--json"], env=env)
        assert result.exit_code == 0, result.output
        doc = json.loads(result.output)
        (g,) = doc["groups"]
        theirs = describe_with_kafka_tool(stack_settings, group)
        rows = {p["partition"]: p for p in g["partitions"]}
        assert set(rows) == set(theirs) == {0, 1, 2}
        for p, row in theirs.items():
            assert (str(rows[p]["committed"]), str(rows[p]["end"]), str(rows[p]["lag"])) == (
                row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"],
            )  # fmt: skip
        assert (g["status"], g["sum_lag"], g["members"]) == ("STOP", 8, 0)

        table = CliRunner().invoke(main, ["lag", "--group", group], env=env)
        assert table.exit_code == 0, table.output
        lines = table.stdout.splitlines()
        assert table.stderr.startswith(f"using Kafka {stack_settings.kafka_bootstrap_servers}")
        assert lines[0].startswith(f"group {group}  state Empty  members 0  status STOP  lag 8")
        body = [line.split() for line in lines[2:5]]
        assert [cells[:5] for cells in body] == [
            [t.name, "0", "2", "9", "7"],
            [t.name, "1", "4", "4", "0"],
            [t.name, "2", "0", "1", "1"],
        ]
        assert [cells[6] for cells in body] == ["STOP", "OK", "STOP"]

    finally:
        asyncio.run(teardown(t))


async def test_watch_prints_one_json_document_per_refresh_with_growing_samples(
    stack_settings: Settings, topic: Topic, unique: str
) -> None:
    group = f"it-lag-g-{unique}"
    await produce(topic, {2: 4})
    await commit_and_leave(topic, group, {2: 1})
    lines: list[str] = []
    settings = stack_settings.model_copy(update={"app_id": f"it-app-{unique}"})
    began = time.monotonic()
    await lag_report(
        settings, [group], as_json=True, watch=True, interval_s=0.4, echo=lines.append,
        max_refreshes=3,
    )  # fmt: skip
    assert time.monotonic() - began >= 0.8  # paced by the interval, not a busy loop
    docs = [json.loads(line) for line in lines]
    assert [d["groups"][0]["samples"] for d in docs] == [1, 2, 3]
    assert [d["groups"][0]["sum_lag"] for d in docs] == [3, 3, 3]
    assert all("\n" not in line for line in lines)


def test_lag_command_reports_an_unknown_group(stack_settings: Settings, unique: str) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": stack_settings.kafka_bootstrap_servers}
    result = CliRunner().invoke(main, ["lag", "--group", f"it-nobody-{unique}"], env=env)
    assert result.exit_code == 1
    assert f"consumer group 'it-nobody-{unique}' is unknown to the broker" in result.output


async def test_observability_endpoint_serves_lag_health_and_top_creators(
    stack_settings: Settings, topic: Topic, unique: str, redis_prefix: str
) -> None:
    group = f"it-lag-g-{unique}"
    await produce(topic, {0: 8, 1: 3})
    await commit_and_leave(topic, group, {0: 5, 1: 3})
    settings = stack_settings.model_copy(update={"redis_prefix": redis_prefix})
    client = aioredis.Redis.from_url(settings.redis_url)
    board = Keys(redis_prefix).board("overall", GLOBAL_REGION)
    await client.zadd(board, {"creator-a": 71.5, "creator-b": 88.25, "creator-c": 12.0})
    health = HealthState()
    runner = await start_observability(
        settings, health, [group], host="127.0.0.1", port=0, lag_interval_s=0.3,
        top_interval_s=0.3, top_n=2,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:

            async def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
                async with http.get(runner.url + "/metrics") as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"].startswith("text/plain")
                    text = await resp.text()
                return {
                    (s.name, tuple(sorted(s.labels.items()))): s.value
                    for fam in text_string_to_metric_families(text)
                    for s in fam.samples
                }

            async with asyncio.timeout(15):
                while True:
                    samples = await scrape()
                    lag_key = (
                        "kafka_consumergroup_group_lag",
                        (("group", group), ("partition", "0"), ("topic", topic.name)),
                    )
                    top_key = (
                        "creator_scores_top_creator_score",
                        (("board", "overall"), ("creator_id", "creator-b"), ("rank", "1")),
                    )
                    if lag_key in samples and top_key in samples:
                        break
                    await asyncio.sleep(0.1)
            assert samples[lag_key] == 3
            assert samples[("kafka_consumergroup_group_sum_lag", (("group", group),))] == 3
            assert samples[("kafka_consumergroup_group_status", (("group", group),))] == 3
            assert samples[top_key] == 88.25
            ranked = sorted(
                (dict(labels)["rank"], dict(labels)["creator_id"], v)
                for (name, labels), v in samples.items()
                if name == "creator_scores_top_creator_score"
            )
            assert ranked == [("1", "creator-b", 88.25), ("2", "creator-a", 71.5)]
            # The pipeline's own metrics are served alongside.
            assert any(name == "creator_scores_redis_errors_total" for name, _ in samples)

            # Lag moves with the broker, without anyone telling the endpoint.
            await produce(topic, {1: 4})
            async with asyncio.timeout(15):
                while samples.get(("kafka_consumergroup_group_sum_lag", (("group", group),))) != 7:
                    await asyncio.sleep(0.2)
                    samples = await scrape()

            async with http.get(runner.url + "/healthz") as resp:
                assert resp.status == 200
                assert (await resp.json())["live"] is True
            async with http.get(runner.url + "/readyz") as resp:
                assert resp.status == 503
                body = await resp.json()
            assert body["checks"] == {
                "assigned": False,
                "recovered": False,
                "redis": True,
                "kafka": True,  # probed against the real broker before the first scrape ended
                "progress": True,
            }
            health.set_assigned(True)
            async with http.get(runner.url + "/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["checks"]["recovered"] is False
            health.set_recovered(True)
            async with http.get(runner.url + "/readyz") as resp:
                assert resp.status == 200
                assert (await resp.json())["ready"] is True

            async def redis_down() -> bool:
                raise ConnectionError("Connection refused")

            health.set_redis_check(redis_down)
            async with http.get(runner.url + "/readyz") as resp:
                assert resp.status == 503
                body = await resp.json()
            assert body["detail"] == {"redis": "ConnectionError: Connection refused"}
    finally:
        await runner.stop()
        await client.delete(board)
        await client.aclose()


async def test_lag_exporter_serves_only_lag_and_is_ready_after_a_refresh(
    stack_settings: Settings, topic: Topic, unique: str
) -> None:
    group = f"it-lag-g-{unique}"
    await produce(topic, {1: 5})
    await commit_and_leave(topic, group, {1: 1})
    runner = await serve_lag(stack_settings, [group], host="127.0.0.1", port=0, interval_s=0.3)
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(15):
                while True:
                    async with http.get(runner.url + "/readyz") as resp:
                        if resp.status == 200:
                            assert (await resp.json())["checks"] == {group: True}
                            break
                    await asyncio.sleep(0.1)
            async with http.get(runner.url + "/metrics") as resp:
                text = await resp.text()
    finally:
        await runner.stop()
    names = {fam.name for fam in text_string_to_metric_families(text)}
    assert "kafka_consumergroup_group_lag" in names
    # Only lag: a pipeline counter at zero from this process would skew sums across workers.
    assert not any(n.startswith("creator_scores_events") for n in names)
    assert (
        f'kafka_consumergroup_group_lag{{group="{group}",partition="1",topic="{topic.name}"}} 4.0'
        in text
    )


async def test_lag_exporter_is_not_ready_when_kafka_is_unreachable(
    stack_settings: Settings, unique: str
) -> None:
    # A port nothing listens on: refreshes fail, the endpoint stays up and says why.
    settings = stack_settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    runner = await serve_lag(
        settings, [f"it-lag-g-{unique}"], host="127.0.0.1", port=0, interval_s=0.3
    )
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(20):
                while runner.monitor is None or not runner.monitor.last_error:
                    await asyncio.sleep(0.1)
            async with http.get(runner.url + "/healthz") as resp:
                assert resp.status == 200
            async with http.get(runner.url + "/readyz") as resp:
                assert resp.status == 503
                body = await resp.json()
            async with http.get(runner.url + "/metrics") as resp:
                text = await resp.text()
    finally:
        await runner.stop()
    assert "cannot reach Kafka at 127.0.0.1:1" in body["detail"][f"it-lag-g-{unique}"]
    assert f'creator_scores_lag_refresh_errors_total{{group="it-lag-g-{unique}"}}' in text
    assert "kafka_consumergroup_group_lag{" not in text


async def test_readiness_gives_up_on_a_redis_check_that_hangs() -> None:
    async def hangs() -> bool:
        await asyncio.sleep(30)
        return True

    health = HealthState(hangs, redis_timeout_s=0.2)
    health.set_assigned(True)
    health.set_recovered(True)
    health.set_kafka(True)
    began = time.monotonic()
    state = await health.readiness()
    assert time.monotonic() - began < 2
    assert (state.ready, state.checks["redis"]) == (False, False)
    assert state.detail == {"redis": "Redis did not answer within 0.2s"}
    with pytest.raises(ValueError, match="redis_timeout_s must be > 0"):
        HealthState(redis_timeout_s=0)


async def test_lag_counts_the_rekey_topic_from_its_log_start_before_the_first_commit(
    stack_settings: Settings, unique: str
) -> None:
    settings = stack_settings.model_copy(
        update={
            "app_id": f"it-app-{unique}",
            "posts_topic": f"it-lag-{unique}-posts",
            "tags_topic": f"it-lag-{unique}-tags",
            "orders_topic": f"it-lag-{unique}-orders",
        }
    )
    rekeyed = rekeyed_topic_name(settings)
    names = [*settings.source_topics, rekeyed]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1) for name in names])
        posts = Topic(settings.posts_topic, settings.kafka_bootstrap_servers)
        await produce(posts, {0: 3, 1: 1})
        await produce(Topic(rekeyed, settings.kafka_bootstrap_servers), {0: 9, 1: 2})
        # The group has committed on the source topics only, as a worker does before it
        # consumed anything re-keyed; 4 of partition 0's records are gone from the log.
        await commit_and_leave(posts, settings.app_id, {0: 3, 1: 1}, parts=2)
        await admin.delete_records({TopicPartition(rekeyed, 0): RecordsToDelete(4)})
        monitor = LagMonitor.for_settings(settings)
        try:
            snap = await monitor.refresh()
        finally:
            await monitor.close()
    finally:
        try:
            await admin.delete_topics(names)
        finally:
            await admin.close()
    g = snap[settings.app_id]
    rows = {(p.topic, p.partition): (p.committed, p.start, p.end, p.lag) for p in g.partitions}
    assert rows[(rekeyed, 0)] == (None, 4, 9, 5)
    assert rows[(rekeyed, 1)] == (None, 0, 2, 2)
    assert rows[(settings.posts_topic, 0)] == (3, 0, 3, 0)
    assert g.topic_sum_lag()[rekeyed] == 7
    assert g.sum_lag == 7


async def test_kafka_probe_says_whether_the_broker_answers(stack_settings: Settings) -> None:
    health = HealthState()
    up = KafkaProbe(stack_settings.kafka_bootstrap_servers, health)
    try:
        assert await up.check() is True
        assert await up.check() is True  # the client is kept between probes
        assert (await health.readiness()).checks["kafka"] is True
    finally:
        await up.close()
    # Nothing listens on port 1: the probe fails fast, says why, and readiness follows.
    down = KafkaProbe("127.0.0.1:1", health, timeout_s=2.0)
    began = time.monotonic()
    assert await down.check() is False
    assert time.monotonic() - began < 5
    state = await health.readiness()
    assert (state.ready, state.checks["kafka"]) == (False, False)
    assert state.detail["kafka"].startswith("cannot reach Kafka at 127.0.0.1:1: ")
    assert down.failures == 1
