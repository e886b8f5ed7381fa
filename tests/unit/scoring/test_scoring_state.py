"""Rolling state: outcomes, idempotence, order-insensitivity, the window, and the bytes."""

from __future__ import annotations

import dataclasses
import random
import zlib
from collections.abc import Callable, Iterator
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scoring_testkit import (
    CID,
    DAY_MS,
    T0,
    P,
    build,
    build_one_by_one,
    by_name,
    event_sets,
    order,
    post,
    tag,
    totals,
    typical_creator,
)

from scoring import packed
from scoring.events import Event, OrderEvent, PostEvent, TagEvent
from scoring.merge import Outcome
from scoring.state import CreatorState, score
from scoring.vocab import Vocabulary

A, U, D, L = Outcome.APPLIED, Outcome.UPDATED, Outcome.DUPLICATE, Outcome.LATE


def outcomes(events: list[Event]) -> list[Outcome]:
    state = CreatorState.new(CID)
    return [state.apply(e, P) for e in events]


def test_new_state_is_empty() -> None:
    s = CreatorState.new("c9")
    assert (s.creator_id, s.region, s.watermark_ms, s.counts()) == ("c9", None, 0, (0, 0, 0))
    assert CreatorState.from_bytes("c9", s.to_bytes()) == s


def test_outcomes_for_posts() -> None:
    first = post(views=100, observed=T0 + 10)
    newer = post(views=150, observed=T0 + 20)
    assert outcomes([first, first, newer, first, newer]) == [A, D, U, D, D]


def test_outcomes_within_one_flush_are_those_of_one_event_at_a_time() -> None:
    first = post(views=100, observed=T0 + 10)
    newer = post(views=150, observed=T0 + 20)
    s = CreatorState.new(CID)
    assert s.apply_all([first, first, newer, first, newer], P) == [A, D, U, D, D]


def test_newest_observation_wins_even_with_smaller_counters() -> None:
    # A correction can lower a counter: observed_at, not size, decides.
    s = build([post(views=900, observed=T0 + 10), post(views=800, observed=T0 + 20)])
    assert totals(s).posts.views[0] == 800
    s = build([post(views=800, observed=T0 + 20), post(views=900, observed=T0 + 10)])
    assert totals(s).posts.views[0] == 800


def test_equal_observations_are_broken_by_larger_counters_in_any_order() -> None:
    a = post(views=500, likes=10, observed=T0 + 5)
    b = post(views=500, likes=12, observed=T0 + 5)
    assert build([a, b]).to_bytes() == build([b, a]).to_bytes()
    assert totals(build([a, b])).posts.engagements[0] == 12 + 30 + 10


def test_snapshots_replace_never_add() -> None:
    s = build([post(views=v, observed=T0 + v) for v in (100, 300, 200)])
    f = totals(s).posts
    assert (f.posts[0], f.views[0]) == (1, 300)


def test_order_status_moves_one_way() -> None:
    placed, refunded = order(status="placed"), order(status="refunded")
    assert outcomes([placed, refunded, placed, refunded]) == [A, U, D, D]
    assert outcomes([refunded, placed]) == [A, D]
    t = totals(build([refunded, placed]))
    assert (t.orders[0], t.placed[0], t.refunded[0], t.net_usd[0]) == (1, 0, 1, 0.0)


def test_cancelled_and_refunded_orders_are_not_sales_but_are_remembered() -> None:
    t = totals(build([
        order("o1", amount="10"), order("o2", amount="20"), order("o3", amount="40"),
        order("o2", amount="20", status="cancelled"), order("o3", amount="40", status="refunded"),
    ]))  # fmt: skip
    got = (t.orders[0], t.placed[0], t.cancelled[0], t.refunded[0], t.net_usd[0])
    assert got == (3, 1, 1, 1, 10.0)


def test_currencies_are_converted_with_the_rate_table() -> None:
    s = build([order("o1", amount="1000000", currency="IDR"), order("o2", amount="2.5")])
    assert totals(s).net_usd[0] == pytest.approx(62.5)
    doubled = dataclasses.replace(
        P, fx_usd_per_unit={**P.fx_usd_per_unit, "IDR": Decimal("0.00012")}
    )
    assert totals(s, doubled).net_usd[0] == pytest.approx(122.5)


def test_net_sales_past_64_bits_are_exact() -> None:
    # Sums of rate x millionths pass 2**63 here; they are summed as Python integers.
    big = [order(f"o{i}", amount="999999999999.999999", currency="GBP") for i in range(30)]
    exact = sum(Decimal("999999999999.999999") for _ in range(30)) * Decimal("1.31")
    assert totals(build(big)).net_usd[0] == float(exact)


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


def test_an_event_late_only_after_others_of_its_flush_is_late() -> None:
    # One flush: the second event moves the watermark, the third arrives after it.
    s = CreatorState.new(CID)
    got = s.apply_all([post("a", day=1), post("b", day=40), post("c", day=2)], P)
    assert got == [A, A, L]
    assert s.counts() == (1, 0, 0)  # "a" fell out of the window when "b" arrived


def test_buckets_fall_off_as_the_watermark_moves() -> None:
    s = build([post("p0", day=0), tag("t0", day=0.5), order("o0", day=1), post("p1", day=10)])
    assert s.counts() == (2, 1, 1)
    s.apply(post("p2", day=28.1), P)  # window now starts on day 1
    assert s.counts() == (2, 0, 1)
    s.apply(post("p3", day=40), P)  # window: days 13..40
    assert s.counts() == (2, 0, 0)
    day0 = T0 // DAY_MS
    assert sorted(s.columns.posts["day"].tolist()) == [day0 + 28, day0 + 40]


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
    with pytest.raises(ValueError):
        s.apply(post(themes=("a\x01b",)), P)
    assert s.counts() == (0, 0, 0) and s.region is None


def test_window_figures_breakdowns_and_recent_window() -> None:
    s = build([
        post("a", day=0, views=100, themes=("beauty", "home"), content_type="video"),
        post("b", day=20, views=200, themes=("home",), content_type="photo", brand="b1"),
        post("c", day=27, views=400, themes=(), content_type="video"),
        tag("t1", post_id="b", day=20.5, campaign="camp", brand="b1"),
        order("o1", post_id="b", day=21, amount="5", theme="home"),
        order("o2", post_id=None, day=22, amount="7", theme="food"),
    ])  # fmt: skip
    t = totals(s)
    got = (t.posts.posts[0], t.posts.views[0], t.collab_posts[0], t.shoppable[0])
    assert got == (3, 700, 1, 1)
    # The watermark is day 27, so the 7-day window is days 21..27: "b" (day 20) is not in it.
    assert (t.shoppable_recent[0], t.active_days[0], t.active_days_recent[0]) == (0, 3, 1)
    # Weeks counted back from day 27: 21..27, 14..20, 7..13, 0..6 -> three with posts.
    assert (t.active_weeks[0], t.weeks) == (3, 4)
    theme = t.by_theme
    assert by_name(s, theme.key, theme.posts.views.tolist()) == {"beauty": 100, "home": 300}
    kind = t.by_content_type
    assert by_name(s, kind.key, kind.posts.posts.tolist()) == {"photo": 1, "video": 2}
    video = kind.key.tolist().index(s.vocab.code("video"))
    assert kind.posts.expected_views[video] == 2 * P.peer("video").views_per_post
    assert t.campaigns[0] == 1 and t.net_usd[0] == 12.0
    assert by_name(s, theme.key, theme.orders.net_usd.tolist()) == {"beauty": 0.0, "home": 5.0}
    assert by_name(s, kind.key, kind.orders.placed.tolist()) == {"photo": 1, "video": 0}
    # b1: one collaboration post and one tag on day 20 (late half only); brand-a: orders only.
    got = (t.brands[0], t.partners[0], t.repeat_brands[0], t.lasting[0], t.selling[0])
    assert got == (2, 1, 0, 0, 0)
    assert t.depth[0] == 1.0


# --- bytes ---------------------------------------------------------------------------


def test_round_trip_is_exact() -> None:
    s = build(typical_creator())
    data = s.to_bytes()
    back = CreatorState.from_bytes(CID, data)
    assert back.to_bytes() == data
    assert (back.region, back.watermark_ms, back.counts()) == (s.region, s.watermark_ms, s.counts())
    assert score(back, P) == score(s, P)


def test_bytes_read_into_another_worker_give_the_same_bytes() -> None:
    from scoring.vocab import Vocabulary

    s = build(typical_creator())
    data = s.to_bytes()
    other = Vocabulary()
    other.codes(["zzz", "beauty", "aaa"])  # another worker's names, in another order
    back = CreatorState.from_bytes(CID, data, other)
    assert back.to_bytes() == data
    assert score(back, P).to_dict() == score(s, P).to_dict()


def test_state_keeps_working_after_a_round_trip() -> None:
    events = typical_creator()
    half = len(events) // 2
    s = CreatorState.from_bytes(CID, build(events[:half]).to_bytes())
    s.apply_all(events[half:], P)
    assert s.to_bytes() == build(events).to_bytes()


def test_typical_creator_fits_the_budget() -> None:
    s = build(typical_creator())
    posts, tags, orders = s.counts()
    assert posts == 28 and tags >= 12 and orders >= 12
    assert len(s.to_bytes()) < 1500


def _heavy() -> CreatorState:
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
    return build(events)


def test_heavy_creator_is_compressed_and_round_trips() -> None:
    data = _heavy().to_bytes()
    assert data[3] & packed.FLAG_ZLIB
    assert CreatorState.from_bytes(CID, data).to_bytes() == data


@pytest.mark.parametrize(
    "blob",
    [b"", b"CS", b"XX\x03\x00\x00\x00\x00\x00", b"CS\x09\x00abcd1234", b"CS\x03\x80abcd1234",
     b"CS\x03\x01not zlib at all", b"CS\x02\x00abcd1234"],
)  # fmt: skip
def test_garbage_is_a_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match="corrupt creator state"):
        CreatorState.from_bytes(CID, blob)


def test_an_older_format_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="state format 2, this worker reads format 3"):
        CreatorState.from_bytes(CID, b"CS\x02\x00abcd1234")


def test_non_bytes_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected bytes"):
        CreatorState.from_bytes(CID, "CS")  # type: ignore[arg-type]


def _flips(data: bytes, step: int = 1) -> Iterator[bytes]:
    for i in range(0, len(data), step):
        for bit in (0, 3, 7):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            yield bytes(flipped)


def test_every_truncation_and_bit_flip_is_detected() -> None:
    for data in (build(typical_creator()[:40]).to_bytes(), _heavy().to_bytes()[:3000]):
        for n in range(len(data)):
            with pytest.raises(ValueError):
                CreatorState.from_bytes(CID, data[:n])
    data = build(typical_creator()[:40]).to_bytes()
    for flipped in _flips(data):
        with pytest.raises(ValueError):
            CreatorState.from_bytes(CID, flipped)


def _with_crc(body: bytes, flags: int = 0) -> bytes:
    return b"CS\x03" + bytes((flags,)) + body + zlib.crc32(body).to_bytes(4, "little")


def _body(data: bytes) -> bytes:
    body = data[4:-4]
    return zlib.decompress(body) if data[3] & packed.FLAG_ZLIB else body


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), header=st.binary(min_size=40, max_size=40))
def test_well_checksummed_nonsense_is_refused_or_canonical(body: bytes, header: bytes) -> None:
    # Past the checksum, the decoder itself must reject inconsistent content; what it
    # accepts is exactly what the encoder writes.
    blob = _with_crc(header + body)
    try:
        s = CreatorState.from_bytes(CID, blob)
    except ValueError:
        return
    s.scores(P)
    assert s.to_bytes() == blob


@settings(max_examples=200, deadline=None)
@given(events=event_sets(), data=st.data())
def test_edited_states_are_refused_or_canonical(events: list[Event], data: st.DataObject) -> None:
    """Well-checksummed edits of real states: refused, or exactly what the encoder writes."""
    body = bytearray(_body(build(events).to_bytes()))
    if not body:
        return
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    blob = _with_crc(bytes(body), packed.FLAG_SIZED if data.draw(st.booleans()) else 0)
    try:
        s = CreatorState.from_bytes(CID, blob)
    except ValueError:
        return
    s.scores(P)
    assert s.to_bytes() == blob


def _forged(
    monkeypatch: pytest.MonkeyPatch, edit: Callable[[pytest.MonkeyPatch], None], events: slice
) -> bytes:
    """Well-checksummed bytes of content `encode` never writes (the encoder is patched)."""
    s = build(typical_creator()[events])
    with monkeypatch.context() as m:
        edit(m)
        return s.to_bytes()


def _recoded(m: pytest.MonkeyPatch, change: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """The encoder writes `change(codes, counts)` as the column codes of every creator."""
    real = packed._width_codes

    def codes(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        return change(real(values, starts, counts), counts)  # type: ignore[arg-type]

    m.setattr(packed, "_width_codes", codes)


def _wider_than_needed(m: pytest.MonkeyPatch) -> None:
    # Per-row columns one width wider (1, 2, 4 bytes -> 2, 4, 8).
    _recoded(m, lambda c, _: np.where((c >= 1) & (c <= 3), c + 1, c))


def _constant_per_row(m: pytest.MonkeyPatch) -> None:
    # A column whose values are all the same, stored in every row.
    _recoded(m, lambda c, _: np.where(c >= 5, c - 4, c))


def _zero_per_row(m: pytest.MonkeyPatch) -> None:
    # A column of zeros stored in every row, one byte each.
    _recoded(m, lambda c, counts: np.where((c == 0) & (counts > 0), 1, c))


def _out_of_order(m: pytest.MonkeyPatch) -> None:
    real = packed._section

    def swapped(n: int, creator: object, columns: dict[str, np.ndarray]) -> object:
        if len(columns["h"]) > 1:
            columns = {k: v[[1, 0, *range(2, len(v))]] for k, v in columns.items()}
        return real(n, creator, columns)  # type: ignore[arg-type]

    m.setattr(packed, "_section", swapped)


def _amount_not_canonical(m: pytest.MonkeyPatch) -> None:
    real = packed._decimal

    def padded(micros: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mantissa, exponent = real(micros)  # type: ignore[arg-type]
        pad = exponent > 0
        return np.where(pad, mantissa * 10, mantissa), np.where(pad, exponent - 1, exponent)

    m.setattr(packed, "_decimal", padded)


def _unused_name(m: pytest.MonkeyPatch) -> None:
    real = packed._NameTables.texts

    def more(self: packed._NameTables, vocab: object, regions: object) -> object:
        out = real(self, vocab, regions)  # type: ignore[arg-type]
        self.counts = self.counts + 1
        return [(text + b"\x00zz-unused", sized) for text, sized in out]

    m.setattr(packed._NameTables, "texts", more)


_FIRST_60 = slice(0, 60)
#: Days 1-4 of the typical creator: no post there names a brand (a column of zeros).
_BRANDLESS = slice(4, 20)


@pytest.mark.parametrize(
    ("edit", "problem", "events"),
    [
        (_wider_than_needed, "narrowest", _FIRST_60),
        (_constant_per_row, "narrowest", _FIRST_60),
        (_zero_per_row, "narrowest", _BRANDLESS),
        (_out_of_order, "hash order", _FIRST_60),
        (_amount_not_canonical, "amount not canonical", _FIRST_60),
        (_unused_name, "unused name", _FIRST_60),
    ],
)
def test_non_canonical_content_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    edit: Callable[[pytest.MonkeyPatch], None],
    problem: str,
    events: slice,
) -> None:
    assert CreatorState.from_bytes(CID, build(typical_creator()[events]).to_bytes())
    with pytest.raises(ValueError, match=problem):
        CreatorState.from_bytes(CID, _forged(monkeypatch, edit, events))


# --- idempotence and order-insensitivity ----------------------------------------------


@settings(max_examples=150, deadline=None)
@given(events=event_sets(), data=st.data())
def test_duplicates_and_reordering_change_nothing(events: list[Event], data: st.DataObject) -> None:
    reference = build(events)
    shuffled = data.draw(st.permutations(events))
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=5)) if events else []
    other = build([*shuffled, *dupes])
    assert other.to_bytes() == reference.to_bytes()
    assert score(other, P).to_dict() == score(reference, P).to_dict()


@settings(max_examples=150, deadline=None)
@given(events=event_sets(), data=st.data())
def test_any_split_into_flushes_gives_the_outcomes_of_one_at_a_time(
    events: list[Event], data: st.DataObject
) -> None:
    one_by_one = CreatorState.new(CID)
    expected = [one_by_one.apply(e, P) for e in events]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=4)))
    flushed = CreatorState.new(CID)
    got: list[Outcome] = []
    for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True):
        got.extend(flushed.apply_all(events[a:b], P))
    assert got == expected
    assert flushed.to_bytes() == one_by_one.to_bytes()


@settings(max_examples=150, deadline=None)
@given(events=event_sets())
def test_serialisation_round_trips(events: list[Event]) -> None:
    s = build(events)
    data = s.to_bytes()
    back = CreatorState.from_bytes(CID, data)
    assert back.to_bytes() == data
    assert score(back, P).to_dict() == score(s, P).to_dict()


def _rank_post(e: PostEvent) -> tuple[object, ...]:
    obs = -1 if e.observed_at_ms is None else e.observed_at_ms
    return (obs, e.views, e.likes, e.comments, e.shares, e.posted_at_ms, e.content_type,
            e.themes, e.brand_id or "")  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(events=event_sets())
def test_window_figures_match_a_from_scratch_reference(events: list[Event]) -> None:
    """Recompute the window figures naively from the event list and compare."""
    s = build_one_by_one(events)
    t = totals(s)
    if not events:
        assert t.posts.posts[0] == 0
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
    assert t.posts.posts[0] == len(posts)
    assert t.posts.views[0] == sum(p.views for p in posts.values())
    assert t.posts.engagements[0] == sum(p.likes + p.comments + p.shares for p in posts.values())
    assert t.shoppable[0] == sum(1 for p in posts if p in tagged)
    assert t.collab_posts[0] == sum(1 for p in posts.values() if p.brand_id)
    assert t.active_days[0] == len({p.posted_at_ms // DAY_MS for p in posts.values()})
    assert t.campaigns[0] == len({t.campaign_id for t in tags.values() if t.campaign_id})
    assert t.orders[0] == len(orders)
    assert t.refunded[0] == sum(1 for o in orders.values() if o.status == "refunded")
    placed = [o for o in orders.values() if o.status == "placed"]
    usd = sum(o.amount * P.fx_usd_per_unit[o.currency] for o in placed)
    assert t.net_usd[0] == float(usd)  # one correctly rounded division of the exact sum
    theme = t.by_theme
    for name, n in by_name(s, theme.key, theme.posts.posts.tolist()).items():
        assert n == sum(1 for p in posts.values() if name in p.themes)


def test_a_creator_past_two_byte_counts_gets_a_wide_header() -> None:
    # 1,100 brands of 64 characters: the names take over 65,535 bytes.
    events: list[Event] = [
        post(f"p{i}", day=i / 100, brand=f"{i:04d}" + "b" * 60) for i in range(1100)
    ]
    s = build(events)
    data = s.to_bytes()
    assert data[3] & packed.FLAG_WIDE
    back = CreatorState.from_bytes(CID, data)
    assert back.to_bytes() == data and back.counts() == (1100, 0, 0)
    # A narrow state never carries the flag (canonical): setting it is refused.
    small = build(typical_creator()[:20]).to_bytes()
    assert not small[3] & packed.FLAG_WIDE
    body = small[4:-4]
    with pytest.raises(ValueError):
        CreatorState.from_bytes(CID, _with_crc(body, packed.FLAG_WIDE))


def test_tags_and_orders_name_posts_held_or_not() -> None:
    # A tag on a held post, one on a post not seen, orders on both and on none.
    s = build([
        post("p1", day=1), tag("t1", post_id="p1", day=1), tag("t2", post_id="p-unseen", day=1),
        order("o1", post_id="p1", day=1), order("o2", post_id="p-unseen", day=1),
        order("o3", post_id=None, day=1),
    ])  # fmt: skip
    back = CreatorState.from_bytes(CID, s.to_bytes())
    assert back.to_bytes() == s.to_bytes()
    for section in ("tags", "orders"):
        a, b = getattr(s.columns, section), getattr(back.columns, section)
        assert a.tolist() == b.tolist()
    # The unseen post arrives: its tag and order now link to it as a held post.
    s.apply(post("p-unseen", day=1.5), P)
    again = CreatorState.from_bytes(CID, s.to_bytes())
    assert again.to_bytes() == s.to_bytes()
    assert totals(again).shoppable[0] == 2


def test_a_sealed_newer_format_is_told_apart_from_a_damaged_one() -> None:
    data = build(typical_creator()[:40]).to_bytes()
    newer = data[:2] + bytes((packed.FORMAT + 1,)) + data[3:]
    newer += zlib.crc32(newer).to_bytes(4, "little")  # the seal every later format keeps
    assert packed.is_sealed(newer) and not packed.is_sealed(data)
    with pytest.raises(packed.NewerFormatError, match="newer than this worker's"):
        CreatorState.from_bytes(CID, newer)
    with pytest.raises(packed.NewerFormatError):
        packed.decode_each([data, newer], Vocabulary())
    damaged = data[:2] + bytes((packed.FORMAT + 1,)) + data[3:]  # a flipped format byte
    with pytest.raises(ValueError, match="corrupt creator state"):
        CreatorState.from_bytes(CID, damaged)
