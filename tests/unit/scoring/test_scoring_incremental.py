"""The window totals `apply` keeps up to date equal a recount from the records, always.

Scores read running totals instead of the records; these tests check after every
single event (new records, snapshots, status changes, late events, day changes
that push records out of the window and the recent window) that the totals are
exactly those a state rebuilt from its bytes computes from scratch.
"""

from __future__ import annotations

import dataclasses
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scoring_testkit import CID, P, event_sets, order, post, tag, typical_creator

from scoring.events import Event
from scoring.params import Params
from scoring.scores import _round2, _round4, score, score_stats
from scoring.state import CreatorState

SHORT = dataclasses.replace(P, window_days=9, short_window_days=2)


def totals(state: CreatorState, params: Params) -> dict[str, object]:
    w = state._running(params)
    return {
        name: getattr(w, name)
        for name in type(w).__slots__  # every total, and the window bounds
        if name != "brand_changes" and not name.startswith("moved")  # change markers
    }


def recount(state: CreatorState, params: Params) -> dict[str, object]:
    return totals(CreatorState.from_bytes(state.to_bytes()), params)


def check_every_step(events: list[Event], params: Params) -> None:
    state = CreatorState.new(CID)
    state._running(params)  # from here on, apply keeps the totals
    for e in events:
        state.apply(e, params)
        assert state._win is not None
        assert totals(state, params) == recount(state, params), e


@settings(max_examples=150, deadline=None)
@given(events=event_sets(span_days=45), data=st.data())
def test_running_totals_equal_a_recount(events: list[Event], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(events))
    check_every_step(list(shuffled), P)


@settings(max_examples=100, deadline=None)
@given(events=event_sets(span_days=20))
def test_running_totals_with_a_short_window(events: list[Event]) -> None:
    check_every_step(events, SHORT)


def test_a_typical_creator_in_arrival_order() -> None:
    events = typical_creator(3)
    rng = random.Random(5)
    rng.shuffle(events)
    check_every_step(events, P)


def test_links_follow_posts_that_change_type_and_leave() -> None:
    events: list[Event] = [
        order("o1", post_id="p1", day=2),
        post("p1", day=1, content_type="video", observed=10),
        tag("t1", post_id="p1", day=1.5),
        post("p1", day=1, content_type="live", views=1, observed=20),  # new type
        tag("t1", post_id="p1", day=1.5, brand="brand-z"),  # a tag changes brand
        order("o1", post_id="p1", day=2, status="refunded"),
        post("p9", day=29.5),  # day 1 leaves the window
        post("p10", day=31.2),
    ]
    check_every_step(events, P)


def test_changing_window_lengths_rebuilds_the_totals() -> None:
    state = CreatorState.new(CID)
    for e in typical_creator(1):
        state.apply(e, P)
    wide = score(state, P)
    narrow = score(state, SHORT)  # the same state scored with a 9-day window
    assert wide != narrow
    assert totals(state, SHORT) == recount(state, SHORT)
    state.apply(post("late-comer", day=27.9), P)
    assert totals(state, P) == recount(state, P)
    assert score(state, P) == score(CreatorState.from_bytes(state.to_bytes()), P)


@settings(max_examples=150, deadline=None)
@given(events=event_sets(span_days=35))
def test_score_from_totals_equals_score_from_window_stats(events: list[Event]) -> None:
    # Two routes to one card: the running totals, and the WindowStats named tuples.
    state = CreatorState.new(CID)
    for e in events:
        state.apply(e, P)
    for params in (P, SHORT):
        fast = score(state, params)
        slow = score_stats(state.stats(params), params)
        assert fast.to_dict() == slow.to_dict()
        assert fast == slow


def _near_ties(rng: random.Random) -> list[float]:
    out = []
    for _ in range(3000):
        k = rng.randrange(0, 10**6)
        for scale in (100, 10_000):
            tie = (k + 0.5) / scale
            out += [tie, math.nextafter(tie, 0.0), math.nextafter(tie, 1e9)]
    return out


def test_fast_rounding_is_exactly_round() -> None:
    rng = random.Random(11)
    xs = [rng.random() * 100 for _ in range(20_000)]
    xs += [rng.random() * 10 ** rng.randrange(-6, 20) for _ in range(20_000)]
    xs += [*_near_ties(rng), 0.0, 0.005, 0.125, 0.375, 1.005, 2.675, 99.995, 100.0, 1e300]
    for x in xs:
        assert _round2(x) == round(x, 2) and str(_round2(x)) == str(round(x, 2)), x
        assert _round4(x) == round(x, 4) and str(_round4(x)) == str(round(x, 4)), x


@settings(max_examples=100, deadline=None)
@given(events=event_sets(span_days=35), data=st.data())
def test_reused_parts_of_the_last_card_change_nothing(
    events: list[Event], data: st.DataObject
) -> None:
    # Scoring after every event reuses the parts whose inputs did not move; each
    # card must equal the card of a fresh state (nothing to reuse) with the same records.
    state = CreatorState.new(CID)
    for e in data.draw(st.permutations(events)):
        state.apply(e, P)
        card = score(state, P)
        fresh = score(CreatorState.from_bytes(state.to_bytes()), P)
        assert card.to_dict() == fresh.to_dict()
    if events:
        assert (
            score(state, SHORT).to_dict()
            == score(CreatorState.from_bytes(state.to_bytes()), SHORT).to_dict()
        )


def test_reused_parts_over_a_typical_month() -> None:
    state = CreatorState.new(CID)
    for i, e in enumerate(typical_creator(2)):
        state.apply(e, P)
        if i % 3 == 0:
            card = score(state, P)
            explanations = dict(card.explanations)  # built from the reused plain form
            fresh = score(CreatorState.from_bytes(state.to_bytes()), P)
            assert card == fresh and explanations == dict(fresh.explanations)


def cold_bytes(events: list[Event], params: Params = P) -> bytes:
    """The bytes of a state built from scratch and written once (nothing kept between writes)."""
    state = CreatorState.new(CID)
    for e in events:
        state.apply(e, params)
    return state.to_bytes()


@settings(max_examples=150, deadline=None)
@given(events=event_sets(span_days=45), data=st.data())
def test_bytes_kept_between_writes_equal_bytes_written_from_scratch(
    events: list[Event], data: st.DataObject
) -> None:
    # to_bytes keeps its sections and rewrites only what changed; after every event
    # (and after a trip through bytes now and then) the result must be exactly what
    # a state written once gives.
    order = list(data.draw(st.permutations(events)))
    state = CreatorState.new(CID)
    for i, e in enumerate(order):
        state.apply(e, P)
        if data.draw(st.booleans()):
            assert state.to_bytes() == cold_bytes(order[: i + 1]), e
        if data.draw(st.integers(0, 9)) == 0:
            state = CreatorState.from_bytes(state.to_bytes())
    assert state.to_bytes() == cold_bytes(order)


@settings(max_examples=3000, deadline=None)
@given(
    kind=st.sampled_from(["ratio", "inverse", "share"]),
    baseline=st.floats(0.001, 0.999) | st.floats(1.0, 1e6),
    steepness=st.floats(0.1, 10.0),
    x=st.floats(0.0, 1e9) | st.sampled_from([0.0, 1.0, 0.5, 1e-300]),
    evidence=st.floats(0.0, 1.0),
)
def test_inlined_curves_are_bit_for_bit_the_params_curve(
    kind: str, baseline: float, steepness: float, x: float, evidence: float
) -> None:
    from scoring.params import curve_points
    from scoring.scores import _blend_value, _points

    if kind == "share" and baseline >= 1.0:
        baseline = 0.5
    w = 0.37
    fast = ((w * 100.0, {"ratio": 0, "inverse": 1, "share": 2}[kind], baseline, steepness,
             -steepness, 1.0 - baseline),)  # fmt: skip
    expected = curve_points(kind, baseline, steepness, x)
    assert _points(fast, (w,), (x,), evidence) == [evidence * w * expected]
    total = w * 100.0 * expected / 100.0  # what _blend_value adds, by its own formula below
    blended = _blend_value(fast, (x,), evidence)
    assert math.isfinite(blended) and 0.0 <= blended <= 100.0
    assert abs(blended - (50.0 * (1.0 - evidence) + evidence * total)) < 1e-9
