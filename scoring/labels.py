"""Themes and content types come from a bounded taxonomy, so boards and state stay bounded.

Producers write labels freely; every distinct one would otherwise become its own
breakdown, its own leaderboards and its own Redis writes for every creator that
uses it. A label is normalised (lower case, surrounding whitespace dropped, inner
runs of whitespace made one space) and kept only if the scoring parameters list it
(`Params.themes`, `Params.content_types`); any other label is recorded as `other`,
and the event says which labels it mapped away so the worker can count them.
"""

from __future__ import annotations

from typing import Final

#: What a label outside the taxonomy becomes. Always accepted, never counted as unmapped.
OTHER: Final = "other"

#: The product themes of the documented contract and of the simulator.
DEFAULT_THEMES: Final[tuple[str, ...]] = (
    "baby",
    "beauty",
    "books",
    "electronics",
    "fashion",
    "fitness",
    "food",
    "gaming",
    "home",
    "pets",
)

#: The content types of the documented contract and of the simulator.
DEFAULT_CONTENT_TYPES: Final[tuple[str, ...]] = ("live", "photo", "short", "video")


def normalise(label: str) -> str:
    """The normal form of a label: lower case, whitespace trimmed and runs of it made one space."""
    return " ".join(label.split()).lower()


def is_normal(label: str) -> bool:
    """Whether `label` is already in the form `normalise` gives."""
    return normalise(label) == label
