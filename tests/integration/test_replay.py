"""Replay and the simulator's producer against the real broker, on topics of their own.

Records are read back with a plain aiokafka consumer and compared with what
was written: same topic, key and bytes, keyed records on the partition the
Java client's murmur2 gives (so the three source topics stay co-partitioned),
bad lines reported with their numbers and skipped, pacing respected.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2
from click.testing import CliRunner

from streams.cli import main
from streams.devtools.replay import BadLine, replay
from streams.devtools.simulate import (
    SimConfig,
    SimEvent,
    SimTopics,
    Simulator,
    file_line,
    generate_events,
    produce,
    write_file,
)
from streams.settings import Settings
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration

PARTITIONS = 4
Record = tuple[str, bytes | None, bytes, int]  # topic, key, value, partition


@pytest.fixture
async def topics(stack_settings: Settings, unique: str) -> AsyncIterator[SimTopics]:
    names = SimTopics(posts=f"it-rp-{unique}-posts", tags=f"it-rp-{unique}-tags",
                      orders=f"it-rp-{unique}-orders")  # fmt: skip
    specs = [NewTopic(t, PARTITIONS, 1) for t in (names.posts, names.tags, names.orders)]
    await ensure_topics(stack_settings, specs)
    try:
        yield names
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics([names.posts, names.tags, names.orders])
        finally:
            await admin.close()


async def read_back(settings: Settings, topics: SimTopics, expected: int) -> list[Record]:
    consumer = AIOKafkaConsumer(
        topics.posts,
        topics.tags,
        topics.orders,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[Record] = []
    try:
        async with asyncio.timeout(60):
            while len(out) < expected:
                batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for tp, records in batch.items():
                    out.extend((tp.topic, r.key, r.value or b"", tp.partition) for r in records)
        # Nothing beyond what was expected arrives.
        extra = await consumer.getmany(timeout_ms=1000)
        assert sum(len(r) for r in extra.values()) == 0
    finally:
        await consumer.stop()
    return out


def murmur_partition(key: bytes) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def as_multiset(records: Iterable[Record]) -> Counter[tuple[str, bytes | None, bytes]]:
    return Counter((t, k, v) for t, k, v, _ in records)


def sim_events(topics: SimTopics, events: int = 3000) -> list[SimEvent]:
    config = SimConfig(end_ms=int(time.time() * 1000), events=events, creators=80,
                       seed=5, topics=topics)  # fmt: skip
    return list(generate_events(config))


async def test_replay_sends_every_line_and_maps_topics(
    stack_settings: Settings, topics: SimTopics, tmp_path: Path
) -> None:
    # The file names the default topics; --topic-map points them at this test's.
    events = sim_events(SimTopics())
    path = tmp_path / "events.jsonl"
    report_written = write_file(events, path)
    assert report_written.sent == len(events)
    mapping = {"posts": topics.posts, "shoppable-tags": topics.tags, "orders": topics.orders}
    with path.open("rb") as stream:
        report = await replay(stream, stack_settings, topic_map=mapping)
    assert (report.sent, report.bad, report.lines) == (len(events), 0, len(events))
    records = await read_back(stack_settings, topics, len(events))
    expected = Counter((mapping[e.topic], e.key, e.value) for e in events)
    assert as_multiset(records) == expected
    assert dict(report.by_topic) == dict(Counter(mapping[e.topic] for e in events))
    # Unkeyed records are in the file and arrive unkeyed; keyed ones land by murmur2.
    assert any(k is None for _, k, _, _ in records)
    for _, key, _, partition in records:
        if key is not None:
            assert partition == murmur_partition(key)


async def test_bad_lines_are_reported_skipped_and_fail_the_command(
    stack_settings: Settings, topics: SimTopics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = [SimEvent(topics.posts, b"cr-1", b'{"n": 1}'), SimEvent(topics.orders, None, b"\xff")]
    lines = [
        file_line(good[0]),
        b"{not json at all",
        b"",
        b'{"topic": "%s", "key": 7, "value": "x"}' % topics.tags.encode(),
        b'{"topic": "it-rp-no-such-topic", "key": "k", "value": "x"}',
        file_line(good[1]),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    seen: list[BadLine] = []
    with path.open("rb") as stream:
        report = await replay(stream, stack_settings, on_bad=seen.append)
    assert [b.line_no for b in seen] == [2, 4, 5]
    assert "not JSON" in seen[0].reason
    assert "'key' must be a string or null" in seen[1].reason
    assert "does not exist" in seen[2].reason
    assert report.sent == 2 and report.bad == 3
    assert dict(report.bad_reasons) == {"not_json": 1, "bad_key": 1, "unknown_topic": 1}
    records = await read_back(stack_settings, topics, 2)
    assert as_multiset(records) == Counter((e.topic, e.key, e.value) for e in good)

    # The command says the same, line by line, and exits non-zero.
    result = await asyncio.to_thread(CliRunner().invoke, main, ["replay", str(path)])
    assert result.exit_code == 1
    assert f"{path}:line 2: not JSON" in result.stderr
    assert f"{path}:line 5: topic 'it-rp-no-such-topic' does not exist" in result.stderr
    assert "3 bad lines skipped (bad_key 1, not_json 1, unknown_topic 1)" in result.stdout


async def test_replay_is_paced_by_rate(
    stack_settings: Settings, topics: SimTopics, tmp_path: Path
) -> None:
    path = tmp_path / "paced.jsonl"
    write_file((SimEvent(topics.tags, b"k%d" % i, b"v%d" % i) for i in range(600)), path)
    started = time.perf_counter()
    with path.open("rb") as stream:
        report = await replay(stream, stack_settings, rate=400)
    elapsed = time.perf_counter() - started
    assert report.sent == 600
    assert elapsed >= 1.3  # 600 records at 400/s take at least 1.5 s of pacing
    assert report.rate < 460


async def test_simulator_producer_delivers_every_record_co_partitioned(
    stack_settings: Settings, topics: SimTopics
) -> None:
    config = SimConfig(end_ms=int(time.time() * 1000), events=5000, creators=60, seed=9,
                       topics=topics)  # fmt: skip
    sim = Simulator(config)
    report = await produce(sim, stack_settings)
    assert report.sent == 5000
    assert dict(report.by_topic) == dict(sim.stats.by_topic)
    records = await read_back(stack_settings, topics, 5000)
    assert as_multiset(records) == Counter(
        (e.topic, e.key, e.value) for e in generate_events(config)
    )
    # A creator's records sit on the same partition number in all three topics.
    partitions: dict[bytes, set[int]] = {}
    for _, key, _, partition in records:
        if key is not None:
            partitions.setdefault(key, set()).add(partition)
    assert len(partitions) > 40
    assert all(p == {murmur_partition(key)} for key, p in partitions.items())


async def test_produce_stops_at_the_duration(stack_settings: Settings, topics: SimTopics) -> None:
    events = (SimEvent(topics.posts, b"k", b"v") for _ in range(10**9))
    started = time.perf_counter()
    report = await produce(events, stack_settings, rate=1000, duration_s=1.0)
    assert 1.0 <= time.perf_counter() - started < 5.0
    assert 800 <= report.sent <= 1100
    records = await read_back(stack_settings, topics, report.sent)
    assert len(records) == report.sent


def test_simulate_command_writes_a_replayable_file(tmp_path: Path) -> None:
    path = tmp_path / "sim.jsonl"
    args = ["simulate", "--events", "2000", "--creators", "30", "--to-file", str(path),
            "--end-time", "2026-01-01T00:00:00Z"]  # fmt: skip
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "sent 2,000 events" in first.output and "malformed" in first.output
    content = path.read_bytes()
    assert content.count(b"\n") == 2000
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0
    assert path.read_bytes() == content  # same seed and end time: same file
    refused = CliRunner().invoke(main, ["simulate", "--rate", "0", "--duration", "5"])
    assert refused.exit_code == 2
    assert "needs --events" in refused.output


async def test_simulate_command_sends_to_kafka_through_its_generator_process(
    stack_settings: Settings, topics: SimTopics, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = (f"it-rp-{unique}-changes", f"it-rp-{unique}-dead")
    env = {
        "CREATOR_SCORES_POSTS_TOPIC": topics.posts,
        "CREATOR_SCORES_TAGS_TOPIC": topics.tags,
        "CREATOR_SCORES_ORDERS_TOPIC": topics.orders,
        "CREATOR_SCORES_CHANGES_TOPIC": extra[0],
        "CREATOR_SCORES_DEAD_LETTER_TOPIC": extra[1],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ["simulate", "--events", "4000", "--creators", "40", "--seed", "3",
            "--end-time", "2026-01-01T00:00:00Z"]  # fmt: skip
    try:
        result = await asyncio.to_thread(CliRunner().invoke, main, args)
        assert result.exit_code == 0, result.output
        assert "sent 4,000 events to Kafka" in result.output
        records = await read_back(stack_settings, topics, 4000)
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics(list(extra))
        finally:
            await admin.close()
    # The same records, in the same per-partition order, as the in-process generator makes.
    config = SimConfig(end_ms=1_767_225_600_000, events=4000, creators=40, seed=3,
                       topics=topics)  # fmt: skip
    expected = list(generate_events(config))
    assert as_multiset(records) == Counter((e.topic, e.key, e.value) for e in expected)
    keyed = [(t, k, v) for t, k, v, _ in records if k is not None]
    per_key: dict[tuple[str, bytes], list[bytes]] = {}
    for t, k, v in keyed:
        per_key.setdefault((t, k), []).append(v)
    for (t, k), values in per_key.items():
        assert values == [e.value for e in expected if e.topic == t and e.key == k]
    counts = Counter(e.topic for e in expected)
    for topic, n in counts.items():
        assert re.search(rf"{topic}\s+{n:,}", result.output)


async def test_skip_resumes_a_replay_after_the_line_it_names(
    stack_settings: Settings, topics: SimTopics, tmp_path: Path
) -> None:
    events = [SimEvent(topics.posts, b"cr-%d" % i, b'{"n": %d}' % i) for i in range(1, 61)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(file_line(e) for e in events) + b"\n")
    args = ["replay", str(path), "--skip", "25"]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert result.exit_code == 0, result.output
    assert "replayed 35 of 60 lines" in result.stdout
    assert "first 25 lines skipped (--skip)" in result.stdout
    records = await read_back(stack_settings, topics, 35)
    assert as_multiset(records) == Counter((e.topic, e.key, e.value) for e in events[25:])


async def test_replay_that_cannot_reach_kafka_stops_with_where_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1: every connection is refused, as during a broker restart.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    path = tmp_path / "events.jsonl"
    path.write_bytes(file_line(SimEvent("posts", b"cr-1", b"{}")) + b"\n")
    args = ["replay", str(path), "--skip", "0", "--retry-for", "2"]
    began = time.monotonic()
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert time.monotonic() - began < 30
    assert result.exit_code == 75, result.output
    assert "Kafka unavailable (KafkaConnectionError" in result.stderr
    assert "rerun with --skip 0 to resume" in result.stderr
    assert "the first 0 lines are done (on the broker, or bad); resume with --skip 0" in (
        result.stdout
    )
