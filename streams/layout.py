"""What a score card looks like in Redis: the creator hash's fields and the boards it sits on.

Keys are built by `streams.keys` only; this module decides the values (field texts,
board scores) so that the pipeline, the readers and the tests agree on one layout,
which the README documents for widget authors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from scoring.explain import ScoreCard, explanation_basis
from streams.keys import BOARD_SCORES, BREAKDOWN_SCORES, GLOBAL_REGION, Keys

#: Builds board ids: Redis keys without the deployment's prefix.
_IDS = Keys(prefix="")


def number(value: float) -> str:
    """A score as a hash field: the shortest text that reads back as the same double."""
    return repr(float(value))


def card_basis(card: ScoreCard) -> dict[str, Any]:
    """The figures the card's explanations are written from (`explanation_basis`).

    ValueError for a card whose explanations were not written from a basis (one rebuilt
    by `ScoreCard.from_dict`): only those can be published, since readers write the
    sentences from this basis.
    """
    basis = explanation_basis(card.explanations)
    if basis is None:
        raise ValueError(f"card of {card.creator_id!r} has no explanation basis")
    return basis


def basis_json(card: ScoreCard) -> str:
    """The `basis` field: `card_basis` as JSON (readers write the sentences from it)."""
    return orjson.dumps(card_basis(card)).decode()


def creator_fields(
    card: ScoreCard, *, updated_at_ms: int, basis: str | None = None
) -> dict[str, str]:
    """The creator hash (`{prefix}creator:{id}`) for a score card.

    `basis` is `basis_json(card)` when the caller already has it.
    """
    fields = {name: number(value) for name, value in card.values().items()}
    fields["provisional"] = "1" if card.provisional else "0"
    fields["confidence"] = number(card.confidence)
    fields["region"] = card.region
    fields["event_time"] = str(card.as_of_ms)
    fields["updated_at"] = str(updated_at_ms)
    fields["model_version"] = card.model_version
    fields["basis"] = basis_json(card) if basis is None else basis
    fields["active"] = "1" if card.active else "0"
    return fields


_BOARD_IDS: dict[tuple[str, str, str, str], str] = {}


def board_id(score: str, region: str, kind: str, name: str) -> str:
    """The id (key without prefix) of a headline board (kind ""), or of a theme ("theme")
    or content-type ("ct") board; remembered, as the same few thousand recur in every flush."""
    key = (score, region, kind, name)
    board = _BOARD_IDS.get(key)
    if board is None:
        if len(_BOARD_IDS) > 100_000:
            _BOARD_IDS.clear()
        if kind == "":
            board = _IDS.board(score, region)
        elif kind == "theme":
            board = _IDS.theme_board(score, region, name)
        else:
            board = _IDS.content_type_board(score, region, name)
        _BOARD_IDS[key] = board
    return board


def board_scores(card: ScoreCard) -> dict[str, float]:
    """Every board the creator belongs to (id without prefix) and its score there.

    Headline boards exist globally and for the creator's region; the breakdown scores
    also get per-theme and per-content-type boards, for both of those regions. An
    inactive creator (nothing in its window) is on none.
    """
    if not card.active:
        return {}
    regions = (GLOBAL_REGION,) if card.region == GLOBAL_REGION else (GLOBAL_REGION, card.region)
    boards: dict[str, float] = {}
    values = card.values()
    for name in BOARD_SCORES:
        value = float(values[name])
        for region in regions:
            boards[board_id(name, region, "", "")] = value
    for name in BREAKDOWN_SCORES:
        by_theme: Mapping[str, float] = getattr(card, f"{name}_by_theme")
        by_type: Mapping[str, float] = getattr(card, f"{name}_by_content_type")
        for region in regions:
            for theme, value in by_theme.items():
                boards[board_id(name, region, "theme", theme)] = float(value)
            for content_type, value in by_type.items():
                boards[board_id(name, region, "ct", content_type)] = float(value)
    return boards
