"""Decide whether a new score card is worth announcing, and say why it moved.

Scores are recomputed after every batch, but most batches move them by a hair;
downstream consumers (leaderboards, notifications) only want the moves that
matter. `diff_scores` compares two cards and returns a `ScoreChanged` event
naming the scores that moved by more than a threshold, with one sentence per
score that points at the input that moved it most.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from scoring.explain import (
    ScoreCard,
    contribution_text,
    explanation_points,
    explanation_summary,
)
from scoring.names import COMPONENT_LABELS, SCORE_LABELS, SCORE_NAMES


@dataclass(frozen=True)
class ScoreChanged:
    """A creator's scores moved (or its first card was computed)."""

    creator_id: str
    region: str
    model_version: str
    event_time_ms: int  # the new card's event-time watermark
    changed: tuple[str, ...]
    old: Mapping[str, float] | None
    new: Mapping[str, float]
    reasons: Mapping[str, str]
    provisional: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "creator_id": self.creator_id,
            "region": self.region,
            "model_version": self.model_version,
            "event_time_ms": self.event_time_ms,
            "changed": list(self.changed),
            "old": None if self.old is None else dict(self.old),
            "new": dict(self.new),
            "reasons": dict(self.reasons),
            "provisional": self.provisional,
        }


def diff_scores(old: ScoreCard | None, new: ScoreCard, threshold: float) -> ScoreChanged | None:
    """The change from `old` to `new`, or None if nothing moved by more than `threshold`.

    A first card (old is None) always emits. So does a new model version, a new
    region (the creator moves between regional leaderboards) or a flip of the
    provisional flag, even when no score moved past the threshold.
    """
    new_values = new.values()
    reasons: dict[str, str] = {}
    if old is None or old.model_version != new.model_version:
        changed: tuple[str, ...] = SCORE_NAMES
        old_values = None if old is None else old.values()
        for name in SCORE_NAMES:
            reasons[name] = explanation_summary(new.explanations, name)
        if old is not None:
            reasons["model_version"] = (
                f"Scored with model {new.model_version} (was {old.model_version})."
            )
    else:
        old_values = old.values()
        changed = tuple(n for n in SCORE_NAMES if abs(new_values[n] - old_values[n]) > threshold)
        if not changed and old.provisional == new.provisional and old.region == new.region:
            return None
        for name in changed:
            reasons[name] = _reason(name, old_values[name], new_values[name], old, new)
        if old.provisional != new.provisional:
            reasons["provisional"] = (
                "Scores are now provisional: too little recent data."
                if new.provisional
                else "Scores are no longer provisional: enough recent posts and orders."
            )
        if old.region != new.region:
            reasons["region"] = f"Region changed from {old.region} to {new.region}."
    return ScoreChanged(
        creator_id=new.creator_id,
        region=new.region,
        model_version=new.model_version,
        event_time_ms=new.as_of_ms,
        changed=changed,
        old=None if old_values is None else MappingProxyType(old_values),
        new=MappingProxyType(new_values),
        reasons=MappingProxyType(reasons),
        provisional=new.provisional,
    )


def _reason(name: str, before: float, after: float, old: ScoreCard, new: ScoreCard) -> str:
    direction = "rose" if after > before else "fell"
    text = f"{SCORE_LABELS[name]} {direction} {abs(after - before):.2f} to {after:.2f}"
    driver = _driver(
        explanation_points(old.explanations, name), explanation_points(new.explanations, name)
    )
    if driver is None:
        return text + "."
    cname, delta, gone = driver
    # Only the driving input's sentence is written (a whole explanation costs far more).
    detail = "no longer counted." if gone else contribution_text(new.explanations, name, cname)
    label = SCORE_LABELS.get(cname) or COMPONENT_LABELS.get(cname, cname)
    return f"{text}, mostly from {label.lower()} ({delta:+.2f} points): {detail}"


def _driver(
    old: list[tuple[str, float]] | None, new: list[tuple[str, float]] | None
) -> tuple[str, float, bool] | None:
    """The contribution whose points moved most between two explanations, and whether it
    is one the new explanation no longer has."""
    if old is None or new is None:
        return None
    before = dict(old)
    best: tuple[str, float, bool] | None = None
    for cname, points in new:
        delta = points - before.pop(cname, 0.0)
        if best is None or abs(delta) > abs(best[1]):
            best = (cname, delta, False)
    for cname, pts in before.items():  # inputs that disappeared (e.g. the neutral prior)
        if best is None or pts > abs(best[1]):
            best = (cname, -pts, True)
    return best
