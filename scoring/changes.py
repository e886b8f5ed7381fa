"""Decide whether a new score card is worth announcing, and say why it moved.

Scores are recomputed after every batch, but most batches move them by a hair;
downstream consumers (leaderboards, notifications) only want the moves that
matter. `diff_scores` compares two cards and returns a `ScoreChanged` event
naming the scores that moved by more than a threshold, with one sentence per
score that points at the input that moved it most.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from scoring.columns import DAY_MS, Ints
from scoring.explain import (
    ScoreCard,
    contribution_text,
    explanation_points,
    explanation_summary,
    explanations_of,
)
from scoring.model import Scores, _round
from scoring.model import points as input_points
from scoring.names import COMPONENT_LABELS, COMPONENT_SCORES, PRIOR, SCORE_LABELS, SCORE_NAMES
from scoring.window import Floats


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
    #: False when the creator's window holds nothing: it has left every leaderboard.
    active: bool = True
    #: What moved the card: "events" (the creator's own), "window_rolled" (stream time
    #: crossed a day and the window lost one: no events of its own), "model_rollout"
    #: (re-scored with a new model version) or "rescore" (an operator asked for a pass).
    cause: str = "events"

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
            "active": self.active,
            "cause": self.cause,
        }


def diff_scores(
    old: ScoreCard | None, new: ScoreCard, threshold: float, cause: str = "events"
) -> ScoreChanged | None:
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
        if (
            not changed
            and old.provisional == new.provisional
            and old.region == new.region
            and old.active == new.active
        ):
            return None
        for name in changed:
            reasons[name] = _reason(name, old_values[name], new_values[name], old, new)
        if old.active != new.active:
            reasons["active"] = active_reason(new.active)
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
        active=new.active,
        cause=cause,
    )


def active_reason(active: bool) -> str:
    """The reason given when a creator leaves the leaderboards or comes back to them."""
    if active:
        return "Active again: new posts, tags or orders in the window; back on the leaderboards."
    return (
        "No posts, tags or orders left in the window: the creator has left every "
        "leaderboard until it has new activity."
    )


def window_reason(as_of_ms: int, window_days: int) -> str:
    """The reason given when a card moved only because stream time crossed a UTC day."""
    last = as_of_ms // DAY_MS
    first = np.datetime64(last - window_days + 1, "D")
    return (
        f"Window rolled: it now covers {first} to {np.datetime64(last, 'D')} (UTC, stream "
        "time), and older days no longer count."
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


@dataclass(frozen=True, slots=True)
class Published:
    """A creator whose card a flush publishes: where its cards are in the flush's scores."""

    creator_id: str
    new: int  # row of the new card in `Scores`
    old: int  # row of the previous card, -1 when it is unknown (first card, another model)
    region: str
    old_region: str | None
    as_of_ms: int
    old_as_of_ms: int = -1
    #: The model the previous card was scored with when it is not this one (else None).
    old_model: str | None = None
    #: Why the card is being scored again: see `ScoreChanged.cause`.
    cause: str = "events"


def score_changes(
    scores: Scores, published: Sequence[Published], threshold: float
) -> list[ScoreChanged | None]:
    """`diff_scores` of every published creator's previous and new card, for all at once.

    The same records, word for word (a test compares them): the scores that moved by more
    than `threshold` and the driving input of each are found for all creators together;
    only the sentences of the scores that moved are written one by one.
    """
    m = len(published)
    out: list[ScoreChanged | None] = [None] * m
    if not m:
        return out
    new_rows = np.array([p.new for p in published], dtype=np.int64)
    old_rows = np.array([p.old for p in published], dtype=np.int64)
    known = old_rows >= 0
    new_values = _headline(scores, new_rows)
    old_values = _headline(scores, np.where(known, old_rows, 0))
    moved = np.abs(new_values - old_values) > threshold
    drivers = _drivers(scores, new_rows, old_rows, moved & known[:, None])
    model_version = scores.model.params.model_version
    new_lists = new_values.tolist()
    old_lists = old_values.tolist()
    provisional = scores.provisional
    active = scores.active
    for j, p in enumerate(published):
        new_map = dict(zip(SCORE_NAMES, new_lists[j], strict=True))
        is_provisional = bool(provisional[p.new])
        is_active = bool(active[p.new])
        reasons: dict[str, str] = {}
        if p.old < 0:
            first = explanations_of(scores, p.new)
            for name in SCORE_NAMES:
                reasons[name] = explanation_summary(first, name)
            if p.old_model is not None:
                reasons["model_version"] = f"Scored with model {model_version} (was {p.old_model})."
            if not is_active:
                reasons["active"] = active_reason(False)
            out[j] = ScoreChanged(
                p.creator_id, p.region, model_version, p.as_of_ms, SCORE_NAMES, None,
                MappingProxyType(new_map), MappingProxyType(reasons), is_provisional,
                is_active, p.cause,
            )  # fmt: skip
            continue
        was_provisional = bool(provisional[p.old])
        was_active = bool(active[p.old])
        changed = tuple(name for name, flag in zip(SCORE_NAMES, moved[j], strict=True) if flag)
        if (
            not changed
            and was_provisional == is_provisional
            and p.old_region == p.region
            and was_active == is_active
        ):
            continue
        old_map = dict(zip(SCORE_NAMES, old_lists[j], strict=True))
        new_explanations = explanations_of(scores, p.new) if changed else {}
        for name in changed:
            before, after = old_map[name], new_map[name]
            direction = "rose" if after > before else "fell"
            text = f"{SCORE_LABELS[name]} {direction} {abs(after - before):.2f} to {after:.2f}"
            cname, delta, gone = drivers[j][name]
            detail = (
                "no longer counted." if gone else contribution_text(new_explanations, name, cname)
            )
            label = SCORE_LABELS.get(cname) or COMPONENT_LABELS.get(cname, cname)
            reasons[name] = f"{text}, mostly from {label.lower()} ({delta:+.2f} points): {detail}"
        if was_provisional != is_provisional:
            reasons["provisional"] = (
                "Scores are now provisional: too little recent data."
                if is_provisional
                else "Scores are no longer provisional: enough recent posts and orders."
            )
        if p.old_region != p.region:
            reasons["region"] = f"Region changed from {p.old_region} to {p.region}."
        if was_active != is_active:
            reasons["active"] = active_reason(is_active)
        if p.cause == "window_rolled":
            reasons["window"] = window_reason(p.as_of_ms, scores.model.params.window_days)
        out[j] = ScoreChanged(
            p.creator_id, p.region, model_version, p.as_of_ms, changed,
            MappingProxyType(old_map), MappingProxyType(new_map), MappingProxyType(reasons),
            is_provisional, is_active, p.cause,
        )  # fmt: skip
    return out


def _headline(scores: Scores, rows: Ints) -> Floats:
    """The eight headline scores (SCORE_NAMES order) of the cards at `rows`."""
    return np.column_stack((scores.overall[rows], scores.values[rows]))


# (input, points delta, whether the input is gone) per published creator and moved score.
_Driver = tuple[str, float, bool]


def _drivers(
    scores: Scores, new_rows: Ints, old_rows: Ints, moved: npt.NDArray[np.bool_]
) -> list[dict[str, _Driver]]:
    """For every moved score, the input whose points moved most (`_driver`'s rules)."""
    out: list[dict[str, _Driver]] = [{} for _ in range(len(new_rows))]
    weights = scores.model.weights
    for s, name in enumerate(SCORE_NAMES):
        which = np.flatnonzero(moved[:, s])
        if not len(which):
            continue
        if name == "overall":
            names: tuple[str, ...] = COMPONENT_SCORES
            new_pts = _overall_points(scores, new_rows[which], weights)
            old_pts = _overall_points(scores, old_rows[which], weights)
            new_prior = old_prior = np.zeros(len(which))
        else:
            names = tuple(c.name for c in scores.model.curves[name])
            new_pts, new_prior = input_points(scores, name, new_rows[which])
            old_pts, old_prior = input_points(scores, name, old_rows[which])
        delta = new_pts - old_pts
        size = np.abs(delta)
        best = np.argmax(size, axis=1)  # the first input with the largest move
        best_size = size[np.arange(len(which)), best]
        # The prior, where the new card has one, comes after the inputs; one only the old
        # card had is "no longer counted" when it outweighs every move.
        prior_delta = new_prior - old_prior
        take_prior = (new_prior > 0.0) & (np.abs(prior_delta) > best_size)
        best_size = np.where(take_prior, np.abs(prior_delta), best_size)
        gone = (new_prior <= 0.0) & (old_prior > 0.0) & (old_prior > best_size)
        rows = zip(which.tolist(), best.tolist(), take_prior.tolist(), gone.tolist(), strict=True)
        for k, (j, b, prior, was) in enumerate(rows):
            if was:
                out[j][name] = (PRIOR, -float(old_prior[k]), True)
            elif prior:
                out[j][name] = (PRIOR, float(prior_delta[k]), False)
            else:
                out[j][name] = (names[b], float(delta[k, b]), False)
    return out


def _overall_points(scores: Scores, rows: Ints, weights: tuple[float, ...]) -> Floats:
    """round2(weight x score) per component: the contributions of the overall explanation."""
    values = scores.values[rows]
    return np.column_stack([_round(w * values[:, i], 2) for i, w in enumerate(weights)])
