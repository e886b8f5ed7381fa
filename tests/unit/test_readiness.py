"""Readiness tells the truth: Kafka's last probe and a batch that stopped progressing count,
on a fake clock and a hand-written Redis check."""

from __future__ import annotations

import pytest

from streams.observability import HealthState
from streams.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


async def redis_answers() -> bool:
    return True


def ready_worker(clock: FakeClock, batch_timeout_s: float = 60.0) -> HealthState:
    health = HealthState(redis_answers, batch_timeout_s=batch_timeout_s, clock=clock)
    health.set_assigned(True)
    health.set_recovered(True)
    health.set_kafka(True)
    return health


async def test_a_worker_with_everything_up_and_batches_finishing_is_ready() -> None:
    clock = FakeClock()
    health = ready_worker(clock)
    for _ in range(3):
        health.batch_started()
        clock.now += 59.0  # slow, but within the limit
        assert (await health.readiness()).ready
        health.batch_finished()
        clock.now += 1000.0  # idle between batches: nothing to do is not stuck
    state = await health.readiness()
    assert state.ready and state.detail == {}
    assert state.checks == dict.fromkeys(
        ("assigned", "recovered", "redis", "kafka", "progress"), True
    )


async def test_a_batch_in_progress_past_the_limit_fails_readiness_until_it_ends() -> None:
    clock = FakeClock()
    health = ready_worker(clock, batch_timeout_s=30.0)
    health.batch_started()
    clock.now += 30.5
    state = await health.readiness()
    assert not state.ready
    assert state.checks["progress"] is False
    assert state.detail["progress"].startswith("a batch has been in progress for 30s")
    assert health.batch_age_s() == pytest.approx(30.5)
    health.batch_finished()
    assert (await health.readiness()).ready
    assert health.batch_age_s() is None


async def test_kafka_unknown_or_unreachable_is_not_ready() -> None:
    clock = FakeClock()
    health = HealthState(redis_answers, clock=clock)
    health.set_assigned(True)
    health.set_recovered(True)
    state = await health.readiness()
    assert (state.ready, state.checks["kafka"]) == (False, False)
    assert state.detail == {"kafka": "no Kafka check has run yet"}
    health.set_kafka(False, "cannot reach Kafka at b:9092: KafkaConnectionError: refused")
    state = await health.readiness()
    assert state.detail == {"kafka": "cannot reach Kafka at b:9092: KafkaConnectionError: refused"}
    health.set_kafka(True)
    assert (await health.readiness()).ready


def test_the_batch_timeout_is_a_positive_setting() -> None:
    with pytest.raises(ValueError, match="batch_timeout_s must be > 0"):
        HealthState(batch_timeout_s=0)
    assert Settings().ready_batch_timeout_s == 60.0
    with pytest.raises(ValueError):
        Settings(ready_batch_timeout_s=0)
