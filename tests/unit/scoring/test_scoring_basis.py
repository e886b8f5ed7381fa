"""Explanations written at read time from their basis equal the ones written when scoring.

The worker stores `explanation_basis` (figures, not sentences) and readers write the
texts with `explanations_from_basis`; every golden creator's card, at every checkpoint,
must read back word for word and digit for digit after a trip through JSON. The
parts `diff_scores` reads without writing whole explanations (points, summaries,
single sentences) must equal what the full explanations say.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from scoring_testkit import typical_creator
from test_scoring_golden import population

from scoring.explain import (
    ScoreCard,
    contribution_text,
    explanation_basis,
    explanation_dicts,
    explanation_points,
    explanation_summary,
    explanations_from_basis,
)
from scoring.model import BASIS_VERSION
from scoring.names import SCORE_NAMES
from scoring.params import DEFAULT_PARAMS
from scoring.state import CreatorState, score

FIXTURE = Path(__file__).with_name("golden_scorecards.json")


def _typical_card() -> ScoreCard:
    events = typical_creator()
    state = CreatorState.new(events[0].creator_id)
    for e in events:
        state.apply(e, DEFAULT_PARAMS)
    return score(state, DEFAULT_PARAMS)


def _trip(card: ScoreCard) -> Any:
    basis = explanation_basis(card.explanations)
    assert basis is not None
    return orjson.loads(orjson.dumps(basis))


def test_every_golden_card_reads_back_from_its_basis() -> None:
    golden = {g["name"]: g for g in json.loads(FIXTURE.read_text(encoding="utf-8"))}
    checked = 0
    for name, events, params in population():
        state = CreatorState.new(events[0].creator_id) if events else None
        if state is None:
            continue
        checkpoints = {len(events) // 3, 2 * len(events) // 3, len(events)}
        for i, e in enumerate([*events, None]):
            if i in checkpoints:
                card = score(state, params)
                rendered = explanations_from_basis(_trip(card), params)
                assert explanation_dicts(rendered) == explanation_dicts(card.explanations), name
                checked += 1
            if e is not None:
                state.apply(e, params)
        # The final card's texts are the fixture's, written by the unoptimised model.
        want = golden[name]["cards"][-1]["explanations"]
        got = json.loads(json.dumps(explanation_dicts(rendered)))
        assert got == want, name
    assert checked >= 90


def test_one_explanation_reads_back_without_the_others() -> None:
    card = _typical_card()
    rendered = explanations_from_basis(_trip(card), DEFAULT_PARAMS)
    assert rendered["sales"] == card.explanations["sales"]
    assert rendered["overall"].summary == card.explanations["overall"].summary


def test_cards_not_from_score_have_no_basis() -> None:
    card = _typical_card()
    assert explanation_basis(ScoreCard.from_dict(card.to_dict()).explanations) is None


def _basis() -> dict[str, Any]:
    out: dict[str, Any] = _trip(_typical_card())
    return out


@pytest.mark.parametrize(
    ("mutate", "part"),
    [
        (lambda b: b.update(v=BASIS_VERSION + 1), "version"),
        (lambda b: b["facts"].pop(), "facts"),
        (lambda b: b["facts"].__setitem__(0, "7"), "facts"),
        (lambda b: b["facts"].__setitem__(0, True), "facts"),
        (lambda b: b["figures"].pop("sales"), "figures.sales"),
        (lambda b: b["figures"]["sales"][0].pop(), "figures.sales"),
        (lambda b: b["figures"]["reception"].__setitem__(1, None), "figures.reception"),
        (lambda b: b.update(values=[1.0]), "values"),
        (lambda b: b.update(overall="high"), "overall"),
        (lambda b: b.update(provisional=1), "provisional"),
        (lambda b: b.update(figures=[]), "figures"),
    ],
)
def test_malformed_basis_is_a_value_error_naming_the_part(mutate: Any, part: str) -> None:
    basis = _basis()
    mutate(basis)
    with pytest.raises(ValueError, match=part):
        explanations_from_basis(basis, DEFAULT_PARAMS)


def test_a_basis_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="object"):
        explanations_from_basis([1, 2], DEFAULT_PARAMS)


def test_points_summaries_and_sentences_without_writing_the_rest() -> None:
    # What diff_scores reads of a fresh card equals what its full explanations say.
    for _, events, params in population():
        if not events:
            continue
        state = CreatorState.new(events[0].creator_id)
        for e in events:
            state.apply(e, params)
        fresh, full = score(state, params), dict(score(state, params).explanations)
        for name in SCORE_NAMES:
            e = full[name]
            assert explanation_points(fresh.explanations, name) == [
                (c.name, c.points) for c in e.contributions
            ]
            assert explanation_summary(fresh.explanations, name) == e.summary
            for c in e.contributions:
                assert contribution_text(fresh.explanations, name, c.name) == c.text
            assert contribution_text(fresh.explanations, name, "no-such-input") == ""
