"""Fold a flush's events into the creators' records, for all creators at once.

The rules are those of one event at a time, in arrival order, which is how they
are stated (docs/scoring.md, "Rolling state"); `merge` reaches the same records and
the same outcome for every event without a Python step per record:

* **Late.** An event is LATE when its day is at least `window_days` before the
  newer of its own time and the creator's watermark as it arrives (the newest event
  time seen, counting the flush's earlier events). It changes nothing, except that a
  post still sets the region (below).
* **Stream time.** Given the stream time (`stream_ms`, the newest event time of the
  whole stream, docs/scoring.md "Stream time"), a creator's watermark is at least the
  start of the stream's UTC day: its window ends there or at its own newer events. A
  creator with no events moves all the same: merged with no events and a later stream
  time, its older days fall out (the day-boundary sweep does exactly that). Events
  taken but before that window leave it at once and are reported LATE_STREAM. Lateness
  itself is judged against the creator's watermark, not the flush's stream time, so
  that which events count never depends on how far other partitions had got (replay
  equals live).
* **One record per id.** Records are keyed by a 64-bit hash of their id. Versions of
  one record are totally ordered (post: newer `observed_at`, then larger counters,
  then the other fields; tag: its fields; order: status placed < cancelled <
  refunded, then the other fields), and the record holds the greatest version seen.
  An event is APPLIED (a new id), UPDATED (a greater version than every earlier one)
  or DUPLICATE (not greater: nothing changes). Any arrival order therefore ends in
  the same records.
* **Expiry.** Records of days before the window that ends on the watermark's day are
  dropped; their ids are kept (`Merged.seen`: creator, id hash, the record's day) for
  `seen_days` more days.
* **Seen.** An event whose id is among the creator's kept ids is DUPLICATE: its record
  was counted while it was in the window, and a replay that gives it another event time
  must not count it again.
* **Region.** The region of the post with the newest `posted_at` (ties: the greater
  region name), late posts included: it is the creator's, not the window's.

These equal the one-at-a-time rules whenever an id keeps its event time (a post's
snapshots share `posted_at`, an order's updates share `ordered_at`), as producers
send them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from scoring.columns import (
    DAY_MS,
    ORDER,
    POST,
    SEEN,
    TAG,
    Arrivals,
    Columns,
    Heads,
    Ints,
    Rows,
)
from scoring.vocab import NONE, Vocabulary

Flags = npt.NDArray[np.bool_]


class Outcome(enum.IntEnum):
    """What an event did, as stored in `Merged.outcomes`."""

    APPLIED = 0  # a new post, tag or order in the window
    UPDATED = 1  # a greater version replaced the record
    DUPLICATE = 2  # already reflected (the same or a lesser version): nothing changed
    LATE = 3  # older than the window behind the creator's watermark: ignored
    LATE_STREAM = 4  # before the window that ends on the stream's day: ignored


#: Why a LATE or LATE_STREAM event was ignored, as the late counter's `reason` label.
LATE_REASONS: Final = {Outcome.LATE: "creator_window", Outcome.LATE_STREAM: "stream_window"}


@dataclass(slots=True)
class Merged:
    """The creators after a flush: heads, records, each event's outcome and what moved."""

    heads: Heads
    columns: Columns
    #: One `Outcome` per event, in arrival order.
    outcomes: npt.NDArray[np.int8]
    #: Per creator: its records or heads differ from before.
    changed: Flags
    #: The ids of records that left the window, still recognised (`SEEN` rows, sorted by
    #: creator and hash).
    seen: Rows


#: Truncated (creator, hash) keys: creator index in the high bits, the top bits of the hash
#: below, so keys sort like (creator, hash) with rare ties that `_locate` resolves.
_KEY_SHIFT: Final = 40
_HASH_DROP: Final = np.uint64(64 - _KEY_SHIFT)
_TIME_SPAN: Final = 2**40


def merge(
    heads: Heads,
    columns: Columns,
    new: Arrivals,
    vocab: Vocabulary,
    window_days: int,
    seen: Rows | None = None,
    seen_days: int = 0,
    stream_ms: Ints | int | None = None,
) -> Merged:
    """The records of `columns` (creators 0..n-1 with `heads`) after the events of `new`;
    `seen` holds the creators' ids of records that already left the window, `stream_ms`
    the stream time (one for all, or one per creator; None: the creators' own times)."""
    n = len(heads)
    ranks = vocab.ranks()
    seen = np.empty(0, SEEN) if seen is None else seen
    late = _late(heads.watermark, new, window_days)
    again = _seen_again(seen, new) & ~late
    late |= again  # not merged, like late events, but counted as duplicates
    outcomes = np.full(len(new), Outcome.LATE, dtype=np.int8)
    outcomes[again] = Outcome.DUPLICATE

    kept = ~late
    watermark = heads.watermark.copy()
    np.maximum.at(watermark, new.creator[kept], new.time_ms[kept])
    if stream_ms is not None:
        # The window ends on the stream's day at the earliest: the floor is the start of
        # that day (UTC), so a card's date does not depend on when in the day it was
        # scored. A creator with no state and no kept event (watermark 0) gets none.
        floor = np.asarray(stream_ms, dtype=np.int64) // DAY_MS * DAY_MS
        watermark = np.where(watermark > 0, np.maximum(watermark, floor), watermark)
    region, region_ms = _region(heads, new.posts, ranks)

    posts = _merge_section(columns.posts, new.posts, late, outcomes, _post_version, ranks, POST)
    tags = _merge_section(columns.tags, new.tags, late, outcomes, _tag_version, ranks, TAG)
    orders = _merge_section(
        columns.orders, new.orders, late, outcomes, _order_version, ranks, ORDER
    )

    first = watermark // DAY_MS - window_days + 1
    moved = watermark // DAY_MS != heads.watermark // DAY_MS
    if moved.any():
        gone: list[Rows] = []
        inside: list[Rows] = []
        for rows in (posts, tags, orders):
            keep = rows["day"] >= first[rows["creator"]]
            inside.append(rows[keep])
            gone.append(rows[~keep])
        posts, tags, orders = inside
        seen = _remember(seen, gone, first, seen_days)

    changed = (
        (watermark != heads.watermark) | (region != heads.region) | (region_ms != heads.region_ms)
    )
    took = outcomes <= Outcome.UPDATED
    changed[new.creator[took]] = True
    if stream_ms is not None and len(new):
        # Taken, but before the window that ends on the stream's day: gone at once, and
        # counted as late (their ids are recognised like any record that left the window).
        outcomes[took & (new.time_ms // DAY_MS < first[new.creator])] = Outcome.LATE_STREAM
    return Merged(
        Heads(watermark, region, region_ms),
        Columns(posts, tags, orders),
        outcomes,
        changed if n else np.zeros(0, dtype=np.bool_),
        seen,
    )


#: Seen ids are kept per kind (a post and an order may share an id): the id hash of each
#: section is mixed with its own constant (posts, tags, orders).
_KIND_SALT: Final = (np.uint64(0), np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))


def _seen_again(seen: Rows, new: Arrivals) -> Flags:
    """Per event (by `seq`): its id is among its creator's ids that left the window."""
    out = np.zeros(len(new), dtype=np.bool_)
    if not len(seen) or not len(new):
        return out
    seen_keys = keys(seen["creator"], seen["h"])
    for salt, rows in zip(_KIND_SALT, (new.posts, new.tags, new.orders), strict=True):
        if len(rows):
            _, found = locate(seen, seen_keys, rows["creator"], rows["h"] ^ salt)
            out[rows["seq"][found]] = True
    return out


def _remember(seen: Rows, gone: list[Rows], first: Ints, seen_days: int) -> Rows:
    """`seen` with the ids of the records that just left the window, less those older than
    `seen_days` before each creator's first day."""
    if seen_days <= 0:
        return np.empty(0, SEEN)
    parts = [seen]
    for salt, rows in zip(_KIND_SALT, gone, strict=True):
        if len(rows):
            part = np.empty(len(rows), SEEN)
            part["creator"] = rows["creator"]
            part["h"] = rows["h"] ^ salt
            part["day"] = rows["day"]
            parts.append(part)
    both = np.concatenate(parts)
    both = both[both["day"] >= first[both["creator"]] - seen_days]
    if len(parts) > 1:
        both = both[np.lexsort((both["day"], both["h"], both["creator"]))]
        # One entry per (creator, id): the latest day, so it is kept the longest.
        last = np.ones(len(both), dtype=np.bool_)
        last[:-1] = (both["creator"][1:] != both["creator"][:-1]) | (
            both["h"][1:] != both["h"][:-1]
        )
        both = both[last]
    out: Rows = both
    return out


def _late(watermark: Ints, new: Arrivals, window_days: int) -> Flags:
    """LATE per event: its day against the watermark as it arrives (see the module doc)."""
    if not len(new):
        return np.zeros(0, dtype=np.bool_)
    c, t = new.creator, new.time_ms
    order = np.argsort(c, kind="stable")
    cs, ts = c[order], t[order]
    base = int(ts.min())
    rel = ts - base
    if int(rel.max()) >= _TIME_SPAN or int(cs.max()) >= 2**22:
        before = _before_slow(cs, ts)
    else:
        # Newest time so far per creator: one running max, creators kept apart by offsets.
        running = np.maximum.accumulate(rel + cs * _TIME_SPAN) - cs * _TIME_SPAN + base
        before = np.empty_like(running)
        before[0] = -1
        before[1:] = np.where(cs[1:] == cs[:-1], running[:-1], -1)
    before = np.maximum(before, watermark[cs])
    newest = np.maximum(ts, before)
    late_sorted = ts // DAY_MS <= newest // DAY_MS - window_days
    late = np.empty_like(late_sorted)
    late[order] = late_sorted
    return late


def _before_slow(cs: Ints, ts: Ints) -> Ints:
    out = np.empty_like(ts)
    last_c, running = -1, -1
    for i, (ci, ti) in enumerate(zip(cs.tolist(), ts.tolist(), strict=True)):
        if ci != last_c:
            last_c, running = ci, -1
        out[i] = running
        running = max(running, ti)
    return out


def _region(heads: Heads, posts: Rows, ranks: Ints) -> tuple[Ints, Ints]:
    """Region and its post time per creator: the newest post's, late ones included."""
    region, region_ms = heads.region.copy(), heads.region_ms.copy()
    if not len(posts):
        return region, region_ms
    t = posts["day"] * DAY_MS + posts["ms"]
    r = _rank(ranks, posts["region"])
    c = posts["creator"]
    order = np.lexsort((r, t, c))
    last = np.ones(len(order), dtype=np.bool_)
    last[:-1] = c[order][1:] != c[order][:-1]
    pick = order[last]
    pc, pt, pr = c[pick], t[pick], r[pick]
    old_t, old_r = region_ms[pc], _rank(ranks, region[pc])
    newer = (pt > old_t) | ((pt == old_t) & (pr > old_r))
    region[pc[newer]] = posts["region"][pick[newer]]
    region_ms[pc[newer]] = pt[newer]
    return region, region_ms


def _rank(ranks: Ints, codes: Ints) -> Ints:
    """Sort ranks of vocabulary codes, NONE ranking below every name."""
    if not len(ranks):
        return np.full(len(codes), -1, dtype=np.int64)
    return np.where(codes >= 0, ranks[np.maximum(codes, 0)], -1)


# A section's version order: the fields of a version, most significant first, for rows
# of that section (names compare as strings, through their sort ranks).
_Version = list[npt.NDArray[np.generic]]
_VersionOf = Callable[[Rows, Ints], _Version]


def _post_version(rows: Rows, ranks: Ints) -> _Version:
    """Newest observation, then larger counters, then posted time, type, themes, brand."""
    return [
        rows["observed"], rows["views"], rows["likes"], rows["comments"], rows["shares"],
        rows["day"] * DAY_MS + rows["ms"], _rank(ranks, rows["content_type"]),
        _rank(ranks, rows["themes"]), _rank(ranks, rows["brand"]),
    ]  # fmt: skip


def _tag_version(rows: Rows, ranks: Ints) -> _Version:
    return [
        rows["day"], rows["post"], _rank(ranks, rows["brand"]), _rank(ranks, rows["theme"]),
        rows["campaign"],
    ]  # fmt: skip


def _order_version(rows: Rows, ranks: Ints) -> _Version:
    """Status first (placed < cancelled < refunded: an order's status only moves forward)."""
    return [
        rows["status"], rows["micros"], rows["quantity"], _rank(ranks, rows["currency"]),
        _rank(ranks, rows["brand"]), _rank(ranks, rows["theme"]), rows["has_post"],
        rows["post"], rows["day"],
    ]  # fmt: skip


def keys(creator: Ints, h: npt.NDArray[np.uint64]) -> Ints:
    """Truncated (creator, hash) keys, non-decreasing over rows sorted by (creator, h)."""
    return (creator << _KEY_SHIFT) | (h >> _HASH_DROP).astype(np.int64)


def locate(
    rows: Rows, row_keys: Ints, creator: Ints, h: npt.NDArray[np.uint64]
) -> tuple[Ints, Flags]:
    """For each (creator, h): the first row of `rows` (sorted by creator, h) not below it,
    and whether that row is the one."""
    want = keys(creator, h)
    pos = np.searchsorted(row_keys, want, side="left")
    size = len(rows)
    rh = rows["h"]
    while True:
        inside = pos < size
        at = np.minimum(pos, size - 1) if size else pos
        tie = inside & (row_keys[at] == want) & (rh[at] < h) if size else inside
        if not tie.any():
            break
        pos = pos + tie
    found = (pos < size) & (rh[np.minimum(pos, size - 1)] == h) if size else pos < 0
    if size:
        found &= rows["creator"][np.minimum(pos, size - 1)] == creator
    return pos, found


def _merge_section(
    held: Rows,
    new: Rows,
    late: Flags,
    outcomes: npt.NDArray[np.int8],
    version: _VersionOf,
    ranks: Ints,
    dtype: np.dtype[np.void],
) -> Rows:
    """`held` after the non-late events of `new`; writes their outcomes."""
    if not len(new):
        return held
    live = new[~late[new["seq"]]]
    if not len(live):
        return held
    # Group the events by record, in arrival order within a record.
    live = live[np.lexsort((live["seq"], live["h"], live["creator"]))]
    lc, lh = live["creator"], live["h"]
    starts = np.ones(len(live), dtype=np.bool_)
    starts[1:] = (lc[1:] != lc[:-1]) | (lh[1:] != lh[:-1])
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    n_groups = len(first)

    held_keys = keys(held["creator"], held["h"])
    pos, found = locate(held, held_keys, lc[first], lh[first])

    # Candidates: the held version of each record that has one, then its events in order.
    had = np.flatnonzero(found)
    cand_group = np.concatenate((had, group))
    cand_new = np.concatenate((np.full(len(had), -1, dtype=np.int64), np.arange(len(live))))
    held_part = version(held[pos[had]], ranks)
    new_part = version(live, ranks)
    fields = [np.concatenate((a, b)) for a, b in zip(held_part, new_part, strict=True)]
    rank = _dense_rank(fields)

    order = np.lexsort((cand_new, cand_group))  # per group: the held version first
    g, r, which = cand_group[order], rank[order], cand_new[order]
    span = int(r.max()) + 1
    running = np.maximum.accumulate(r + g * span) - g * span
    previous = np.full(len(order), -1, dtype=np.int64)
    same = g[1:] == g[:-1]
    previous[1:][same] = running[:-1][same]

    is_event = which >= 0
    ev = which[is_event]
    prev = previous[is_event]
    cur = r[is_event]
    result = np.where(
        prev < 0, Outcome.APPLIED, np.where(cur > prev, Outcome.UPDATED, Outcome.DUPLICATE)
    ).astype(np.int8)
    outcomes[live["seq"][ev]] = result

    # The greatest version per record: is it an event (then it replaces or adds a row)?
    last = np.ones(len(order), dtype=np.bool_)
    last[:-1] = ~same
    best = running[last]  # per group, in group order
    winner = np.full(n_groups, -1, dtype=np.int64)
    top = is_event & (r == best[g])
    # The first event reaching the best rank (equal ranks are equal versions).
    idx = np.flatnonzero(top)[::-1]
    winner[g[idx]] = which[idx]
    held_best = np.zeros(n_groups, dtype=np.bool_)
    held_best[had] = True  # a held version reaching the best rank keeps the row as it is
    held_rank = np.full(n_groups, -1, dtype=np.int64)
    held_rank[g[~is_event]] = r[~is_event]
    held_best &= held_rank == best
    take = (winner >= 0) & ~held_best

    rows = live[winner[take]]
    out_rows = np.empty(len(rows), dtype=dtype)
    for name in dtype.names or ():
        out_rows[name] = rows[name]
    replace = take & found
    result_rows = held.copy() if replace.any() else held
    if replace.any():
        result_rows[pos[replace]] = out_rows[found[take]]
    add = take & ~found
    if add.any():
        result_rows = np.insert(result_rows, pos[add], out_rows[~found[take]])
    return result_rows


def _dense_rank(fields: list[npt.NDArray[np.generic]]) -> Ints:
    """Dense rank of each row of lexicographically compared fields (first most significant)."""
    order = np.lexsort(fields[::-1])
    n = len(order)
    differs = np.zeros(n, dtype=np.bool_)
    for f in fields:
        s = f[order]
        differs[1:] |= s[1:] != s[:-1]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.cumsum(differs)
    return rank


__all__ = ["NONE", "SEEN", "Merged", "Outcome", "keys", "locate", "merge"]
