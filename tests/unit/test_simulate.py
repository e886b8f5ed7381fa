"""The simulator's stream is deterministic, honours the event contracts, and looks like a market.

One stream of a few hundred creators over 28 simulated days is generated once
per module and examined from several angles: field contracts (and agreement
with `scoring.validate`), the habits that set creators apart, the heavy tail of
popularity, engagement and order re-sends, the configured shares of broken and
unkeyed records, the simulated clock, and that a creator's first post comes before
its tags and orders (no creator is scored without a region).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from scoring.names import UNKNOWN_REGION
from scoring.params import DEFAULT_PARAMS
from scoring.validate import ValidationError, parse_rfc3339_ms, validate
from streams.codec import RawRecord
from streams.devtools.replay import LineError, parse_line
from streams.devtools.simulate import (
    CONTENT_TYPES,
    DAY_MS,
    FAULTS,
    HABITS,
    REGION_CURRENCY,
    REGIONS,
    REQUIRED_FIELDS,
    THEMES,
    EventKind,
    SimConfig,
    SimEvent,
    SimTopics,
    Simulator,
    file_line,
    generate_events,
    local_price,
    parse_time_ms,
    plan_clock,
    usd_per_unit,
)
from streams.pipeline import Pipeline, PipelineConfig
from streams.sinks.base import CreatorSnapshot
from streams.state_store import DictStore

END_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
EVENTS = 120_000
CREATORS = 600
OPTIONAL_FIELDS: dict[str, set[str]] = {
    "post": {"brand_id", "observed_at"},
    "tag": {"campaign_id"},
    "order": {"post_id"},
}

Annotated = list[tuple[SimEvent, EventKind, str | None]]


@pytest.fixture(scope="module")
def sim() -> Simulator:
    s = Simulator(SimConfig(end_ms=END_MS, events=EVENTS, creators=CREATORS, seed=7))
    s.records = list(s.annotated())  # type: ignore[attr-defined]
    return s


@pytest.fixture(scope="module")
def records(sim: Simulator) -> Annotated:
    out: Annotated = sim.records  # type: ignore[attr-defined]
    return out


@pytest.fixture(scope="module")
def valid(records: Annotated) -> list[tuple[SimEvent, EventKind, dict[str, object]]]:
    return [(e, k, orjson.loads(e.value)) for e, k, f in records if f is None]


@pytest.fixture(scope="module")
def habit_of(sim: Simulator) -> dict[str, str]:
    return {c.creator_id: c.habit.name for c in sim.population.creators}


def _ms(value: object) -> int:
    if isinstance(value, int):
        return value
    assert isinstance(value, str)
    parsed = parse_rfc3339_ms(value)
    assert parsed is not None, value
    return parsed


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_and_another_seed_differs() -> None:
    config = SimConfig(end_ms=END_MS, events=5_000, creators=200, seed=11)
    first = list(generate_events(config))
    again = list(generate_events(config))
    other = list(generate_events(SimConfig(end_ms=END_MS, events=5_000, creators=200, seed=12)))
    assert first == again
    assert len(first) == 5_000
    assert [e.value for e in first] != [e.value for e in other]


def test_generated_count_is_exact_and_stats_match(sim: Simulator, records: Annotated) -> None:
    assert len(records) == EVENTS
    stats = sim.stats
    assert stats.total == EVENTS
    by_topic = Counter(e.topic for e, _, _ in records)
    assert dict(stats.by_topic) == dict(by_topic)
    assert set(by_topic) == {"posts", "shoppable-tags", "orders"}
    assert stats.malformed == sum(1 for _, _, f in records if f is not None)
    assert stats.unkeyed == sum(1 for e, _, _ in records if e.key is None)


def test_topics_come_from_config() -> None:
    topics = SimTopics(posts="p1", tags="t1", orders="o1")
    events = list(generate_events(SimConfig(end_ms=END_MS, events=2_000, topics=topics)))
    assert {e.topic for e in events} == {"p1", "t1", "o1"}


# --------------------------------------------------------------------------- contracts


def test_valid_records_follow_the_field_contracts(
    valid: list[tuple[SimEvent, EventKind, dict[str, object]]],
) -> None:
    currencies = set(REGION_CURRENCY.values())
    for event, kind, doc in valid:
        required = set(REQUIRED_FIELDS[kind])
        assert required <= doc.keys(), (kind, doc)
        assert doc.keys() <= required | OPTIONAL_FIELDS[kind], (kind, doc)
        assert isinstance(doc["creator_id"], str) and doc["creator_id"]
        if event.key is not None:
            assert event.key == doc["creator_id"].encode()  # type: ignore[union-attr]
        if kind == "post":
            assert doc["region"] in REGIONS
            assert doc["content_type"] in CONTENT_TYPES
            themes = doc["themes"]
            assert isinstance(themes, list) and themes and set(themes) <= set(THEMES)
            for name in ("views", "likes", "comments", "shares"):
                value = doc[name]
                assert isinstance(value, int) and value >= 0
            assert _ms(doc["observed_at"]) >= _ms(doc["posted_at"])
        elif kind == "tag":
            assert doc["theme"] in THEMES
            assert isinstance(doc["product_id"], str) and isinstance(doc["brand_id"], str)
            _ms(doc["tagged_at"])
        else:
            assert isinstance(doc["quantity"], int) and doc["quantity"] >= 1
            amount = doc["amount"]
            assert isinstance(amount, str) and Decimal(amount) > 0
            assert doc["currency"] in currencies
            assert doc["status"] in ("placed", "cancelled", "refunded")
            assert isinstance(doc["ordered_at"], int)
            assert doc["post_id"] is None or isinstance(doc["post_id"], str)


def test_scoring_validate_accepts_every_valid_record_and_rejects_every_fault(
    records: Annotated,
) -> None:
    now_ms = END_MS + 60_000
    problems: Counter[tuple[str, str]] = Counter()
    for event, kind, fault in records:
        try:
            payload = orjson.loads(event.value)
        except orjson.JSONDecodeError:
            assert fault in ("truncated_json", "wrong_encoding"), event.value[:200]
            continue
        result = validate(kind, payload, now_ms=now_ms, params=DEFAULT_PARAMS)
        if fault is None:
            assert not isinstance(result, ValidationError), (result, event.value[:300])
        else:
            assert isinstance(result, ValidationError), (fault, event.value[:300])
            problems[(fault, result.problem)] += 1
    # Each breakage is caught for the reason it was made.
    expected = {
        "missing_field": "missing",
        "empty_id": "empty",
        "negative_amount": "negative",
        "negative_counter": "negative",
        "unknown_currency": "unknown_currency",
        "bad_timestamp": "bad_timestamp",
        "future_timestamp": "future",
        "not_an_object": "not_an_object",
        "wrong_type": "wrong_type",
    }
    for (fault, problem), _ in problems.items():
        assert expected[fault] == problem, (fault, problem)


def test_every_fault_kind_occurs_and_the_share_is_close_to_configured() -> None:
    config = SimConfig(end_ms=END_MS, events=60_000, creators=300, malformed_share=0.05)
    sim = Simulator(config)
    faults = Counter(f for _, _, f in sim.annotated() if f is not None)
    share = sum(faults.values()) / 60_000
    assert 0.045 < share < 0.055
    assert set(faults) == {f for kind in FAULTS.values() for f in kind}


def test_default_malformed_and_unkeyed_shares(sim: Simulator, records: Annotated) -> None:
    malformed = sum(1 for _, _, f in records if f is not None) / EVENTS
    unkeyed = sum(1 for e, _, _ in records if e.key is None) / EVENTS
    assert 0.0040 < malformed < 0.0060
    assert 0.0085 < unkeyed < 0.0115


def test_no_breakage_when_share_is_zero() -> None:
    config = SimConfig(end_ms=END_MS, events=20_000, malformed_share=0.0, mis_keyed_share=0.0)
    for event, _, fault in Simulator(config).annotated():
        assert fault is None
        assert event.key is not None
        assert isinstance(orjson.loads(event.value), dict)


# --------------------------------------------------------------------------- regions


def _regionless_arrivals(config: SimConfig) -> list[tuple[int, str, str]]:
    """(index, kind, creator) of each valid tag or order that arrives while no post of its
    creator has arrived intact and keyed (an unkeyed one reaches the worker later, through
    the repartition topic): the worker would score that creator in region ZZ."""
    introduced: set[str] = set()
    out = []
    for i, (event, kind, fault) in enumerate(Simulator(config).annotated()):
        if fault is not None:
            continue
        creator = orjson.loads(event.value)["creator_id"]
        if kind == "post":
            if event.key is not None:
                introduced.add(creator)
        elif creator not in introduced:
            out.append((i, kind, creator))
    return out


@pytest.mark.parametrize(
    "config",
    [
        SimConfig(end_ms=END_MS, events=15_000, creators=300, seed=1),
        SimConfig(end_ms=END_MS, events=15_000, creators=300, seed=42),
        # A demo's start: many creators, the warm-up's follow-ups due at once, live pace.
        SimConfig(end_ms=END_MS, events=15_000, creators=3_000, seed=42,
                  backfill_events=600_000, live_step_ms=0.5),
        # Many first posts broken or unkeyed: their creators still get one through first.
        SimConfig(end_ms=END_MS, events=15_000, creators=500, seed=5, malformed_share=0.2,
                  mis_keyed_share=0.2),
    ],
    ids=["seed-1", "seed-42", "demo-start", "heavy-breakage"],
)  # fmt: skip
def test_a_creators_first_post_comes_before_its_tags_and_orders(config: SimConfig) -> None:
    assert _regionless_arrivals(config) == []


def test_the_stream_through_the_pipeline_never_shows_region_zz() -> None:
    """The first frames of a demo: small flushes of the stream's start, every card written
    has the creator's region (none sits on the boards under ZZ, region unknown)."""

    class Recorder:
        def __init__(self) -> None:
            self.batches: list[list[Any]] = []

        async def write(self, batch: list[Any]) -> None:
            self.batches.append(list(batch))

    config = SimConfig(end_ms=END_MS, events=4_000, creators=2_000, seed=42,
                       backfill_events=400_000, live_step_ms=0.5)  # fmt: skip
    topics = SimTopics()
    pipeline_config = PipelineConfig(
        kinds={topics.posts: "post", topics.tags: "tag", topics.orders: "order"},
        rekeyed_topic="rekeyed", changes_topic="changes", dead_letter_topic="dead",
        change_threshold=1.0,
    )  # fmt: skip
    redis_sink = Recorder()
    pipeline = Pipeline(pipeline_config, DEFAULT_PARAMS, DictStore(), redis_sink, Recorder(),
                        clock=lambda: END_MS / 1000 + 60)  # fmt: skip
    records = [RawRecord(e.topic, 0, i, e.key, e.value, END_MS)
               for i, e in enumerate(generate_events(config))]  # fmt: skip

    async def run() -> None:
        for start in range(0, len(records), 200):
            await pipeline.process(records[start : start + 200])

    asyncio.run(run())
    written: list[CreatorSnapshot] = [snap for batch in redis_sink.batches for snap in batch]
    assert len({snap.creator_id for snap in written}) > 500
    # A snapshot holds the fields that changed: the region whenever it is new.
    regions = Counter(snap.fields["region"] for snap in written if "region" in snap.fields)
    assert UNKNOWN_REGION not in regions, regions
    assert set(regions) == set(REGIONS)
    zz_boards = {b for snap in written for b in snap.set_boards if f":{UNKNOWN_REGION}" in b}
    assert not zz_boards


# --------------------------------------------------------------------------- population


def test_all_regions_with_their_currencies_and_price_magnitudes(
    valid: list[tuple[SimEvent, EventKind, dict[str, object]]],
) -> None:
    regions = {doc["region"] for _, kind, doc in valid if kind == "post"}
    assert regions == set(REGIONS)
    amounts: dict[str, list[Decimal]] = defaultdict(list)
    for _, kind, doc in valid:
        if kind == "order":
            amounts[str(doc["currency"])].append(
                Decimal(str(doc["amount"])) / int(str(doc["quantity"]))
            )
    assert set(amounts) == set(REGION_CURRENCY.values())
    medians = {c: statistics.median(v) for c, v in amounts.items()}
    # Shelf prices in each currency's own magnitude (a ~$20 item).
    assert Decimal(3) < medians["USD"] < Decimal(100)
    assert Decimal(2) < medians["GBP"] < Decimal(80)
    assert Decimal(15) < medians["MYR"] < Decimal(450)
    assert Decimal(150) < medians["PHP"] < Decimal(6_000)
    assert Decimal(50_000) < medians["IDR"] < Decimal(1_600_000)
    assert Decimal(80_000) < medians["VND"] < Decimal(2_500_000)
    for currency in ("IDR", "VND"):
        assert all(a % 1000 == 0 for a in amounts[currency])  # whole thousands


def test_local_prices_follow_shop_conventions() -> None:
    fx = usd_per_unit()
    assert str(local_price(19.5, "USD", fx)).endswith(".99")
    assert str(local_price(19.5, "MYR", fx)).endswith(".90")
    assert str(local_price(19.5, "PHP", fx)).endswith("9.00")
    assert local_price(19.5, "IDR", fx) % 1000 == 0


def test_the_population_holds_every_habit(sim: Simulator) -> None:
    habits = Counter(c.habit.name for c in sim.population.creators)
    assert set(habits) == {h.name for h in HABITS}
    for habit in HABITS:
        assert habits[habit.name] == pytest.approx(habit.share * CREATORS, abs=2)


def _posts_by_creator(
    valid: list[tuple[SimEvent, EventKind, dict[str, object]]],
) -> dict[str, dict[str, dict[str, object]]]:
    posts: dict[str, dict[str, dict[str, object]]] = defaultdict(dict)
    for _, kind, doc in valid:
        if kind == "post":
            posts[str(doc["creator_id"])][str(doc["post_id"])] = doc
    return posts


def test_habits_really_differ(
    valid: list[tuple[SimEvent, EventKind, dict[str, object]]], habit_of: dict[str, str]
) -> None:
    posts = _posts_by_creator(valid)
    tagged_posts: set[str] = set()
    campaign_tags: Counter[str] = Counter()
    all_tags: Counter[str] = Counter()
    orders: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for _, kind, doc in valid:
        habit = habit_of[str(doc["creator_id"])]
        if kind == "tag":
            tagged_posts.add(str(doc["post_id"]))
            all_tags[habit] += 1
            campaign_tags[habit] += "campaign_id" in doc
        elif kind == "order":
            orders[habit][str(doc["order_id"])].add(str(doc["status"]))

    post_count: Counter[str] = Counter()
    tagged: Counter[str] = Counter()
    collabs: Counter[str] = Counter()
    for creator, by_id in posts.items():
        habit = habit_of[creator]
        post_count[habit] += len(by_id)
        tagged[habit] += sum(1 for p in by_id if p in tagged_posts)
        collabs[habit] += sum(1 for d in by_id.values() if "brand_id" in d)

    def share(part: Counter[str], whole: Counter[str], habit: str) -> float:
        return part[habit] / whole[habit]

    # Diligent sellers tag most posts, brand-shy artists almost none.
    assert share(tagged, post_count, "diligent_seller") > 0.7
    assert share(tagged, post_count, "brand_shy_artist") < 0.15
    # Ambassadors do paid collaborations and answer campaigns; artists never.
    assert share(collabs, post_count, "brand_ambassador") > 0.45
    assert collabs["brand_shy_artist"] == 0
    assert share(campaign_tags, all_tags, "brand_ambassador") > 0.5
    assert share(campaign_tags, all_tags, "diligent_seller") < 0.2

    def refund_share(habit: str) -> float:
        by_order = orders[habit]
        returned = sum(1 for s in by_order.values() if s & {"refunded", "cancelled"})
        return returned / len(by_order)

    assert refund_share("refund_prone_seller") > 0.25
    assert refund_share("diligent_seller") < 0.08
    # Diligent sellers post more per creator than newcomers.
    per_creator = {
        h: post_count[h] / sum(1 for c in habit_of.values() if c == h) for h in post_count
    }
    assert per_creator["diligent_seller"] > 2 * per_creator["newcomer"]


def test_brand_shy_artists_get_more_engagement_per_view(
    valid: list[tuple[SimEvent, EventKind, dict[str, object]]], habit_of: dict[str, str]
) -> None:
    likes: Counter[str] = Counter()
    views: Counter[str] = Counter()
    for _, kind, doc in valid:
        if kind == "post":
            habit = habit_of[str(doc["creator_id"])]
            likes[habit] += int(str(doc["likes"]))
            views[habit] += int(str(doc["views"]))
    artist = likes["brand_shy_artist"] / views["brand_shy_artist"]
    seller = likes["diligent_seller"] / views["diligent_seller"]
    assert artist > 2 * seller


def test_irregular_posters_are_bursty_and_newcomers_start_late(
    sim: Simulator,
    valid: list[tuple[SimEvent, EventKind, dict[str, object]]],
    habit_of: dict[str, str],
) -> None:
    start = sim.config.start_ms
    days: dict[str, Counter[int]] = defaultdict(Counter)
    first_post: dict[str, int] = {}
    seen: set[object] = set()
    for _, kind, doc in valid:
        if kind != "post" or doc["post_id"] in seen:
            continue
        seen.add(doc["post_id"])
        creator = str(doc["creator_id"])
        t = _ms(doc["posted_at"])
        days[creator][(t - start) // DAY_MS] += 1
        first_post[creator] = min(first_post.get(creator, t), t)

    def dispersion(habit: str) -> float:
        # Variance over mean of daily post counts: 1 for steady (Poisson) posting.
        ratios = []
        for creator, h in habit_of.items():
            counts = [days[creator][d] for d in range(28)]
            if h == habit and sum(counts) >= 10:
                ratios.append(statistics.pvariance(counts) / statistics.mean(counts))
        return statistics.median(ratios)

    assert dispersion("diligent_seller") < 1.3
    assert dispersion("irregular_poster") > 1.5 * dispersion("diligent_seller")
    newcomer_starts = [
        (first_post[c] - start) / DAY_MS
        for c, h in habit_of.items()
        if h == "newcomer" and c in first_post
    ]
    assert min(newcomer_starts) > 20  # joined in the last week of 28 days


def test_views_follow_a_heavy_tail(
    valid: list[tuple[SimEvent, EventKind, dict[str, object]]],
) -> None:
    best: dict[str, int] = {}
    creator_of: dict[str, str] = {}
    for _, kind, doc in valid:
        if kind == "post":
            post = str(doc["post_id"])
            best[post] = max(best.get(post, 0), int(str(doc["views"])))
            creator_of[post] = str(doc["creator_id"])
    per_creator: Counter[str] = Counter()
    for post, views in best.items():
        per_creator[creator_of[post]] += views
    ranked = sorted(per_creator.values(), reverse=True)
    top_tenth = sum(ranked[: len(ranked) // 10])
    assert top_tenth / sum(ranked) > 0.5
    assert ranked[0] > 50 * statistics.median(ranked)


# --------------------------------------------------------------------------- re-sends


def test_engagement_updates_grow_on_the_same_post(
    valid: list[tuple[SimEvent, EventKind, dict[str, object]]],
) -> None:
    snapshots: dict[str, list[dict[str, object]]] = defaultdict(list)
    for _, kind, doc in valid:
        if kind == "post":
            snapshots[str(doc["post_id"])].append(doc)
    resent = {p: s for p, s in snapshots.items() if len({_ms(d["observed_at"]) for d in s}) > 1}
    assert len(resent) > len(snapshots) // 3
    static = ("creator_id", "region", "content_type", "themes", "posted_at")
    for docs in resent.values():
        ordered = sorted(docs, key=lambda d: _ms(d["observed_at"]))
        for a, b in itertools.pairwise(ordered):
            assert all(a[f] == b[f] for f in static)
            assert a.get("brand_id") == b.get("brand_id")
            for name in ("views", "likes", "comments", "shares"):
                assert int(str(a[name])) <= int(str(b[name]))
        assert int(str(ordered[-1]["views"])) > int(str(ordered[0]["views"]))


def test_orders_are_resent_with_a_new_status(
    valid: list[tuple[SimEvent, EventKind, dict[str, object]]],
) -> None:
    by_order: dict[str, list[dict[str, object]]] = defaultdict(list)
    for _, kind, doc in valid:
        if kind == "order":
            by_order[str(doc["order_id"])].append(doc)
    changed = {o: docs for o, docs in by_order.items() if len({d["status"] for d in docs}) > 1}
    assert len(changed) > 100
    for docs in changed.values():
        statuses = {d["status"] for d in docs}
        assert "placed" in statuses and len(statuses) == 2
        fixed = ("creator_id", "product_id", "amount", "currency", "ordered_at", "post_id")
        assert all(d[f] == docs[0][f] for d in docs for f in fixed)


def test_some_records_are_delivered_twice(sim: Simulator, records: Annotated) -> None:
    seen: Counter[bytes] = Counter(e.value for e, _, f in records if f is None)
    twice = sum(1 for n in seen.values() if n > 1)
    assert twice > 0
    assert sim.stats.duplicates == pytest.approx(EVENTS * 0.002, rel=0.35)


# --------------------------------------------------------------------------- clock


def test_event_time_spans_the_configured_days(sim: Simulator) -> None:
    stats = sim.stats
    assert stats.first_event_ms == END_MS - 28 * DAY_MS
    assert stats.last_event_ms is not None
    assert END_MS - DAY_MS // 24 < stats.last_event_ms <= END_MS


def test_no_valid_record_is_later_than_the_clock(
    sim: Simulator, valid: list[tuple[SimEvent, EventKind, dict[str, object]]]
) -> None:
    fields = {"post": "observed_at", "tag": "tagged_at", "order": "ordered_at"}
    assert max(_ms(doc[fields[kind]]) for _, kind, doc in valid) <= END_MS


def test_plan_for_a_fixed_count_unpaced() -> None:
    plan = plan_clock(now_ms=END_MS, rate=0, events=1000, duration_s=None, days=28, speedup=None)
    assert (plan.end_ms, plan.events, plan.backfill_events) == (END_MS, 1000, 1000)


def test_plan_for_a_paced_run_ends_with_the_wall_clock() -> None:
    plan = plan_clock(now_ms=END_MS, rate=100, events=None, duration_s=60, days=28, speedup=None)
    assert plan.events == 6000 and plan.backfill_events == 6000
    assert plan.end_ms == END_MS + 60_000  # where the wall clock is when the run ends


def test_plan_for_an_open_ended_run_backfills_then_goes_live() -> None:
    plan = plan_clock(now_ms=END_MS, rate=200, events=None, duration_s=0, days=28, speedup=None)
    assert plan.events is None
    assert plan.live_step_ms == 5.0
    assert plan.backfill_events == 200 * 300  # 28 days filled in the default 300 s
    config = SimConfig(
        end_ms=plan.end_ms, events=None, backfill_events=plan.backfill_events,
        live_step_ms=plan.live_step_ms, creators=50,
    )  # fmt: skip
    sim = Simulator(config)
    stream = iter(sim)
    for _ in range(plan.backfill_events + 20_000):
        next(stream)
    # 20,000 live records at 200/s are 100 s of wall time past the backfill.
    assert sim.stats.last_event_ms == pytest.approx(plan.end_ms + 100_000, abs=10)
    assert len(sim._heap) < 60_000  # live follow-ups come soon, so few wait


def test_plan_with_speedup_shortens_the_span_to_the_run() -> None:
    plan = plan_clock(now_ms=END_MS, rate=100, events=1000, duration_s=None, days=28, speedup=3600)
    # 1000 events at 100/s is 10 s of wall time: 10 simulated hours.
    assert plan.days == pytest.approx(10 / 24)
    assert plan.backfill_events == 1000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0, "events": None, "duration_s": 10}, "needs --events"),
        ({"rate": 0, "events": 10, "duration_s": None, "speedup": 5.0}, "--rate > 0"),
        ({"rate": -1, "events": 10, "duration_s": None}, "rate must be"),
        ({"rate": 10, "events": 10, "duration_s": None, "days": 0}, "days must be"),
    ],
)
def test_plan_rejects_knobs_that_do_not_fit(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"now_ms": END_MS, "days": 28.0, "speedup": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        plan_clock(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"creators": 0}, "creators"),
        ({"malformed_share": 1.0}, "malformed_share"),
        ({"events": None}, "backfill_events"),
        ({"days": float("nan")}, "days"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimConfig(end_ms=END_MS, **kwargs)  # type: ignore[arg-type]


def test_parse_time_ms_accepts_epoch_ms_and_rfc3339() -> None:
    assert parse_time_ms("1767225600000") == END_MS
    assert parse_time_ms("2026-01-01T00:00:00Z") == END_MS
    assert parse_time_ms("2026-01-01T07:00:00+07:00") == END_MS
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_time_ms("2026-01-01T00:00:00")
    with pytest.raises(ValueError, match="neither"):
        parse_time_ms("tomorrow")


# --------------------------------------------------------------------------- file format


def test_file_lines_round_trip_through_replay_parsing(records: Annotated) -> None:
    sample = [e for e, _, f in records[:3000]] + [e for e, _, f in records if f is not None]
    assert any(f == "wrong_encoding" for _, _, f in records)
    for event in sample:
        assert parse_line(file_line(event)) == event


def test_replay_parsing_accepts_objects_and_rejects_bad_lines(tmp_path: Path) -> None:
    line = b'{"topic": "posts", "key": null, "value": {"a": 1}}'
    assert parse_line(line) == SimEvent("posts", None, b'{"a":1}')
    assert parse_line(b"   \n") is None
    assert parse_line(b'{"topic":"posts","value":"x"}', {"posts": "p2"}) == SimEvent(
        "p2", None, b"x"
    )
    bad = {
        b"{not json": "not_json",
        b"[1, 2]": "not_an_object",
        b'{"key": "k", "value": "v"}': "bad_topic",
        b'{"topic": "t", "key": 5, "value": "v"}': "bad_key",
        b'{"topic": "t", "value": null}': "bad_value",
        b'{"topic": "t"}': "bad_value",
        b'{"topic": "t", "value": "v", "value_b64": "dg=="}': "bad_value",
        b'{"topic": "t", "value_b64": "***"}': "bad_value",
    }
    for raw, category in bad.items():
        with pytest.raises(LineError) as info:
            parse_line(raw)
        assert info.value.category == category, raw
