"""Rolling per-creator state: day buckets of posts, tags and orders over the window.

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
* Exact bytes. `to_bytes` writes a canonical form (sorted records, interned
  strings, columns packed at the narrowest width that fits, zlib when it helps,
  CRC-32 over the content), so equal states give equal bytes and `from_bytes`
  gives back exactly what was written.

The state does not depend on scoring parameters except the window length:
amounts stay in their own currency (as integer millionths) and are converted
with the rate table at scoring time, so a new model version re-scores old state.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import struct
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple, TypeVar

from scoring.events import ORDER_STATUSES, Event, OrderEvent, PostEvent, TagEvent
from scoring.params import Params

DAY_MS: Final = 86_400_000
_MICROS: Final = 1_000_000
_LIMIT: Final = 2**63  # counters and amounts are packed as unsigned 64-bit at most
_STATUS_RANK: Final = {s: i for i, s in enumerate(ORDER_STATUSES)}
_MAGIC: Final = b"CS"
_VERSION: Final = 1
_FLAG_ZLIB: Final = 1
_CRC: Final = struct.Struct("<I")
_ZLIB_LEVEL: Final = 6
#: Compression costs more than the rest of `to_bytes` for a typical creator and
#: saves under a fifth, so only bodies past this size (heavy creators) get it.
_ZLIB_ABOVE: Final = 4096
_POW10: Final = tuple(10**i for i in range(20))
_MAX_BODY: Final = 16 * 1024 * 1024
_R = TypeVar("_R")


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


# Field order is the precedence between two versions of one record: tuples compare
# field by field, so `max` picks the same winner whatever the arrival order.
class _Post(NamedTuple):
    observed_ms: int  # -1 when the snapshot carried no observed_at
    views: int
    likes: int
    comments: int
    shares: int
    posted_ms: int
    content_type: str
    themes: tuple[str, ...]
    brand: str  # "" unless a paid collaboration


class _Tag(NamedTuple):
    day: int
    post: int  # hash64 of the post id
    brand: str
    theme: str
    campaign: int  # 32-bit hash of the campaign id, -1 when none


class _Order(NamedTuple):
    status: int  # index in ORDER_STATUSES: placed < cancelled < refunded
    amount_micros: int  # amount in its own currency, in millionths
    quantity: int
    currency: str
    brand: str
    theme: str
    post: int  # hash64 of the post id, -1 when none
    day: int


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

    __slots__ = ("_orders", "_posts", "_region_ms", "_tags", "creator_id", "region", "watermark_ms")

    def __init__(self, creator_id: str) -> None:
        self.creator_id = creator_id
        self.region: str | None = None
        self._region_ms = -1  # posted_at of the post that gave `region`
        self.watermark_ms = 0  # newest event time seen (0: none yet)
        self._posts: dict[int, _Post] = {}
        self._tags: dict[int, _Tag] = {}
        self._orders: dict[int, _Order] = {}

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
            out.setdefault(p.posted_ms // DAY_MS, [0, 0, 0])[0] += 1
        for t in self._tags.values():
            out.setdefault(t.day, [0, 0, 0])[1] += 1
        for o in self._orders.values():
            out.setdefault(o.day, [0, 0, 0])[2] += 1
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
        if isinstance(event, PostEvent):
            return self._apply_post(event, params.window_days)
        if isinstance(event, TagEvent):
            return self._apply_tag(event, params.window_days)
        if isinstance(event, OrderEvent):
            return self._apply_order(event, params.window_days)
        raise TypeError(f"not an event: {type(event).__name__}")

    def _apply_post(self, ev: PostEvent, window: int) -> ApplyOutcome:
        t = ev.posted_at_ms
        obs = ev.observed_at_ms
        themes = ev.themes
        rec = _Post(
            -1 if obs is None else obs,
            ev.views,
            ev.likes,
            ev.comments,
            ev.shares,
            t,
            ev.content_type,
            themes if _sorted_unique(themes) else tuple(sorted(set(themes))),
            ev.brand_id or "",
        )
        if not (
            0 <= rec.views < _LIMIT
            and 0 <= rec.likes < _LIMIT
            and 0 <= rec.comments < _LIMIT
            and 0 <= rec.shares < _LIMIT
            and t >= 0
            and rec.observed_ms >= -1
        ):
            raise ValueError(f"post {ev.post_id!r} has a negative or oversized counter or time")
        # The region is a creator attribute, not a windowed figure: the newest post
        # says it, even one too old to count, so it does not depend on arrival order.
        if t > self._region_ms or (t == self._region_ms and ev.region > (self.region or "")):
            self.region = ev.region
            self._region_ms = t
        wm = self.watermark_ms
        if t // DAY_MS <= (t if t > wm else wm) // DAY_MS - window:
            return ApplyOutcome.LATE
        h = hash64(ev.post_id)
        old = self._posts.get(h)
        if old is None:
            self._posts[h] = rec
            outcome = ApplyOutcome.APPLIED
        elif rec > old:
            self._posts[h] = rec
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
        rec = _Tag(day, hash64(ev.post_id), ev.brand_id, ev.theme, campaign)
        h = hash64(ev.tag_id)
        old = self._tags.get(h)
        if old is None:
            self._tags[h] = rec
            outcome = ApplyOutcome.APPLIED
        elif rec > old:
            self._tags[h] = rec
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
        micros = int(ev.amount * _MICROS) if ev.amount.is_finite() else -1
        if status is None or not 0 <= micros < _LIMIT or not 0 <= ev.quantity < _LIMIT or t < 0:
            raise ValueError(f"order {ev.order_id!r} has an invalid status, amount or quantity")
        post = -1 if ev.post_id is None else hash64(ev.post_id)
        rec = _Order(status, micros, ev.quantity, ev.currency, ev.brand_id, ev.theme, post, day)
        h = hash64(ev.order_id)
        old = self._orders.get(h)
        if old is None:
            self._orders[h] = rec
            outcome = ApplyOutcome.APPLIED
        elif rec > old:
            self._orders[h] = rec
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
        # A new day bucket opened: the oldest ones fall out of the window.
        first = day - window + 1
        first_ms = first * DAY_MS
        self._posts = {h: p for h, p in self._posts.items() if p.posted_ms >= first_ms}
        self._tags = {h: t for h, t in self._tags.items() if t.day >= first}
        self._orders = {h: o for h, o in self._orders.items() if o.day >= first}

    # --- figures -------------------------------------------------------------

    def stats(self, params: Params) -> WindowStats:
        """Window and recent figures, per theme and per content type, as of the watermark."""
        window, recent = params.window_days, params.short_window_days
        last = self.watermark_ms // DAY_MS
        first, first_recent = last - window + 1, last - recent + 1
        first_ms, recent_ms = first * DAY_MS, first_recent * DAY_MS
        half = first + window // 2

        # Brand footprint: name -> [collab posts, tags, campaign tags, kept orders, {days}].
        brands: dict[str, list[Any]] = {}
        tagged: set[int] = set()
        campaigns: set[int] = set()
        n_tags = n_tags_recent = n_campaign_tags = 0
        for t in self._tags.values():
            day = t.day
            if day < first:
                continue
            n_tags += 1
            if day >= first_recent:
                n_tags_recent += 1
            tagged.add(t.post)
            info = brands.get(t.brand)
            if info is None:
                info = brands[t.brand] = [0, 0, 0, 0, set()]
            info[1] += 1
            info[4].add(day)
            if t.campaign >= 0:
                n_campaign_tags += 1
                info[2] += 1
                campaigns.add(t.campaign)

        # Per-post rows (views, likes, comments, shares, collab, shoppable), grouped by
        # content type and by (content type, theme); sums are integers, so any order works.
        by_type: dict[str, list[tuple[int, ...]]] = {}
        by_type_theme: dict[tuple[str, str], list[tuple[int, ...]]] = {}
        recent_by_type: dict[str, list[tuple[int, ...]]] = {}
        daily = [0] * window
        post_type: dict[int, str] = {}
        for h, p in self._posts.items():
            ms = p.posted_ms
            if ms < first_ms:
                continue
            day = ms // DAY_MS
            daily[day - first] += 1
            ct = p.content_type
            post_type[h] = ct
            brand = p.brand
            row = (
                p.views,
                p.likes,
                p.comments,
                p.shares,
                1 if brand else 0,
                1 if h in tagged else 0,
            )
            rows = by_type.get(ct)
            if rows is None:
                by_type[ct] = [row]
            else:
                rows.append(row)
            for theme in p.themes:
                key = (ct, theme)
                rows = by_type_theme.get(key)
                if rows is None:
                    by_type_theme[key] = [row]
                else:
                    rows.append(row)
            if ms >= recent_ms:
                recent_by_type.setdefault(ct, []).append(row)
            if brand:
                info = brands.get(brand)
                if info is None:
                    info = brands[brand] = [0, 0, 0, 0, set()]
                info[0] += 1
                info[4].add(day)

        # Orders: one accumulator for all, one per theme, one per content type of the
        # linked post: [orders, placed, cancelled, refunded, quantity, {currency: micros}].
        all_orders = _order_acc()
        by_theme_orders: dict[str, list[Any]] = {}
        by_type_orders: dict[str, list[Any]] = {}
        for o in self._orders.values():
            if o.day < first:
                continue
            status = o.status
            theme_acc = by_theme_orders.get(o.theme)
            if theme_acc is None:
                theme_acc = by_theme_orders[o.theme] = _order_acc()
            post_ct = post_type.get(o.post)
            if post_ct is None:
                targets: tuple[list[Any], ...] = (all_orders, theme_acc)
            else:
                type_acc = by_type_orders.get(post_ct)
                if type_acc is None:
                    type_acc = by_type_orders[post_ct] = _order_acc()
                targets = (all_orders, theme_acc, type_acc)
            for acc in targets:
                acc[0] += 1
                acc[1 + status] += 1
                if not status:
                    acc[4] += o.quantity
                    micros = acc[5]
                    micros[o.currency] = micros.get(o.currency, 0) + o.amount_micros
            if not status:
                info = brands.get(o.brand)
                if info is None:
                    info = brands[o.brand] = [0, 0, 0, 0, set()]
                info[3] += 1

        types = sorted(by_type)
        type_totals = {ct: _totals(by_type[ct]) for ct in types}
        theme_parts: dict[str, list[tuple[str, list[int]]]] = {}
        for ct, theme in sorted(by_type_theme):
            theme_parts.setdefault(theme, []).append((ct, _totals(by_type_theme[(ct, theme)])))
        fx = params.fx_scaled
        return WindowStats(
            creator_id=self.creator_id,
            region=self.region,
            as_of_ms=self.watermark_ms,
            window_days=window,
            short_window_days=recent,
            posts=_post_figures([(ct, type_totals[ct]) for ct in types], params),
            posts_recent=_post_figures(
                [(ct, _totals(recent_by_type[ct])) for ct in sorted(recent_by_type)], params
            ),
            posts_by_theme={
                theme: _post_figures(parts, params) for theme, parts in sorted(theme_parts.items())
            },
            posts_by_content_type={
                ct: _post_figures([(ct, type_totals[ct])], params) for ct in types
            },
            daily_posts=tuple(daily),
            tags=n_tags,
            tags_recent=n_tags_recent,
            campaign_tags=n_campaign_tags,
            campaigns=len(campaigns),
            orders=_order_figures(all_orders, fx),
            orders_by_theme={
                k: _order_figures(by_theme_orders[k], fx) for k in sorted(by_theme_orders)
            },
            orders_by_content_type={
                k: _order_figures(by_type_orders[k], fx) for k in sorted(by_type_orders)
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
                for name, info in sorted(brands.items())
            },
        )

    # --- bytes -----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical compact form: equal states give equal bytes."""
        post_hashes, posts = _sorted_records(self._posts, 9)
        tag_hashes, tags = _sorted_records(self._tags, 5)
        order_hashes, orders = _sorted_records(self._orders, 8)
        last = self.watermark_ms // DAY_MS
        p_obs, p_views, p_likes, p_comments, p_shares, p_ms, p_types, p_themes, p_brands = posts
        t_days, t_posts, t_brands, t_themes, t_campaigns = tags
        o_status, o_micros, o_qty, o_currency, o_brands, o_themes, o_posts, o_days = orders
        base = min(
            min(p_ms, default=last * DAY_MS) // DAY_MS,
            min(t_days, default=last),
            min(o_days, default=last),
        )
        names = {*p_types, *p_brands, *t_brands, *t_themes, *o_brands, *o_themes, *o_currency}
        names.update(*p_themes)
        names.discard("")
        table = sorted(names)
        index = {s: i for i, s in enumerate(table)}
        index[""] = -1
        idx = index.__getitem__

        out = bytearray()
        _put_text(out, self.creator_id)
        _put_uvarint(out, 0 if self.region is None else 1)
        if self.region is not None:
            _put_text(out, self.region)
        _put_uvarint(out, _zigzag(self._region_ms))
        _put_uvarint(out, _zigzag(self.watermark_ms))
        _put_uvarint(out, _zigzag(last - base))
        _put_uvarint(out, len(table))
        for s in table:
            _put_text(out, s)
        _put_uvarint(out, len(post_hashes))
        _put_uvarint(out, len(tag_hashes))
        _put_uvarint(out, len(order_hashes))

        base_ms = base * DAY_MS
        post_pos = {h: i for i, h in enumerate(post_hashes)}
        _put_hashes(out, post_hashes)
        _put_column(out, [ms - base_ms for ms in p_ms])
        _put_column(
            out,
            [
                0 if o < 0 else ((o - ms) << 1) + 1 if o >= ms else ((ms - o) << 1)
                for o, ms in zip(p_obs, p_ms, strict=True)
            ],
        )
        _put_column(out, p_views)
        _put_column(out, p_likes)
        _put_column(out, p_comments)
        _put_column(out, p_shares)
        _put_column(out, list(map(idx, p_types)))
        _put_column(out, [i + 1 for i in map(idx, p_brands)])
        _put_column(out, list(map(len, p_themes)))
        _put_column(out, [index[th] for themes in p_themes for th in themes])

        _put_hashes(out, tag_hashes)
        _put_column(out, [d - base for d in t_days])
        tag_refs = [post_pos.get(p, -1) + 1 for p in t_posts]
        _put_column(out, tag_refs)
        _put_hashes(out, [p for p, r in zip(t_posts, tag_refs, strict=True) if r == 0])
        _put_column(out, list(map(idx, t_brands)))
        _put_column(out, list(map(idx, t_themes)))
        campaigns = sorted({c for c in t_campaigns if c >= 0})
        campaign_pos = {c: i + 1 for i, c in enumerate(campaigns)}
        campaign_pos[-1] = 0
        _put_uvarint(out, len(campaigns))
        _put_column(out, campaigns)
        _put_column(out, list(map(campaign_pos.__getitem__, t_campaigns)))

        _put_hashes(out, order_hashes)
        _put_column(out, [d - base for d in o_days])
        order_refs = [0 if p < 0 else post_pos.get(p, -1) + 2 for p in o_posts]
        _put_column(out, order_refs)
        _put_hashes(out, [p for p, r in zip(o_posts, order_refs, strict=True) if r == 1])
        _put_column(out, list(map(idx, o_brands)))
        _put_column(out, list(map(idx, o_themes)))
        _put_column(out, list(map(idx, o_currency)))
        _put_column(out, o_qty)
        # Amounts as decimal mantissa and exponent: 19990000 millionths -> (1999, 4).
        digits = list(map(str, o_micros))
        stripped = [d.rstrip("0") or "0" for d in digits]
        _put_column(out, list(map(int, stripped)))
        _put_column(out, [len(a) - len(b) for a, b in zip(digits, stripped, strict=True)])
        _put_column(out, o_status)

        body = bytes(out)
        crc = _CRC.pack(zlib.crc32(body))
        if len(body) > _ZLIB_ABOVE:
            packed = zlib.compress(body, _ZLIB_LEVEL)
            if len(packed) < len(body):
                return _MAGIC + bytes((_VERSION, _FLAG_ZLIB)) + packed + crc
        return _MAGIC + bytes((_VERSION, 0)) + body + crc

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
        if data[2] != _VERSION:
            raise ValueError(f"unsupported state version {data[2]}")
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
        r = _Reader(body)
        state = cls(r.text())
        if r.uvarint():
            state.region = r.text()
        state._region_ms = _unzigzag(r.uvarint())
        state.watermark_ms = _unzigzag(r.uvarint())
        if state.watermark_ms < 0 or state._region_ms < -1:
            raise ValueError("negative watermark")
        last = state.watermark_ms // DAY_MS
        base = last - _unzigzag(r.uvarint())
        if base < 0:
            raise ValueError("day base before 1970")
        table = [r.text() for _ in range(r.uvarint())]
        if any(a >= b for a, b in itertools.pairwise(table)) or (table and not table[0]):
            raise ValueError("string table not canonical")
        n_posts, n_tags, n_orders = r.uvarint(), r.uvarint(), r.uvarint()
        if 8 * (n_posts + n_tags + n_orders) > r.remaining():
            raise ValueError("record counts exceed the data")
        names = _Names(table)
        base_ms = base * DAY_MS
        last_ms = state.watermark_ms

        post_hashes = r.hashes(n_posts)
        posted = [base_ms + x for x in r.column(n_posts)]
        observed = r.column(n_posts)
        views, likes, comments, shares = (r.column(n_posts, _LIMIT) for _ in range(4))
        p_types = names.get(r.column(n_posts))
        p_brands = names.get(r.column(n_posts), optional=True)
        theme_counts = r.column(n_posts, len(table) + 1)
        flat = names.get(r.column(sum(theme_counts)))
        p_themes: list[tuple[str, ...]] = []
        pos = 0
        for n in theme_counts:
            themes = tuple(flat[pos : pos + n])
            pos += n
            if n > 1 and not _sorted_unique(themes):
                raise ValueError("post themes not canonical")
            p_themes.append(themes)
        if posted and max(posted) > last_ms:
            raise ValueError("post newer than the watermark")
        p_observed = [
            -1 if o == 0 else ms + _unzigzag(o - 1) for o, ms in zip(observed, posted, strict=True)
        ]
        if p_observed and min(p_observed) < -1:
            raise ValueError("post observed before 1970")
        state._posts = _records(
            post_hashes,
            map(
                _Post,
                p_observed,
                views,
                likes,
                comments,
                shares,
                posted,
                p_types,
                p_themes,
                p_brands,
            ),
        )

        tag_hashes = r.hashes(n_tags)
        t_days = [base + d for d in r.column(n_tags)]
        t_posts = _resolve_refs(r.column(n_tags), 1, r, post_hashes)
        t_brands = names.get(r.column(n_tags))
        t_themes = names.get(r.column(n_tags))
        campaigns = [-1, *r.column(r.uvarint(), 2**32)]
        if any(a >= b for a, b in itertools.pairwise(campaigns)):
            raise ValueError("campaign table not canonical")
        t_campaigns = list(map(campaigns.__getitem__, r.column(n_tags, len(campaigns))))
        if t_days and max(t_days) > last:
            raise ValueError("tag newer than the watermark")
        state._tags = _records(
            tag_hashes, map(_Tag, t_days, t_posts, t_brands, t_themes, t_campaigns)
        )

        order_hashes = r.hashes(n_orders)
        o_days = [base + d for d in r.column(n_orders)]
        o_posts = _resolve_refs(r.column(n_orders), 2, r, post_hashes)
        o_brands = names.get(r.column(n_orders))
        o_themes = names.get(r.column(n_orders))
        o_currencies = names.get(r.column(n_orders))
        o_qty = r.column(n_orders, _LIMIT)
        mantissas = r.column(n_orders, _LIMIT)
        exponents = r.column(n_orders, len(_POW10))
        o_micros = [m * _POW10[e] for m, e in zip(mantissas, exponents, strict=True)]
        if o_micros and max(o_micros) >= _LIMIT:
            raise ValueError("order amount out of range")
        o_status = r.column(n_orders, len(ORDER_STATUSES))
        if o_days and max(o_days) > last:
            raise ValueError("order newer than the watermark")
        state._orders = _records(
            order_hashes,
            map(
                _Order, o_status, o_micros, o_qty, o_currencies, o_brands, o_themes, o_posts, o_days
            ),
        )
        if not r.done():
            raise ValueError("trailing bytes")
        return state


# --- helpers -------------------------------------------------------------------


def _sorted_unique(items: tuple[str, ...]) -> bool:
    return all(a < b for a, b in itertools.pairwise(items))


def _totals(rows: list[tuple[int, ...]]) -> list[int]:
    """[count, Σ views, Σ likes, Σ comments, Σ shares, Σ collab, Σ shoppable]."""
    return [len(rows), *map(sum, zip(*rows, strict=True))]


def _post_figures(parts: Iterable[tuple[str, list[int]]], params: Params) -> PostFigures:
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


def _order_acc() -> list[Any]:
    return [0, 0, 0, 0, 0, {}]


def _order_figures(acc: list[Any], fx: tuple[int, Mapping[str, int]]) -> OrderFigures:
    # Integer rates over a common power of ten: exact sums, one correctly rounded
    # division, so no dependence on arrival order (see Params.fx_scaled).
    scale, rates = fx
    total = unconverted = 0
    for currency, micros in acc[5].items():
        rate = rates.get(currency)
        if rate is None:
            unconverted += 1
        else:
            total += rate * micros
    net = total / scale if total else 0.0
    return OrderFigures(acc[0], acc[1], acc[2], acc[3], acc[4], net, unconverted)


def _sorted_records(records: Mapping[int, tuple[Any, ...]], n: int) -> tuple[list[int], list[Any]]:
    """Hashes in ascending order, and one column per record field in that order."""
    hashes = sorted(records)
    if not hashes:
        return hashes, [[] for _ in range(n)]
    return hashes, list(zip(*map(records.__getitem__, hashes), strict=True))


def _records(hashes: list[int], recs: Iterable[_R]) -> dict[int, _R]:
    out = dict(zip(hashes, recs, strict=True))
    if len(out) != len(hashes):
        raise ValueError("duplicate record")
    return out


class _Names:
    """Index -> string lookups against the interned string table, bounds-checked."""

    __slots__ = ("optional", "table")

    def __init__(self, table: list[str]) -> None:
        self.table = table
        self.optional = ["", *table]  # index 0 means "none"

    def get(self, indexes: list[int], optional: bool = False) -> list[str]:
        table = self.optional if optional else self.table
        if indexes and max(indexes) >= len(table):
            raise ValueError("string index out of range")
        return list(map(table.__getitem__, indexes))


def _zigzag(n: int) -> int:
    return (n << 1) if n >= 0 else ((-n << 1) - 1)


def _unzigzag(n: int) -> int:
    return (n >> 1) if not n & 1 else -((n + 1) >> 1)


def _put_uvarint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _put_text(out: bytearray, s: str) -> None:
    raw = s.encode("utf-8", "surrogatepass")
    _put_uvarint(out, len(raw))
    out += raw


_WIDTHS: Final = ((0, ""), (0xFF, "B"), (0xFFFF, "H"), (0xFFFFFFFF, "I"), (2**64 - 1, "Q"))
_SIZES: Final = (0, 1, 2, 4, 8)


def _put_column(out: bytearray, values: list[int]) -> None:
    """One column of non-negative ints at the narrowest width that fits all of them."""
    top = max(values, default=0)
    for code, (limit, fmt) in enumerate(_WIDTHS):
        if top <= limit:
            out.append(code)
            if code:
                out += struct.pack(f"<{len(values)}{fmt}", *values)
            return
    raise ValueError(f"value {top} does not fit in 64 bits")


def _put_hashes(out: bytearray, hashes: list[int]) -> None:
    out += struct.pack(f"<{len(hashes)}Q", *hashes)


def _resolve_refs(refs: list[int], offset: int, r: _Reader, post_hashes: list[int]) -> list[int]:
    """Post hashes from references: an index into the posts, an explicit hash, or none."""
    explicit = iter(r.hashes(sum(1 for x in refs if x == offset - 1)))
    out: list[int] = []
    for x in refs:
        if x == offset - 1:
            out.append(next(explicit))
        elif x < offset - 1:
            out.append(-1)
        elif x - offset < len(post_hashes):
            out.append(post_hashes[x - offset])
        else:
            raise ValueError(f"post reference {x} out of range")
    return out


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def uvarint(self) -> int:
        n = shift = 0
        while True:
            b = self.buf[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return n
            shift += 7
            if shift > 70:
                raise ValueError("varint too long")

    def text(self) -> str:
        n = self.uvarint()
        if self.pos + n > len(self.buf):
            raise ValueError("truncated string")
        s = self.buf[self.pos : self.pos + n].decode("utf-8", "surrogatepass")
        self.pos += n
        return s

    def column(self, n: int, limit: int | None = None) -> list[int]:
        """n unsigned ints; ValueError if any is >= limit."""
        code = self.buf[self.pos]
        self.pos += 1
        if code >= len(_WIDTHS):
            raise ValueError(f"bad column width code {code}")
        if code == 0:
            return [0] * n
        top, fmt = _WIDTHS[code]
        values = list(struct.unpack_from(f"<{n}{fmt}", self.buf, self.pos))
        self.pos += n * _SIZES[code]
        if limit is not None and limit <= top and values and max(values) >= limit:
            raise ValueError("column value out of range")
        return values

    def hashes(self, n: int) -> list[int]:
        fmt = f"<{n}Q"
        values = list(struct.unpack_from(fmt, self.buf, self.pos))
        self.pos += 8 * n
        return values

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def done(self) -> bool:
        return self.pos == len(self.buf)
