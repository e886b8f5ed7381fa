"""The local stack is real: a broker that stores and serves records, Redis that
answers, `stack up` that is idempotent and `stack down` that leaves nothing."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.devtools.stack import LocalStack, free_port, port_open
from streams.settings import STACK_PORTS_FILE, Settings, read_stack_ports

pytestmark = pytest.mark.integration


async def test_produce_and_consume_through_the_broker(
    stack_settings: Settings, unique: str
) -> None:
    topic = f"it-stack-{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for i in range(30):
            await producer.send(topic, key=f"k{i % 5}".encode(), value=f"v{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack_settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=f"it-{unique}",
    )
    await consumer.start()
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(20):
            while len(seen) < 30:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    seen.extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()
    assert sorted(seen) == sorted(f"v{i}".encode() for i in range(30))


async def test_compacted_topic_config_reads_back(stack_settings: Settings, unique: str) -> None:
    topic = f"it-compact-{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})]
        )
        result = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    entries = {
        name: value
        for response in result
        for _err, _code, _type, _name, configs in response.resources
        for name, value, *_rest in configs
    }
    assert entries["cleanup.policy"] == "compact"


async def test_redis_write_and_read(stack_settings: Settings, redis_prefix: str) -> None:
    client = aioredis.from_url(stack_settings.redis_url)
    try:
        await client.hset(f"{redis_prefix}h", mapping={"a": "1", "b": "2"})
        assert await client.hgetall(f"{redis_prefix}h") == {b"a": b"1", b"b": b"2"}
        await client.delete(f"{redis_prefix}h")
    finally:
        await client.aclose()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_stack_up_twice_is_harmless_and_down_leaves_nothing(tmp_path: Path) -> None:
    """A second, private stack on free ports: up, up again, down, nothing left."""
    kafka, controller, redis_port = ports = (free_port(), free_port(), free_port())
    assert len(set(ports)) == 3
    env = dict(os.environ)
    env.update(
        {
            "CREATOR_SCORES_STACK_DIR": str(tmp_path / "stack"),
            "CREATOR_SCORES_KAFKA_PORT": str(kafka),
            "CREATOR_SCORES_KAFKA_CONTROLLER_PORT": str(controller),
            "CREATOR_SCORES_REDIS_PORT": str(redis_port),
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        }
    )
    try:
        first = _cli(env, "stack", "up")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "Apache Kafka 3.9" in first.stdout
        pids = {
            name: int((tmp_path / "stack" / f"{name}.pid").read_text())
            for name in ("kafka", "redis")
        }
        second = _cli(env, "stack", "up")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "already running" in second.stdout
        status = _cli(env, "stack", "status")
        assert status.returncode == 0 and status.stdout.count(" up ") == 2, status.stdout
        assert {
            name: int((tmp_path / "stack" / f"{name}.pid").read_text())
            for name in ("kafka", "redis")
        } == pids
    finally:
        down = _cli(env, "stack", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"pid {pid} still running"
    for port in ports:
        assert not port_open("127.0.0.1", port)
    after = _cli(env, "stack", "status")
    assert after.returncode == 1


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] == "Z"
    except (OSError, IndexError):
        return True


def test_stack_reuses_a_service_it_did_not_start(stack_settings: Settings, tmp_path: Path) -> None:
    """Pointed on purpose at ports where services already answer, `stack up` reuses them."""
    env = dict(os.environ)
    env["CREATOR_SCORES_STACK_DIR"] = str(tmp_path / "other")
    env["CREATOR_SCORES_KAFKA_PORT"] = str(stack_settings.kafka_port)
    env["CREATOR_SCORES_REDIS_PORT"] = str(stack_settings.redis_port)
    env["KAFKA_BOOTSTRAP_SERVERS"] = stack_settings.kafka_bootstrap_servers
    env["REDIS_URL"] = stack_settings.redis_url
    result = _cli(env, "stack", "up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reusing it" in result.stdout
    assert not (tmp_path / "other" / "kafka.pid").exists()
    assert LocalStack(stack_settings).status()[0].reachable


def test_ports_another_stack_holds_are_left_to_it(tmp_path: Path) -> None:
    """Ports this stack did not choose on purpose, held by another process (another
    project's stack on the default ports, say): `stack up` starts its own services on free
    ports, records them, and every command run with the same stack folder uses them."""
    stack = tmp_path / "stack"
    stack.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CREATOR_SCORES_", "KAFKA_BOOTSTRAP", "REDIS_URL"))}  # fmt: skip
    env.update({"CREATOR_SCORES_STACK_DIR": str(stack), "CREATOR_SCORES_KAFKA_HEAP": "256m"})
    with socket.socket() as kafka_squatter, socket.socket() as redis_squatter:
        for sock in (kafka_squatter, redis_squatter):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        held = {"kafka_port": kafka_squatter.getsockname()[1],
                "redis_port": redis_squatter.getsockname()[1]}  # fmt: skip
        # Where an earlier `stack up` had put them (the same path as the defaults).
        (stack / STACK_PORTS_FILE).write_text(json.dumps(
            {**held, "kafka_controller_port": free_port()}))  # fmt: skip
        pids: list[int] = []
        try:
            up = _cli(env, "stack", "up")
            assert up.returncode == 0, up.stdout + up.stderr
            assert up.stdout.count("is held by a process this stack did not start") == 2, up.stdout
            moved = read_stack_ports(stack)
            assert moved["kafka_port"] != held["kafka_port"]
            assert moved["redis_port"] != held["redis_port"]
            pids = [int((stack / f"{name}.pid").read_text()) for name in ("kafka", "redis")]
            status = _cli(env, "stack", "status")
            assert status.returncode == 0, status.stdout + status.stderr
            assert (f"clients use Kafka at localhost:{moved['kafka_port']}, Redis at "
                    f"redis://localhost:{moved['redis_port']}/0") in status.stdout  # fmt: skip
            assert "warning" not in status.stdout
            with socket.create_connection(("127.0.0.1", moved["redis_port"]), timeout=2) as r:
                r.sendall(b"PING\r\n")
                assert r.recv(16).startswith(b"+PONG")
        finally:
            down = _cli(env, "stack", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not (stack / STACK_PORTS_FILE).exists()  # the next `stack up` chooses again
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"pid {pid} still running"
