"""What the scores read from a window of records, computed for many creators at once.

`window_totals` takes the rows of a run of creators and the day each creator's
window ends on, and returns the figures the formulas need (`scoring.model`): post
figures overall, per content type and per theme, posting days, campaigns, brands
and orders. Everything is an integer count or sum except three kinds of figure,
and those are computed exactly as the formulas state them, so a card does not
depend on how many creators were scored together:

* expected views and engagements (what peers would get for the same posts) are
  summed over content types in name order;
* net sales convert each currency's exact integer sum with the integer rate table
  and divide once (`Params.fx_scaled`);
* the coefficient of variation of daily posts squares with the C library's `pow`,
  as the formula in docs/scoring.md is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from scoring.columns import Columns, Ints, Rows, distinct
from scoring.merge import keys, locate
from scoring.params import Params
from scoring.vocab import NONE, Vocabulary

Floats = npt.NDArray[np.float64]

#: Sums of int64 values go through a float bincount only while no sum can pass this.
_EXACT_FLOAT: Final = 2**53


@dataclass(slots=True)
class PostSet:
    """Post figures of a set of rows (creators or slices): counts, and what peers would get."""

    posts: Ints
    views: Ints
    engagements: Ints  # likes + comments + shares
    conversation: Ints  # comments + shares
    expected_views: Floats  # Σ peer views per post, per post's content type
    expected_engagements: Floats  # Σ peer engagements per post
    expected_engagements_at_views: Floats  # Σ views x peer engagement rate
    expected_conversation_at_views: Floats  # Σ views x peer conversation rate


@dataclass(slots=True)
class OrderSet:
    """Orders of a set of rows: all statuses, kept (placed), refunded, and net sales in USD."""

    orders: Ints
    placed: Ints
    refunded: Ints
    net_usd: Floats


@dataclass(slots=True)
class Slices:
    """Per (creator, theme) or (creator, content type) with posts in the window, in name order."""

    creator: Ints
    key: Ints  # vocabulary code of the theme or content type
    posts: PostSet
    orders: OrderSet

    def __len__(self) -> int:
        return len(self.creator)

    def range(self, i: int) -> tuple[int, int]:
        """The slices of creator i: indices lo..hi-1."""
        starts = self._starts
        if starts is None or len(starts) <= i + 1:
            top = int(self.creator[-1]) + 2 if len(self.creator) else 1
            starts = self._starts = np.searchsorted(self.creator, np.arange(max(top, i + 2)))
        return int(starts[i]), int(starts[i + 1])

    _starts: Ints | None = None


@dataclass(slots=True)
class Totals:
    """The window figures of creators 0..n-1 (see the module docstring)."""

    window: int
    recent: int
    posts: PostSet
    collab_posts: Ints
    shoppable: Ints
    shoppable_recent: Ints
    active_days: Ints
    active_days_recent: Ints
    active_weeks: Ints
    weeks: int  # blocks of 7 days the window holds
    evenness: Floats  # coefficient of variation of posts per day
    campaigns: Ints
    brands: Ints  # with collaboration posts, tags or kept orders
    partners: Ints  # with collaboration posts or tags
    repeat_brands: Ints  # partners with content on two or more days
    depth: Floats  # mean content days per partner
    lasting: Ints  # partners with content in both halves of the window
    selling: Ints  # partners with kept orders
    orders: Ints
    placed: Ints
    cancelled: Ints
    refunded: Ints
    net_usd: Floats
    by_theme: Slices
    by_content_type: Slices
    #: Posts, tags and orders in the window: 0 is an inactive creator (it has left the
    #: leaderboards until it has records again).
    records: Ints


def window_totals(columns: Columns, last_day: Ints, vocab: Vocabulary, params: Params) -> Totals:
    """Figures over the window of `params.window_days` UTC days ending on each creator's
    `last_day`, for creators 0..len(last_day)-1."""
    n = len(last_day)
    window, recent = params.window_days, params.short_window_days
    first = last_day - window + 1
    posts = _in_window(columns.posts, first, last_day)
    tags = _in_window(columns.tags, first, last_day)
    orders = _in_window(columns.orders, first, last_day)
    offsets, flat = vocab.members()  # (may intern themes: before the ranks are read)
    ranks = vocab.ranks()

    pc, pday = posts["creator"], posts["day"]
    post_keys = keys(pc, posts["h"])
    at, hit = locate(posts, post_keys, tags["creator"], tags["post"])
    shop = np.zeros(len(posts), dtype=np.bool_)
    shop[at[hit]] = True
    collab = posts["brand"] != NONE

    # Per content type, in name order: the order the expected-figure floats are summed in.
    types, ct = _dense(posts["content_type"], ranks)
    peers = _peers(types, vocab, params)
    by_type = _post_rows(pc, ct, len(types), posts, n)
    post_set = _post_set(by_type, peers)
    type_cells = np.flatnonzero(by_type.posts.ravel())

    recent_post = pday >= (last_day - recent + 1)[pc]
    collab_posts = np.bincount(pc[collab], minlength=n)
    shoppable = np.bincount(pc[shop], minlength=n)
    shoppable_recent = np.bincount(pc[shop & recent_post], minlength=n)

    daily = np.bincount(pc * window + (pday - first[pc]), minlength=n * window).reshape(n, window)
    active = daily > 0
    active_days = active.sum(axis=1)
    active_recent = active[:, window - recent :].sum(axis=1)
    size = 7 if window >= 7 else window
    weeks = max(1, window // 7)
    block = (window - 1 - np.arange(window)) // size  # block of each day, newest block 0
    active_weeks = np.zeros(n, dtype=np.int64)
    for b in range(weeks):
        active_weeks += active[:, block == b].any(axis=1)
    evenness = _evenness(daily)

    tc, tday = tags["creator"], tags["day"]
    with_campaign = tags["campaign"] >= 0
    campaign_keys = distinct((tc[with_campaign] << 32) | tags["campaign"][with_campaign])
    campaigns = np.bincount(campaign_keys >> 32, minlength=n)

    oc, status = orders["creator"], orders["status"]
    placed_order = status == 0
    by_status = np.bincount(oc * 3 + status, minlength=3 * n).reshape(n, 3)
    fx = _Rates(vocab, params)
    net = fx.net_usd(oc[placed_order], n, orders["currency"][placed_order],
                     orders["micros"][placed_order])  # fmt: skip

    brand = _brands(
        n, window, first, vocab,
        (pc[collab], posts["brand"][collab], pday[collab]),
        (tc, tags["brand"], tday),
        (oc[placed_order], orders["brand"][placed_order]),
    )  # fmt: skip

    # Themes: each post once per theme, then per (creator, theme) and content type.
    theme_code = posts["themes"]
    has = theme_code != NONE
    lengths = np.zeros(len(posts), dtype=np.int64)
    lengths[has] = offsets[theme_code[has] + 1] - offsets[theme_code[has]]
    row = np.repeat(np.arange(len(posts)), lengths)
    within = np.arange(len(row)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    theme = flat[np.repeat(np.where(has, offsets[np.maximum(theme_code, 0)], 0), lengths) + within]
    theme_slices, theme_group = _groups(pc[row], theme, ranks)
    by_theme = _post_rows(theme_group, ct[row], len(types), posts[row], len(theme_slices[0]))
    order_theme = _order_slices(orders, placed_order, orders["theme"], fx, theme_slices, ranks)

    # Orders by the content type of the post they name (when it is in the window).
    linked_at, linked = locate(posts, post_keys, oc, orders["post"])
    linked &= orders["has_post"] == 1
    linked_type = np.full(len(orders), NONE, dtype=np.int64)
    linked_type[linked] = posts["content_type"][linked_at[linked]]
    type_slices = (type_cells // max(1, len(types)), types[type_cells % max(1, len(types))])
    order_type = _order_slices(
        orders[linked], placed_order[linked], linked_type[linked], fx, type_slices, ranks
    )

    return Totals(
        window=window,
        recent=recent,
        posts=post_set,
        collab_posts=collab_posts,
        shoppable=shoppable,
        shoppable_recent=shoppable_recent,
        active_days=active_days,
        active_days_recent=active_recent,
        active_weeks=active_weeks,
        weeks=weeks,
        evenness=evenness,
        campaigns=campaigns,
        brands=brand.brands,
        partners=brand.partners,
        repeat_brands=brand.repeat,
        depth=brand.depth,
        lasting=brand.lasting,
        selling=brand.selling,
        orders=by_status.sum(axis=1),
        placed=by_status[:, 0],
        cancelled=by_status[:, 1],
        refunded=by_status[:, 2],
        net_usd=net,
        by_theme=Slices(theme_slices[0], theme_slices[1], _post_set(by_theme, peers), order_theme),
        by_content_type=Slices(
            type_slices[0], type_slices[1], _cells(by_type, peers, type_cells), order_type
        ),
        records=np.bincount(np.concatenate((pc, tc, oc)), minlength=n),
    )


def _in_window(rows: Rows, first: Ints, last: Ints) -> Rows:
    c = rows["creator"]
    day = rows["day"]
    keep = (day >= first[c]) & (day <= last[c])
    return rows if keep.all() else rows[keep]


def _present(codes: Ints) -> Ints:
    """The distinct codes (non-negative, from a small vocabulary), ascending."""
    return np.flatnonzero(np.bincount(codes)) if len(codes) else codes[:0]


def _dense(codes: Ints, ranks: Ints) -> tuple[Ints, Ints]:
    """The distinct codes in name order, and each code's index among them."""
    present = _present(codes)
    present = present[np.argsort(ranks[present], kind="stable")]
    lookup = np.zeros(int(present.max()) + 1 if len(present) else 0, dtype=np.int64)
    lookup[present] = np.arange(len(present))
    return present, lookup[codes] if len(codes) else codes.copy()


def _peers(types: Ints, vocab: Vocabulary, params: Params) -> Floats:
    """(views per post, engagements per post, engagement rate, conversation rate) per type."""
    table = params.peer_table
    default = table["default"]
    return np.array(
        [table.get(vocab.name(int(t)), default) for t in types], dtype=np.float64
    ).reshape(len(types), 4)


@dataclass(slots=True)
class _Cells:
    """Integer post sums per (row, content type): (rows, types) arrays."""

    posts: Ints
    views: Ints
    likes: Ints
    comments: Ints
    shares: Ints


def _sum(key: Ints, values: Ints, size: int) -> Ints:
    """Exact integer sums of `values` by `key` (0..size-1)."""
    if not len(values):
        return np.zeros(size, dtype=np.int64)
    top = int(values.max())
    if top * len(values) < _EXACT_FLOAT:
        return np.bincount(key, weights=values, minlength=size).astype(np.int64)
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, key, values)
    return out


def _post_rows(row: Ints, ct: Ints, n_types: int, posts: Rows, n_rows: int) -> _Cells:
    key = row * n_types + ct
    size = n_rows * n_types
    shape = (n_rows, n_types)
    return _Cells(
        np.bincount(key, minlength=size).reshape(shape),
        _sum(key, posts["views"], size).reshape(shape),
        _sum(key, posts["likes"], size).reshape(shape),
        _sum(key, posts["comments"], size).reshape(shape),
        _sum(key, posts["shares"], size).reshape(shape),
    )


def _post_set(cells: _Cells, peers: Floats) -> PostSet:
    """Sums per row: integers in any order, expected figures type by type in name order."""
    n_rows = cells.posts.shape[0]
    ev = np.zeros(n_rows)
    ee = np.zeros(n_rows)
    eev = np.zeros(n_rows)
    ecv = np.zeros(n_rows)
    for j in range(cells.posts.shape[1]):
        pv, pe, er, cr = peers[j]
        rn, rv = cells.posts[:, j], cells.views[:, j]
        ev = ev + rn * pv
        ee = ee + rn * pe
        eev = eev + rv * er
        ecv = ecv + rv * cr
    likes, comments, shares = (x.sum(axis=1) for x in (cells.likes, cells.comments, cells.shares))
    return PostSet(
        cells.posts.sum(axis=1),
        cells.views.sum(axis=1),
        likes + comments + shares,
        comments + shares,
        ev,
        ee,
        eev,
        ecv,
    )


def _cells(cells: _Cells, peers: Floats, flat: Ints) -> PostSet:
    """The post sets of single (row, content type) cells, `flat` indices into the cells."""
    n_types = cells.posts.shape[1]
    r, j = flat // max(1, n_types), flat % max(1, n_types)
    rn, rv = cells.posts[r, j], cells.views[r, j]
    rl, rc, rs = cells.likes[r, j], cells.comments[r, j], cells.shares[r, j]
    p = peers[j] if len(flat) else np.zeros((0, 4))
    return PostSet(
        rn, rv, rl + rc + rs, rc + rs, rn * p[:, 0], rn * p[:, 1], rv * p[:, 2], rv * p[:, 3]
    )


def _evenness(daily: Ints) -> Floats:
    """Coefficient of variation of posts per day (0: the same every day), per creator.

    sqrt(Σ (d - mean)² / n) / mean over the window's days, summed oldest day first;
    the squares are the C library's pow(x, 2) of each distinct (creator, count), as
    the formula's Python form computes them.
    """
    n_rows, n = daily.shape
    total = daily.sum(axis=1)
    out = np.full(n_rows, math.sqrt(n - 1) if n > 1 else 0.0)
    busy = np.flatnonzero(total)
    if not len(busy):
        return out
    d = daily[busy]
    mean = total[busy] / n
    top = int(d.max())
    seen = np.zeros((len(busy), top + 1), dtype=np.bool_)
    seen[np.repeat(np.arange(len(busy)), n), d.ravel()] = True
    rows, counts = np.nonzero(seen)
    diffs = (counts - mean[rows]).tolist()
    table = np.zeros((len(busy), top + 1))
    table[rows, counts] = [pow(x, 2) for x in diffs]
    squares = table[np.arange(len(busy))[:, None], d]
    acc = squares[:, 0].copy()
    for j in range(1, n):
        acc = acc + squares[:, j]
    out[busy] = np.sqrt(acc / n) / mean
    return out


class _Rates:
    """Net sales in USD: exact integer sums per currency, converted and divided once."""

    def __init__(self, vocab: Vocabulary, params: Params) -> None:
        self.vocab = vocab
        self.scale, self.rates = params.fx_scaled

    def net_usd(self, group: Ints, n_groups: int, currency: Ints, micros: Ints) -> Floats:
        out = np.zeros(n_groups)
        if not len(group):
            return out
        codes = _present(currency)
        lookup = np.zeros(int(codes[-1]) + 1, dtype=np.int64)
        lookup[codes] = np.arange(len(codes))
        cur = lookup[currency]
        n_cur = len(codes)
        key = group * n_cur + cur
        size = n_groups * n_cur
        # Two 32-bit halves: their sums stay exact in int64 however many orders there are.
        high = _sum(key, micros >> 32, size)
        low = _sum(key, micros & 0xFFFFFFFF, size)
        cells = np.flatnonzero(np.bincount(key, minlength=size))
        rates = [self.rates.get(self.vocab.name(int(c))) for c in codes]
        totals: dict[int, int] = {}
        for cell, hi, lo in zip(
            cells.tolist(), high[cells].tolist(), low[cells].tolist(), strict=True
        ):
            rate = rates[cell % n_cur]
            if rate is not None:
                g = cell // n_cur
                totals[g] = totals.get(g, 0) + rate * ((hi << 32) + lo)
        scale = self.scale
        for g, total in totals.items():
            if total:
                out[g] = total / scale
        return out


@dataclass(slots=True)
class _BrandFigures:
    brands: Ints
    partners: Ints
    repeat: Ints
    depth: Floats
    lasting: Ints
    selling: Ints


def _brands(
    n: int,
    window: int,
    first: Ints,
    vocab: Vocabulary,
    collab: tuple[Ints, Ints, Ints],
    tags: tuple[Ints, Ints, Ints],
    placed: tuple[Ints, Ints],
) -> _BrandFigures:
    """Brand footprints: content days (collaboration posts, tags) and kept orders."""
    v = max(1, len(vocab))
    c = np.concatenate((collab[0], tags[0]))
    b = np.concatenate((collab[1], tags[1]))
    day = np.concatenate((collab[2], tags[2]))
    content = distinct((c * v + b) * window + (day - first[c]))
    pair = content // window
    offset = content % window
    starts = np.ones(len(pair), dtype=np.bool_)
    starts[1:] = pair[1:] != pair[:-1]
    index = np.flatnonzero(starts)
    partner = pair[index]
    days = np.diff(np.append(index, len(pair)))
    earliest = offset[index]
    latest = np.maximum.reduceat(offset, index) if len(index) else offset[:0]
    half = window // 2
    selling_pairs = distinct(placed[0] * v + placed[1])
    owner = partner // v
    partners = np.bincount(owner, minlength=n)
    content_days = np.bincount(owner, weights=days, minlength=n).astype(np.int64)
    depth = np.zeros(n)
    has = partners > 0
    depth[has] = content_days[has] / partners[has]
    all_pairs = distinct(np.concatenate((partner, selling_pairs)))
    return _BrandFigures(
        brands=np.bincount(all_pairs // v, minlength=n),
        partners=partners,
        repeat=np.bincount(owner[days >= 2], minlength=n),
        depth=depth,
        lasting=np.bincount(owner[(earliest < half) & (latest >= half)], minlength=n),
        selling=np.bincount(owner[_member(partner, selling_pairs)], minlength=n),
    )


def _member(values: Ints, sorted_set: Ints) -> npt.NDArray[np.bool_]:
    """Whether each value is in `sorted_set` (ascending, distinct)."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=np.bool_)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    found: npt.NDArray[np.bool_] = sorted_set[at] == values
    return found


def _groups(creator: Ints, code: Ints, ranks: Ints) -> tuple[tuple[Ints, Ints], Ints]:
    """Distinct (creator, code) pairs sorted by creator then name, and each input's pair."""
    if not len(creator):
        empty = np.zeros(0, dtype=np.int64)
        return (empty, empty), empty
    r = ranks[code]
    span = int(ranks.max()) + 1
    pair_key = creator * span + r
    unique = distinct(pair_key)
    inverse = np.searchsorted(unique, pair_key)
    order_codes = np.empty(span, dtype=np.int64)
    order_codes[ranks] = np.arange(len(ranks))
    return (unique // span, order_codes[unique % span]), inverse


def _order_slices(
    orders: Rows,
    placed: npt.NDArray[np.bool_],
    key: Ints,
    fx: _Rates,
    slices: tuple[Ints, Ints],
    ranks: Ints,
) -> OrderSet:
    """Orders per slice (orders whose theme, or linked post's type, is the slice's)."""
    creators, codes = slices
    n = len(creators)
    out = OrderSet(
        np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
        np.zeros(n),
    )  # fmt: skip
    if not n or not len(orders):
        return out
    span = int(ranks.max()) + 1
    slice_key = creators * span + ranks[codes]
    order_key = orders["creator"] * span + ranks[key]
    at = np.searchsorted(slice_key, order_key)
    at_c = np.minimum(at, n - 1)
    hit = (at < n) & (slice_key[at_c] == order_key)
    s = at_c[hit]
    status = orders["status"][hit]
    out.orders[:] = np.bincount(s, minlength=n)
    out.placed[:] = np.bincount(s[status == 0], minlength=n)
    out.refunded[:] = np.bincount(s[status == 2], minlength=n)
    p = placed[hit]
    out.net_usd[:] = fx.net_usd(s[p], n, orders["currency"][hit][p], orders["micros"][hit][p])
    return out
