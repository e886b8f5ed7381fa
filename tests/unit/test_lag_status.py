"""The Burrow-style status rules, the lag arithmetic and the Prometheus export, without Kafka.

The broker side is replaced by an in-memory reader with the same interface as
`LagReader`, so `LagMonitor` runs its real code: timestamp caching, lag in
seconds against an injected clock, error handling and the exported series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from streams.lag import (
    LAG_METRICS,
    GroupOffsets,
    LagCollector,
    LagMonitor,
    Member,
    Offsets,
    Partition,
    Status,
    StatusRules,
    StatusTracker,
    render_table,
)

P0: Partition = ("orders", 0)
P1: Partition = ("orders", 1)


def feed(
    tracker: StatusTracker,
    samples: Iterable[Mapping[Partition, Offsets]],
    *,
    has_members: bool = True,
    start: float = 100.0,
    step: float = 5.0,
) -> list[Status]:
    out = []
    for i, offsets in enumerate(samples):
        out.append(tracker.observe(start + i * step, offsets, has_members=has_members).status)
    return out


# -- Offsets ----------------------------------------------------------------------


def test_lag_is_end_minus_committed() -> None:
    assert Offsets(committed=40, end=100, start=10).lag == 60


def test_uncommitted_partition_lags_by_everything_retained() -> None:
    assert Offsets(committed=None, end=100, start=30).lag == 70


def test_committed_past_the_end_is_not_negative_lag() -> None:
    assert Offsets(committed=120, end=100).lag == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"committed": -1, "end": 5}, "Offsets.committed"),
        ({"committed": 1, "end": -5}, "Offsets.end"),
        ({"committed": 1, "end": 5, "start": 6}, "start \\(6\\) is past Offsets.end \\(5\\)"),
        ({"committed": 1.5, "end": 5}, "Offsets.committed"),
        ({"committed": True, "end": 5}, "Offsets.committed"),
        ({"committed": 1, "end": "5"}, "Offsets.end"),
    ],
)
def test_bad_offsets_are_rejected_precisely(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Offsets(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"stall_samples": 1}, {"stall_samples": 11}, {"warn_samples": 1}, {"window": 3}],
)
def test_bad_rules_are_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"must be in 2\.\.window"):
        StatusRules(**kwargs)


# -- the rules ----------------------------------------------------------------------


def test_caught_up_is_ok_even_without_members() -> None:
    tracker = StatusTracker()
    verdict = tracker.observe(1.0, {P0: Offsets(50, 50)}, has_members=False)
    assert verdict.status is Status.OK
    assert verdict.partitions[P0].reason == "orders[0] caught up"


def test_no_members_with_lag_is_stop_from_the_first_sample() -> None:
    tracker = StatusTracker()
    verdict = tracker.observe(1.0, {P0: Offsets(40, 50), P1: Offsets(7, 7)}, has_members=False)
    assert verdict.status is Status.STOP
    assert verdict.partitions[P0].status is Status.STOP
    assert verdict.partitions[P1].status is Status.OK
    assert "no active members while 10 records wait" in verdict.reason


def test_never_committed_group_without_members_is_stop() -> None:
    tracker = StatusTracker()
    verdict = tracker.observe(1.0, {P0: Offsets(None, 9, 2)}, has_members=False)
    assert verdict.status is Status.STOP
    assert "7 records wait" in verdict.reason


def test_unmoved_offset_with_lag_becomes_stall_after_stall_samples() -> None:
    rules = StatusRules(window=10, stall_samples=4, warn_samples=5)
    tracker = StatusTracker(rules)
    samples = [{P0: Offsets(100, 120 + 10 * i)} for i in range(5)]
    statuses = feed(tracker, samples)
    assert statuses == [Status.OK, Status.OK, Status.OK, Status.STALL, Status.STALL]
    verdict = tracker.observe(1000.0, {P0: Offsets(100, 200)}, has_members=True)
    assert verdict.reason == (
        "orders[0]: committed offset at 100 while lag is 100; the group (no known owner) "
        "committed nothing over 4 samples (890s)"
    )


def test_stall_needs_lag_in_every_sample_of_the_tail() -> None:
    tracker = StatusTracker(StatusRules(stall_samples=3))
    # Caught up for a while (nothing to do is not a stall), then records arrive.
    samples = [{P0: Offsets(100, 100)}] * 3 + [{P0: Offsets(100, 105)}]
    assert feed(tracker, samples) == [Status.OK] * 4
    assert tracker.observe(1000.0, {P0: Offsets(100, 106)}, has_members=True).status is Status.OK
    assert tracker.observe(1001.0, {P0: Offsets(100, 107)}, has_members=True).status is (
        Status.STALL
    )


def test_member_that_never_commits_stalls() -> None:
    tracker = StatusTracker(StatusRules(stall_samples=3))
    samples = [{P0: Offsets(None, 10 + i)} for i in range(3)]
    assert feed(tracker, samples)[-1] is Status.STALL
    assert "never committed" in tracker.observe(999.0, samples[-1], has_members=True).reason


def test_sparse_partition_of_a_consumer_that_commits_elsewhere_is_not_stall() -> None:
    # A consumer a minute behind reaches a sparse partition's next record only now and
    # then: that offset stands still with lag while the consumer commits on P1.
    tracker = StatusTracker(StatusRules(stall_samples=3))
    owners = {P0: "m-1", P1: "m-1"}
    statuses = [
        tracker.observe(
            float(i), {P0: Offsets(7, 9), P1: Offsets(100 + 50 * i, 400 + 50 * i)},
            has_members=True, owners=owners,
        ).partitions[P0].status
        for i in range(6)
    ]  # fmt: skip
    assert statuses == [Status.OK] * 6


def test_stuck_member_stalls_while_the_other_member_consumes() -> None:
    tracker = StatusTracker(StatusRules(stall_samples=3))
    owners = {P0: "m-stuck", P1: "m-fine"}
    verdict = None
    for i in range(3):
        verdict = tracker.observe(
            float(i), {P0: Offsets(50, 80 + i), P1: Offsets(10 * i, 10 * i + 5)},
            has_members=True, owners=owners,
        )  # fmt: skip
    assert verdict is not None
    assert verdict.partitions[P0].status is Status.STALL
    assert verdict.partitions[P1].status is Status.OK
    assert verdict.status is Status.STALL
    assert "its consumer m-stuck committed nothing over 3 samples (2s)" in verdict.reason


def test_partitions_without_owner_stall_together() -> None:
    tracker = StatusTracker(StatusRules(stall_samples=3))
    verdict = None
    for i in range(3):
        # P1 moves, so the unowned scope is moving and P0 is not stalled.
        verdict = tracker.observe(
            float(i), {P0: Offsets(50, 80), P1: Offsets(10 * i, 10 * i + 5)}, has_members=True
        )
    assert verdict is not None and verdict.partitions[P0].status is Status.OK


def test_group_whose_total_lag_grows_is_warn_even_when_partitions_are_noisy() -> None:
    tracker = StatusTracker(StatusRules(window=6, stall_samples=3, warn_samples=4))
    owners = {P0: "m", P1: "m"}
    # Each partition's lag dips once, the total climbs: 30, 40, 55, 70.
    lags = [(10, 20), (25, 15), (20, 35), (40, 30)]
    statuses = []
    for i, (a, b) in enumerate(lags):
        c = 100 * (i + 1)
        v = tracker.observe(
            float(i), {P0: Offsets(c, c + a), P1: Offsets(c, c + b)}, has_members=True,
            owners=owners,
        )  # fmt: skip
        statuses.append(v.status)
        assert all(pv.status is Status.OK for pv in v.partitions.values())
    assert statuses == [Status.OK, Status.OK, Status.OK, Status.WARN]
    assert v.reason == "group consuming but total lag grew from 30 to 70 over 4 samples"


def test_group_growth_restarts_when_the_partition_set_changes() -> None:
    tracker = StatusTracker(StatusRules(window=6, stall_samples=3, warn_samples=3))
    for i in range(2):
        tracker.observe(float(i), {P0: Offsets(10 * i, 10 * i + 5 + i)}, has_members=True)
    # Totals 5, 6, then 15 only because P1 joined: not growth (P0 alone dipped to 5).
    grown = {P0: Offsets(20, 25), P1: Offsets(0, 10)}
    verdict = tracker.observe(2.0, grown, has_members=True)
    assert verdict.status is Status.OK, verdict.reason


def test_stall_clears_as_soon_as_the_offset_moves() -> None:
    tracker = StatusTracker(StatusRules(stall_samples=3))
    samples = [{P0: Offsets(100, 150)}] * 3 + [{P0: Offsets(110, 150)}]
    assert feed(tracker, samples) == [Status.OK, Status.OK, Status.STALL, Status.OK]


def test_stalled_group_losing_its_members_is_stop() -> None:
    tracker = StatusTracker(StatusRules(stall_samples=3))
    feed(tracker, [{P0: Offsets(100, 150)}] * 3)
    assert tracker.observe(999.0, {P0: Offsets(100, 150)}, has_members=False).status is (
        Status.STOP
    )


def test_consuming_but_falling_behind_is_warn() -> None:
    tracker = StatusTracker(StatusRules(window=6, stall_samples=3, warn_samples=4))
    # Committed moves every sample, the log grows faster: lag 10, 20, 30, 40.
    samples = [{P0: Offsets(100 + 10 * i, 110 + 20 * i)} for i in range(4)]
    assert feed(tracker, samples) == [Status.OK, Status.OK, Status.OK, Status.WARN]
    verdict = tracker.observe(999.0, {P0: Offsets(140, 200)}, has_members=True)
    assert verdict.status is Status.WARN
    assert "lag grew from 10 to 60 over 5 samples" in verdict.reason


def test_lag_that_dips_once_in_the_window_is_not_warn() -> None:
    tracker = StatusTracker(StatusRules(window=6, stall_samples=3, warn_samples=4))
    lags = [10, 20, 15, 30, 40]
    samples = [{P0: Offsets(100 + 10 * i, 100 + 10 * i + lag)} for i, lag in enumerate(lags)]
    assert feed(tracker, samples)[-1] is Status.OK


def test_steady_lag_is_not_warn() -> None:
    tracker = StatusTracker(StatusRules(window=6, stall_samples=3, warn_samples=4))
    samples = [{P0: Offsets(100 + 10 * i, 150 + 10 * i)} for i in range(6)]
    assert feed(tracker, samples) == [Status.OK] * 6


def test_warn_only_looks_back_over_the_window() -> None:
    tracker = StatusTracker(StatusRules(window=4, stall_samples=3, warn_samples=4))
    # A dip at the start, then four growing samples: the dip falls out of the window.
    lags = [50, 10, 20, 30, 40]
    samples = [{P0: Offsets(100 + 10 * i, 100 + 10 * i + lag)} for i, lag in enumerate(lags)]
    assert feed(tracker, samples) == [Status.OK] * 4 + [Status.WARN]


def test_offset_reset_restarts_the_history() -> None:
    tracker = StatusTracker(StatusRules(stall_samples=3))
    feed(tracker, [{P0: Offsets(100, 150)}] * 2)
    # Offsets reset to an earlier position: the two unmoved samples before no longer count.
    assert tracker.observe(500.0, {P0: Offsets(20, 150)}, has_members=True).status is Status.OK
    assert tracker.observe(501.0, {P0: Offsets(20, 150)}, has_members=True).status is Status.OK
    assert tracker.observe(502.0, {P0: Offsets(20, 150)}, has_members=True).status is Status.STALL


def test_recreated_topic_restarts_the_history() -> None:
    tracker = StatusTracker(StatusRules(stall_samples=3))
    feed(tracker, [{P0: Offsets(0, 150)}] * 2)
    verdict = tracker.observe(500.0, {P0: Offsets(0, 10)}, has_members=True)
    assert verdict.status is Status.OK
    assert verdict.samples == 1


def test_partition_leaving_the_sample_forgets_its_history() -> None:
    tracker = StatusTracker(StatusRules(stall_samples=3))
    feed(tracker, [{P0: Offsets(100, 150), P1: Offsets(0, 0)}] * 2)
    tracker.observe(200.0, {P1: Offsets(0, 0)}, has_members=True)
    assert tracker.observe(201.0, {P0: Offsets(100, 150)}, has_members=True).status is Status.OK


def test_group_status_is_the_worst_partition_and_counts_the_others() -> None:
    tracker = StatusTracker(StatusRules(stall_samples=2))
    p2: Partition = ("posts", 3)
    sample = {P0: Offsets(100, 150), P1: Offsets(5, 9), p2: Offsets(1, 1)}
    tracker.observe(1.0, sample, has_members=True)
    verdict = tracker.observe(2.0, sample, has_members=True)
    assert verdict.status is Status.STALL
    assert verdict.partitions[p2].status is Status.OK
    assert verdict.reason.startswith("orders[0]: committed offset at 100")
    assert verdict.reason.endswith("(and 1 more partitions STALL)")


def test_no_partitions_is_ok() -> None:
    verdict = StatusTracker().observe(1.0, {}, has_members=False)
    assert verdict.status is Status.OK
    assert verdict.samples == 0


def test_samples_must_move_forward_in_time() -> None:
    tracker = StatusTracker()
    tracker.observe(10.0, {P0: Offsets(1, 1)}, has_members=True)
    with pytest.raises(ValueError, match="must move forward in time"):
        tracker.observe(10.0, {P0: Offsets(1, 1)}, has_members=True)


# -- LagMonitor on an in-memory broker --------------------------------------------


class MemoryReader:
    """Same interface as `LagReader`, answering from fields the test sets."""

    def __init__(self) -> None:
        self.started = False
        self.state = "Stable"
        self.members: tuple[Member, ...] = ()
        self.offsets: dict[Partition, Offsets] = {}
        self.timestamps: dict[Partition, dict[int, int]] = {}
        self.fetches: list[dict[Partition, int]] = []
        self.fail: Exception | None = None

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.started = False

    async def read_group(self, group: str, topics: Iterable[str] = ()) -> GroupOffsets:
        if self.fail is not None:
            raise self.fail
        return GroupOffsets(group, self.state, self.members, dict(self.offsets))

    async def record_timestamps(
        self, positions: Mapping[Partition, int], timeout_s: float = 3.0
    ) -> dict[Partition, int]:
        self.fetches.append(dict(positions))
        return {
            p: self.timestamps[p][off]
            for p, off in positions.items()
            if off in self.timestamps.get(p, {})
        }


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def monitor_with(
    reader: MemoryReader, clock: Clock, rules: StatusRules | None = None
) -> LagMonitor:
    monitor = LagMonitor("unused:9092", {"g": ("orders",)}, rules=rules, clock=clock)
    monitor.reader = reader  # type: ignore[assignment]
    return monitor


async def test_lag_seconds_is_now_minus_the_oldest_unprocessed_record() -> None:
    reader, clock = MemoryReader(), Clock(1_000.0)
    member = Member("m-1", "worker-a", "10.0.0.7", frozenset({P0}))
    reader.members = (member,)
    reader.offsets = {P0: Offsets(40, 50), P1: Offsets(9, 9)}
    reader.timestamps = {P0: {40: 990_500}}  # record 40 written at t=990.5s
    monitor = monitor_with(reader, clock)
    g = (await monitor.refresh())["g"]
    p0, p1 = g.partitions
    assert (p0.lag, p0.lag_seconds, p0.consumer_id, p0.client_id, p0.host) == (
        10, 9.5, "m-1", "worker-a", "10.0.0.7",
    )  # fmt: skip
    assert (p1.lag, p1.lag_seconds, p1.consumer_id) == (0, 0.0, None)
    assert reader.fetches == [{P0: 40}]  # caught-up partitions are never fetched
    assert (g.sum_lag, g.max_lag, g.max_lag_seconds, g.members) == (10, 10, 9.5, 1)


async def test_unchanged_committed_offset_reuses_the_timestamp_and_age_grows() -> None:
    reader, clock = MemoryReader(), Clock(1_000.0)
    reader.members = (Member("m", "c", "h", frozenset()),)
    reader.offsets = {P0: Offsets(40, 50)}
    reader.timestamps = {P0: {40: 995_000, 45: 998_000}}
    monitor = monitor_with(reader, clock)
    assert (await monitor.refresh())["g"].partitions[0].lag_seconds == 5.0
    clock.now = 1_004.0
    assert (await monitor.refresh())["g"].partitions[0].lag_seconds == 9.0
    assert reader.fetches == [{P0: 40}]
    reader.offsets = {P0: Offsets(45, 52)}
    clock.now = 1_006.0
    assert (await monitor.refresh())["g"].partitions[0].lag_seconds == 8.0
    assert reader.fetches == [{P0: 40}, {P0: 45}]


async def test_uncommitted_partition_age_comes_from_the_first_retained_record() -> None:
    reader, clock = MemoryReader(), Clock(2_000.0)
    reader.offsets = {P0: Offsets(None, 30, 12)}
    reader.timestamps = {P0: {12: 1_400_000}}
    g = (await monitor_with(reader, clock).refresh())["g"]
    assert (g.partitions[0].lag, g.partitions[0].lag_seconds) == (18, 600.0)
    assert g.status is Status.STOP


async def test_unreadable_record_leaves_lag_seconds_unknown_and_producer_skew_is_clamped() -> None:
    reader, clock = MemoryReader(), Clock(1_000.0)
    reader.offsets = {P0: Offsets(1, 5), P1: Offsets(1, 5)}
    reader.timestamps = {P1: {1: 1_000_900}}  # written "in the future" by a skewed producer
    g = (await monitor_with(reader, clock).refresh())["g"]
    assert g.partitions[0].lag_seconds is None
    assert g.partitions[1].lag_seconds == 0.0


async def test_monitor_status_follows_the_samples() -> None:
    reader, clock = MemoryReader(), Clock(1_000.0)
    reader.members = (Member("m", "c", "h", frozenset({P0})),)
    reader.timestamps = {P0: {100: 999_000}}
    monitor = monitor_with(reader, clock, StatusRules(window=5, stall_samples=3, warn_samples=3))
    statuses = []
    for end in (110, 120, 130):
        reader.offsets = {P0: Offsets(100, end)}
        clock.now += 5
        statuses.append((await monitor.refresh())["g"].status)
    assert statuses == [Status.OK, Status.OK, Status.STALL]
    reader.members = ()
    clock.now += 5
    assert (await monitor.refresh())["g"].status is Status.STOP


async def test_failed_refresh_drops_the_group_and_counts_the_error() -> None:
    reader, clock = MemoryReader(), Clock(1_000.0)
    reader.offsets = {P0: Offsets(1, 5)}
    monitor = monitor_with(reader, clock)
    assert "g" in await monitor.refresh()
    reader.fail = RuntimeError("coordinator not available")
    assert await monitor.refresh() == {}
    assert monitor.errors == {"g": 1}
    assert monitor.last_error == {"g": "RuntimeError: coordinator not available"}
    reader.fail = None
    assert "g" in await monitor.refresh()
    assert monitor.last_error == {}


def test_monitor_rejects_bad_groups() -> None:
    with pytest.raises(ValueError, match="at least one consumer group"):
        LagMonitor("k:9092", {})
    with pytest.raises(ValueError, match="non-empty strings"):
        LagMonitor("k:9092", {"": ()})


async def test_collector_exports_kafka_lag_exporter_names() -> None:
    reader, clock = MemoryReader(), Clock(1_000.0)
    reader.members = (Member("m", "c", "h", frozenset({P0, P1})),)
    reader.offsets = {P0: Offsets(40, 50, 3), P1: Offsets(None, 9, 2)}
    reader.timestamps = {P0: {40: 996_000}, P1: {2: 990_000}}
    monitor = monitor_with(reader, clock)
    await monitor.refresh()
    registry = CollectorRegistry()
    registry.register(LagCollector(monitor))
    text = generate_latest(registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    part0 = (("group", "g"), ("partition", "0"), ("topic", "orders"))
    part1 = (("group", "g"), ("partition", "1"), ("topic", "orders"))
    assert samples[("kafka_consumergroup_group_lag", part0)] == 10
    assert samples[("kafka_consumergroup_group_lag", part1)] == 7
    assert samples[("kafka_consumergroup_group_offset", part0)] == 40
    assert ("kafka_consumergroup_group_offset", part1) not in samples  # never committed
    assert samples[("kafka_consumergroup_group_lag_seconds", part0)] == 4.0
    assert samples[("kafka_consumergroup_group_lag_seconds", part1)] == 10.0
    tp0 = (("partition", "0"), ("topic", "orders"))
    assert samples[("kafka_partition_latest_offset", tp0)] == 50
    assert samples[("kafka_partition_earliest_offset", tp0)] == 3
    group = (("group", "g"),)
    assert samples[("kafka_consumergroup_group_sum_lag", group)] == 17
    assert samples[("kafka_consumergroup_group_topic_sum_lag", (*group, ("topic", "orders")))] == 17
    assert samples[("kafka_consumergroup_group_max_lag", group)] == 10
    assert samples[("kafka_consumergroup_group_max_lag_seconds", group)] == 10.0
    assert samples[("kafka_consumergroup_group_status", group)] == Status.OK
    assert samples[("kafka_consumergroup_group_members", group)] == 1
    assert samples[("creator_scores_lag_refresh_errors_total", group)] == 0
    assert samples[("creator_scores_lag_last_refresh_timestamp_seconds", group)] == 1_000.0
    exported = {name for name, _ in samples}
    assert exported <= set(LAG_METRICS)
    assert set(LAG_METRICS) == exported  # every declared name is really exported


async def test_failed_group_leaves_no_stale_series() -> None:
    reader, clock = MemoryReader(), Clock(1_000.0)
    reader.offsets = {P0: Offsets(40, 50)}
    monitor = monitor_with(reader, clock)
    await monitor.refresh()
    reader.fail = RuntimeError("boom")
    await monitor.refresh()
    registry = CollectorRegistry()
    registry.register(LagCollector(monitor))
    text = generate_latest(registry).decode()
    assert "kafka_consumergroup_group_lag{" not in text
    assert 'creator_scores_lag_refresh_errors_total{group="g"} 1.0' in text


async def test_table_shows_every_partition_with_its_figures() -> None:
    reader, clock = MemoryReader(), Clock(1_000.0)
    reader.state = "Empty"
    reader.offsets = {P0: Offsets(40, 50), P1: Offsets(None, 9)}
    reader.timestamps = {P0: {40: 880_000}, P1: {0: 999_000}}
    g = (await monitor_with(reader, clock).refresh())["g"]
    lines = render_table(g).splitlines()
    assert lines[0] == (
        "group g  state Empty  members 0  status STOP  lag 19  oldest unprocessed 2.0m"
    )
    assert lines[1].split() == [
        "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "LAG-SECONDS", "STATUS", "CONSUMER",
    ]  # fmt: skip
    assert lines[2].split() == ["orders", "0", "40", "50", "10", "120.0", "STOP", "-"]
    assert lines[3].split() == ["orders", "1", "-", "9", "9", "1.0", "STOP", "-"]
    assert lines[4].startswith("status: orders[0]: no active members while 10 records wait")
    assert g.to_dict()["partitions"] == [p.to_dict() for p in g.partitions]


def test_stall_rules_allow_for_the_longest_flush() -> None:
    # One flush commits once: an offset that stands still through a whole flush (and two
    # samples more) is a stall, not one that stands still for less.
    assert StatusRules.allowing(3.0, interval_s=5.0).stall_samples == 4  # the default
    assert StatusRules.allowing(30.0, interval_s=5.0).stall_samples == 8
    assert StatusRules.allowing(1e9, interval_s=5.0).stall_samples == StatusRules().window
    rules = StatusRules.allowing(30.0, interval_s=5.0)
    tracker = StatusTracker(rules)
    statuses = feed(tracker, [{P0: Offsets(100, 120 + 10 * i)} for i in range(9)])
    assert statuses[:7] == [Status.OK] * 7 and statuses[7] is Status.STALL


def test_the_worker_group_is_judged_by_its_flush_target() -> None:
    from streams.lag import LagMonitor
    from streams.settings import Settings

    quick = LagMonitor.for_settings(Settings(batch_target_s=1.0))
    slow = LagMonitor.for_settings(Settings(batch_target_s=20.0))
    assert quick.rules.stall_samples == 4
    assert slow.rules.stall_samples == StatusRules.allowing(60.0).stall_samples == 10
