"""Scores: bounds, monotone sales, thin data, explanations, behaviour and serialisation."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scoring_testkit import DAY_MS, T0, P, build, event_sets, order, post, tag, typical_creator

from scoring.events import Event, PostEvent
from scoring.explain import ScoreCard
from scoring.names import PRIOR, SCORE_NAMES, UNKNOWN_REGION
from scoring.state import CreatorState, score


def card_of(events: list[Event]) -> ScoreCard:
    return score(build(events), P)


def daily_posts(n: int, *, step: float = 1.0, **kw: object) -> list[Event]:
    return [post(f"p{i}", day=i * step + 0.5, **kw) for i in range(n)]  # type: ignore[arg-type]


def test_empty_state_is_neutral_and_provisional() -> None:
    c = score(CreatorState.new("nobody"), P)
    assert all(v == 50.0 for v in c.values().values())
    assert c.provisional and c.confidence == 0.0
    assert (c.region, c.as_of_ms, c.model_version) == (UNKNOWN_REGION, 0, P.model_version)
    assert dict(c.influence_by_theme) == {} and dict(c.overall_by_content_type) == {}


def test_card_identity_and_shape() -> None:
    events = typical_creator()
    s = build(events)
    c = score(s, P)
    assert c.creator_id == s.creator_id and c.region == "ID"
    assert c.as_of_ms == s.watermark_ms == max(e.event_time_ms for e in events)
    assert list(c.values()) == list(SCORE_NAMES)
    assert not c.provisional and c.confidence == 1.0
    assert set(c.influence_by_theme) == set(c.overall_by_theme) == {"beauty", "fashion", "home"}
    assert set(c.influence_by_content_type) == {"video", "photo", "live"}
    for v in [*c.values().values(), *c.influence_by_theme.values(), *c.overall_by_theme.values()]:
        assert 0.0 <= v <= 100.0 and round(v, 2) == v


def test_thin_data_is_provisional_and_pulled_toward_neutral() -> None:
    c = card_of([post(views=0, likes=0, comments=0, shares=0)])
    assert c.provisional and 0.0 < c.confidence < 0.2
    # One unseen post would score badly on its own; pulled toward 50 it does not.
    for name, v in c.values().items():
        assert 35.0 <= v <= 65.0, (name, v)
    thin = c.explanations["influence"]
    prior = [x for x in thin.contributions if x.name == PRIOR]
    assert prior and prior[0].points > 40.0
    assert "Provisional" in c.explanations["overall"].summary


def test_model_version_comes_from_params() -> None:
    other = dataclasses.replace(P, model_version="exp-7")
    assert score(build(typical_creator()), other).model_version == "exp-7"


def test_scores_are_as_of_the_watermark_not_a_clock() -> None:
    s = build(typical_creator())
    assert score(s, P) == score(CreatorState.from_bytes(s.creator_id, s.to_bytes()), P)


# --- behaviour, table-driven: (what changes, score that must rise) ---------------------

BASE = daily_posts(14, step=2.0)


def _more_views() -> list[Event]:
    return [dataclasses.replace(e, views=e.views * 10, likes=e.likes * 10, comments=e.comments * 10,
                                shares=e.shares * 10)
            for e in BASE if isinstance(e, PostEvent)]  # fmt: skip


def _more_engaging() -> list[Event]:
    return [dataclasses.replace(e, likes=e.likes * 3, comments=e.comments * 3)
            for e in BASE if isinstance(e, PostEvent)]  # fmt: skip


def _tagged() -> list[Event]:
    return [*BASE, *(tag(f"t{i}", post_id=f"p{i}", day=i * 2 + 0.6) for i in range(14))]


def _collabs() -> list[Event]:
    brands = ["b1", "b2", "b3"]
    return [
        *(dataclasses.replace(e, brand_id=brands[i % 3]) if isinstance(e, PostEvent) else e
          for i, e in enumerate(BASE)),
        *(tag(f"t{i}", post_id=f"p{i}", day=i * 2 + 0.6, brand=brands[i % 3], campaign=f"c{i % 4}")
          for i in range(14)),
    ]  # fmt: skip


def _daily() -> list[Event]:
    return daily_posts(14, step=1.0) + [post(f"q{i}", day=14.5 + i) for i in range(13)]


def _bursty() -> list[Event]:
    return [post(f"q{i}", day=27.1 + i / 100) for i in range(27)]


def _sales() -> list[Event]:
    return [
        *BASE,
        *(order(f"o{i}", post_id=f"p{i}", day=i * 2 + 0.7, amount="60") for i in range(14)),
    ]


CASES = [
    ("more views at the same rates", BASE, _more_views(), "influence"),
    ("more engagement per view", BASE, _more_engaging(), "reception"),
    ("every post tagged", BASE, _tagged(), "diligence"),
    ("collaborations and campaigns", BASE, _collabs(), "cooperation"),
    ("several returning brands", BASE, _collabs(), "collaboration"),
    ("daily posting versus one burst", _bursty(), _daily(), "consistency"),
    ("orders on the posts", BASE, _sales(), "sales"),
]


@pytest.mark.parametrize(("label", "before", "after", "name"), CASES, ids=[c[0] for c in CASES])
def test_behaviour(label: str, before: list[Event], after: list[Event], name: str) -> None:
    lo, hi = card_of(before), card_of(after)
    assert getattr(hi, name) > getattr(lo, name) + 5.0, (
        label,
        getattr(lo, name),
        getattr(hi, name),
    )
    assert hi.overall > lo.overall


def test_refunds_lower_sales_and_cancellations_do_not_count() -> None:
    base = _sales()
    refunded = [*base, order("o3", post_id="p3", day=6.7, amount="60", status="refunded")]
    cancelled = [*base, order("o3", post_id="p3", day=6.7, amount="60", status="cancelled")]
    s0, s1, s2 = card_of(base).sales, card_of(refunded).sales, card_of(cancelled).sales
    assert s1 < s0 and s2 < s0
    assert s1 < s2  # a refund also raises the refund rate


# --- properties -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(events=event_sets())
def test_scores_stay_in_range(events: list[Event]) -> None:
    c = card_of(events)
    values = [
        *c.values().values(),
        *c.influence_by_theme.values(),
        *c.overall_by_theme.values(),
        *c.influence_by_content_type.values(),
        *c.overall_by_content_type.values(),
    ]
    assert all(0.0 <= v <= 100.0 for v in values)
    assert 0.0 <= c.confidence <= 1.0
    json.dumps(c.to_dict(), allow_nan=False)


def _order_inside(events: list[Event], oid: str, amount: str, status: str = "placed") -> Event:
    """An order at the watermark time (so it moves nothing else)."""
    wm = max((e.event_time_ms for e in events), default=T0)
    return order(oid, post_id="p0", day=(wm - T0) / DAY_MS, amount=amount, status=status)


@settings(max_examples=200, deadline=None)
@given(events=event_sets(), amount=st.sampled_from(["0", "0.01", "5", "99.99", "25000"]))
def test_more_net_sales_never_lowers_sales(events: list[Event], amount: str) -> None:
    before = card_of(events).sales
    after = card_of([*events, _order_inside(events, "new-order", amount)]).sales
    assert after >= before


@settings(max_examples=200, deadline=None)
@given(events=event_sets(), small=st.sampled_from(["1", "10"]), extra=st.sampled_from(["5", "900"]))
def test_a_bigger_order_never_lowers_sales(events: list[Event], small: str, extra: str) -> None:
    big = str(int(small) + int(extra))
    lo = card_of([*events, _order_inside(events, "x", small)]).sales
    hi = card_of([*events, _order_inside(events, "x", big)]).sales
    assert hi >= lo


@settings(max_examples=200, deadline=None)
@given(events=event_sets(), amount=st.sampled_from(["0", "5", "99.99", "25000"]))
def test_a_refund_lowers_sales(events: list[Event], amount: str) -> None:
    placed = [*events, _order_inside(events, "to-refund", amount)]
    refunded = [*placed, _order_inside(events, "to-refund", amount, "refunded")]
    assert card_of(refunded).sales < card_of(placed).sales


# --- explanations and serialisation ---------------------------------------------------


def test_explanations_add_up_and_read_well() -> None:
    for events in (typical_creator(), [post()], []):
        c = card_of(events)
        assert set(c.explanations) == set(SCORE_NAMES)
        for name in SCORE_NAMES:
            e = c.explanations[name]
            assert e.score == name and e.value == getattr(c, name)
            assert e.summary and all(x.text for x in e.contributions)
            total = sum(x.points for x in e.contributions)
            assert total == pytest.approx(e.value, abs=0.06), (name, total, e.value)


def test_explanation_texts_cite_the_figures() -> None:
    c = card_of(_sales())
    texts = " ".join(x.text for x in c.explanations["sales"].contributions)
    assert "$840.00" in texts and "14 kept orders" in texts
    assert any("posts carry shoppable" in x.text for x in card_of(_tagged()).explanations[
        "diligence"].contributions)  # fmt: skip


def test_to_dict_is_json_and_from_dict_round_trips() -> None:
    c = card_of(typical_creator())
    d = c.to_dict()
    back = ScoreCard.from_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert back == c and back.to_dict() == d


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.pop("sales"), "'sales' must be a finite number"),
        (lambda d: d.update(as_of_ms="x"), "'as_of_ms' must be int"),
        (lambda d: d.update(provisional=1), "'provisional' must be bool"),
        (lambda d: d.update(influence_by_theme=[1]), "'influence_by_theme' must be an object"),
        (lambda d: d["explanations"].update(sales=3), "explanation 'sales' must be an object"),
        (lambda d: d["explanations"]["sales"].update(contributions=[1]), "not an object"),
    ],
)
def test_from_dict_rejects_malformed(mutate: object, needle: str) -> None:
    d = json.loads(json.dumps(card_of(typical_creator()).to_dict()))
    mutate(d)  # type: ignore[operator]
    with pytest.raises(ValueError) as info:
        ScoreCard.from_dict(d)
    assert needle in str(info.value)


def test_cards_pickle_with_their_explanations() -> None:
    import pickle

    c = card_of(typical_creator())
    assert pickle.loads(pickle.dumps(c)) == c
