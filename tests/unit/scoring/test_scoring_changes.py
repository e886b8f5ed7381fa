"""Score-change events: when they are emitted and what they say."""

from __future__ import annotations

import dataclasses
import json

from scoring_testkit import P, build, order, typical_creator

from scoring.changes import diff_scores
from scoring.explain import ScoreCard
from scoring.names import SCORE_NAMES
from scoring.state import score


def card(extra: int = 0) -> ScoreCard:
    events = typical_creator()
    events += [order(f"extra-{i}", post_id="p0-27", day=27.6, amount="250") for i in range(extra)]
    return score(build(events), P)


def test_first_card_always_emits_everything() -> None:
    new = card()
    ch = diff_scores(None, new, threshold=1.0)
    assert ch is not None
    assert ch.changed == SCORE_NAMES and ch.old is None
    assert dict(ch.new) == new.values()
    assert (ch.creator_id, ch.region, ch.event_time_ms) == (
        new.creator_id,
        new.region,
        new.as_of_ms,
    )
    assert set(ch.reasons) == set(SCORE_NAMES)
    json.dumps(ch.to_dict(), allow_nan=False)


def test_nothing_moved_means_no_event() -> None:
    assert diff_scores(card(), card(), threshold=0.0) is None


def test_small_moves_stay_below_the_threshold() -> None:
    old, new = card(), card(extra=1)
    moved = max(abs(new.values()[n] - old.values()[n]) for n in SCORE_NAMES)
    assert moved > 0
    assert diff_scores(old, new, threshold=moved) is None
    ch = diff_scores(old, new, threshold=moved / 2)
    assert ch is not None and "sales" in ch.changed
    assert dict(ch.old or {}) == old.values()


def test_reasons_name_the_input_that_moved() -> None:
    old, new = card(), card(extra=5)
    ch = diff_scores(old, new, threshold=1.0)
    assert ch is not None
    assert "sales" in ch.changed and "overall" in ch.changed
    assert ch.reasons["sales"].startswith("Sales rose")
    assert "mostly from" in ch.reasons["sales"]
    assert set(ch.reasons) == set(ch.changed)


def test_provisional_flip_emits_even_without_a_big_move() -> None:
    old = card()
    new = dataclasses.replace(old, provisional=True)
    ch = diff_scores(old, new, threshold=100.0)
    assert ch is not None and ch.changed == () and ch.provisional
    assert "now provisional" in ch.reasons["provisional"]


def test_new_model_version_emits_everything() -> None:
    old = card()
    new = score(build(typical_creator()), dataclasses.replace(P, model_version="v-next"))
    ch = diff_scores(old, new, threshold=100.0)
    assert ch is not None and ch.changed == SCORE_NAMES and ch.model_version == "v-next"
    assert "v-next" in ch.reasons["model_version"]


def test_region_change_emits() -> None:
    old = card()
    ch = diff_scores(old, dataclasses.replace(old, region="MY"), threshold=100.0)
    assert ch is not None and ch.region == "MY" and "from ID to MY" in ch.reasons["region"]
