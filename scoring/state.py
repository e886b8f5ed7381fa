"""Rolling per-creator state: the records of the window, and running figures over them.

The streaming layer keeps one of these per creator, applies a batch of events,
scores once and stores the compact bytes form. Three promises make that safe
under at-least-once delivery and replays:

* Idempotent and order-insensitive. Every record is kept by a 64-bit hash of
  its id; a second copy of an event, or an older snapshot, changes nothing.
  When two versions of one post or order compete, a total order on their
  content picks the winner (newest `observed_at`, then larger counters; order
  statuses only move placed -> cancelled/refunded), so any arrival order ends
  in the same state. All sums are integers, so they do not depend on order either.
* Event time only. The watermark is the newest event time seen; buckets older
  than the window behind it fall off, and events that old are LATE and ignored.
* Exact bytes. `to_bytes` writes a canonical form (records sorted by hash as
  fixed-size rows, interned strings, columns at the narrowest width that fits,
  zlib when it helps, CRC-32 over the content), so equal states give equal bytes
  and `from_bytes` gives back exactly what was written. The rows last written are
  kept, so writing after a few new events packs and splices only their rows.

Scoring reads window totals (per content type, per theme, per brand, per day...)
rather than the records: `apply` keeps them up to date as records come, change
and fall off, so a score costs the same whatever the number of records. They
are integer sums, so they equal a recount exactly (a property test checks it),
and they are not stored: a state read from bytes rebuilds them on first use.

The state does not depend on scoring parameters except the window length:
amounts stay in their own currency (as integer millionths) and are converted
with the rate table at scoring time, so a new model version re-scores old state.
"""

from __future__ import annotations

import enum
import hashlib
import struct
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from itertools import chain, compress, islice, repeat
from operator import add, and_, gt, itemgetter, le, lt, mod, mul, not_, rshift, sub
from typing import Any, Final, NamedTuple

from scoring import state_v1
from scoring.events import ORDER_STATUSES, Event, OrderEvent, PostEvent, TagEvent
from scoring.params import Params

DAY_MS: Final = 86_400_000
_MICROS: Final = 1_000_000
_LIMIT: Final = 2**63  # counters and amounts are packed as unsigned 64-bit at most
_STATUS_RANK: Final = {s: i for i, s in enumerate(ORDER_STATUSES)}
_MAGIC: Final = b"CS"
_VERSION: Final = 2  # format 1 is still read (scoring.state_v1)
_FLAG_ZLIB: Final = 1
_CRC: Final = struct.Struct("<I")
#: Level 1: on a heavy creator's 40 KB body it takes under half the time of level 6
#: for a result 3 % larger, and compression is most of such a creator's `to_bytes`.
_ZLIB_LEVEL: Final = 1
#: Compression costs more than the rest of `to_bytes` for a typical creator and
#: saves under a fifth, so only bodies past this size (heavy creators) get it.
_ZLIB_ABOVE: Final = 4096
_POW10: Final = tuple(10**i for i in range(20))
_MAX_BODY: Final = 16 * 1024 * 1024


class ApplyOutcome(enum.Enum):
    """What `CreatorState.apply` did with one event."""

    APPLIED = "applied"  # a new post, tag or order in the window
    UPDATED = "updated"  # a newer snapshot or a status change replaced a record
    DUPLICATE = "duplicate"  # already reflected (same or older version): nothing changed
    LATE = "late"  # older than the window behind the watermark: ignored


def hash64(text: str) -> int:
    """The 64-bit id hash used for de-duplication (blake2b, stable across runs)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _hash32(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return int.from_bytes(digest, "little")


# Records are plain tuples (named tuples cost a Python-level call to build, which
# `from_bytes` would pay per record). Field order is the precedence between two
# versions of one record: tuples compare field by field, so `max` picks the same
# winner whatever the arrival order.
#
# post:  (observed_ms (-1: none), views, likes, comments, shares, posted_ms,
#         content_type, themes, brand ("" unless a paid collaboration),
#         themes as one string (derived: the form `to_bytes` writes))
# tag:   (day, post hash, brand, theme, campaign (32-bit hash, -1: none))
# order: (status (index in ORDER_STATUSES), amount in millionths of its currency,
#         quantity, currency, brand, theme, post hash (-1: none), day,
#         amount as decimal mantissa and exponent (derived, for `to_bytes`))
# Derived fields come last: they follow from the fields before them, so they never
# decide a comparison.
_PostRec = tuple[int, int, int, int, int, int, str, tuple[str, ...], str, str]
_TagRec = tuple[int, int, str, str, int]
_OrderRec = tuple[int, int, int, str, str, str, int, int, int, int]


# --- running window totals ------------------------------------------------------

# A post row: [posts, views, likes, comments, shares, collaboration posts, shoppable posts].
_Row = list[int]
# An order accumulator: [orders, placed, cancelled, refunded, quantity of placed,
# {currency: [placed orders, Σ millionths]}].
_Acc = list[Any]


_FAR_FUTURE: Final = 2**62
_MOVED_RECENT: Final = 1
_MOVED_DAYS: Final = 2
_MOVED_ORDERS: Final = 4


def _order_acc() -> _Acc:
    return [0, 0, 0, 0, 0, {}]


class _Window:
    """Totals over the records in the window, kept in step with them by `CreatorState`.

    Everything is an integer count or sum, so adding and removing records in any
    order gives exactly the totals a recount would. A key disappears when its
    count returns to zero, so the keys are exactly those a recount would find.
    """

    __slots__ = (
        "brand_changes",
        "brands",
        "by_type",
        "by_type_theme",
        "campaign_tags",
        "campaigns",
        "daily",
        "first",
        "first_recent",
        "links",
        "moved",
        "moved_order_themes",
        "moved_order_types",
        "moved_themes",
        "moved_types",
        "orders",
        "orders_by_theme",
        "orders_by_type",
        "recent",
        "recent_by_type",
        "tagged",
        "tags",
        "tags_recent",
        "window",
    )

    def __init__(self, window: int, recent: int, last_day: int) -> None:
        self.window = window
        self.recent = recent
        self.first = last_day - window + 1  # records of older days do not count
        self.first_recent = last_day - recent + 1
        self.by_type: dict[str, _Row] = {}
        self.by_type_theme: dict[tuple[str, str], _Row] = {}
        self.recent_by_type: dict[str, _Row] = {}
        self.daily: dict[int, int] = {}  # day -> posts
        self.tagged: dict[int, int] = {}  # post hash -> tags on it
        self.campaigns: dict[int, int] = {}  # campaign hash -> tags answering it
        self.tags = 0
        self.tags_recent = 0
        self.campaign_tags = 0
        # brand -> [collaboration posts, tags, campaign tags, placed orders, {day: content}]
        self.brands: dict[str, list[Any]] = {}
        self.brand_changes = 0  # bumped on every change to `brands` (scores memoise on it)
        self.orders: _Acc = _order_acc()
        self.orders_by_theme: dict[str, _Acc] = {}
        #: By the content type of the linked post (when that post is in the window).
        self.orders_by_type: dict[str, _Acc] = {}
        #: post hash -> orders in the window that name it (to follow its content type).
        self.links: dict[int, set[int]] = {}
        # What moved since `scoring.scores.score` last read the totals, so that it only
        # recomputes those parts: content types, themes (of posts and of orders), and
        # _MOVED_* bits for the recent window, the days with posts and the orders.
        self.moved_types: set[str] = set()
        self.moved_themes: set[str] = set()
        self.moved_order_themes: set[str] = set()
        self.moved_order_types: set[str] = set()
        self.moved = 0


def _row(rows: dict[Any, _Row], key: object, r: tuple[int, int, int, int, int, int, int]) -> None:
    acc = rows.get(key)
    if acc is None:
        rows[key] = list(r)
    elif acc[0] + r[0]:
        acc[0] += r[0]
        acc[1] += r[1]
        acc[2] += r[2]
        acc[3] += r[3]
        acc[4] += r[4]
        acc[5] += r[5]
        acc[6] += r[6]
    else:
        del rows[key]


def _count(counts: dict[Any, int], key: object, sign: int) -> None:
    n = counts.get(key, 0) + sign
    if n:
        counts[key] = n
    else:
        del counts[key]


def _brand(w: _Window, name: str) -> list[Any]:
    info = w.brands.get(name)
    if info is None:
        info = w.brands[name] = [0, 0, 0, 0, {}]
    return info


def _drop_brand(w: _Window, name: str, info: list[Any]) -> None:
    # Every change to a brand's figures ends here, so this also counts them.
    w.brand_changes += 1
    if not (info[0] or info[1] or info[3]):  # campaign tags are tags
        del w.brands[name]


def _acc_add(acc: _Acc, rec: _OrderRec, sign: int) -> None:
    status = rec[0]
    acc[0] += sign
    acc[1 + status] += sign
    if not status:
        acc[4] += sign * rec[2]
        by_currency: dict[str, list[int]] = acc[5]
        entry = by_currency.get(rec[3])
        if entry is None:
            by_currency[rec[3]] = [1, rec[1]]
        else:
            entry[0] += sign
            entry[1] += sign * rec[1]
            if not entry[0]:
                del by_currency[rec[3]]


def _acc_in(accs: dict[str, _Acc], key: str, rec: _OrderRec, sign: int) -> None:
    acc = accs.get(key)
    if acc is None:
        acc = accs[key] = _order_acc()
    _acc_add(acc, rec, sign)
    if not acc[0]:
        del accs[key]


# --- figures read from the window -------------------------------------------


class PostFigures(NamedTuple):
    """Totals over a set of posts, with what peers would get for the same mix."""

    posts: int
    views: int
    likes: int
    comments: int
    shares: int
    collab_posts: int
    shoppable_posts: int
    #: Σ peer views per post, per post's content type.
    expected_views: float
    #: Σ peer engagements per post, per post's content type.
    expected_engagements: float
    #: Σ views × peer engagement rate: engagements peers would get with these views.
    expected_engagements_at_views: float
    #: Σ views × peer conversation rate (comments + shares).
    expected_conversation_at_views: float

    @property
    def engagements(self) -> int:
        return self.likes + self.comments + self.shares

    @property
    def conversation(self) -> int:
        return self.comments + self.shares


class OrderFigures(NamedTuple):
    """Orders by final status; net sales count placed orders only."""

    orders: int
    placed: int
    cancelled: int
    refunded: int
    quantity: int  # items in placed orders
    net_usd: float
    #: Currencies of placed orders that the rate table lacks (left out of net_usd).
    unconverted: int


class BrandFigures(NamedTuple):
    """One brand's footprint in the window."""

    collab_posts: int
    tags: int
    campaign_tags: int
    placed_orders: int
    content_days: int  # distinct days with a collaboration post or a tag
    early: bool  # content in the first half of the window
    late: bool  # content in the second half


class WindowStats(NamedTuple):
    """Everything the scores read: long-window and recent figures and breakdowns."""

    creator_id: str
    region: str | None
    as_of_ms: int
    window_days: int
    short_window_days: int
    posts: PostFigures
    posts_recent: PostFigures
    posts_by_theme: Mapping[str, PostFigures]
    posts_by_content_type: Mapping[str, PostFigures]
    daily_posts: tuple[int, ...]  # oldest day first, one entry per window day
    tags: int
    tags_recent: int
    campaign_tags: int
    campaigns: int  # distinct campaigns answered
    orders: OrderFigures
    orders_by_theme: Mapping[str, OrderFigures]
    #: Orders linked (by post_id) to a post of that content type in the window.
    orders_by_content_type: Mapping[str, OrderFigures]
    brands: Mapping[str, BrandFigures]

    @property
    def active_days(self) -> int:
        return sum(1 for n in self.daily_posts if n)

    @property
    def active_days_recent(self) -> int:
        return sum(1 for n in self.daily_posts[-self.short_window_days :] if n)

    def week_blocks(self) -> tuple[int, ...]:
        """Posts per 7-day block, newest block last (a partial oldest block is dropped)."""
        d = self.daily_posts
        n = max(1, len(d) // 7)
        size = 7 if len(d) >= 7 else len(d)
        return tuple(sum(d[len(d) - (i + 1) * size : len(d) - i * size]) for i in range(n))[::-1]


# --- the state ----------------------------------------------------------------


class CreatorState:
    """Mutable rolling state of one creator (see the module docstring for the rules).

    Records are held by id hash; each carries its UTC day, which is its day
    bucket: the window is the last `window_days` buckets up to the watermark's.
    """

    __slots__ = (
        "_changed_orders",
        "_changed_posts",
        "_changed_tags",
        "_dirty",
        "_enc",
        "_memo",
        "_oldest",
        "_orders",
        "_posts",
        "_region_ms",
        "_tags",
        "_win",
        "creator_id",
        "region",
        "watermark_ms",
    )

    def __init__(self, creator_id: str) -> None:
        self.creator_id = creator_id
        self.region: str | None = None
        self._region_ms = -1  # posted_at of the post that gave `region`
        self.watermark_ms = 0  # newest event time seen (0: none yet)
        self._posts: dict[int, _PostRec] = {}
        self._tags: dict[int, _TagRec] = {}
        self._orders: dict[int, _OrderRec] = {}
        # No record is older than this day (a lower bound): a new day needs to look
        # for records falling out of the window only when this is before the window.
        self._oldest = _FAR_FUTURE
        # Window totals; None until first needed (a state from bytes rebuilds them then).
        self._win: _Window | None = None
        # What `scoring.scores.score` computed last time, keyed by its inputs, so that a
        # new score recomputes only the parts whose inputs moved. Not part of the state.
        self._memo: object = None
        # The parts of the last `to_bytes` output, and what changed since: the records
        # added, replaced or removed, and dirty bits for the rest.
        self._enc: _Encoded | None = None
        self._dirty = _ALL
        self._changed_posts: set[int] = set()
        self._changed_tags: set[int] = set()
        self._changed_orders: set[int] = set()

    @classmethod
    def new(cls, creator_id: str) -> CreatorState:
        return cls(creator_id)

    def __repr__(self) -> str:
        return (
            f"CreatorState({self.creator_id!r}, region={self.region!r}, "
            f"watermark_ms={self.watermark_ms}, posts={len(self._posts)}, "
            f"tags={len(self._tags)}, orders={len(self._orders)})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CreatorState):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def counts(self) -> tuple[int, int, int]:
        """Posts, tags and orders currently held (for metrics and benchmarks)."""
        return len(self._posts), len(self._tags), len(self._orders)

    def day_buckets(self) -> dict[int, tuple[int, int, int]]:
        """Posts, tags and orders per UTC day (epoch day number) currently held."""
        out: dict[int, list[int]] = {}
        for p in self._posts.values():
            out.setdefault(p[5] // DAY_MS, [0, 0, 0])[0] += 1
        for t in self._tags.values():
            out.setdefault(t[0], [0, 0, 0])[1] += 1
        for o in self._orders.values():
            out.setdefault(o[7], [0, 0, 0])[2] += 1
        return {d: (c[0], c[1], c[2]) for d, c in sorted(out.items())}

    # --- apply ---------------------------------------------------------------

    def apply(self, event: Event, params: Params) -> ApplyOutcome:
        """Fold one validated event into the state; idempotent and order-insensitive.

        Raises ValueError for an event of another creator or with values no
        validated event can have (negative counters, unknown status).
        """
        if event.creator_id != self.creator_id:
            raise ValueError(
                f"event for creator {event.creator_id!r} applied to state of {self.creator_id!r}"
            )
        window = params.window_days
        w = self._win
        if w is not None and (w.window != window or w.recent != params.short_window_days):
            self._win = None  # totals for other window lengths: rebuilt when next needed
        if isinstance(event, PostEvent):
            return self._apply_post(event, window)
        if isinstance(event, OrderEvent):
            return self._apply_order(event, window)
        if isinstance(event, TagEvent):
            return self._apply_tag(event, window)
        raise TypeError(f"not an event: {type(event).__name__}")

    def _apply_post(self, ev: PostEvent, window: int) -> ApplyOutcome:
        t = ev.posted_at_ms
        obs = ev.observed_at_ms
        if obs is None:
            obs = -1
        themes = ev.themes
        if len(themes) > 1 and not all(map(lt, themes, islice(themes, 1, None))):
            themes = tuple(sorted(set(themes)))
        views, likes, comments, shares = ev.views, ev.likes, ev.comments, ev.shares
        if not (
            0 <= views < _LIMIT
            and 0 <= likes < _LIMIT
            and 0 <= comments < _LIMIT
            and 0 <= shares < _LIMIT
            and 0 <= t < _LIMIT
            and -1 <= obs < _LIMIT
        ):
            raise ValueError(f"post {ev.post_id!r} has a negative or oversized counter or time")
        # The region is a creator attribute, not a windowed figure: the newest post
        # says it, even one too old to count, so it does not depend on arrival order.
        if t > self._region_ms or (t == self._region_ms and ev.region > (self.region or "")):
            self.region = ev.region
            self._region_ms = t
        wm = self.watermark_ms
        day = t // DAY_MS
        if day <= (t if t > wm else wm) // DAY_MS - window:
            return ApplyOutcome.LATE
        if day < self._oldest:
            self._oldest = day
        ct, brand = ev.content_type, ev.brand_id or ""
        key = "\x01".join(themes)  # the themes as one table string (to_bytes)
        if themes and (key.count("\x01") != len(themes) - 1 or "" in themes):
            raise ValueError(f"post {ev.post_id!r} has an empty theme or one with \\x01")
        rec = (obs, views, likes, comments, shares, t, ct, themes, brand, key)
        h = hash64(ev.post_id)
        posts = self._posts
        old = posts.get(h)
        if old is None:
            posts[h] = rec
            if self._win is not None:
                self._post_delta(self._win, h, rec, 1)
            self._changed_posts.add(h)
            if not self._dirty & _STRINGS:
                names = self._enc.tset  # type: ignore[union-attr]  # clean: written once
                if ct not in names or (brand and brand not in names) or (key and key not in names):
                    self._dirty |= _STRINGS
            outcome = ApplyOutcome.APPLIED
        elif rec > old:
            posts[h] = rec
            self._changed_posts.add(h)
            if rec[6:9] != old[6:9]:
                self._dirty |= _STRINGS
            w = self._win
            if w is not None:
                if rec[5:9] == old[5:9]:
                    # A later snapshot of the same post: only its counters move.
                    self._post_counters(w, rec, old)
                else:
                    self._post_delta(w, h, old, -1)
                    self._post_delta(w, h, rec, 1)
            outcome = ApplyOutcome.UPDATED
        else:
            outcome = ApplyOutcome.DUPLICATE
        if t > wm:
            self._advance(t, window)
        return outcome

    def _apply_tag(self, ev: TagEvent, window: int) -> ApplyOutcome:
        t = ev.tagged_at_ms
        wm = self.watermark_ms
        day = t // DAY_MS
        if day <= (t if t > wm else wm) // DAY_MS - window:
            return ApplyOutcome.LATE
        if t < 0:
            raise ValueError(f"tag {ev.tag_id!r} has a negative time")
        campaign = -1 if ev.campaign_id is None else _hash32(ev.campaign_id)
        rec = (day, hash64(ev.post_id), ev.brand_id, ev.theme, campaign)
        if day < self._oldest:
            self._oldest = day
        h = hash64(ev.tag_id)
        tags = self._tags
        old = tags.get(h)
        w = self._win
        if old is None:
            tags[h] = rec
            if w is not None:
                self._tag_delta(w, rec, 1)
            self._changed_tags.add(h)
            dirty = self._dirty
            if not dirty & (_STRINGS | _CAMPAIGNS):
                enc: _Encoded = self._enc  # type: ignore[assignment]  # clean: written once
                names = enc.tset
                if rec[2] not in names or rec[3] not in names:
                    dirty |= _STRINGS
                if campaign >= 0 and campaign not in enc.cset:
                    dirty |= _CAMPAIGNS
                self._dirty = dirty
            else:
                self._dirty = dirty | _STRINGS | _CAMPAIGNS
            outcome = ApplyOutcome.APPLIED
        elif rec > old:
            tags[h] = rec
            self._changed_tags.add(h)
            self._dirty |= _STRINGS | _CAMPAIGNS
            if w is not None:
                self._tag_delta(w, old, -1)
                self._tag_delta(w, rec, 1)
            outcome = ApplyOutcome.UPDATED
        else:
            outcome = ApplyOutcome.DUPLICATE
        if t > wm:
            self._advance(t, window)
        return outcome

    def _apply_order(self, ev: OrderEvent, window: int) -> ApplyOutcome:
        t = ev.ordered_at_ms
        wm = self.watermark_ms
        day = t // DAY_MS
        if day <= (t if t > wm else wm) // DAY_MS - window:
            return ApplyOutcome.LATE
        status = _STATUS_RANK.get(ev.status)
        amount = ev.amount
        micros = int(amount * _MICROS) if amount.is_finite() else -1
        quantity = ev.quantity
        if status is None or not 0 <= micros < _LIMIT or not 0 <= quantity < _LIMIT or t < 0:
            raise ValueError(f"order {ev.order_id!r} has an invalid status, amount or quantity")
        post = -1 if ev.post_id is None else hash64(ev.post_id)
        currency, brand, theme = ev.currency, ev.brand_id, ev.theme
        mantissa, exponent = _decimal(micros)
        rec = (status, micros, quantity, currency, brand, theme, post, day, mantissa, exponent)
        if day < self._oldest:
            self._oldest = day
        h = hash64(ev.order_id)
        orders = self._orders
        old = orders.get(h)
        w = self._win
        if old is None:
            orders[h] = rec
            if w is not None:
                self._order_delta(w, h, rec, 1)
            self._changed_orders.add(h)
            if not self._dirty & _STRINGS:
                names = self._enc.tset  # type: ignore[union-attr]  # clean: written once
                if currency not in names or brand not in names or theme not in names:
                    self._dirty |= _STRINGS
            outcome = ApplyOutcome.APPLIED
        elif rec > old:
            orders[h] = rec
            self._changed_orders.add(h)
            if rec[3:6] != old[3:6]:
                self._dirty |= _STRINGS
            if w is not None:
                self._order_delta(w, h, old, -1)
                self._order_delta(w, h, rec, 1)
            outcome = ApplyOutcome.UPDATED
        else:
            outcome = ApplyOutcome.DUPLICATE
        if t > wm:
            self._advance(t, window)
        return outcome

    def _advance(self, wm: int, window: int) -> None:
        old_day = self.watermark_ms // DAY_MS
        self.watermark_ms = wm
        day = wm // DAY_MS
        if day == old_day:
            return
        # A new day bucket opened: the last days of the recent window move on and the
        # oldest buckets fall out of the window. Orders go before tags and tags before
        # posts, so each removal sees the records it refers to still held.
        first = day - window + 1
        w = self._win
        if self._oldest >= first:  # nothing falls out of the window
            if w is not None:
                self._shift_recent(w, day - w.recent + 1)
                w.first = first
            return
        self._oldest = first  # (after the records older than it are gone, below)
        first_ms = first * DAY_MS
        posts, tags, orders = self._posts, self._tags, self._orders
        old_orders = [h for h, o in orders.items() if o[7] < first]
        old_tags = [h for h, t in tags.items() if t[0] < first]
        old_posts = [h for h, p in posts.items() if p[5] < first_ms]
        if old_orders:
            self._changed_orders.update(old_orders)
            self._dirty |= _STRINGS
        if old_tags:
            self._changed_tags.update(old_tags)
            self._dirty |= _STRINGS | _CAMPAIGNS
        if old_posts:
            self._changed_posts.update(old_posts)
            self._dirty |= _STRINGS
        if w is not None:
            self._shift_recent(w, day - w.recent + 1)
            for h in old_orders:
                self._order_delta(w, h, orders.pop(h), -1)
            for h in old_tags:
                self._tag_delta(w, tags.pop(h), -1)
            for h in old_posts:
                self._post_delta(w, h, posts.pop(h), -1)
            w.first = first
            return
        for h in old_orders:
            del orders[h]
        for h in old_tags:
            del tags[h]
        for h in old_posts:
            del posts[h]

    # --- window totals ---------------------------------------------------------

    def _running(self, params: Params) -> _Window:
        """The window totals for these parameters' window lengths (built if needed)."""
        w = self._win
        if w is None or w.window != params.window_days or w.recent != params.short_window_days:
            w = self._rebuild(params.window_days, params.short_window_days)
        return w

    def _rebuild(self, window: int, recent: int) -> _Window:
        w = _Window(window, recent, self.watermark_ms // DAY_MS)
        # Tags before posts (each post then reads whether it is tagged), orders last
        # (each order then finds its post's content type).
        for t in self._tags.values():
            self._tag_delta(w, t, 1, flip=False)
        for h, p in self._posts.items():
            self._post_delta(w, h, p, 1)
        for h, o in self._orders.items():
            self._order_delta(w, h, o, 1)
        self._win = w
        return w

    def _post_delta(self, w: _Window, h: int, rec: _PostRec, sign: int) -> None:
        """Add (sign 1) or remove (sign -1) one post's share of the window totals."""
        day = rec[5] // DAY_MS
        if day < w.first:
            return
        ct, brand = rec[6], rec[8]
        r = (
            sign,
            sign * rec[1],
            sign * rec[2],
            sign * rec[3],
            sign * rec[4],
            sign if brand else 0,
            sign if h in w.tagged else 0,
        )
        _row(w.by_type, ct, r)
        w.moved_types.add(ct)
        by_type_theme = w.by_type_theme
        themes = rec[7]
        for theme in themes:
            _row(by_type_theme, (ct, theme), r)
        w.moved_themes.update(themes)
        if day >= w.first_recent:
            _row(w.recent_by_type, ct, r)
            w.moved |= _MOVED_RECENT | _MOVED_DAYS
        else:
            w.moved |= _MOVED_DAYS
        _count(w.daily, day, sign)
        if brand:
            info = _brand(w, brand)
            info[0] += sign
            _count(info[4], day, sign)
            _drop_brand(w, brand, info)
        linked = w.links.get(h)
        if linked:
            orders = self._orders
            for oh in linked:
                _acc_in(w.orders_by_type, ct, orders[oh], sign)
            w.moved_order_types.add(ct)

    def _post_counters(self, w: _Window, rec: _PostRec, old: _PostRec) -> None:
        """A new snapshot with the same time, type, themes and brand: move the counters."""
        day = rec[5] // DAY_MS
        if day < w.first:
            return
        dv, dl, dc, ds = rec[1] - old[1], rec[2] - old[2], rec[3] - old[3], rec[4] - old[4]
        ct = rec[6]
        acc = w.by_type[ct]
        acc[1] += dv
        acc[2] += dl
        acc[3] += dc
        acc[4] += ds
        w.moved_types.add(ct)
        by_type_theme = w.by_type_theme
        themes = rec[7]
        for theme in themes:
            acc = by_type_theme[ct, theme]
            acc[1] += dv
            acc[2] += dl
            acc[3] += dc
            acc[4] += ds
        w.moved_themes.update(themes)
        if day >= w.first_recent:
            acc = w.recent_by_type[ct]
            acc[1] += dv
            acc[2] += dl
            acc[3] += dc
            acc[4] += ds
            w.moved |= _MOVED_RECENT

    def _shoppable(self, w: _Window, post: int, sign: int) -> None:
        """The post `post` gained its first tag (sign 1) or lost its last one (-1)."""
        rec = self._posts.get(post)
        if rec is None:
            return
        day = rec[5] // DAY_MS
        if day < w.first:
            return
        ct = rec[6]
        w.by_type[ct][6] += sign
        w.moved_types.add(ct)
        by_type_theme = w.by_type_theme
        for theme in rec[7]:
            by_type_theme[ct, theme][6] += sign
        w.moved_themes.update(rec[7])
        if day >= w.first_recent:
            w.recent_by_type[ct][6] += sign
            w.moved |= _MOVED_RECENT

    def _tag_delta(self, w: _Window, rec: _TagRec, sign: int, flip: bool = True) -> None:
        day, post, brand, _, campaign = rec
        if day < w.first:
            return
        w.tags += sign
        if day >= w.first_recent:
            w.tags_recent += sign
        tagged = w.tagged
        n = tagged.get(post, 0) + sign
        if n:
            tagged[post] = n
        else:
            del tagged[post]
        if flip and n == (sign > 0):  # 1 after adding, 0 after removing
            self._shoppable(w, post, sign)
        info = _brand(w, brand)
        info[1] += sign
        _count(info[4], day, sign)
        if campaign >= 0:
            w.campaign_tags += sign
            info[2] += sign
            _count(w.campaigns, campaign, sign)
        _drop_brand(w, brand, info)

    def _order_delta(self, w: _Window, h: int, rec: _OrderRec, sign: int) -> None:
        if rec[7] < w.first:
            return
        _acc_add(w.orders, rec, sign)
        _acc_in(w.orders_by_theme, rec[5], rec, sign)
        w.moved |= _MOVED_ORDERS
        w.moved_order_themes.add(rec[5])
        post = rec[6]
        if post >= 0:
            links = w.links
            linked = links.get(post)
            if sign > 0:
                if linked is None:
                    links[post] = {h}
                else:
                    linked.add(h)
            elif linked is not None:
                linked.discard(h)
                if not linked:
                    del links[post]
            p = self._posts.get(post)
            if p is not None and p[5] // DAY_MS >= w.first:
                _acc_in(w.orders_by_type, p[6], rec, sign)
                w.moved_order_types.add(p[6])
        if not rec[0]:
            brand = rec[4]
            info = _brand(w, brand)
            info[3] += sign
            _drop_brand(w, brand, info)

    def _shift_recent(self, w: _Window, first_recent: int) -> None:
        lo = w.first_recent
        if first_recent <= lo:
            return
        tagged = w.tagged
        for h, p in self._posts.items():
            day = p[5] // DAY_MS
            if lo <= day < first_recent:
                r = (-1, -p[1], -p[2], -p[3], -p[4], -1 if p[8] else 0, -1 if h in tagged else 0)
                _row(w.recent_by_type, p[6], r)
        for t in self._tags.values():
            if lo <= t[0] < first_recent:
                w.tags_recent -= 1
        w.first_recent = first_recent
        w.moved |= _MOVED_RECENT

    # --- figures -------------------------------------------------------------

    def stats(self, params: Params) -> WindowStats:
        """Window and recent figures, per theme and per content type, as of the watermark."""
        w = self._running(params)
        window, recent = params.window_days, params.short_window_days
        last = self.watermark_ms // DAY_MS
        first = last - window + 1
        half = first + window // 2
        by_type = w.by_type
        types = sorted(by_type)
        theme_parts: dict[str, list[tuple[str, _Row]]] = {}
        for key in sorted(w.by_type_theme):
            theme_parts.setdefault(key[1], []).append((key[0], w.by_type_theme[key]))
        recent_by_type = w.recent_by_type
        fx = params.fx_scaled
        return WindowStats(
            creator_id=self.creator_id,
            region=self.region,
            as_of_ms=self.watermark_ms,
            window_days=window,
            short_window_days=recent,
            posts=_post_figures([(ct, by_type[ct]) for ct in types], params),
            posts_recent=_post_figures(
                [(ct, recent_by_type[ct]) for ct in sorted(recent_by_type)], params
            ),
            posts_by_theme={
                theme: _post_figures(parts, params) for theme, parts in sorted(theme_parts.items())
            },
            posts_by_content_type={ct: _post_figures([(ct, by_type[ct])], params) for ct in types},
            daily_posts=tuple(map(w.daily.get, range(first, last + 1), repeat(0))),
            tags=w.tags,
            tags_recent=w.tags_recent,
            campaign_tags=w.campaign_tags,
            campaigns=len(w.campaigns),
            orders=_order_figures(w.orders, fx),
            orders_by_theme={
                k: _order_figures(w.orders_by_theme[k], fx) for k in sorted(w.orders_by_theme)
            },
            orders_by_content_type={
                k: _order_figures(w.orders_by_type[k], fx) for k in sorted(w.orders_by_type)
            },
            brands={
                name: BrandFigures(
                    info[0],
                    info[1],
                    info[2],
                    info[3],
                    len(info[4]),
                    min(info[4], default=half) < half,
                    max(info[4], default=first) >= half,
                )
                for name, info in sorted(w.brands.items())
            },
        )

    # --- bytes -----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical compact form: equal states give equal bytes.

        The encoded rows are kept between calls: a call after a few new events packs
        and splices only those records' rows (see `_Encoded`).
        """
        enc = self._enc
        if enc is None:
            enc = self._enc = _Encoded()
            dirty = _ALL
        else:
            dirty = self._dirty
        stores = (self._posts, self._tags, self._orders)
        changes = (self._changed_posts, self._changed_tags, self._changed_orders)
        full = dirty & _FULL
        if dirty & _STRINGS:
            table = _string_table(stores)
            if table != enc.table:
                enc.set_table(table)
                full = _FULL
        if dirty & _CAMPAIGNS:
            campaigns = sorted(set(map(itemgetter(4), self._tags.values())))
            if campaigns and campaigns[0] < 0:
                del campaigns[0]
            if campaigns != enc.campaigns:
                enc.set_campaigns(campaigns)
                full |= _FULL_TAGS
        for i in (0, 1, 2):
            if full & (1 << i):
                enc.rewrite(i, stores[i])
            elif changes[i]:
                enc.update(i, stores[i], changes[i])
            changes[i].clear()
        self._dirty = 0
        text, text_flags = enc.text_for(self.creator_id, self.region)
        body = b"".join(
            (
                _FIXED.pack(
                    self._region_ms,
                    self.watermark_ms,
                    len(enc.hashes[0]),
                    len(enc.hashes[1]),
                    len(enc.hashes[2]),
                    len(enc.table),
                    len(enc.campaigns),
                    len(text),
                    text_flags,
                ),
                text,
                enc.campaign_bytes,
                *enc.codes,
                *enc.rows,
            )
        )
        crc = _CRC.pack(zlib.crc32(body))
        if len(body) > _ZLIB_ABOVE:
            packed = zlib.compress(body, _ZLIB_LEVEL)
            if len(packed) < len(body):
                return b"".join((_HEADER_ZLIB, packed, crc))
        return b"".join((_HEADER, body, crc))

    @classmethod
    def from_bytes(cls, data: bytes) -> CreatorState:
        """Rebuild a state written by `to_bytes`; ValueError on anything else."""
        try:
            return cls._decode(data)
        except ValueError as exc:
            raise ValueError(f"corrupt creator state: {exc}") from None
        except (
            struct.error,
            IndexError,
            KeyError,
            TypeError,
            UnicodeDecodeError,
            zlib.error,
            OverflowError,
            MemoryError,
        ) as exc:
            raise ValueError(f"corrupt creator state: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _decode(cls, data: bytes) -> CreatorState:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValueError(f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < 8 or data[:2] != _MAGIC:
            raise ValueError("not a creator state (bad magic)")
        version = data[2]
        if version not in (1, _VERSION):
            raise ValueError(f"unsupported state version {version}")
        flags = data[3]
        if flags & ~_FLAG_ZLIB:
            raise ValueError(f"unknown flags {flags:#x}")
        body = data[4:-4]
        if flags & _FLAG_ZLIB:
            inflater = zlib.decompressobj()
            body = inflater.decompress(body, _MAX_BODY)
            if inflater.unconsumed_tail or not inflater.eof:
                raise ValueError("compressed body too large or truncated")
        if _CRC.pack(zlib.crc32(body)) != data[-4:]:
            raise ValueError("checksum mismatch")
        if version == 1:
            return cls._from_v1(state_v1.decode(body))
        return _decode_v2(cls, body)

    @classmethod
    def _from_v1(cls, old: state_v1.V1State) -> CreatorState:
        state = cls(old.creator_id)
        state.region = old.region
        state._region_ms = old.region_ms
        state._oldest = 0  # unknown: the next new day looks for old records
        state.watermark_ms = old.watermark_ms
        # Format 1 records lack the derived fields; they are added here.
        state._posts = {h: (*p, _theme_key(p[7])) for h, p in old.posts.items()}
        state._tags = old.tags
        state._orders = {h: (*o, *_decimal(o[1])) for h, o in old.orders.items()}
        return state


# --- helpers -------------------------------------------------------------------


def _post_figures(parts: Iterable[tuple[str, _Row]], params: Params) -> PostFigures:
    # Integer sums first, then floats in content-type order: the same result
    # whatever order the posts arrived in.
    n = v = li = co = sh = collab = shop = 0
    exp_views = exp_eng = exp_eng_v = exp_conv_v = 0.0
    peers = params.peer_table
    default = peers["default"]
    for ct, acc in parts:
        pv, pe, er, cr = peers.get(ct, default)
        n += acc[0]
        v += acc[1]
        li += acc[2]
        co += acc[3]
        sh += acc[4]
        collab += acc[5]
        shop += acc[6]
        exp_views += acc[0] * pv
        exp_eng += acc[0] * pe
        exp_eng_v += acc[1] * er
        exp_conv_v += acc[1] * cr
    return PostFigures(n, v, li, co, sh, collab, shop, exp_views, exp_eng, exp_eng_v, exp_conv_v)


def net_usd(acc: _Acc, fx: tuple[int, Mapping[str, int]]) -> tuple[float, int]:
    """Net sales in USD of an order accumulator, and its currencies missing from the table.

    Integer rates over a common power of ten: exact sums, one correctly rounded
    division, so no dependence on arrival order (see Params.fx_scaled).
    """
    scale, rates = fx
    total = unconverted = 0
    for currency, entry in acc[5].items():
        rate = rates.get(currency)
        if rate is None:
            unconverted += 1
        else:
            total += rate * entry[1]
    return (total / scale if total else 0.0), unconverted


def _order_figures(acc: _Acc, fx: tuple[int, Mapping[str, int]]) -> OrderFigures:
    net, unconverted = net_usd(acc, fx)
    return OrderFigures(acc[0], acc[1], acc[2], acc[3], acc[4], net, unconverted)


# --- bytes, format 2 --------------------------------------------------------------
#
# body: a fixed header (_FIXED); the texts (creator id, region, then the sorted
# string table) joined by NUL, or length-prefixed when a text holds a NUL; the
# sorted campaign hashes (uint32); one width code per column for posts, tags and
# orders (0-3: 1, 2, 4 or 8 bytes, the narrowest that fits every value of the
# column; id hashes always 8); then the posts, tags and orders as fixed-size rows
# sorted by id hash:
#
#   post:  hash, day, ms of the day (posted_at), observed_at (0: none, else 1 + zigzag of
#          observed_at - posted_at), views, likes, comments, shares, content type,
#          brand (1 + index, 0: none), themes (1 + index, 0: none; a post's themes are
#          one table string, joined by \x01)
#   tag:   hash, day, post hash, brand, theme, campaign (1 + index, 0: none)
#   order: hash, day, post hash (0 when none), status (+4 when there is no post), amount
#          as decimal mantissa and exponent (19.99 = 19990000 millionths -> 1999, 4),
#          quantity, currency, brand, theme
#
# Rows have a fixed size per section, so the bytes of a state can be kept and a
# new or changed record costs one packed row spliced in at its place.

_FIXED: Final = struct.Struct("<qqIIIIIIB")
_HEADER: Final = _MAGIC + bytes((_VERSION, 0))
_HEADER_ZLIB: Final = _MAGIC + bytes((_VERSION, _FLAG_ZLIB))
_TEXT_REGION: Final = 1  # texts flag: the creator has a region
_TEXT_SIZED: Final = 2  # texts flag: length-prefixed (a text contains a NUL)
# Dirty bits: what to recheck at the next `to_bytes` besides the records changed.
_FULL_POSTS: Final = 1  # rewrite the whole section
_FULL_TAGS: Final = 2
_FULL_ORDERS: Final = 4
_FULL: Final = 7
_STRINGS: Final = 8  # the string table may have changed
_CAMPAIGNS: Final = 16  # the campaign table may have changed
_ALL: Final = 31
_WIDTHS: Final = "BHIQ"
_TOPS: Final = (0xFF, 0xFFFF, 0xFFFFFFFF, 2**64 - 1)
_NEVER: Final = 2**64  # above any value: "this column cannot get narrower"
#: Columns per section, and those always 8 bytes wide (id hashes).
_NCOLS: Final = (11, 6, 10)
_FIXED_COLS: Final = ((0,), (0, 2), (0, 2))
_VARIABLE_COLS: Final = tuple(
    tuple(c for c in range(n) if c not in fixed)
    for n, fixed in zip(_NCOLS, _FIXED_COLS, strict=True)
)
_STRUCTS: dict[tuple[int, bytes], struct.Struct] = {}


def _rows_struct(codes: bytes, n: int) -> struct.Struct:
    """The struct of n rows with these column width codes."""
    key = (n, codes)
    s = _STRUCTS.get(key)
    if s is None:
        if len(_STRUCTS) > 4096:
            _STRUCTS.clear()
        s = _STRUCTS[key] = struct.Struct("<" + "".join(map(_WIDTHS.__getitem__, codes)) * n)
    return s


def _codes(i: int, columns: list[tuple[int, ...]]) -> bytes:
    """The narrowest width code of each column of section i (hash columns: 8 bytes)."""
    if not columns:
        codes = bytearray(_NCOLS[i])
    else:
        # (The hash columns are skipped: comparing 64-bit hashes is the slow part.)
        tops = list(map(max, map(columns.__getitem__, _VARIABLE_COLS[i])))
        if max(tops) > _TOPS[3]:
            raise ValueError("a value does not fit in 64 bits")
        codes = bytearray(_NCOLS[i])
        for c, code in zip(_VARIABLE_COLS[i], map(bisect_left, repeat(_TOPS), tops), strict=True):
            codes[c] = code
    for c in _FIXED_COLS[i]:
        codes[c] = 3
    return bytes(codes)


_CODE_INFO: dict[tuple[int, bytes], tuple[tuple[int, ...], tuple[int, ...], struct.Struct]] = {}
_ONE_EMPTY: Final = struct.Struct("<")


def _code_info(i: int, codes: bytes) -> tuple[tuple[int, ...], tuple[int, ...], struct.Struct]:
    """For width codes of section i: the largest value per column, the largest value of
    the next width down (a column whose top drops to it may get narrower), one row."""
    info = _CODE_INFO.get((i, codes))
    if info is None:
        lower = [_TOPS[c - 1] if c else _NEVER for c in codes]
        for c in _FIXED_COLS[i]:
            lower[c] = _NEVER
        info = tuple(map(_TOPS.__getitem__, codes)), tuple(lower), _rows_struct(codes, 1)
        if len(_CODE_INFO) > 1024:
            _CODE_INFO.clear()
        _CODE_INFO[i, codes] = info
    return info


class _Encoded:
    """The bytes of a state as last written, by part, and what they were written from.

    Per section: the hashes in order, each record's encoded row (a tuple), the width
    codes and the packed rows. `update` packs the rows of changed records and
    splices them in; only a change of width code (or of the string or campaign
    table) rewrites a whole section.
    """

    __slots__ = (
        "campaign_bytes",
        "campaign_pos",
        "campaigns",
        "codes",
        "cset",
        "hashes",
        "index",
        "lower",
        "one",
        "optional",
        "region",
        "rows",
        "table",
        "text",
        "tops",
        "tset",
        "tuples",
        "unpacked",
    )

    def __init__(self) -> None:
        self.hashes: list[list[int]] = [[], [], []]
        self.tuples: list[dict[int, tuple[int, ...]]] = [{}, {}, {}]
        # A section read by from_bytes keeps its unpacked values here until a write
        # needs the rows as tuples (most states read are written after a change).
        self.unpacked: list[tuple[int, ...] | None] = [None, None, None]
        # Per section: width codes, largest value per column, largest value of the
        # next width down, and the struct of one row. Set by set_codes before use.
        self.codes: list[bytes] = [b"", b"", b""]
        self.tops: list[tuple[int, ...]] = [(), (), ()]
        self.lower: list[tuple[int, ...]] = [(), (), ()]
        self.one: list[struct.Struct] = [_ONE_EMPTY, _ONE_EMPTY, _ONE_EMPTY]
        self.rows = [bytearray(), bytearray(), bytearray()]
        self.region: str | None = None
        self.text: tuple[bytes, int] | None = None
        self.table: list[str] = []
        self.tset: set[str] = set()
        self.index: dict[str, int] = {}
        self.optional: dict[str, int] = {"": 0}
        self.campaigns: list[int] = []
        self.cset: set[int] = set()
        self.campaign_pos: dict[int, int] = {-1: 0}
        self.campaign_bytes = b""

    def set_table(self, table: list[str]) -> None:
        self.table = table
        self.tset = set(table)
        self.index = dict(zip(table, range(len(table)), strict=True))
        self.optional = dict(zip(table, range(1, len(table) + 1), strict=True))
        self.optional[""] = 0
        self.text = None

    def set_campaigns(self, campaigns: list[int]) -> None:
        self.campaigns = campaigns
        self.cset = set(campaigns)
        self.campaign_pos = dict(zip(campaigns, range(1, len(campaigns) + 1), strict=True))
        self.campaign_pos[-1] = 0
        self.campaign_bytes = struct.pack(f"<{len(campaigns)}I", *campaigns)

    def set_codes(self, i: int, codes: bytes) -> None:
        self.codes[i] = codes
        self.tops[i], self.lower[i], self.one[i] = _code_info(i, codes)

    def text_for(self, creator_id: str, region: str | None) -> tuple[bytes, int]:
        if self.text is None or region != self.region:
            self.region = region
            self.text = _encode_text(creator_id, region, self.table)
        return self.text

    def rewrite(self, i: int, store: Mapping[int, Any]) -> None:
        """Encode and pack every record of section i."""
        encode = _ENCODERS[i]
        self.unpacked[i] = None
        hashes = self.hashes[i] = sorted(store)
        rows = [encode(self, h, store[h]) for h in hashes]
        self.tuples[i] = dict(zip(hashes, rows, strict=True))
        self._pack(i, rows)

    def _pack(self, i: int, rows: list[tuple[int, ...]]) -> None:
        codes = _codes(i, list(zip(*rows, strict=True)))
        self.set_codes(i, codes)
        self.rows[i] = bytearray(_rows_struct(codes, len(rows)).pack(*chain.from_iterable(rows)))

    def update(self, i: int, store: Mapping[int, Any], changed: Iterable[int]) -> None:
        """Splice in the rows of the records in `changed` (added, replaced or removed)."""
        encode = _ENCODERS[i]
        flat = self.unpacked[i]
        if flat is not None:  # rows as read: group them now
            self.unpacked[i] = None
            self.tuples[i] = dict(
                zip(self.hashes[i], zip(*[iter(flat)] * _NCOLS[i], strict=True), strict=True)
            )
        hashes, tuples, rows = self.hashes[i], self.tuples[i], self.rows[i]
        tops, lower = self.tops[i], self.lower[i]
        one = self.one[i]
        size = one.size
        # Set when a width code may change: the rows are then packed again at the end
        # (hashes and tuples stay up to date, the row bytes are left as they are).
        repack = False
        for h in changed:
            rec = store.get(h)
            old = tuples.get(h)
            if rec is None:  # removed
                if old is None:
                    continue  # added and removed again since the last write
                pos = bisect_left(hashes, h)
                del hashes[pos]
                del tuples[h]
                if not repack:
                    del rows[pos * size : (pos + 1) * size]
                    repack = any(map(gt, old, lower))  # it held the top of a column
                continue
            new = tuples[h] = encode(self, h, rec)
            if old is None:
                pos = bisect_left(hashes, h)
                hashes.insert(pos, h)
                if not repack:
                    if all(map(le, new, tops)):
                        rows[pos * size : pos * size] = one.pack(*new)
                    else:
                        repack = True  # wider than its column
            elif not repack:
                if all(map(le, new, tops)):
                    pos = bisect_left(hashes, h)
                    rows[pos * size : (pos + 1) * size] = one.pack(*new)
                    # A column's top value went down: it may fit a narrower width now.
                    repack = not all(map(le, old, new)) and any(
                        map(and_, map(gt, old, lower), map(le, new, lower))
                    )
                else:
                    repack = True
        if repack:
            self._pack(i, list(map(tuples.__getitem__, hashes)))


def _encode_post(enc: _Encoded, h: int, p: _PostRec) -> tuple[int, ...]:
    posted = p[5]
    obs = p[0]
    if obs < 0:
        code = 0
    elif obs >= posted:
        code = ((obs - posted) << 1) + 1
    else:
        code = (posted - obs) << 1
    day, ms = divmod(posted, DAY_MS)
    optional = enc.optional
    return (
        h, day, ms, code, p[1], p[2], p[3], p[4],
        enc.index[p[6]], optional[p[8]], optional[p[9]],
    )  # fmt: skip


def _encode_tag(enc: _Encoded, h: int, t: _TagRec) -> tuple[int, ...]:
    index = enc.index
    return (h, t[0], t[1], index[t[2]], index[t[3]], enc.campaign_pos[t[4]])


def _encode_order(enc: _Encoded, h: int, o: _OrderRec) -> tuple[int, ...]:
    index = enc.index
    post = o[6]
    return (
        h, o[7], 0 if post < 0 else post, o[0] | 4 if post < 0 else o[0], o[8], o[9], o[2],
        index[o[3]], index[o[4]], index[o[5]],
    )  # fmt: skip


_ENCODERS: Final[tuple[Callable[[_Encoded, int, Any], tuple[int, ...]], ...]] = (
    _encode_post,
    _encode_tag,
    _encode_order,
)


def _string_table(stores: tuple[dict[int, Any], ...]) -> list[str]:
    """Every string the records name, sorted (content types, brands, themes, currencies)."""
    names: set[str] = set()
    for store, fields in zip(stores, ((6, 8, 9), (2, 3), (3, 4, 5)), strict=True):
        for f in fields:
            names.update(map(itemgetter(f), store.values()))
    names.discard("")
    return sorted(names)


def _encode_text(creator_id: str, region: str | None, table: list[str]) -> tuple[bytes, int]:
    texts = [creator_id, region or "", *table]
    flags = 0 if region is None else _TEXT_REGION
    joined = "\x00".join(texts)
    if joined.count("\x00") == len(texts) - 1:
        return joined.encode("utf-8", "surrogatepass"), flags
    raw = [t.encode("utf-8", "surrogatepass") for t in texts]
    return struct.pack(f"<{len(raw)}I", *map(len, raw)) + b"".join(raw), flags | _TEXT_SIZED


def _decode_texts(blob: bytes, n: int, sized: bool) -> list[str]:
    if not sized:
        texts = blob.decode("utf-8", "surrogatepass").split("\x00")
    else:
        sizes = struct.unpack_from(f"<{n}I", blob)
        pos = 4 * n
        texts = []
        for size in sizes:
            texts.append(blob[pos : pos + size].decode("utf-8", "surrogatepass"))
            pos += size
        if pos != len(blob) or all("\x00" not in t for t in texts):
            raise ValueError("texts not canonical")
    if len(texts) != n:
        raise ValueError("text count mismatch")
    return texts


def _theme_key(themes: tuple[str, ...]) -> str:
    """A post's themes as one string for the string table (themes joined by \\x01)."""
    key = "\x01".join(themes)
    if themes and (key.count("\x01") != len(themes) - 1 or "" in themes):
        raise ValueError(f"themes {themes!r} are empty or contain \\x01")
    return key


_THEMES: dict[str, tuple[str, ...]] = {"": ()}


def _split_themes(key: str) -> tuple[str, ...]:
    """The themes of a table string (memoised: the same few combinations recur)."""
    themes = _THEMES.get(key)
    if themes is None:
        themes = tuple(key.split("\x01"))
        if not all(themes) or not all(map(lt, themes, islice(themes, 1, None))):
            raise ValueError("post themes not canonical")
        if len(_THEMES) > 4096:
            _THEMES.clear()
            _THEMES[""] = ()
        _THEMES[key] = themes
    return themes


def _decimal(micros: int) -> tuple[int, int]:
    """Millionths as decimal mantissa and exponent: 19990000 -> (1999, 4)."""
    digits = str(micros)
    stripped = digits.rstrip("0") or "0"
    return int(stripped), len(digits) - len(stripped)


def _decode_v2(cls: type[CreatorState], body: bytes) -> CreatorState:
    (region_ms, watermark, n_posts, n_tags, n_orders, n_strings, n_campaigns, text_len,
     text_flags) = _FIXED.unpack_from(body)  # fmt: skip
    if watermark < 0 or region_ms < -1 or text_flags & ~(_TEXT_REGION | _TEXT_SIZED):
        raise ValueError("bad header")
    pos = _FIXED.size
    if 8 * (n_posts + n_tags + n_orders) + text_len + 4 * n_campaigns > len(body) - pos:
        raise ValueError("record counts exceed the data")
    texts = _decode_texts(body[pos : pos + text_len], 2 + n_strings, bool(text_flags & _TEXT_SIZED))
    pos += text_len
    creator_id, region, *table = texts
    if not text_flags & _TEXT_REGION and region:
        raise ValueError("region not canonical")
    if (table and not table[0]) or not all(map(lt, table, islice(table, 1, None))):
        raise ValueError("string table not canonical")
    campaigns = [-1, *struct.unpack_from(f"<{n_campaigns}I", body, pos)]
    pos += 4 * n_campaigns
    if not all(map(lt, campaigns, islice(campaigns, 1, None))):
        raise ValueError("campaign table not canonical")
    codes = [body[pos : pos + 11], body[pos + 11 : pos + 17], body[pos + 17 : pos + 27]]
    pos += 27
    sections: list[tuple[tuple[int, ...], list[tuple[int, ...]], bytes]] = []
    for i, n in enumerate((n_posts, n_tags, n_orders)):
        s = _rows_struct(codes[i], n)
        flat = s.unpack_from(body, pos)
        k = _NCOLS[i]
        columns = [flat[c::k] for c in range(k)] if n else []
        if codes[i] != _codes(i, columns):
            raise ValueError("columns not at their narrowest widths")
        sections.append((flat, columns, body[pos : pos + s.size]))
        pos += s.size
    if pos != len(body):
        raise ValueError("trailing bytes")
    optional = ["", *table]
    last = watermark // DAY_MS

    # Posts.
    (post_hashes, days, ms, obs_codes, views, likes, comments, shares, types, brands,
     keys) = sections[0][1] or ((),) * 11  # fmt: skip
    if days and (max(days) > last or max(ms) >= DAY_MS):
        raise ValueError("post newer than the watermark")
    posted = list(map(add, map(mul, days, repeat(DAY_MS)), ms))
    if posted and max(posted) > watermark:
        raise ValueError("post newer than the watermark")
    if max(views + likes + comments + shares, default=0) >= _LIMIT:
        raise ValueError("counter out of range")
    observed = [
        -1 if c == 0 else ms_ + (c >> 1) if c & 1 else ms_ - (c >> 1)
        for c, ms_ in zip(obs_codes, posted, strict=True)
    ]
    if observed and (min(observed) < -1 or max(observed) >= _LIMIT):
        raise ValueError("post observed out of range")
    key_names = list(map(optional.__getitem__, keys))
    themes_of = {key: _split_themes(key) for key in set(key_names)}
    posts = dict(
        zip(
            post_hashes,
            zip(
                observed, views, likes, comments, shares, posted,
                map(table.__getitem__, types), map(themes_of.__getitem__, key_names),
                map(optional.__getitem__, brands), key_names,
                strict=True,
            ),
            strict=True,
        )
    )  # fmt: skip

    # Tags.
    tag_hashes, t_days, t_posts, t_brands, t_themes, t_campaigns = sections[1][1] or ((),) * 6
    if t_days and max(t_days) > last:
        raise ValueError("tag newer than the watermark")
    tags = dict(
        zip(
            tag_hashes,
            zip(
                t_days, t_posts, map(table.__getitem__, t_brands),
                map(table.__getitem__, t_themes), map(campaigns.__getitem__, t_campaigns),
                strict=True,
            ),
            strict=True,
        )
    )  # fmt: skip

    # Orders.
    (order_hashes, o_days, o_posts, o_flags, mantissas, exponents, qty, currencies, o_brands,
     o_themes) = sections[2][1] or ((),) * 10  # fmt: skip
    if o_days and max(o_days) > last:
        raise ValueError("order newer than the watermark")
    if max(o_flags, default=0) > 6 or 3 in o_flags or max(exponents, default=0) >= len(_POW10):
        raise ValueError("order status or amount out of range")
    no_post = list(map(and_, o_flags, repeat(4)))
    if any(compress(o_posts, no_post)):
        raise ValueError("order without a post names one")
    o_post_hashes = map(sub, o_posts, map(rshift, no_post, repeat(2)))  # none: 0 - 1 = -1
    micros = list(map(mul, mantissas, map(_POW10.__getitem__, exponents)))
    if max(micros, default=0) >= _LIMIT or max(qty, default=0) >= _LIMIT:
        raise ValueError("order amount or quantity out of range")
    # Canonical amounts: no trailing zero in the mantissa (zero is 0 x 10^0).
    if not {(0, 0)}.issuperset(
        compress(zip(mantissas, exponents, strict=True), map(not_, map(mod, mantissas, repeat(10))))
    ):
        raise ValueError("order amount not canonical")
    orders = dict(
        zip(
            order_hashes,
            zip(
                map(and_, o_flags, repeat(3)), micros, qty, map(table.__getitem__, currencies),
                map(table.__getitem__, o_brands), map(table.__getitem__, o_themes),
                o_post_hashes, o_days, mantissas, exponents,
                strict=True,
            ),
            strict=True,
        )
    )  # fmt: skip

    # Only what to_bytes writes: records in hash order, every string and campaign used.
    for hashes in (post_hashes, tag_hashes, order_hashes):
        if not all(map(lt, hashes, islice(hashes, 1, None))):
            raise ValueError("records not in hash order")
    used = set(types).union(t_brands, t_themes, currencies, o_brands, o_themes)
    used.update(map(sub, set(brands).union(keys), repeat(1)))  # optional: 0 is none
    used.discard(-1)
    if len(used) != len(table):
        raise ValueError("unused string in the table")
    if len(set(t_campaigns) - {0}) != n_campaigns:
        raise ValueError("unused campaign in the table")

    state = cls(creator_id)
    state.region = region if text_flags & _TEXT_REGION else None
    state._region_ms = region_ms
    state._oldest = 0  # unknown: the next new day looks for old records
    state.watermark_ms = watermark
    state._posts, state._tags, state._orders = posts, tags, orders
    # What was read is what the next to_bytes would write: keep it.
    enc = state._enc = _Encoded()
    enc.set_table(table)
    enc.set_campaigns(campaigns[1:])
    for i, (flat, columns, packed) in enumerate(sections):
        enc.hashes[i] = list(columns[0]) if columns else []
        enc.unpacked[i] = flat
        enc.set_codes(i, codes[i])
        enc.rows[i] = bytearray(packed)
    enc.region = state.region
    enc.text = (body[_FIXED.size : _FIXED.size + text_len], text_flags)
    state._dirty = 0
    return state
