"""A simulated population scores exactly as the model of record scored it (see population_fixture).

Every creator's events go in, chunk by chunk as a worker's flushes would take them;
each event's outcome, each card (whole, explanations included) and each score-change
record a worker would publish must be the ones the fixture holds.
"""

from __future__ import annotations

from typing import Any

import pytest
from population_fixture import CHANGE_THRESHOLD, chunks, creators, digest, load
from test_scoring_golden import OTHER_PARAMS

from scoring.changes import diff_scores
from scoring.explain import ScoreCard
from scoring.merge import Outcome
from scoring.params import DEFAULT_PARAMS
from scoring.state import CreatorState, score

_LETTER = {Outcome.APPLIED: "A", Outcome.UPDATED: "U", Outcome.DUPLICATE: "D", Outcome.LATE: "L"}


@pytest.fixture(scope="module")
def population() -> dict[str, Any]:
    return load()


def test_the_population_is_the_one_described(population: dict[str, Any]) -> None:
    cases = population["creators"]
    assert len(cases) >= 300
    sizes = sorted(len(c["events"]) for c in cases)
    assert sizes[len(sizes) // 2] < 30 < sizes[-1]  # both densities are there
    assert {"default", "other"} == {c["params"] for c in cases}


def test_every_outcome_card_and_change_is_as_recorded(population: dict[str, Any]) -> None:
    for case, events in creators(population):
        params = OTHER_PARAMS if case["params"] == "other" else DEFAULT_PARAMS
        state = CreatorState.new(events[0].creator_id)
        outcomes: list[str] = []
        published: ScoreCard | None = None
        pos = 0
        for i, size in enumerate(chunks(case["key"], len(events))):
            outcomes.extend(_LETTER[o] for o in state.apply_all(events[pos : pos + size], params))
            pos += size
            card = score(state, params)
            doc = card.to_dict()
            assert digest(doc) == case["digests"][i], (case["key"], i)
            if published is not None and published.to_dict() == doc:
                assert case["changes"][i] is None, (case["key"], i)
                continue
            change = diff_scores(published, card, CHANGE_THRESHOLD)
            got = None if change is None else digest(change.to_dict())
            assert got == case["changes"][i], (case["key"], i)
            published = card
        assert "".join(outcomes) == case["outcomes"], case["key"]
        assert card.values() == case["final"], case["key"]
