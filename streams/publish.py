"""What a flush writes to Redis for the creators whose card changed: moved fields and board entries.

The pipeline scores every changed creator before and after the flush in one pass;
this compares the two cards of all of them as arrays (headline scores, confidence,
flags, every breakdown, the explanation basis) and turns into strings only what
moved: the hash fields that differ (plus `updated_at`), the board entries whose
score moved, and the boards a creator joins or leaves. A creator whose previous card
is unknown (a first card, one scored by another model, a state that could not be
read) gets its whole hash and board set, and the sink asks Redis which boards to
leave (`CreatorSnapshot.previous_known`). The layout itself (field texts, board ids)
is `streams.layout`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from scoring.changes import Published
from scoring.columns import Ints
from scoring.model import Scores
from scoring.names import COMPONENT_SCORES, SCORE_NAMES
from scoring.vocab import Vocabulary
from scoring.window import Slices
from streams.keys import GLOBAL_REGION
from streams.layout import board_id, number
from streams.sinks.base import CreatorSnapshot

Flags = npt.NDArray[np.bool_]

#: The breakdown boards: (kind, score) of each slice value `_SliceMoves` compares.
_KINDS = ("theme", "ct")


@dataclass(frozen=True, slots=True)
class Snapshots:
    """A flush's Redis writes, and which published creators' cards did not change at all."""

    snapshots: list[CreatorSnapshot]
    unchanged: list[bool]


def plan(
    scores: Scores, published: Sequence[Published], vocab: Vocabulary, updated_at_ms: int
) -> Snapshots:
    """The snapshot of every creator of `published` whose card differs from its previous one."""
    m = len(published)
    if not m:
        return Snapshots([], [])
    new = np.array([p.new for p in published], dtype=np.int64)
    old = np.array([p.old for p in published], dtype=np.int64)
    known = old >= 0
    old_or_new = np.where(known, old, new)
    headline_new = _headline(scores, new)
    headline_old = _headline(scores, old_or_new)
    value_moved = (headline_new != headline_old) | ~known[:, None]
    confidence_moved = scores.confidence[new] != scores.confidence[old_or_new]
    flag_moved = scores.provisional[new] != scores.provisional[old_or_new]
    basis_moved = _basis_moved(scores, new, old_or_new) | value_moved.any(axis=1) | flag_moved
    themes = _SliceMoves(scores.totals.by_theme, scores.influence_by_theme,
                         scores.overall_by_theme, new, old, vocab)  # fmt: skip
    types = _SliceMoves(scores.totals.by_content_type, scores.influence_by_content_type,
                        scores.overall_by_content_type, new, old, vocab)  # fmt: skip
    region_moved = [p.region != p.old_region for p in published]
    active_new = scores.active[new].tolist()
    active_old = scores.active[old_or_new].tolist()
    unchanged: list[bool] = []
    out: list[CreatorSnapshot] = []
    headline_lists = headline_new.tolist()
    old_lists = headline_old.tolist()
    confidence = scores.confidence[new].tolist()
    provisional = scores.provisional[new].tolist()
    model_version = scores.model.params.model_version
    for j, p in enumerate(published):
        if known[j] and not active_new[j] and not active_old[j]:
            # Inactive before and after (the window rolled over nothing): no board, and the
            # hash already says so; only the card's date would move.
            unchanged.append(True)
            continue
        if (
            known[j]
            and not basis_moved[j]
            and not confidence_moved[j]
            and not themes.any_moved[j]
            and not types.any_moved[j]
            and not region_moved[j]
            and p.as_of_ms == p.old_as_of_ms
        ):
            unchanged.append(True)  # new facts, the same card: Redis stays as it is
            continue
        unchanged.append(False)
        values = dict(zip(SCORE_NAMES, headline_lists[j], strict=True))
        fields: dict[str, str] = {}
        moved = value_moved[j]
        for s, name in enumerate(SCORE_NAMES):
            if moved[s]:
                fields[name] = number(values[name])
        if not known[j] or flag_moved[j]:
            fields["provisional"] = "1" if provisional[j] else "0"
        if not known[j] or confidence_moved[j]:
            fields["confidence"] = number(confidence[j])
        if not known[j] or region_moved[j]:
            fields["region"] = p.region
        if not known[j] or p.as_of_ms != p.old_as_of_ms:
            fields["event_time"] = str(p.as_of_ms)
        fields["updated_at"] = str(updated_at_ms)
        if not known[j]:
            fields["model_version"] = model_version
        if basis_moved[j]:
            fields["basis"] = orjson.dumps(scores.basis(p.new)).decode()
        if not known[j] or active_new[j] != active_old[j]:
            fields["active"] = "1" if active_new[j] else "0"
        if not active_new[j]:
            # Inactive: on no board. The sink asks Redis which boards it is on, and leaves them.
            out.append(CreatorSnapshot(p.creator_id, fields, {}, previous_known=False))
        elif not known[j] or not active_old[j]:
            boards = _all_boards(p.region, values, themes.entries(j), types.entries(j))
            out.append(CreatorSnapshot(p.creator_id, fields, boards, previous_known=False))
        elif region_moved[j]:
            out.append(_moved_region(p, values, dict(zip(SCORE_NAMES, old_lists[j], strict=True)),
                                     fields, themes, types, j))  # fmt: skip
        else:
            out.append(_moved_boards(p, values, moved, fields, themes, types, j))
    return Snapshots(out, unchanged)


def _headline(scores: Scores, rows: Ints) -> npt.NDArray[np.float64]:
    return np.column_stack((scores.overall[rows], scores.values[rows]))


def _basis_moved(scores: Scores, new: Ints, old: Ints) -> Flags:
    """Whether the explanation basis (facts, inputs, evidence) differs between two cards."""
    t = scores.totals
    moved = np.zeros(len(new), dtype=np.bool_)
    for column in (
        t.posts.posts, t.posts.views, t.posts.engagements, t.posts.conversation,
        t.collab_posts, t.shoppable, t.shoppable_recent, t.campaigns, t.net_usd, t.orders,
        t.placed, t.cancelled, t.refunded, t.active_days, t.active_days_recent, t.active_weeks,
        t.brands, t.partners, t.repeat_brands, t.depth, t.lasting, t.selling,
    ):  # fmt: skip
        moved |= column[new] != column[old]
    for name in COMPONENT_SCORES:
        moved |= (scores.inputs[name][new] != scores.inputs[name][old]).any(axis=1)
        moved |= scores.evidence[name][new] != scores.evidence[name][old]
    return moved


class _SliceMoves:
    """One kind of breakdown (themes or content types) of every published creator, old and
    new aligned by name: which entries moved, which are new, which are gone."""

    def __init__(
        self,
        s: Slices,
        influence: npt.NDArray[np.float64],
        overall: npt.NDArray[np.float64],
        new: Ints,
        old: Ints,
        vocab: Vocabulary,
    ) -> None:
        m = len(new)
        self.vocab = vocab
        rows = max(int(new.max(initial=-1)), int(old.max(initial=-1)), -1) + 1
        new_of = np.full(rows, -1, dtype=np.int64)
        new_of[new] = np.arange(m)
        old_of = np.full(rows, -1, dtype=np.int64)
        old_of[old[old >= 0]] = np.flatnonzero(old >= 0)
        creator = np.minimum(s.creator, rows - 1) if rows else s.creator
        inside = s.creator < rows
        new_j = np.where(inside, new_of[creator], -1) if len(s) else creator
        old_j = np.where(inside, old_of[creator], -1) if len(s) else creator
        span = max(1, len(vocab))
        n_at = np.flatnonzero(new_j >= 0)
        o_at = np.flatnonzero(old_j >= 0)
        n_key = new_j[n_at] * span + s.key[n_at]
        o_key = old_j[o_at] * span + s.key[o_at]
        order = np.argsort(o_key, kind="stable")
        o_sorted = o_key[order]
        pos = np.searchsorted(o_sorted, n_key)
        pos_c = np.minimum(pos, max(0, len(o_sorted) - 1))
        found = (pos < len(o_sorted)) & (o_sorted[pos_c] == n_key) if len(o_sorted) else pos < 0
        match = np.where(found, o_at[order[pos_c]] if len(o_sorted) else 0, -1)
        infl_new, overall_new = influence[n_at], overall[n_at]
        infl_old = np.where(found, influence[np.maximum(match, 0)], np.nan) if len(s) else infl_new
        overall_old = np.where(found, overall[np.maximum(match, 0)], np.nan) if len(s) else infl_new
        infl_moved = ~found | (infl_new != infl_old)
        overall_moved = ~found | (overall_new != overall_old)
        gone = ~np.isin(o_key, n_key)
        moved_any = np.zeros(m, dtype=np.bool_)
        moved_any[new_j[n_at][infl_moved | overall_moved]] = True
        moved_any[old_j[o_at][gone]] = True
        self.any_moved = moved_any
        # What Python reads per creator, grouped by creator once: the entries that moved
        # (every publishing creator), all new entries (creators whose previous boards are
        # unknown) and all old ones (creators that moved region), the last two on demand.
        moved_at = np.flatnonzero(infl_moved | overall_moved)
        self._moved = _Grouped(
            new_j[n_at][moved_at], m, s.key[n_at][moved_at], infl_new[moved_at],
            overall_new[moved_at], infl_moved[moved_at], overall_moved[moved_at],
            found[moved_at],
        )  # fmt: skip
        self._gone = _Grouped(old_j[o_at][gone], m, s.key[o_at][gone])
        self._new_all = (new_j[n_at], s.key[n_at], infl_new, overall_new)
        self._old_all = (old_j[o_at], s.key[o_at], influence[o_at], overall[o_at])

    def entries(self, j: int) -> list[tuple[str, float, float]]:
        """Creator j's new entries: (name, influence, overall)."""
        return _entries(self._new_all, j, self.vocab)

    def moved(self, j: int) -> list[tuple[str, float | None, float | None, bool]]:
        """(name, influence if it moved, overall if it moved, whether it is new)."""
        name = self.vocab.name
        return [
            (name(k), i if mi else None, o if mo else None, not found)
            for k, i, o, mi, mo, found in self._moved.of(j)
        ]

    def gone(self, j: int) -> list[str]:
        name = self.vocab.name
        return [name(k) for (k,) in self._gone.of(j)]

    def old_entries(self, j: int) -> list[tuple[str, float, float]]:
        """Creator j's previous entries: (name, influence, overall)."""
        return _entries(self._old_all, j, self.vocab)


class _Grouped:
    """Rows grouped by owner (0..m-1), each row a tuple of the columns' values."""

    __slots__ = ("_rows",)

    def __init__(self, owner: Ints, m: int, *columns: npt.NDArray[np.generic]) -> None:
        rows: list[list[tuple[Any, ...]]] = [[] for _ in range(m)] if len(owner) else []
        if len(owner):
            for j, row in zip(
                owner.tolist(), zip(*(c.tolist() for c in columns), strict=True), strict=True
            ):
                rows[j].append(row)
        self._rows = rows

    def of(self, j: int) -> list[tuple[Any, ...]]:
        return self._rows[j] if self._rows else []


def _entries(
    table: tuple[Ints, Ints, npt.NDArray[np.float64], npt.NDArray[np.float64]],
    j: int,
    vocab: Vocabulary,
) -> list[tuple[str, float, float]]:
    owner, keys, infl, overall = table
    at = np.flatnonzero(owner == j)
    name = vocab.name
    return [
        (name(k), i, o)
        for k, i, o in zip(keys[at].tolist(), infl[at].tolist(), overall[at].tolist(), strict=True)
    ]


def _regions(region: str) -> tuple[str, ...]:
    return (GLOBAL_REGION,) if region == GLOBAL_REGION else (GLOBAL_REGION, region)


_HEADLINE_BOARDS: dict[tuple[str, ...], list[tuple[str, ...]]] = {}


def _headline_boards(regions: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Per headline score (SCORE_NAMES order), its board ids in these regions."""
    boards = _HEADLINE_BOARDS.get(regions)
    if boards is None:
        boards = _HEADLINE_BOARDS[regions] = [
            tuple(board_id(name, r, "", "") for r in regions) for name in SCORE_NAMES
        ]
    return boards


def _all_boards(
    region: str,
    values: dict[str, float],
    themes: list[tuple[str, float, float]],
    types: list[tuple[str, float, float]],
) -> dict[str, float]:
    boards: dict[str, float] = {}
    regions = _regions(region)
    for name in SCORE_NAMES:
        for r in regions:
            boards[board_id(name, r, "", "")] = values[name]
    for kind, entries in zip(_KINDS, (themes, types), strict=True):
        for r in regions:
            for key, infl, overall in entries:
                overall_id, influence_id = _slice_boards(r, kind, key)
                boards[overall_id] = overall
                boards[influence_id] = infl
    return boards


_SLICE_BOARDS: dict[tuple[str, str, str], tuple[str, str]] = {}


def _slice_boards(region: str, kind: str, key: str) -> tuple[str, str]:
    """The overall and influence board ids of one theme or content type in one region."""
    ids = _SLICE_BOARDS.get((region, kind, key))
    if ids is None:
        if len(_SLICE_BOARDS) > 100_000:
            _SLICE_BOARDS.clear()
        ids = _SLICE_BOARDS[region, kind, key] = (
            board_id("overall", region, kind, key),
            board_id("influence", region, kind, key),
        )
    return ids


def _moved_boards(
    p: Published,
    values: dict[str, float],
    moved: Flags,
    fields: dict[str, str],
    themes: _SliceMoves,
    types: _SliceMoves,
    j: int,
) -> CreatorSnapshot:
    """The same region as before: the entries whose score moved, the boards joined and left."""
    regions = _regions(p.region)
    set_boards: dict[str, float] = {}
    joined: set[str] = set()
    left: set[str] = set()
    headline = _headline_boards(regions)
    for s, name in enumerate(SCORE_NAMES):
        if moved[s]:
            for board in headline[s]:
                set_boards[board] = values[name]
    for kind, slices in zip(_KINDS, (themes, types), strict=True):
        for key, infl, overall, new in slices.moved(j):
            for r in regions:
                overall_id, influence_id = _slice_boards(r, kind, key)
                if overall is not None:
                    set_boards[overall_id] = overall
                if infl is not None:
                    set_boards[influence_id] = infl
                if new:
                    joined.add(overall_id)
                    joined.add(influence_id)
        for key in slices.gone(j):
            for r in regions:
                left.update(_slice_boards(r, kind, key))
    return CreatorSnapshot(
        p.creator_id, fields, set_boards, frozenset(left), join_boards=frozenset(joined)
    )


def _moved_region(
    p: Published,
    values: dict[str, float],
    old_values: dict[str, float],
    fields: dict[str, str],
    themes: _SliceMoves,
    types: _SliceMoves,
    j: int,
) -> CreatorSnapshot:
    """A creator that moved region: it leaves every board of the old one (rare: a whole
    board set is compared)."""
    assert p.old_region is not None
    new = _all_boards(p.region, values, themes.entries(j), types.entries(j))
    previous: dict[str, float] = {}
    old_regions = _regions(p.old_region)
    for name in SCORE_NAMES:
        for r in old_regions:
            previous[board_id(name, r, "", "")] = old_values[name]
    for kind, slices in zip(_KINDS, (themes, types), strict=True):
        for key, infl, overall in slices.old_entries(j):
            for r in old_regions:
                previous[board_id("overall", r, kind, key)] = overall
                previous[board_id("influence", r, kind, key)] = infl
    return CreatorSnapshot(
        p.creator_id,
        fields,
        {b: v for b, v in new.items() if previous.get(b) != v},
        frozenset(b for b in previous if b not in new),
        join_boards=frozenset(b for b in new if b not in previous),
    )
