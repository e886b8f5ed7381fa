"""docs/explanations.md and docs/leaderboard.svg are what `python -m streams.devtools.gallery`
writes today."""

from __future__ import annotations

import pytest

from scoring.explain import ScoreCard
from streams.devtools.gallery import OUT, PICTURE, cards, main, picture, render


@pytest.fixture(scope="module")
def scored() -> tuple[dict[str, list[ScoreCard]], ScoreCard]:
    return cards()


def test_the_explanation_gallery_and_the_readme_picture_are_current(
    scored: tuple[dict[str, list[ScoreCard]], ScoreCard],
) -> None:
    by_kind, quiet = scored
    assert OUT.read_text(encoding="utf-8") == render(by_kind, quiet), (
        "docs/explanations.md is stale: run python -m streams.devtools.gallery"
    )
    assert PICTURE.read_text(encoding="utf-8") == picture(by_kind), (
        "docs/leaderboard.svg is stale: run python -m streams.devtools.gallery"
    )
    assert main(["--check"]) == 0


def test_the_gallery_shows_every_kind_of_creator_and_a_quiet_one(
    scored: tuple[dict[str, list[ScoreCard]], ScoreCard],
) -> None:
    text = render(*scored)
    for kind in ("Brand ambassador", "Brand shy artist", "Diligent seller", "Irregular poster",
                 "Newcomer", "Refund prone seller"):  # fmt: skip
        assert f"## {kind} (" in text
    quiet = text.split("## A creator that went quiet", 1)[1]
    assert "**inactive**" in quiet and "a weighted blend of seven scores, all 50." in quiet
