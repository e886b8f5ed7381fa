"""Creators scored in bulk get exactly the cards they get alone, and bulk arithmetic is exact.

The worker merges and scores every creator of a flush together; a card must not
depend on which other creators shared the flush, and the vectorised rounding and
curves must give, bit for bit, what the formulas' scalar form gives.
"""

from __future__ import annotations

import math
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scoring_testkit import P, event_sets, typical_creator
from test_scoring_golden import OTHER_PARAMS, population

from scoring.columns import DAY_MS, Columns, Heads, arrivals
from scoring.events import Event
from scoring.explain import card_of
from scoring.merge import merge
from scoring.model import _exact_value, _round, _value, model_of, round2, score_totals
from scoring.names import COMPONENT_SCORES
from scoring.packed import decode, encode
from scoring.params import Params
from scoring.state import CreatorState, score
from scoring.vocab import Vocabulary
from scoring.window import _evenness, window_totals


def _together(creators: list[tuple[str, list[Event]]], params: Params) -> list[dict[str, object]]:
    """Every creator's card, all merged and scored in one flush."""
    vocab = Vocabulary()
    pairs = [(i, e) for i, (_, events) in enumerate(creators) for e in events]
    merged = merge(Heads.empty(len(creators)), Columns.empty(), arrivals(pairs, vocab), vocab,
                   params.window_days)  # fmt: skip
    # Through bytes and back, as the next flush would read them.
    heads, columns = decode(encode(merged.heads, merged.columns, vocab), vocab)
    scores = score_totals(window_totals(columns, heads.watermark // DAY_MS, vocab, params), params)
    cards = []
    for i, (cid, _) in enumerate(creators):
        region = int(heads.region[i])
        name = None if region < 0 else vocab.name(region)
        cards.append(card_of(scores, i, cid, name, int(heads.watermark[i]), vocab).to_dict())
    return cards


def _alone(cid: str, events: list[Event], params: Params) -> dict[str, object]:
    state = CreatorState.new(cid, Vocabulary())
    state.apply_all(events, params)
    return score(state, params).to_dict()


def test_the_golden_population_scored_together_equals_each_alone() -> None:
    for params in (P, OTHER_PARAMS):
        creators = [
            (events[0].creator_id, events)
            for name, events, p in population()
            if events and p is params and name != "other-creator-id"
        ]
        together = _together(creators, params)
        for (cid, events), card in zip(creators, together, strict=True):
            assert card == _alone(cid, events, params), cid


@settings(max_examples=60, deadline=None)
@given(sets=st.lists(event_sets(max_posts=4), min_size=1, max_size=5))
def test_random_creators_scored_together_equal_each_alone(sets: list[list[Event]]) -> None:
    creators = [(f"c{i}", [_as(e, f"c{i}") for e in events]) for i, events in enumerate(sets)]
    together = _together(creators, P)
    for (cid, events), card in zip(creators, together, strict=True):
        assert card == _alone(cid, events, P)


def _as(e: Event, creator: str) -> Event:
    import dataclasses

    return dataclasses.replace(e, creator_id=creator)


def test_vectorised_rounding_is_round_including_near_ties() -> None:
    rng = random.Random(3)
    xs = [rng.uniform(0, 100) for _ in range(20_000)]
    xs += [k / 100 + 0.005 + d for k in range(0, 10_000, 37) for d in (-1e-12, 0.0, 1e-12)]
    xs += [k / 1000 + 0.0005 + d for k in range(0, 1000, 7) for d in (-1e-13, 0.0, 1e-13)]
    got2 = _round(np.array(xs), 2).tolist()
    got3 = _round(np.array(xs), 3).tolist()
    assert got2 == [round(x, 2) for x in xs]
    assert got2 == [round2(x) for x in xs]
    assert got3 == [round(x, 3) for x in xs]


@settings(max_examples=200, deadline=None)
@given(
    xs=st.lists(
        st.one_of(st.floats(-1.0, 50.0), st.sampled_from([0.0, 1.0, 0.5, 0.35, 1e-300, 1e300])),
        min_size=4,
        max_size=4,
    ),
    evidence=st.floats(0.0, 1.0),
)
def test_vectorised_curves_equal_the_scalar_form(xs: list[float], evidence: float) -> None:
    for name in ("consistency", "sales", "collaboration", "cooperation"):
        curves = model_of(P).curves[name]
        got = _value(curves, np.array([xs[: len(curves)]]), np.array([evidence]))
        assert got.tolist() == [_exact_value(curves, xs[: len(curves)], evidence)]


def test_values_near_a_rounding_tie_take_the_scalar_path() -> None:
    # Search inputs whose unrounded score sits within 1e-5 of a tie: they must still equal
    # the scalar form (numpy's pow may differ from the C library's in the last bit).
    curves = model_of(P).curves["influence"]
    rng = np.random.default_rng(5)
    xs = rng.uniform(0.01, 5.0, size=(200_000, 3))
    ev = np.ones(len(xs))
    got = _value(curves, xs, ev)
    from scoring.model import _blend

    raw = _blend(curves, xs, ev) * 100.0
    near = np.flatnonzero(np.abs(raw - np.rint(raw)) > 0.49999)
    assert len(near) > 0
    for i in near.tolist():
        assert got[i] == _exact_value(curves, xs[i].tolist(), 1.0)


def test_evenness_is_the_formula_with_the_c_library_pow() -> None:
    rng = np.random.default_rng(9)
    daily = rng.integers(0, 4, size=(500, 28)) * (rng.random((500, 28)) < 0.4)
    daily[0] = 0
    got = _evenness(daily).tolist()
    for row, value in zip(daily.tolist(), got, strict=True):
        n, total = len(row), sum(row)
        if not total:
            assert value == math.sqrt(n - 1)
            continue
        mean = total / n
        var = sum(pow(d - mean, 2) for d in row) / n
        assert value == math.sqrt(var) / mean


def test_scores_do_not_depend_on_the_order_names_were_first_seen() -> None:
    events = typical_creator()
    fresh = Vocabulary()
    used = Vocabulary()
    used.codes(["zz", "video", "USD", "aa", "home"])
    a = CreatorState.new(events[0].creator_id, fresh)
    b = CreatorState.new(events[0].creator_id, used)
    a.apply_all(events, P)
    b.apply_all(events, P)
    assert score(a, P).to_dict() == score(b, P).to_dict()
    assert a.to_bytes() == b.to_bytes()
    assert list(COMPONENT_SCORES) == [n for n in score(a, P).values() if n != "overall"]
