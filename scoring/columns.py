"""The records of many creators as numpy rows: the form the model merges and scores in bulk.

A worker takes the creators a flush touched, lays their records out as three
structured arrays (posts, tags, orders; one row per record, sorted by creator and
then by id hash) beside per-creator arrays (`Heads`), merges the flush's events in
(`scoring.merge`) and scores every creator at once (`scoring.window`,
`scoring.model`). Names are vocabulary codes (`scoring.vocab`); amounts are integer
millionths of their currency; times are UTC day numbers plus milliseconds.

Row fields, by section (every field int64 unless said):

* post: creator (index in the flush), h (uint64 id hash), day, ms (of the day),
  observed (epoch ms, -1: none), views, likes, comments, shares, content_type,
  brand (NONE unless a paid collaboration), themes (the joined themes' code, NONE: none)
* tag: creator, h, day, post (uint64 hash of the post's id), brand, theme,
  campaign (32-bit hash of the campaign id, -1: none)
* order: creator, h, day, status (index in ORDER_STATUSES), micros, quantity,
  currency, brand, theme, post (uint64 hash, 0 when has_post is 0), has_post

Events on their way in (`Arrivals`) add `seq`, their place in the flush's arrival
order, and posts their region.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from scoring.events import ORDER_STATUSES, Event, OrderEvent, PostEvent, TagEvent
from scoring.vocab import NONE, Vocabulary

DAY_MS: Final = 86_400_000
MICROS: Final = 1_000_000
STATUS_RANK: Final = {s: i for i, s in enumerate(ORDER_STATUSES)}

_I8 = np.int64
_U8 = np.uint64

POST: Final = np.dtype(
    [("creator", _I8), ("h", _U8), ("day", _I8), ("ms", _I8), ("observed", _I8),
     ("views", _I8), ("likes", _I8), ("comments", _I8), ("shares", _I8),
     ("content_type", _I8), ("brand", _I8), ("themes", _I8)]
)  # fmt: skip
TAG: Final = np.dtype(
    [("creator", _I8), ("h", _U8), ("day", _I8), ("post", _U8), ("brand", _I8),
     ("theme", _I8), ("campaign", _I8)]
)  # fmt: skip
ORDER: Final = np.dtype(
    [("creator", _I8), ("h", _U8), ("day", _I8), ("status", _I8), ("micros", _I8),
     ("quantity", _I8), ("currency", _I8), ("brand", _I8), ("theme", _I8), ("post", _U8),
     ("has_post", _I8)]
)  # fmt: skip
#: An id whose record left the window (`scoring.merge`): creator, id hash, the record's day.
SEEN: Final = np.dtype([("creator", _I8), ("h", _U8), ("day", _I8)])
NEW_POST: Final = np.dtype([*POST.descr, ("seq", _I8), ("region", _I8)])
NEW_TAG: Final = np.dtype([*TAG.descr, ("seq", _I8)])
NEW_ORDER: Final = np.dtype([*ORDER.descr, ("seq", _I8)])

Rows = npt.NDArray[np.void]
Ints = npt.NDArray[np.int64]


def hash64(text: str) -> int:
    """The 64-bit id hash records are de-duplicated by (blake2b, stable across runs)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def hash32(text: str) -> int:
    """The 32-bit hash campaigns are counted by (only how many distinct ones matters)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return int.from_bytes(digest, "little")


@dataclass(slots=True)
class Heads:
    """Per creator: the newest event time seen, and the region with the post time that set it."""

    watermark: Ints  # epoch ms, 0: no event yet
    region: Ints  # vocabulary code, NONE: no post seen
    region_ms: Ints  # posted_at of the post that gave the region, -1: none

    @classmethod
    def empty(cls, n: int) -> Heads:
        return cls(
            np.zeros(n, dtype=np.int64),
            np.full(n, NONE, dtype=np.int64),
            np.full(n, -1, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.watermark)

    def take(self, index: Ints) -> Heads:
        return Heads(self.watermark[index], self.region[index], self.region_ms[index])


@dataclass(slots=True)
class Columns:
    """The records of a run of creators (0..n-1): rows sorted by (creator, h) per section."""

    posts: Rows
    tags: Rows
    orders: Rows

    @classmethod
    def empty(cls) -> Columns:
        return cls(np.empty(0, POST), np.empty(0, TAG), np.empty(0, ORDER))

    def counts(self, n: int) -> Ints:
        """Posts, tags and orders held per creator, as an (n, 3) array."""
        out = np.zeros((n, 3), dtype=np.int64)
        for i, rows in enumerate((self.posts, self.tags, self.orders)):
            out[:, i] = np.bincount(rows["creator"], minlength=n)
        return out


@dataclass(slots=True)
class Arrivals:
    """A flush's events as rows, each with its place in arrival order (`seq`)."""

    posts: Rows
    tags: Rows
    orders: Rows
    #: Per event in arrival order: the creator and the event time (all kinds together).
    creator: Ints
    time_ms: Ints

    def __len__(self) -> int:
        return len(self.creator)


def arrivals(
    events: Sequence[tuple[int, Event]], vocab: Vocabulary, *, check: bool = True
) -> Arrivals:
    """The rows of `(creator index, event)` pairs in arrival order.

    ValueError for values no validated event has (a negative counter, an unknown
    status, a theme that is empty or holds `\\x01`); with `check` false the caller
    vouches for that (events straight from `scoring.validate`).
    """
    posts: list[tuple[int, ...]] = []
    tags: list[tuple[int, ...]] = []
    orders: list[tuple[int, ...]] = []
    creators: list[int] = []
    times: list[int] = []
    code = vocab.code
    for seq, (c, e) in enumerate(events):
        creators.append(c)
        if type(e) is PostEvent:
            t = e.posted_at_ms
            times.append(t)
            themes = e.themes
            if check:
                themes = _checked_themes(e)
            obs = e.observed_at_ms
            day, ms = divmod(t, DAY_MS)
            posts.append(
                (c, hash64(e.post_id), day, ms, -1 if obs is None else obs, e.views, e.likes,
                 e.comments, e.shares, code(e.content_type), vocab.optional(e.brand_id),
                 vocab.themes(themes), seq, code(e.region))
            )  # fmt: skip
        elif type(e) is TagEvent:
            t = e.tagged_at_ms
            times.append(t)
            if check and t < 0:
                raise ValueError(f"tag {e.tag_id!r} has a negative time")
            campaign = -1 if e.campaign_id is None else hash32(e.campaign_id)
            tags.append(
                (c, hash64(e.tag_id), t // DAY_MS, hash64(e.post_id), code(e.brand_id),
                 code(e.theme), campaign, seq)
            )  # fmt: skip
        elif type(e) is OrderEvent:
            t = e.ordered_at_ms
            times.append(t)
            status = STATUS_RANK.get(e.status)
            amount = e.amount
            micros = int(amount * MICROS) if amount.is_finite() else -1
            if status is None or not 0 <= micros < 2**63 or not 0 <= e.quantity < 2**63 or t < 0:
                raise ValueError(f"order {e.order_id!r} has an invalid status, amount or quantity")
            post = e.post_id
            orders.append(
                (c, hash64(e.order_id), t // DAY_MS, status, micros, e.quantity,
                 code(e.currency), code(e.brand_id), code(e.theme),
                 0 if post is None else hash64(post), post is not None, seq)
            )  # fmt: skip
        else:
            raise TypeError(f"not an event: {type(e).__name__}")
    return Arrivals(
        np.array(posts, dtype=NEW_POST),
        np.array(tags, dtype=NEW_TAG),
        np.array(orders, dtype=NEW_ORDER),
        np.array(creators, dtype=np.int64),
        np.array(times, dtype=np.int64),
    )


_LIMIT: Final = 2**63


def _checked_themes(e: PostEvent) -> tuple[str, ...]:
    """The post's themes, sorted and distinct; ValueError for impossible values."""
    t, obs = e.posted_at_ms, e.observed_at_ms
    if not (
        0 <= e.views < _LIMIT
        and 0 <= e.likes < _LIMIT
        and 0 <= e.comments < _LIMIT
        and 0 <= e.shares < _LIMIT
        and 0 <= t < _LIMIT
        and (obs is None or 0 <= obs < _LIMIT)
    ):
        raise ValueError(f"post {e.post_id!r} has a negative or oversized counter or time")
    themes = e.themes
    if any(not theme or "\x01" in theme for theme in themes):
        raise ValueError(f"post {e.post_id!r} has an empty theme or one with \\x01")
    if len(themes) > 1 and any(a >= b for a, b in itertools.pairwise(themes)):
        themes = tuple(sorted(set(themes)))
    return themes


# --- runs of creators ---------------------------------------------------------------
#
# A flush handles several runs of creators (those read from the table, those cached,
# the ones that changed, before and after): each run numbers its creators from 0, and
# these move creators between runs without touching their records.


def select(heads: Heads, columns: Columns, which: Ints) -> tuple[Heads, Columns]:
    """Creators `which` (ascending) of a run, renumbered 0..len(which)-1."""
    renumber = np.full(len(heads), -1, dtype=np.int64)
    renumber[which] = np.arange(len(which))
    picked = []
    for rows in (columns.posts, columns.tags, columns.orders):
        keep = rows[renumber[rows["creator"]] >= 0]
        keep["creator"] = renumber[keep["creator"]]
        picked.append(keep)
    return heads.take(which), Columns(*picked)


def place(heads: Heads, columns: Columns, where: Ints, n: int) -> tuple[Heads, Columns]:
    """Creators 0..len(where)-1 as creators `where` (ascending) of a run of n (the rest empty)."""
    out = Heads.empty(n)
    out.watermark[where] = heads.watermark
    out.region[where] = heads.region
    out.region_ms[where] = heads.region_ms
    placed = []
    for rows in (columns.posts, columns.tags, columns.orders):
        rows = rows.copy()
        rows["creator"] = where[rows["creator"]]
        placed.append(rows)
    return out, Columns(*placed)


def stack(first: tuple[Heads, Columns], second: tuple[Heads, Columns]) -> tuple[Heads, Columns]:
    """Two runs as one: the second's creators numbered after the first's."""
    (h1, c1), (h2, c2) = first, second
    shift = len(h1)
    heads = Heads(
        np.concatenate((h1.watermark, h2.watermark)),
        np.concatenate((h1.region, h2.region)),
        np.concatenate((h1.region_ms, h2.region_ms)),
    )
    sections = []
    for a, b in ((c1.posts, c2.posts), (c1.tags, c2.tags), (c1.orders, c2.orders)):
        b = b.copy()
        b["creator"] += shift
        sections.append(np.concatenate((a, b)))
    return heads, Columns(*sections)


def overlay(
    base: tuple[Heads, Columns], top: tuple[Heads, Columns], top_creators: Ints
) -> tuple[Heads, Columns]:
    """One run from two of the same length: creators `top_creators` from `top`, the rest
    from `base` (each run holds records only for its own creators)."""
    (hb, cb), (ht, ct) = base, top
    heads = Heads(hb.watermark.copy(), hb.region.copy(), hb.region_ms.copy())
    heads.watermark[top_creators] = ht.watermark[top_creators]
    heads.region[top_creators] = ht.region[top_creators]
    heads.region_ms[top_creators] = ht.region_ms[top_creators]
    sections = []
    for x, y in ((cb.posts, ct.posts), (cb.tags, ct.tags), (cb.orders, ct.orders)):
        both = np.concatenate((x, y))
        # Each part is sorted by (creator, hash) and a creator is in one part only.
        sections.append(both[np.argsort(both["creator"], kind="stable")])
    return heads, Columns(*sections)


def distinct(values: Ints) -> Ints:
    """The distinct values, ascending (a sort, without np.unique's overheads)."""
    if not len(values):
        return values
    s = np.sort(values)
    keep = np.ones(len(s), dtype=np.bool_)
    keep[1:] = s[1:] != s[:-1]
    return s[keep]
