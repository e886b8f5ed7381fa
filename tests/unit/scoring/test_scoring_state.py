"""Rolling state: outcomes, idempotence, order-insensitivity, window, bytes."""

from __future__ import annotations

import dataclasses
import itertools
import random
import zlib
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scoring_testkit import CID, DAY_MS, T0, P, build, event_sets, order, post, tag, typical_creator

from scoring.events import Event, OrderEvent, PostEvent, TagEvent
from scoring.scores import score
from scoring.state import ApplyOutcome, CreatorState, _rows_struct

A, U, D, L = ApplyOutcome.APPLIED, ApplyOutcome.UPDATED, ApplyOutcome.DUPLICATE, ApplyOutcome.LATE


def outcomes(events: list[Event]) -> list[ApplyOutcome]:
    state = CreatorState.new(CID)
    return [state.apply(e, P) for e in events]


def test_new_state_is_empty() -> None:
    s = CreatorState.new("c9")
    assert (s.creator_id, s.region, s.watermark_ms, s.counts()) == ("c9", None, 0, (0, 0, 0))
    assert CreatorState.from_bytes(s.to_bytes()) == s


def test_outcomes_for_posts() -> None:
    first = post(views=100, observed=T0 + 10)
    newer = post(views=150, observed=T0 + 20)
    assert outcomes([first, first, newer, first, newer]) == [A, D, U, D, D]


def test_newest_observation_wins_even_with_smaller_counters() -> None:
    # A correction can lower a counter: observed_at, not size, decides.
    s = build([post(views=900, observed=T0 + 10), post(views=800, observed=T0 + 20)])
    assert s.stats(P).posts.views == 800
    s = build([post(views=800, observed=T0 + 20), post(views=900, observed=T0 + 10)])
    assert s.stats(P).posts.views == 800


def test_equal_observations_are_broken_by_larger_counters_in_any_order() -> None:
    a = post(views=500, likes=10, observed=T0 + 5)
    b = post(views=500, likes=12, observed=T0 + 5)
    assert build([a, b]).to_bytes() == build([b, a]).to_bytes()
    assert build([a, b]).stats(P).posts.likes == 12


def test_snapshots_replace_never_add() -> None:
    s = build([post(views=v, observed=T0 + v) for v in (100, 300, 200)])
    f = s.stats(P).posts
    assert (f.posts, f.views) == (1, 300)


def test_order_status_moves_one_way() -> None:
    placed, refunded = order(status="placed"), order(status="refunded")
    assert outcomes([placed, refunded, placed, refunded]) == [A, U, D, D]
    assert outcomes([refunded, placed]) == [A, D]
    s = build([refunded, placed])
    o = s.stats(P).orders
    assert (o.orders, o.placed, o.refunded, o.net_usd) == (1, 0, 1, 0.0)


def test_cancelled_and_refunded_orders_are_not_sales_but_are_remembered() -> None:
    s = build([
        order("o1", amount="10"), order("o2", amount="20"), order("o3", amount="40"),
        order("o2", amount="20", status="cancelled"), order("o3", amount="40", status="refunded"),
    ])  # fmt: skip
    o = s.stats(P).orders
    assert (o.orders, o.placed, o.cancelled, o.refunded, o.net_usd) == (3, 1, 1, 1, 10.0)


def test_currencies_are_converted_with_the_rate_table() -> None:
    s = build([order("o1", amount="1000000", currency="IDR"), order("o2", amount="2.5")])
    assert s.stats(P).orders.net_usd == pytest.approx(62.5)
    doubled = dataclasses.replace(
        P, fx_usd_per_unit={**P.fx_usd_per_unit, "IDR": Decimal("0.00012")}
    )
    assert s.stats(doubled).orders.net_usd == pytest.approx(122.5)


def test_tag_duplicates() -> None:
    t = tag()
    assert outcomes([t, t]) == [A, D]


def test_events_older_than_the_window_are_late_and_ignored() -> None:
    s = CreatorState.new(CID)
    assert s.apply(post("new", day=40), P) == A
    # Window: 28 UTC days ending on the watermark's day.
    assert s.apply(post("old", day=40 - 28), P) == L
    assert s.apply(order("o-old", day=12.9), P) == L
    assert s.apply(tag("t-edge", day=13.0), P) == A  # first day of the window
    assert s.counts() == (1, 1, 0)
    assert s.watermark_ms == T0 + 40 * DAY_MS


def test_buckets_fall_off_as_the_watermark_moves() -> None:
    s = build([post("p0", day=0), tag("t0", day=0.5), order("o0", day=1), post("p1", day=10)])
    assert s.counts() == (2, 1, 1)
    s.apply(post("p2", day=28.1), P)  # window now starts on day 1
    assert s.counts() == (2, 0, 1)
    s.apply(post("p3", day=40), P)  # window: days 13..40
    assert s.counts() == (2, 0, 0)
    day0 = T0 // DAY_MS
    assert s.day_buckets() == {day0 + 28: (1, 0, 0), day0 + 40: (1, 0, 0)}


def test_region_comes_from_the_newest_post_even_a_late_one() -> None:
    s = build([post("p1", day=1, region="US"), post("p2", day=3, region="GB")])
    assert s.region == "GB"
    s.apply(post("p3", day=2, region="MY"), P)
    assert s.region == "GB"
    t = build([tag("t1", day=40)])
    assert t.apply(post("p-old", day=1, region="PH"), P) == L
    assert t.region == "PH"


def test_events_of_another_creator_are_refused() -> None:
    with pytest.raises(ValueError, match="applied to state of"):
        CreatorState.new("someone-else").apply(post(), P)


def test_impossible_values_are_refused() -> None:
    s = CreatorState.new(CID)
    with pytest.raises(ValueError):
        s.apply(post(views=-1), P)
    with pytest.raises(ValueError):
        s.apply(dataclasses.replace(order(), status="lost"), P)  # type: ignore[arg-type]
    assert s.counts() == (0, 0, 0) and s.region is None


def test_stats_breakdowns_and_recent_window() -> None:
    s = build([
        post("a", day=0, views=100, themes=("beauty", "home"), content_type="video"),
        post("b", day=20, views=200, themes=("home",), content_type="photo", brand="b1"),
        post("c", day=27, views=400, themes=(), content_type="video"),
        tag("t1", post_id="b", day=20.5, campaign="camp", brand="b1"),
        order("o1", post_id="b", day=21, amount="5", theme="home"),
        order("o2", post_id=None, day=22, amount="7", theme="food"),
    ])  # fmt: skip
    w = s.stats(P)
    assert (w.posts.posts, w.posts.views, w.posts.collab_posts, w.posts.shoppable_posts) == (
        3, 700, 1, 1,
    )  # fmt: skip
    # The watermark is day 27, so the 7-day window is days 21..27.
    assert w.posts_recent.posts == 1 and w.posts_recent.views == 400
    assert {k: v.views for k, v in w.posts_by_theme.items()} == {"beauty": 100, "home": 300}
    assert {k: v.posts for k, v in w.posts_by_content_type.items()} == {"photo": 1, "video": 2}
    assert w.posts_by_content_type["video"].expected_views == 2 * P.peer("video").views_per_post
    assert w.daily_posts[0] == 1 and w.daily_posts[20] == 1 and w.daily_posts[27] == 1
    assert (w.active_days, w.active_days_recent, w.week_blocks()) == (3, 1, (1, 0, 1, 1))
    assert (w.tags, w.tags_recent, w.campaign_tags, w.campaigns) == (1, 0, 1, 1)
    assert w.orders.net_usd == 12.0
    assert {k: v.net_usd for k, v in w.orders_by_theme.items()} == {"food": 7.0, "home": 5.0}
    assert {k: v.placed for k, v in w.orders_by_content_type.items()} == {"photo": 1}
    b1 = w.brands["b1"]
    assert (b1.collab_posts, b1.tags, b1.campaign_tags, b1.content_days, b1.early, b1.late) == (
        1, 1, 1, 1, False, True,
    )  # fmt: skip
    assert w.brands["brand-a"].placed_orders == 2 and w.brands["brand-a"].content_days == 0


# --- bytes ---------------------------------------------------------------------------


def test_round_trip_is_exact() -> None:
    s = build(typical_creator())
    data = s.to_bytes()
    back = CreatorState.from_bytes(data)
    assert back.to_bytes() == data
    assert back.stats(P) == s.stats(P)
    assert (back.region, back.watermark_ms, back.counts()) == (s.region, s.watermark_ms, s.counts())
    assert score(back, P) == score(s, P)


def test_state_keeps_working_after_a_round_trip() -> None:
    events = typical_creator()
    half = len(events) // 2
    s = CreatorState.from_bytes(build(events[:half]).to_bytes())
    for e in events[half:]:
        s.apply(e, P)
    assert s.to_bytes() == build(events).to_bytes()


def test_typical_creator_fits_the_budget() -> None:
    s = build(typical_creator())
    posts, tags, orders = s.counts()
    assert posts == 28 and tags >= 12 and orders >= 12
    assert len(s.to_bytes()) < 2048


def test_heavy_creator_is_compressed_and_round_trips() -> None:
    rng = random.Random(7)
    events: list[Event] = []
    for d in range(28):
        for k in range(6):
            events.append(post(f"p{d}-{k}", day=d + k / 10, views=rng.randrange(10**6),
                               themes=(rng.choice(["a", "b", "c"]),)))  # fmt: skip
        for k in range(30):
            events.append(order(f"o{d}-{k}", post_id=f"p{d}-0", day=d + 0.7,
                                amount=f"{rng.randrange(100, 99999)}.{rng.randrange(100):02d}",
                                currency=rng.choice(["USD", "IDR", "VND"])))  # fmt: skip
    s = build(events)
    data = s.to_bytes()
    assert data[3] == 1  # zlib flag
    assert CreatorState.from_bytes(data).to_bytes() == data


@pytest.mark.parametrize(
    "blob",
    [b"", b"CS", b"XX\x01\x00\x00\x00\x00\x00", b"CS\x09\x00abcd1234", b"CS\x01\x80abcd1234",
     b"CS\x01\x01not zlib at all"],
)  # fmt: skip
def test_garbage_is_a_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match="corrupt creator state"):
        CreatorState.from_bytes(blob)


def test_non_bytes_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected bytes"):
        CreatorState.from_bytes("CS")  # type: ignore[arg-type]


def test_every_truncation_and_bit_flip_is_detected() -> None:
    data = build(typical_creator()[:40]).to_bytes()
    for n in range(len(data)):
        with pytest.raises(ValueError):
            CreatorState.from_bytes(data[:n])
    for i in range(len(data)):
        for bit in (0, 3, 7):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            with pytest.raises(ValueError):
                CreatorState.from_bytes(bytes(flipped))


def _with_crc(body: bytes) -> bytes:
    return b"CS\x01\x00" + body + zlib.crc32(body).to_bytes(4, "little")


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300))
def test_well_checksummed_nonsense_is_still_refused_or_valid(body: bytes) -> None:
    # Past the checksum, the decoder itself must reject inconsistent content.
    try:
        s = CreatorState.from_bytes(_with_crc(body))
    except ValueError:
        return
    s.stats(P)
    s.to_bytes()


# --- idempotence and order-insensitivity ----------------------------------------------


@settings(max_examples=150, deadline=None)
@given(events=event_sets(), data=st.data())
def test_duplicates_and_reordering_change_nothing(events: list[Event], data: st.DataObject) -> None:
    reference = build(events)
    shuffled = data.draw(st.permutations(events))
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=5)) if events else []
    other = build([*shuffled, *dupes])
    assert other.to_bytes() == reference.to_bytes()
    assert score(other, P) == score(reference, P)
    assert score(other, P).to_dict() == score(reference, P).to_dict()


@settings(max_examples=150, deadline=None)
@given(events=event_sets())
def test_serialisation_round_trips(events: list[Event]) -> None:
    s = build(events)
    data = s.to_bytes()
    back = CreatorState.from_bytes(data)
    assert back.to_bytes() == data
    assert back.stats(P) == s.stats(P)


def _rank_post(e: PostEvent) -> tuple[object, ...]:
    obs = -1 if e.observed_at_ms is None else e.observed_at_ms
    return (obs, e.views, e.likes, e.comments, e.shares, e.posted_at_ms, e.content_type,
            e.themes, e.brand_id or "")  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(events=event_sets())
def test_stats_match_a_from_scratch_reference(events: list[Event]) -> None:
    """Recompute the window figures naively from the event list and compare."""
    s = build(events)
    w = s.stats(P)
    if not events:
        assert w.posts.posts == 0
        return
    watermark = max(e.event_time_ms for e in events)
    assert s.watermark_ms == watermark
    first_day = watermark // DAY_MS - P.window_days + 1
    in_window = [e for e in events if e.event_time_ms // DAY_MS >= first_day]
    posts: dict[str, PostEvent] = {}
    for e in in_window:
        if isinstance(e, PostEvent) and (
            e.post_id not in posts or _rank_post(e) > _rank_post(posts[e.post_id])
        ):
            posts[e.post_id] = e
    tags = {e.tag_id: e for e in in_window if isinstance(e, TagEvent)}
    rank = {"placed": 0, "cancelled": 1, "refunded": 2}
    orders: dict[str, OrderEvent] = {}
    for e in in_window:
        if isinstance(e, OrderEvent) and (
            e.order_id not in orders or rank[e.status] > rank[orders[e.order_id].status]
        ):
            orders[e.order_id] = e
    tagged = {t.post_id for t in tags.values()}
    assert w.posts.posts == len(posts)
    assert w.posts.views == sum(p.views for p in posts.values())
    assert w.posts.engagements == sum(p.likes + p.comments + p.shares for p in posts.values())
    assert w.posts.shoppable_posts == sum(1 for p in posts if p in tagged)
    assert w.posts.collab_posts == sum(1 for p in posts.values() if p.brand_id)
    assert sum(w.daily_posts) == len(posts)
    assert w.tags == len(tags)
    assert w.campaigns == len({t.campaign_id for t in tags.values() if t.campaign_id})
    assert w.orders.orders == len(orders)
    assert w.orders.refunded == sum(1 for o in orders.values() if o.status == "refunded")
    placed = [o for o in orders.values() if o.status == "placed"]
    usd = sum(o.amount * P.fx_usd_per_unit[o.currency] for o in placed)
    assert w.orders.net_usd == pytest.approx(float(usd), rel=1e-12, abs=1e-9)
    for theme, f in w.posts_by_theme.items():
        assert f.posts == sum(1 for p in posts.values() if theme in p.themes)


# --- format 2 decoding, format 1 still read ---------------------------------------------


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=400), header=st.binary(min_size=45, max_size=45))
def test_well_checksummed_format_2_nonsense_is_refused_or_valid(body: bytes, header: bytes) -> None:
    data = header + body
    blob = b"CS\x02\x00" + data + zlib.crc32(data).to_bytes(4, "little")
    try:
        s = CreatorState.from_bytes(blob)
    except ValueError:
        return
    s.stats(P)
    assert CreatorState.from_bytes(s.to_bytes()).to_bytes() == s.to_bytes()


def test_every_truncation_and_bit_flip_of_a_big_state_is_detected() -> None:
    data = build(typical_creator()).to_bytes()
    for n in range(0, len(data), 7):
        with pytest.raises(ValueError):
            CreatorState.from_bytes(data[:n])
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 1 << (i % 8)
        with pytest.raises(ValueError):
            CreatorState.from_bytes(bytes(flipped))


def _forged(mutate: Callable[[CreatorState], None]) -> bytes:
    """Well-checksummed bytes of content to_bytes never writes (the state's write cache
    is tampered with, so the encoder itself writes the bad form)."""
    s = build(typical_creator()[:60])
    s.to_bytes()
    mutate(s)
    return s.to_bytes()


def _unused_string(s: CreatorState) -> None:
    s._enc.set_table(sorted([*s._enc.table, "zz-unused"]))  # type: ignore[union-attr]
    s._dirty = 7


def _unused_campaign(s: CreatorState) -> None:
    s._enc.set_campaigns(sorted([*s._enc.campaigns, 7]))  # type: ignore[union-attr]
    s._dirty = 2


def _repack(s: CreatorState, codes: bytes, hashes: list[int]) -> None:
    enc = s._enc
    assert enc is not None
    rows = [enc.tuples[0][h] for h in hashes]
    enc.set_codes(0, codes)
    enc.rows[0] = bytearray(_rows_struct(codes, len(rows)).pack(*itertools.chain(*rows)))


def _wider_than_needed(s: CreatorState) -> None:
    assert s._enc is not None
    codes = bytearray(s._enc.codes[0])
    codes[4] = 3  # views in 8 bytes
    _repack(s, bytes(codes), s._enc.hashes[0])


def _out_of_order(s: CreatorState) -> None:
    assert s._enc is not None
    hashes = list(s._enc.hashes[0])
    hashes[0], hashes[1] = hashes[1], hashes[0]
    _repack(s, s._enc.codes[0], hashes)


def _amount_not_canonical(s: CreatorState) -> None:
    h, o = next((h, o) for h, o in s._orders.items() if o[9] > 0)
    s._orders[h] = (*o[:8], o[8] * 10, o[9] - 1)
    s._dirty = 4


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (_unused_string, "unused string"),
        (_unused_campaign, "unused campaign"),
        (_wider_than_needed, "narrowest"),
        (_out_of_order, "hash order"),
        (_amount_not_canonical, "amount not canonical"),
    ],
)
def test_non_canonical_content_is_refused(
    mutate: Callable[[CreatorState], None], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        CreatorState.from_bytes(_forged(mutate))


def test_states_written_in_format_1_are_still_read() -> None:
    import json
    from pathlib import Path

    here = Path(__file__).parent
    old = json.loads((here / "golden_states_v1.json").read_text(encoding="utf-8"))
    golden = {c["name"]: c for c in json.loads((here / "golden_scorecards.json").read_text())}
    assert len(old) >= 8
    for case in old:
        blob = bytes.fromhex(case["v1_hex"])
        assert blob[2] == 1
        state = CreatorState.from_bytes(blob)
        want = golden[case["name"]]
        assert score(state, P).to_dict() == want["cards"][-1], case["name"]
        data = state.to_bytes()  # now format 2, the bytes the fixture pins
        assert data[2] == 2 and len(data) == want["bytes_len"], case["name"]
        assert CreatorState.from_bytes(data).to_bytes() == data
