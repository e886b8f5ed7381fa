"""A synthetic creator-commerce population and the producer that feeds it into Kafka.

The worker, the dashboard, the end-to-end tests and the benchmarks all need a
stream that looks like production: creators with different habits (diligent
sellers, brand-shy artists, bursty posters, refund-prone sellers, brand
ambassadors, newcomers), heavy-tailed popularity, six regions with their own
currencies, engagement snapshots re-sent as counters grow, orders re-sent when
they are cancelled or refunded, a few exact re-deliveries, a few unkeyed
records and a small share of realistic breakages. A creator's first post always
arrives (intact and keyed) before any of its tags and orders, so the worker never
scores a creator it has no region for (region `ZZ` on the boards). Everything is
drawn from seeded `random.Random` instances, so a config (seed, end time, sizes)
gives the same bytes every time. Generation is kept cheap (precomputed population and
catalogue, records assembled from pre-serialized JSON members when scheduled,
pending records in a heap), the command line runs it in a process of its own
beside the producer, and the producer fills Kafka record batches itself rather
than paying a coroutine and a future per record.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import collections
import contextlib
import datetime as dt
import functools
import heapq
import itertools
import math
import multiprocessing
import os
import queue as queue_module
import random
import signal
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from multiprocessing import queues as mp_queues
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, Protocol, cast

import orjson

from scoring.params import DEFAULT_PARAMS
from streams.settings import Settings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
MINUTE_MS: Final = 60_000

REGIONS: Final[tuple[str, ...]] = ("US", "GB", "ID", "MY", "VN", "PH")
REGION_CURRENCY: Final[dict[str, str]] = {
    "US": "USD",
    "GB": "GBP",
    "ID": "IDR",
    "MY": "MYR",
    "VN": "VND",
    "PH": "PHP",
}
# Fixed UTC offsets the regions' systems stamp posts and tags with (the sources
# this imitates do not follow daylight saving).
REGION_UTC_OFFSET_MIN: Final[dict[str, int]] = {
    "US": -300,
    "GB": 0,
    "ID": 420,
    "MY": 480,
    "VN": 420,
    "PH": 480,
}
REGION_WEIGHTS: Final[dict[str, float]] = {
    "US": 0.22,
    "GB": 0.12,
    "ID": 0.24,
    "MY": 0.12,
    "VN": 0.15,
    "PH": 0.15,
}
THEMES: Final[tuple[str, ...]] = (
    "beauty", "fashion", "electronics", "food", "home",
    "fitness", "baby", "pets", "gaming", "books",
)  # fmt: skip
CONTENT_TYPES: Final[tuple[str, ...]] = ("video", "live", "photo", "short")
# Median shelf price in USD per theme; product prices spread log-normally around it.
THEME_MEDIAN_PRICE_USD: Final[dict[str, float]] = {
    "beauty": 16.0,
    "fashion": 28.0,
    "electronics": 75.0,
    "food": 7.0,
    "home": 24.0,
    "fitness": 32.0,
    "baby": 19.0,
    "pets": 14.0,
    "gaming": 45.0,
    "books": 12.0,
}
# Currencies that shops price in whole thousands (no minor unit in practice).
_WHOLE_THOUSANDS: Final = frozenset({"IDR", "VND"})

EventKind = Literal["post", "tag", "order"]

REQUIRED_FIELDS: Final[dict[EventKind, tuple[str, ...]]] = {
    "post": (
        "post_id", "creator_id", "region", "content_type", "themes", "posted_at",
        "views", "likes", "comments", "shares",
    ),
    "tag": ("tag_id", "post_id", "creator_id", "product_id", "brand_id", "theme", "tagged_at"),
    "order": (
        "order_id", "creator_id", "product_id", "brand_id", "theme", "quantity", "amount",
        "currency", "status", "ordered_at",
    ),
}  # fmt: skip

#: The breakages injected into the malformed share, per event kind. Each one is a
#: mistake real producers make, and each must fail validation.
FAULTS: Final[dict[EventKind, tuple[str, ...]]] = {
    "post": (
        "truncated_json", "wrong_encoding", "not_an_object", "missing_field", "wrong_type",
        "empty_id", "negative_counter", "bad_timestamp", "future_timestamp",
    ),
    "tag": (
        "truncated_json", "wrong_encoding", "not_an_object", "missing_field", "wrong_type",
        "empty_id", "bad_timestamp", "future_timestamp",
    ),
    "order": (
        "truncated_json", "wrong_encoding", "not_an_object", "missing_field", "wrong_type",
        "empty_id", "negative_amount", "unknown_currency", "future_timestamp",
    ),
}  # fmt: skip


def usd_per_unit() -> dict[str, Decimal]:
    """The scoring model's exchange rates, so simulated prices match what it converts."""
    rates = dict(DEFAULT_PARAMS.fx_usd_per_unit)
    missing = [c for c in REGION_CURRENCY.values() if c not in rates]
    if missing:
        raise RuntimeError(f"scoring params lack exchange rates for {missing}")
    return rates


# --------------------------------------------------------------------------- habits


@dataclass(frozen=True)
class Habit:
    """How one kind of creator behaves; rates are per post unless said otherwise."""

    name: str
    share: float  # of the population
    activity: float  # relative posting weight
    bursty: bool  # posts in bursts separated by quiet days
    newcomer: bool  # joins in the last days of the simulated span
    tag_share: float  # posts carrying at least one shoppable tag
    max_tags: int
    orders_per_tagged_post: float  # mean, before the popularity factor
    cancel_rate: float  # of orders
    refund_rate: float  # of orders
    collab_share: float  # posts that are paid brand collaborations (post.brand_id)
    campaign_share: float  # tags that answer a brand campaign (tag.campaign_id)
    repeat_brand_share: float  # tags and collaborations from the creator's own few brands
    own_brands: int
    popularity: float  # multiplier on the Zipf view base
    like_rate: float  # likes per view
    comment_ratio: float  # comments per like
    share_ratio: float  # shares per like
    content_weights: tuple[float, float, float, float]  # video, live, photo, short


HABITS: Final[tuple[Habit, ...]] = (
    Habit(
        name="diligent_seller", share=0.25, activity=3.0, bursty=False, newcomer=False,
        tag_share=0.85, max_tags=3, orders_per_tagged_post=2.5, cancel_rate=0.02,
        refund_rate=0.02, collab_share=0.10, campaign_share=0.10, repeat_brand_share=0.30,
        own_brands=2, popularity=1.0, like_rate=0.035, comment_ratio=0.08, share_ratio=0.04,
        content_weights=(0.45, 0.30, 0.10, 0.15),
    ),
    Habit(
        name="brand_shy_artist", share=0.15, activity=1.5, bursty=False, newcomer=False,
        tag_share=0.06, max_tags=1, orders_per_tagged_post=0.8, cancel_rate=0.02,
        refund_rate=0.02, collab_share=0.0, campaign_share=0.0, repeat_brand_share=0.0,
        own_brands=0, popularity=1.6, like_rate=0.11, comment_ratio=0.15, share_ratio=0.09,
        content_weights=(0.35, 0.05, 0.35, 0.25),
    ),
    Habit(
        name="irregular_poster", share=0.20, activity=4.0, bursty=True, newcomer=False,
        tag_share=0.40, max_tags=2, orders_per_tagged_post=1.0, cancel_rate=0.05,
        refund_rate=0.05, collab_share=0.05, campaign_share=0.05, repeat_brand_share=0.10,
        own_brands=1, popularity=0.9, like_rate=0.05, comment_ratio=0.10, share_ratio=0.05,
        content_weights=(0.40, 0.10, 0.25, 0.25),
    ),
    Habit(
        name="refund_prone_seller", share=0.10, activity=2.5, bursty=False, newcomer=False,
        tag_share=0.75, max_tags=3, orders_per_tagged_post=2.5, cancel_rate=0.15,
        refund_rate=0.25, collab_share=0.05, campaign_share=0.05, repeat_brand_share=0.10,
        own_brands=1, popularity=0.8, like_rate=0.025, comment_ratio=0.10, share_ratio=0.02,
        content_weights=(0.40, 0.40, 0.10, 0.10),
    ),
    Habit(
        name="brand_ambassador", share=0.15, activity=2.0, bursty=False, newcomer=False,
        tag_share=0.70, max_tags=2, orders_per_tagged_post=1.5, cancel_rate=0.03,
        refund_rate=0.03, collab_share=0.60, campaign_share=0.70, repeat_brand_share=0.85,
        own_brands=3, popularity=1.2, like_rate=0.06, comment_ratio=0.10, share_ratio=0.05,
        content_weights=(0.50, 0.15, 0.20, 0.15),
    ),
    Habit(
        name="newcomer", share=0.15, activity=0.7, bursty=False, newcomer=True,
        tag_share=0.40, max_tags=1, orders_per_tagged_post=0.5, cancel_rate=0.05,
        refund_rate=0.05, collab_share=0.05, campaign_share=0.05, repeat_brand_share=0.20,
        own_brands=1, popularity=0.15, like_rate=0.05, comment_ratio=0.10, share_ratio=0.04,
        content_weights=(0.30, 0.05, 0.35, 0.30),
    ),
)  # fmt: skip
HABITS_BY_NAME: Final[dict[str, Habit]] = {h.name: h for h in HABITS}


# --------------------------------------------------------------------------- population


class Brand:
    """A brand of the catalogue: one theme, a few products, a few campaigns."""

    __slots__ = ("brand_id", "campaigns", "fields", "prices", "products", "theme")

    def __init__(self, brand_id: str, theme: str) -> None:
        self.brand_id = brand_id
        self.theme = theme
        self.products: list[str] = []
        # prices[currency][i]: the local shelf price of products[i].
        self.prices: dict[str, list[Decimal]] = {}
        self.campaigns: list[str] = []
        # Pre-serialized JSON members (ids are plain ASCII, so no escaping is needed).
        self.fields = b'"brand_id":"%s","theme":"%s"' % (brand_id.encode(), theme.encode())


class Creator:
    """One simulated creator and everything precomputed about their habits."""

    __slots__ = (
        "activity", "bursts", "content_cum", "creator_id", "currency", "fields", "habit",
        "join_day", "key", "like_rate", "offset_min", "offset_suffix", "order_mean",
        "own_brands", "region", "themes", "themes_json", "views_base",
    )  # fmt: skip

    def __init__(self, creator_id: str, region: str, habit: Habit) -> None:
        self.creator_id = creator_id
        self.key = creator_id.encode()
        self.fields = b'"creator_id":"%s","region":"%s",' % (self.key, region.encode())
        self.region = region
        self.currency = REGION_CURRENCY[region]
        self.offset_min = REGION_UTC_OFFSET_MIN[region]
        self.offset_suffix = _offset_suffix(self.offset_min)
        self.habit = habit
        self.activity = habit.activity
        self.themes: tuple[str, ...] = ()
        # themes_json[0]: the primary theme alone; [i]: primary and themes[i], as JSON.
        self.themes_json: list[bytes] = []
        self.content_cum: list[float] = []
        self.views_base = 0.0
        self.like_rate = 0.0
        self.order_mean = 0.0
        self.own_brands: list[Brand] = []
        self.join_day = 0
        self.bursts = bytearray()


@dataclass(frozen=True)
class Population:
    creators: tuple[Creator, ...]
    brands: tuple[Brand, ...]
    brands_by_theme: dict[str, tuple[Brand, ...]]


def _apportion(weights: dict[str, float], n: int, rng: random.Random) -> list[str]:
    """Exactly n labels in proportion to weights (largest remainder), each present if n allows."""
    names = list(weights)
    total = sum(weights.values())
    exact = {k: weights[k] / total * n for k in names}
    counts = {k: int(exact[k]) for k in names}
    if n >= len(names):
        for k in names:
            counts[k] = max(counts[k], 1)
    by_remainder = sorted(names, key=lambda k: exact[k] - int(exact[k]), reverse=True)
    i = 0
    while sum(counts.values()) < n:
        counts[by_remainder[i % len(names)]] += 1
        i += 1
    while sum(counts.values()) > n:
        counts[max(names, key=lambda k: counts[k])] -= 1
    labels = [k for k in names for _ in range(counts[k])]
    rng.shuffle(labels)
    return labels


def local_price(usd: float, currency: str, fx: dict[str, Decimal]) -> Decimal:
    """A shelf price as shops in that currency write it: 4.99, 29.90, 489.00, 149000."""
    local = Decimal(repr(usd)) / fx[currency]
    if currency in _WHOLE_THOUSANDS:
        return max(Decimal(1000), (local / 1000).quantize(Decimal(1)) * 1000)
    if currency == "PHP":
        whole = (local / 10).quantize(Decimal(1)) * 10 - 1
        return max(Decimal(9), whole).quantize(Decimal("0.01"))
    base = max(Decimal(0), local.quantize(Decimal(1), rounding=ROUND_FLOOR))
    return base + (Decimal("0.90") if currency == "MYR" else Decimal("0.99"))


@functools.cache
def themes_json(*themes: str) -> bytes:
    """`themes` as a JSON array: one shared object per combination, not one per creator.

    orjson returns even a tiny result in a buffer of a few kilobytes, which a
    list of them per creator keeps alive: gigabytes for a large population.
    There are only a hundred (primary, second) combinations to share.
    """
    return orjson.dumps(list(themes))


def build_brands(rng: random.Random, creators: int) -> list[Brand]:
    """The brand catalogue for a population of `creators`, drawn from `rng`.

    Apart from the creators, so a generator that makes its creators on the fly
    (bench's scale workload) shares the catalogue without a population.
    """
    fx = usd_per_unit()
    brands: list[Brand] = []
    for b in range(min(3000, max(24, creators // 8))):
        theme = THEMES[b % len(THEMES)]
        brand = Brand(f"br-{b:05d}", theme)
        median = THEME_MEDIAN_PRICE_USD[theme]
        for p in range(rng.randint(4, 24)):
            brand.products.append(f"pr-{b:05d}-{p:03d}")
            usd = round(median * rng.lognormvariate(0.0, 0.6), 2) + 0.5
            for currency in REGION_CURRENCY.values():
                brand.prices.setdefault(currency, []).append(local_price(usd, currency, fx))
        brand.campaigns = [f"cp-{b:05d}-{c}" for c in range(rng.randint(1, 3))]
        brands.append(brand)
    return brands


def brands_by_theme(brands: Sequence[Brand]) -> dict[str, tuple[Brand, ...]]:
    """The catalogue by theme, where a creator's tags and collaborations draw from."""
    return {t: tuple(b for b in brands if b.theme == t) for t in THEMES}


def build_population(seed: int, creators: int, days: float) -> Population:
    """The creators and the brand catalogue; deterministic for (seed, creators, days)."""
    rng = random.Random(f"population:{seed}")
    brands = build_brands(rng, creators)
    by_theme = brands_by_theme(brands)

    regions = _apportion(REGION_WEIGHTS, creators, rng)
    habits = _apportion({h.name: h.share for h in HABITS}, creators, rng)
    # Zipf popularity: a random rank per creator, the view base falling off as 1/rank^1.1.
    ranks = list(range(1, creators + 1))
    rng.shuffle(ranks)
    span_days = max(1, math.ceil(days))
    out: list[Creator] = []
    for i in range(creators):
        habit = HABITS_BY_NAME[habits[i]]
        c = Creator(f"cr-{i:06d}", regions[i], habit)
        c.activity = habit.activity * rng.uniform(0.6, 1.4)
        primary = THEMES[int(rng.random() * len(THEMES))]
        others = [t for t in THEMES if t != primary]
        rng.shuffle(others)
        c.themes = (primary, *others[: rng.choice((0, 1, 1, 2))])
        c.themes_json = [themes_json(primary)]
        c.themes_json += [themes_json(primary, t) for t in c.themes[1:]]
        cum = 0.0
        for w in habit.content_weights:
            cum += w * rng.uniform(0.5, 1.5)
            c.content_cum.append(cum)
        c.views_base = max(150.0, 1_500_000.0 / ranks[i] ** 1.1 * habit.popularity)
        c.like_rate = habit.like_rate * rng.lognormvariate(0.0, 0.25)
        # Bigger audiences sell more per post, sub-linearly.
        factor = min(5.0, max(0.3, (c.views_base / 5_000.0) ** 0.35))
        c.order_mean = habit.orders_per_tagged_post * factor
        for _ in range(habit.own_brands):
            pool = by_theme[c.themes[int(rng.random() * len(c.themes))]]
            c.own_brands.append(pool[int(rng.random() * len(pool))])
        if habit.newcomer:
            c.join_day = max(0, span_days - rng.randint(1, min(7, span_days)))
        if habit.bursty:
            # Bursts of a few days separated by quiet stretches (a two-state chain).
            c.bursts = bytearray(span_days + 2)
            on = rng.random() < 0.3
            for d in range(span_days + 2):
                on = rng.random() < (0.65 if on else 0.18)
                c.bursts[d] = on
        out.append(c)
    return Population(tuple(out), tuple(brands), by_theme)


# --------------------------------------------------------------------------- time stamps


def _offset_suffix(offset_min: int) -> str:
    sign = "-" if offset_min < 0 else "+"
    h, m = divmod(abs(offset_min), 60)
    return f"{sign}{h:02d}:{m:02d}"


_DAY_PREFIX: dict[int, str] = {}
_HMS: list[str] = []
_EPOCH: Final = dt.date(1970, 1, 1)


def rfc3339(ms: int, offset_min: int = 0, suffix: str = "Z") -> str:
    """Epoch milliseconds as RFC 3339 in a fixed offset, from cached day and second strings."""
    if not _HMS:
        _HMS.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400))
    day, rem = divmod(ms + offset_min * MINUTE_MS, DAY_MS)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = _DAY_PREFIX[day] = (_EPOCH + dt.timedelta(days=day)).isoformat() + "T"
    sec, milli = divmod(rem, 1000)
    return f"{prefix}{_HMS[sec]}.{milli:03d}{suffix}"


# --------------------------------------------------------------------------- generator


class SimEvent(NamedTuple):
    """One Kafka record: topic, key (utf-8 creator id, None when unkeyed) and value bytes."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class SimTopics:
    posts: str = "posts"
    tags: str = "shoppable-tags"
    orders: str = "orders"

    @classmethod
    def from_settings(cls, settings: Settings) -> SimTopics:
        return cls(settings.posts_topic, settings.tags_topic, settings.orders_topic)


@dataclass(frozen=True)
class SimConfig:
    """Everything that decides the generated stream; equal configs give equal bytes.

    The simulated clock starts `days` before `end_ms` and reaches `end_ms` after
    `backfill_events` records (default: all `events`). Past that it advances
    `live_step_ms` per record (a paced producer makes that real time, so event
    time then follows the wall clock) and follow-ups come minutes, not days,
    after their post, since a live run is watched, not waited for.
    `events=None` never ends.
    """

    end_ms: int
    events: int | None = 100_000
    days: float = 28.0
    seed: int = 42
    creators: int = 1000
    backfill_events: int | None = None
    live_step_ms: float = 0.0
    malformed_share: float = 0.005
    mis_keyed_share: float = 0.01
    duplicate_share: float = 0.002
    max_pending: int = 2_000_000
    topics: SimTopics = field(default_factory=SimTopics)

    def __post_init__(self) -> None:
        if self.creators < 1:
            raise ValueError(f"creators must be at least 1, got {self.creators}")
        if self.events is not None and self.events < 0:
            raise ValueError(f"events must not be negative, got {self.events}")
        if not (self.days > 0 and math.isfinite(self.days)):
            raise ValueError(f"days must be a positive number, got {self.days}")
        if self.backfill_events is not None and self.backfill_events < 1:
            raise ValueError(f"backfill_events must be at least 1, got {self.backfill_events}")
        if self.events is None and self.backfill_events is None:
            raise ValueError("an endless stream needs backfill_events (how fast the days fill)")
        if self.live_step_ms < 0:
            raise ValueError(f"live_step_ms must not be negative, got {self.live_step_ms}")
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {self.max_pending}")
        for name in ("malformed_share", "mis_keyed_share", "duplicate_share"):
            share = getattr(self, name)
            if not 0.0 <= share < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {share}")

    @property
    def start_ms(self) -> int:
        return self.end_ms - round(self.days * DAY_MS)

    @property
    def backfill(self) -> int:
        if self.backfill_events is not None:
            return self.backfill_events
        return max(1, self.events or 0)


#: An open-ended paced run fills its simulated days in this many wall seconds.
DEFAULT_BACKFILL_S: Final = 300.0


@dataclass(frozen=True)
class ClockPlan:
    end_ms: int
    days: float
    events: int | None
    backfill_events: int
    live_step_ms: float


def plan_clock(
    *,
    now_ms: int,
    rate: float,
    events: int | None,
    duration_s: float | None,
    days: float,
    speedup: float | None,
) -> ClockPlan:
    """Turn the command-line knobs into a simulated clock that never runs ahead of the wall.

    Unpaced runs (rate 0) need a fixed count, spread over `days` ending now.
    A paced run ends its backfill at the wall time the producer gets there and
    then follows the wall clock, so no record carries a time in its future.
    `speedup` is simulated seconds per wall second during the backfill; without
    it a fixed count fills the days over the whole run and an open-ended run
    (no count, duration 0 or none) fills them in DEFAULT_BACKFILL_S seconds.
    """
    if rate < 0 or not math.isfinite(rate):
        raise ValueError(f"rate must be 0 (as fast as possible) or positive, got {rate}")
    if not (days > 0 and math.isfinite(days)):
        raise ValueError(f"days must be a positive number, got {days}")
    if speedup is not None and not (speedup > 0 and math.isfinite(speedup)):
        raise ValueError(f"speedup must be positive, got {speedup}")
    if duration_s is not None and (duration_s < 0 or not math.isfinite(duration_s)):
        raise ValueError(f"duration must be 0 (no limit) or positive, got {duration_s}")
    if events is not None and events < 0:
        raise ValueError(f"events must not be negative, got {events}")
    total = events
    if total is None and rate > 0 and duration_s:
        total = max(1, round(rate * duration_s))
    if rate == 0:
        if speedup is not None:
            raise ValueError("--speedup paces the clock against --rate; give --rate > 0")
        if total is None:
            raise ValueError(
                "as fast as possible (--rate 0) needs --events N: the simulated clock "
                "spreads exactly N events over --days"
            )
        return ClockPlan(now_ms, days, total, max(1, total), 0.0)
    live_step = 1000.0 / rate
    if speedup is None and total is not None:
        backfill = max(1, total)
    else:
        factor = speedup if speedup is not None else days * 86_400 / DEFAULT_BACKFILL_S
        backfill = max(1, round(days * 86_400 * rate / factor))
        if total is not None and backfill > total:
            days = days * total / backfill
            backfill = max(1, total)
    return ClockPlan(now_ms + round(backfill * live_step), days, total, backfill, live_step)


@dataclass
class SimStats:
    """What was generated, for the summary and for tests."""

    topics: SimTopics = field(default_factory=SimTopics)
    # Records emitted per heap code (post, update, tag, order, status change).
    by_code: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    faults: Counter[str] = field(default_factory=Counter)
    unkeyed: int = 0
    duplicates: int = 0
    dropped_followups: int = 0
    first_event_ms: int | None = None
    last_event_ms: int | None = None

    @property
    def by_kind(self) -> Counter[str]:
        c = self.by_code
        return Counter({"post": c[0] + c[1], "tag": c[2], "order": c[3] + c[4]})

    @property
    def by_topic(self) -> Counter[str]:
        kinds = self.by_kind
        t = self.topics
        out: Counter[str] = Counter()
        for kind, topic in (("post", t.posts), ("tag", t.tags), ("order", t.orders)):
            out[topic] += kinds[kind]
        return out

    @property
    def engagement_updates(self) -> int:
        return self.by_code[1]

    @property
    def status_changes(self) -> int:
        return self.by_code[4]

    @property
    def total(self) -> int:
        return sum(self.by_code)

    @property
    def malformed(self) -> int:
        return sum(self.faults.values())


# Record codes in the pending heap: the first snapshot of a post, a later one,
# a tag, a placed order, an order's status change.
_POST, _UPDATE, _TAG, _ORDER, _STATUS = 0, 1, 2, 3, 4
_KIND_OF: Final[tuple[EventKind, ...]] = ("post", "post", "tag", "order", "order")
# (arrival_ms, sequence, code, creator key, value bytes): atomic members only, so
# the garbage collector stops tracking the tuples of a large heap.
_Pending = tuple[int, int, int, bytes, bytes]

UPDATE_PLAN: Final = (  # (probability, earliest, latest after posting, share of final counters)
    (0.65, 2 * HOUR_MS, 12 * HOUR_MS, 0.45, 0.70),
    (0.45, 1 * DAY_MS, 2 * DAY_MS, 0.75, 0.92),
    (0.30, 4 * DAY_MS, 7 * DAY_MS, 0.95, 1.00),
)
# Records are assembled from pre-serialized JSON members: every id and name the
# simulator makes is plain ASCII without quotes, so no escaping is needed. The
# templates are public so bench's scale workload writes the very same shapes.
_CONTENT_TYPES_B: Final = tuple(t.encode() for t in CONTENT_TYPES)
POST_HEAD: Final = b'{"post_id":"po-%010d",%s"content_type":"%s","themes":%s,"posted_at":"%s"'
TAG_RECORD: Final = (
    b'{"tag_id":"tg-%010d","post_id":"po-%010d","creator_id":"%s","product_id":"%s",%s,'
    b'"tagged_at":"%s"%s}'
)
ORDER_HEAD: Final = (
    b'{"order_id":"or-%010d","creator_id":"%s","post_id":%s,"product_id":"%s",%s,'
    b'"quantity":%d,"amount":"%s","currency":"%s","ordered_at":%d'
)
# The engagement crawler stamps its observations in epoch milliseconds.
SNAPSHOT: Final = b'%s,"views":%d,"likes":%d,"comments":%d,"shares":%d,"observed_at":%d}'
# Currency codes producers get wrong; any the model learns to convert are left out.
_UNKNOWN_CURRENCIES: Final = tuple(
    c for c in ("RMB", "USDT", "EURO", "Rp", "BTC") if c not in DEFAULT_PARAMS.fx_usd_per_unit
)
_BAD_TIMESTAMPS: Final = ("31/12/2024 10:00", "yesterday", "2024-13-45T25:61:00Z", "Tuesday noon")
# Log-normal draws are costly per post; view noise comes from a precomputed table of them.
_NOISE_SIZE: Final = 4096


class Simulator:
    """Deterministic generator of the three source streams for one config; iterate it once.

    A tag or order whose creator has no post out yet, intact and keyed (its posts fell in
    the warm-up, or went out broken or unkeyed), waits one record: the creator's newest
    post snapshot goes first, in its place.
    """

    def __init__(self, config: SimConfig, population: Population | None = None) -> None:
        self.config = config
        self.population = population or build_population(config.seed, config.creators, config.days)
        self.stats = SimStats()
        self._rng = random.Random(f"events:{config.seed}")
        self._heap: list[_Pending] = []
        self._seq = 0
        self._posts = 0
        self._tags = 0
        self._orders = 0
        self._scale = 1.0  # follow-up delays shrink in the live phase
        self._horizon = 2**62  # no follow-up is due after this (end of a bounded stream)
        self._max_pending = config.max_pending
        self._start_ms = config.start_ms
        self._iterated = False
        self.last_code = _POST  # code and fault of the record yielded last
        self.last_fault: str | None = None
        self._cum: list[float] = list(
            itertools.accumulate(c.activity for c in self.population.creators)
        )
        noise = random.Random(f"noise:{config.seed}")
        self._views_noise = [noise.lognormvariate(0.0, 0.7) for _ in range(_NOISE_SIZE)]
        self._topic_of = (
            config.topics.posts,
            config.topics.posts,
            config.topics.tags,
            config.topics.orders,
            config.topics.orders,
        )

    def annotated(self) -> Iterator[tuple[SimEvent, EventKind, str | None]]:
        """Every record with its kind and, for a deliberately broken one, the fault name."""
        for event in self:
            yield event, _KIND_OF[self.last_code], self.last_fault

    def _gap(self, rng: random.Random, share: float) -> int:
        """Records until the next one drawn with probability `share` (geometric)."""
        if share <= 0.0:
            return 2**62
        return 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - share))

    def __iter__(self) -> Iterator[SimEvent]:
        if self._iterated:
            raise RuntimeError("a Simulator yields its stream once; make a new one to repeat it")
        self._iterated = True
        return self._records()

    def _records(self) -> Iterator[SimEvent]:
        cfg = self.config
        heap = self._heap
        stats = self.stats
        stats.topics = cfg.topics
        by_code = stats.by_code
        start, end, backfill = cfg.start_ms, cfg.end_ms, cfg.backfill
        step = (end - start) / backfill
        live_step = cfg.live_step_ms
        topic_of = self._topic_of
        limit = cfg.events
        if limit is not None:
            last = (
                start + step * limit if limit <= backfill else end + (limit - backfill) * live_step
            )
            self._horizon = int(last)
        # The rare cases (re-delivery, breakage, no key) are drawn as gaps between
        # occurrences, from generators of their own, so most records cost no draw.
        dup_rng = random.Random(f"duplicates:{cfg.seed}")
        bad_rng = random.Random(f"malformed:{cfg.seed}")
        key_rng = random.Random(f"unkeyed:{cfg.seed}")
        next_dup = self._gap(dup_rng, cfg.duplicate_share)
        next_bad = self._gap(bad_rng, cfg.malformed_share)
        next_unkeyed = self._gap(key_rng, cfg.mis_keyed_share)
        heappop = heapq.heappop
        heappush = heapq.heappush
        new_post = self._new_post
        # Creators with a post out intact and keyed, and the newest post snapshot of each
        # creator still without one (see the tag and order case below).
        introduced: set[bytes] = set()
        unseen: dict[bytes, bytes] = {}
        # Warm-up: two simulated days run before the first record and emit nothing,
        # so the stream starts in its steady state (earlier posts' follow-ups
        # already due) instead of with a day of nothing but new posts.
        i = -min(backfill, int(2 * DAY_MS / step)) if step > 0 else 0
        now = start
        stats.first_event_ms = start
        while limit is None or i < limit:
            if i < backfill:
                now = int(start + i * step)
            else:
                now = int(end + (i - backfill) * live_step)
                self._scale = 1.0 / 1440.0  # a day of follow-ups in a minute
            i += 1
            if heap and heap[0][0] <= now:
                pending = heappop(heap)
                _, _, code, key, value = pending
                if code >= _TAG and i > 0 and key in unseen:
                    # A tag or order of a creator none of whose posts got through yet (its
                    # posts fell in the warm-up, or went out broken or unkeyed): the
                    # creator's newest post snapshot goes first, so that no creator is
                    # scored without a region; the tag or order follows at once.
                    heappush(heap, pending)
                    code, value = _UPDATE, unseen[key]
            else:
                code = _POST
                key, value = new_post(now)
            if i <= 0:
                if code <= _UPDATE:
                    unseen[key] = value
                continue
            self.last_fault = None
            if i >= next_dup:
                next_dup += self._gap(dup_rng, cfg.duplicate_share)
                # At-least-once upstream: the very same record again, a little later.
                later = now + 1_000 + int(dup_rng.random() * 10 * MINUTE_MS)
                if self._push(later, code, key, value):
                    stats.duplicates += 1
            intact = value
            if i >= next_bad:
                next_bad += self._gap(bad_rng, cfg.malformed_share)
                value, fault = self._break(bad_rng, _KIND_OF[code], value, now)
                stats.faults[fault] += 1
                self.last_fault = fault
            by_code[code] += 1
            stats.last_event_ms = now
            self.last_code = code
            keyed = i < next_unkeyed
            if code <= _UPDATE and key not in introduced:
                # A post introduces its creator once it arrives intact and keyed (an
                # unkeyed one takes the worker's detour through the repartition topic).
                if keyed and value is intact:
                    introduced.add(key)
                    unseen.pop(key, None)
                else:
                    unseen[key] = intact
            if not keyed:
                next_unkeyed += self._gap(key_rng, cfg.mis_keyed_share)
                stats.unkeyed += 1
                yield SimEvent(topic_of[code], None, value)
            else:
                yield SimEvent(topic_of[code], key, value)

    def _push(self, arrival: int, code: int, key: bytes, value: bytes) -> bool:
        if arrival > self._horizon or len(self._heap) >= self._max_pending:
            # It would come after the stream ends (or memory is at its bound).
            self.stats.dropped_followups += 1
            return False
        self._seq += 1
        heapq.heappush(self._heap, (arrival, self._seq, code, key, value))
        return True

    def _pick_creator(self, now: int) -> Creator:
        rng = self._rng
        creators = self.population.creators
        cum = self._cum
        total = cum[-1]
        day = max(0, (now - self._start_ms) // DAY_MS)  # the warm-up counts as day 0
        c = creators[0]
        for _ in range(32):
            c = creators[bisect.bisect_right(cum, rng.random() * total)]
            if day < c.join_day:
                continue  # a newcomer who has not started yet
            bursts = c.bursts
            if bursts and not bursts[min(day, len(bursts) - 1)] and rng.random() > 0.05:
                continue  # an irregular poster on a quiet day
            return c
        return c

    def _brand_for(self, c: Creator, theme: str) -> Brand:
        rng = self._rng
        if c.own_brands and rng.random() < c.habit.repeat_brand_share:
            return c.own_brands[int(rng.random() * len(c.own_brands))]
        pool = self.population.brands_by_theme[theme]
        return pool[int(rng.random() * len(pool))]

    def _new_post(self, now: int) -> tuple[bytes, bytes]:
        """A post seen for the first time now; its later snapshots, tags and orders go pending."""
        rand = self._rng.random
        scale = self._scale
        push = self._push
        c = self._pick_creator(now)
        h = c.habit
        posted_at = now - int((MINUTE_MS + rand() * 2 * HOUR_MS) * scale)
        cum = c.content_cum
        r = rand() * cum[-1]
        ct = 0
        while cum[ct] < r:
            ct += 1
        c_themes = c.themes
        second = 0
        if len(c_themes) > 1 and rand() < 0.35:
            second = 1 + int(rand() * (len(c_themes) - 1))
        themes = (c_themes[0], c_themes[second]) if second else (c_themes[0],)
        self._posts += 1
        post_no = self._posts
        prefix = POST_HEAD % (
            post_no,
            c.fields,
            _CONTENT_TYPES_B[ct],
            c.themes_json[second],
            rfc3339(posted_at, c.offset_min, c.offset_suffix).encode(),
        )
        if rand() < h.collab_share:
            prefix += b',"brand_id":"%s"' % self._brand_for(c, themes[0]).brand_id.encode()

        # Final counters: the creator's Zipf base, log-normal noise, a rare viral hit.
        views = c.views_base * self._views_noise[int(rand() * _NOISE_SIZE)]
        if rand() < 0.02:
            views *= 5.0 + 15.0 * rand()
        if ct == 1:  # live streams are watched by fewer, and live
            views *= 0.6
        likes = views * c.like_rate * (0.7 + 0.6 * rand())
        comments = likes * h.comment_ratio * (0.6 + 0.8 * rand())
        shares = likes * h.share_ratio * (0.6 + 0.8 * rand())
        share = 0.08 + 0.22 * rand()
        first = SNAPSHOT % (
            prefix,
            int(views * share),
            int(likes * share),
            int(comments * share),
            int(shares * share),
            now,
        )
        for prob, lo, hi, s_lo, s_hi in UPDATE_PLAN:
            if rand() < prob:
                share = max(share, s_lo + (s_hi - s_lo) * rand())
                observed = posted_at + int((lo + (hi - lo) * rand()) * scale)
                value = SNAPSHOT % (
                    prefix,
                    int(views * share),
                    int(likes * share),
                    int(comments * share),
                    int(shares * share),
                    observed,
                )
                push(observed, _UPDATE, c.key, value)

        if rand() < h.tag_share:
            tagged: list[tuple[Brand, int]] = []
            for _ in range(1 + int(rand() * h.max_tags)):
                brand = self._brand_for(c, themes[int(rand() * len(themes))])
                product = int(rand() * len(brand.products))
                tagged.append((brand, product))
                self._tags += 1
                tagged_at = posted_at + int((5_000 + rand() * 30 * MINUTE_MS) * scale)
                campaign = b""
                if rand() < h.campaign_share:
                    chosen = brand.campaigns[int(rand() * len(brand.campaigns))]
                    campaign = b',"campaign_id":"%s"' % chosen.encode()
                tag = TAG_RECORD % (
                    self._tags,
                    post_no,
                    c.key,
                    brand.products[product].encode(),
                    brand.fields,
                    rfc3339(tagged_at, c.offset_min, c.offset_suffix).encode(),
                    campaign,
                )
                push(max(now, tagged_at), _TAG, c.key, tag)
            if c.order_mean > 0:
                for _ in range(int(self._rng.expovariate(1.0 / c.order_mean) + 0.5)):
                    brand, product = tagged[int(rand() * len(tagged))]
                    self._schedule_order(c, brand, product, post_no, posted_at)
        return c.key, first

    def _schedule_order(
        self, c: Creator, brand: Brand, product: int, post_no: int, posted_at: int
    ) -> None:
        rng = self._rng
        scale = self._scale
        quantity = 1 if rng.random() < 0.75 else 2 + int(rng.random() * 3)
        delay = min(rng.expovariate(1.0 / DAY_MS), 7 * DAY_MS)
        ordered_at = posted_at + int((30_000 + delay) * scale)
        self._orders += 1
        prefix = ORDER_HEAD % (
            self._orders,
            c.key,
            # Storefront orders are credited to the creator but to no post.
            b'"po-%010d"' % post_no if rng.random() < 0.88 else b"null",
            brand.products[product].encode(),
            brand.fields,
            quantity,
            str(brand.prices[c.currency][product] * quantity).encode(),
            c.currency.encode(),
            ordered_at,
        )
        arrival = ordered_at
        if rng.random() < 0.02:  # a partner feed delivers a few orders hours late
            arrival += int((HOUR_MS + rng.random() * 5 * HOUR_MS) * scale)
        self._push(arrival, _ORDER, c.key, prefix + b',"status":"placed"}')
        r = rng.random()
        if r < c.habit.cancel_rate:
            later = ordered_at + int((10 * MINUTE_MS + rng.random() * 12 * HOUR_MS) * scale)
            self._push(later, _STATUS, c.key, prefix + b',"status":"cancelled"}')
        elif r < c.habit.cancel_rate + c.habit.refund_rate:
            later = ordered_at + int((2 * DAY_MS + rng.random() * 8 * DAY_MS) * scale)
            self._push(later, _STATUS, c.key, prefix + b',"status":"refunded"}')

    @staticmethod
    def _break(rng: random.Random, kind: EventKind, value: bytes, now: int) -> tuple[bytes, str]:
        """Damage one record the way real producers do; the result must fail validation."""
        faults = FAULTS[kind]
        fault = faults[int(rng.random() * len(faults))]
        if fault == "truncated_json":
            return value[: 1 + int(rng.random() * (len(value) - 2))], fault
        if fault == "wrong_encoding":  # a producer configured for UTF-16
            return value.decode().encode("utf-16"), fault
        if fault == "not_an_object":  # a batch sent as one record
            return b"[" + value + b"]", fault
        d = orjson.loads(value)
        if fault == "missing_field":
            required = REQUIRED_FIELDS[kind]
            del d[required[int(rng.random() * len(required))]]
        elif fault == "empty_id":
            d["creator_id"] = ""
        elif fault == "wrong_type":  # display strings where numbers belong, lists for strings
            if kind == "post":
                d["views"] = f"{d['views'] / 1000:.1f}K"
            elif kind == "tag":
                d["theme"] = [d["theme"]]
            else:
                d["quantity"] = f"{d['quantity']} pcs"
        elif fault == "negative_counter":  # "unknown" encoded as -1
            d["views"] = -1
        elif fault == "negative_amount":
            d["amount"] = f"-{d['amount']}"
        elif fault == "unknown_currency":
            d["currency"] = _UNKNOWN_CURRENCIES[int(rng.random() * len(_UNKNOWN_CURRENCIES))]
        elif fault == "bad_timestamp":
            field_name = "posted_at" if kind == "post" else "tagged_at"
            d[field_name] = _BAD_TIMESTAMPS[int(rng.random() * len(_BAD_TIMESTAMPS))]
        elif fault == "future_timestamp":  # a device clock years ahead
            future = now + (30 + int(rng.random() * 400)) * DAY_MS
            if kind == "post":
                d["posted_at"] = rfc3339(future)
                d["observed_at"] = future
            elif kind == "tag":
                d["tagged_at"] = rfc3339(future)
            else:
                d["ordered_at"] = future
        return orjson.dumps(d), fault


def generate_events(config: SimConfig, stats: SimStats | None = None) -> Iterator[SimEvent]:
    """The records of one config in arrival order; `stats`, if given, fills as they go."""
    sim = Simulator(config)
    if stats is not None:
        sim.stats = stats
    return iter(sim)


# --------------------------------------------------------------------------- files


def file_line(event: SimEvent) -> bytes:
    """One line of the replay format: the value as text, or base64 when it is not UTF-8."""
    key = event.key.decode() if event.key is not None else None
    try:
        text = event.value.decode()
    except UnicodeDecodeError:
        b64 = base64.b64encode(event.value).decode()
        return orjson.dumps({"topic": event.topic, "key": key, "value_b64": b64})
    return orjson.dumps({"topic": event.topic, "key": key, "value": text})


@dataclass
class ProduceReport:
    sent: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def write_file(
    events: Iterable[SimEvent],
    path: Path,
    *,
    duration_s: float | None = None,
    stop: Callable[[], bool] | None = None,
) -> ProduceReport:
    """Write records as replay lines, unpaced (files are for replay and benchmarks)."""
    report = ProduceReport()
    started = time.perf_counter()
    deadline = started + duration_s if duration_s else None
    buf: list[bytes] = []
    with path.open("wb") as out:
        for event in events:
            buf.append(file_line(event))
            report.by_topic[event.topic] += 1
            report.sent += 1
            if len(buf) >= 8192:
                out.write(b"\n".join(buf) + b"\n")
                buf.clear()
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                if stop is not None and stop():
                    report.interrupted = True
                    break
        if buf:
            out.write(b"\n".join(buf) + b"\n")
    report.elapsed_s = time.perf_counter() - started
    return report


# --------------------------------------------------------------------------- Kafka


class _Batch(Protocol):
    """The part of aiokafka's BatchBuilder used here."""

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes) -> object: ...


_METADATA_ATTEMPTS: Final = 10


class UnknownTopicError(LookupError):
    """The broker has no such topic (auto-creation is off in this deployment)."""


class BatchProducer:
    """Fills Kafka record batches directly, one open batch per partition.

    `AIOKafkaProducer.send` costs a coroutine and a future per record, which
    caps one Python process well below the broker; appending to a batch
    builder and submitting whole batches moves the same bytes several times
    faster. Keyed records get the Java client's murmur2 partition (cached per
    key), so co-partitioning matches any other producer; unkeyed ones are
    spread at random, as the default partitioner does. Open batches are
    submitted when full and at least every `linger_ms`.
    """

    def __init__(self, settings: Settings, *, compression: str = "none") -> None:
        from aiokafka import AIOKafkaProducer

        if compression != "none" and not compression_available(compression):
            raise ValueError(f"compression {compression!r} is not available here")
        self.max_batch_size = settings.producer_max_batch_size
        self._producer: AIOKafkaProducer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            linger_ms=settings.producer_linger_ms,
            max_batch_size=settings.producer_max_batch_size,
            max_request_size=settings.producer_max_batch_size + 65_536,
            compression_type=None if compression == "none" else compression,
            request_timeout_ms=30_000,
        )
        self._linger_s = settings.producer_linger_ms / 1000
        self._partitions: dict[str, list[int]] = {}
        self._known_missing: set[str] = set()
        self._cache: dict[int, dict[bytes, int]] = {}  # partition count -> key -> partition
        self._open: dict[tuple[str, int], _Batch] = {}
        self._inflight: collections.deque[asyncio.Future[object]] = collections.deque()
        self._last_sent: dict[tuple[str, int], asyncio.Future[object]] = {}
        self._last_flush = 0.0
        self._rng = random.Random()

    async def start(self) -> None:
        await self._producer.start()
        self._last_flush = time.perf_counter()

    async def stop(self) -> None:
        await self._producer.stop()

    async def partitions(self, topic: str) -> list[int]:
        """The topic's partitions; UnknownTopicError if the broker does not have it."""
        parts = self._partitions.get(topic)
        if parts is not None:
            return parts
        if topic not in self._known_missing:
            # A topic created a moment ago takes a little while to show in metadata.
            for attempt in range(_METADATA_ATTEMPTS):
                metadata = await self._producer.client.fetch_all_metadata()
                found = metadata.partitions_for_topic(topic)
                if found:
                    parts = self._partitions[topic] = sorted(found)
                    # Register the topic so send_batch finds its metadata at once.
                    await self._producer.partitions_for(topic)
                    return parts
                if attempt + 1 < _METADATA_ATTEMPTS:
                    await asyncio.sleep(0.2)
            self._known_missing.add(topic)
        raise UnknownTopicError(
            f"topic {topic!r} does not exist on {self._producer.client._bootstrap_servers}"
        )

    def _partition(self, key: bytes | None, parts: list[int]) -> int:
        if key is None:
            return parts[int(self._rng.random() * len(parts))]
        cache = self._cache.get(len(parts))
        if cache is None:
            cache = self._cache[len(parts)] = {}
        cached = cache.get(key)
        if cached is None:
            from aiokafka.partitioner import murmur2

            cached = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
            if len(cache) < 1_000_000:
                cache[key] = cached
        return cached

    def try_append(self, topic: str, key: bytes | None, value: bytes) -> bool:
        """Add a record to its open batch without awaiting; False: `send` must take it.

        The fast path of a send loop (no coroutine per record); it declines when
        the topic's partitions are not known yet or the batch is full.
        """
        parts = self._partitions.get(topic)
        if parts is None:
            return False
        tp = (topic, self._partition(key, parts))
        batch = self._open.get(tp)
        if batch is None:
            batch = self._open[tp] = self._producer.create_batch()
        return batch.append(key=key, value=value, timestamp=None) is not None

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue one record; raises UnknownTopicError, ValueError for an oversized record."""
        parts = self._partitions.get(topic) or await self.partitions(topic)
        partition = self._partition(key, parts)
        tp = (topic, partition)
        batch = self._open.get(tp)
        if batch is None:
            batch = self._open[tp] = self._producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            await self._submit(tp, batch)
            batch = self._open[tp] = self._producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"record of {len(value)} bytes exceeds the batch size")

    async def _submit(self, tp: tuple[str, int], batch: _Batch) -> None:
        del self._open[tp]
        fut = await self._producer.send_batch(batch, tp[0], partition=tp[1])
        self._last_sent[tp] = fut
        self._inflight.append(fut)
        # Surface broker errors early and bound memory: reap what is done, and
        # wait when too many batches are in flight.
        inflight = self._inflight
        while inflight and (inflight[0].done() or len(inflight) > 64):
            await inflight.popleft()

    async def tick(self) -> None:
        """Submit open batches older than linger_ms; call it every few hundred records."""
        now = time.perf_counter()
        if now - self._last_flush >= self._linger_s:
            self._last_flush = now
            for tp, batch in list(self._open.items()):
                # The producer holds one batch per partition until the one before is
                # on its way; submitting now would stall this loop, so the open
                # batch keeps filling until the partition's last batch is done.
                last = self._last_sent.get(tp)
                if last is None or last.done():
                    await self._submit(tp, batch)
        await asyncio.sleep(0)  # let the sender task run

    async def flush(self) -> None:
        """Submit every open batch and wait until the broker acknowledged all of them."""
        for tp, batch in list(self._open.items()):
            await self._submit(tp, batch)
        while self._inflight:
            await self._inflight.popleft()


def compression_available(codec: str) -> bool:
    if codec == "none":
        return True
    from aiokafka.codec import has_gzip, has_lz4, has_snappy, has_zstd

    checks: dict[str, Callable[[], bool]] = {
        "gzip": has_gzip,
        "lz4": has_lz4,
        "snappy": has_snappy,
        "zstd": has_zstd,
    }
    check = checks.get(codec)
    return check is not None and bool(check())


class Pacer:
    """Paces a send loop to a rate, ends it at a deadline or on a stop signal, reports progress.

    The loop calls `checkpoint` every `every` records (a few milliseconds of
    work), so pacing is smooth without a clock read per record.
    """

    def __init__(
        self,
        *,
        rate: float = 0.0,
        duration_s: float | None = None,
        stop: asyncio.Event | None = None,
        progress: Callable[[int, float], None] | None = None,
        progress_every_s: float = 10.0,
    ) -> None:
        self.rate = rate
        self.started = time.perf_counter()
        self.deadline = self.started + duration_s if duration_s else None
        self.stop = stop
        self.progress = progress
        self.progress_every_s = progress_every_s
        self._next_progress = self.started + progress_every_s
        self.every = max(1, min(500, int(rate / 200))) if rate > 0 else 500
        self.interrupted = False

    async def checkpoint(self, sent: int) -> bool:
        """Wait as pacing requires; False when the run must end now."""
        now = time.perf_counter()
        if self.deadline is not None and now >= self.deadline:
            return False
        if self.stop is not None and self.stop.is_set():
            self.interrupted = True
            return False
        if self.progress is not None and now >= self._next_progress:
            self._next_progress = now + self.progress_every_s
            self.progress(sent, now - self.started)
        if self.rate > 0:
            ahead = self.started + sent / self.rate - now
            if ahead > 0:
                await asyncio.sleep(ahead)
        return True

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


Record = tuple[str, bytes | None, bytes]


async def _chunks_of(events: Iterable[Record], size: int = 256) -> AsyncIterator[list[Record]]:
    it = iter(events)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


async def produce(
    events: Iterable[Record] | AsyncIterator[Sequence[Record]],
    settings: Settings,
    *,
    rate: float = 0.0,
    duration_s: float | None = None,
    compression: str = "none",
    stop: asyncio.Event | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> ProduceReport:
    """Send records, paced to `rate` per second if > 0, for at most `duration_s` if > 0.

    `events` is an iterable of (topic, key, value) records, or an async iterator
    of chunks of them. `stop` ends the run early (signals). Every record
    counted as sent was acknowledged by the broker before this returns.
    """
    chunks = events if isinstance(events, AsyncIterator) else _chunks_of(events)
    sender = BatchProducer(settings, compression=compression)
    report = ProduceReport()
    await sender.start()
    try:
        pacer = Pacer(rate=rate, duration_s=duration_s, stop=stop, progress=progress)
        report.sent = await _send_all(sender, chunks, pacer, report.by_topic)
        await sender.flush()
        report.interrupted = pacer.interrupted
        report.elapsed_s = pacer.elapsed_s
    finally:
        await sender.stop()
    return report


async def _send_all(
    sender: BatchProducer,
    chunks: AsyncIterator[Sequence[Record]],
    pacer: Pacer,
    by_topic: Counter[str],
) -> int:
    every = pacer.every
    append = sender.try_append
    counts: dict[str, int] = {}
    sent = 0
    try:
        async for chunk in chunks:
            for topic, key, value in chunk:
                if sent % every == 0 and sent:
                    await sender.tick()
                    if not await pacer.checkpoint(sent):
                        return sent
                if not append(topic, key, value):
                    await sender.send(topic, key, value)
                counts[topic] = counts.get(topic, 0) + 1
                sent += 1
        return sent
    finally:
        by_topic.update(counts)


# --------------------------------------------------------------------------- generator process

#: Records per chunk handed from the generator process to the producer.
_CHUNK: Final = 1024


@dataclass(frozen=True)
class _ChunkStats:
    codes: bytes  # the heap code of each record
    faults: list[tuple[int, str]]
    unkeyed: int
    duplicates: int
    last_event_ms: int | None


def _put(queue: mp_queues.Queue[object], item: object, stop: Any, parent: int) -> bool:
    """Put with backpressure; give up when told to stop or when the parent is gone."""
    while not stop.is_set():
        try:
            queue.put(item, timeout=0.5)
            return True
        except queue_module.Full:
            if os.getppid() != parent:
                return False
    return False


def _generator_main(
    config: SimConfig, queue: mp_queues.Queue[object], stop: Any, parent: int
) -> None:
    """Body of the generator process: the Simulator's records, in chunks, into the queue."""
    # The parent handles signals and says when to stop; a signal to the whole
    # process group must not kill the generator under the parent's feet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        sim = Simulator(config)
        records: list[Record] = []
        codes = bytearray()
        faults: list[tuple[int, str]] = []
        unkeyed = duplicates = 0
        for topic, key, value in sim:
            if sim.last_fault is not None:
                faults.append((len(records), sim.last_fault))
            if key is None:
                unkeyed += 1
            codes.append(sim.last_code)
            records.append((topic, key, value))
            if len(records) >= _CHUNK:
                stats = _ChunkStats(
                    bytes(codes), faults, unkeyed, sim.stats.duplicates - duplicates,
                    sim.stats.last_event_ms,
                )  # fmt: skip
                if not _put(queue, (records, stats), stop, parent):
                    return
                records, codes, faults, unkeyed = [], bytearray(), [], 0
                duplicates = sim.stats.duplicates
        if records:
            stats = _ChunkStats(
                bytes(codes), faults, unkeyed, sim.stats.duplicates - duplicates,
                sim.stats.last_event_ms,
            )  # fmt: skip
            if not _put(queue, (records, stats), stop, parent):
                return
        _put(queue, None, stop, parent)
    except Exception:
        _put(queue, ("error", traceback.format_exc()), stop, parent)


class GeneratorProcess:
    """Runs the Simulator in a child process so generating and producing use two cores.

    The records and their order are exactly those of `Simulator(config)`. The
    stats count whole chunks received, so after an early stop they may include
    up to one chunk that was generated but not sent.
    """

    def __init__(self, config: SimConfig) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._queue: mp_queues.Queue[object] = ctx.Queue(maxsize=8)
        self._stop = ctx.Event()
        self._proc = ctx.Process(
            target=_generator_main,
            args=(config, self._queue, self._stop, os.getpid()),
            name="creator-scores-generator",
            daemon=True,
        )
        self.stats = SimStats(topics=config.topics)
        self._start_ms = config.start_ms

    def start(self) -> None:
        self._proc.start()

    def _get(self) -> object:
        while True:
            try:
                return self._queue.get(timeout=0.2)
            except queue_module.Empty:
                if not self._proc.is_alive():
                    try:
                        return self._queue.get(timeout=0.2)
                    except queue_module.Empty:
                        code = self._proc.exitcode
                        raise RuntimeError(f"generator process exited ({code})") from None

    async def chunks(self) -> AsyncIterator[list[Record]]:
        loop = asyncio.get_running_loop()
        stats = self.stats
        while True:
            item = await loop.run_in_executor(None, self._get)
            if item is None:
                return
            if isinstance(item, tuple) and item[0] == "error":
                raise RuntimeError(f"generator process failed:\n{item[1]}")
            records, chunk = cast("tuple[list[Record], _ChunkStats]", item)
            for code in range(len(stats.by_code)):
                stats.by_code[code] += chunk.codes.count(code)
            stats.faults.update(fault for _, fault in chunk.faults)
            stats.unkeyed += chunk.unkeyed
            stats.duplicates += chunk.duplicates
            if stats.first_event_ms is None:
                stats.first_event_ms = self._start_ms
            stats.last_event_ms = chunk.last_event_ms
            yield records

    def close(self) -> None:
        """Stop the child, unblock it if it waits on a full queue, and reap it."""
        self._stop.set()
        deadline = time.monotonic() + 5.0
        while self._proc.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(queue_module.Empty, OSError, ValueError):
                self._queue.get(timeout=0.1)
        self._proc.join(timeout=1.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5.0)
        self._queue.cancel_join_thread()
        self._queue.close()


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM end a run gracefully: what was sent is flushed, the summary printed."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signal support here
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def summary_lines(stats: SimStats, report: ProduceReport, destination: str) -> list[str]:
    total = report.sent
    head = (
        f"sent {total:,} events to {destination} in {report.elapsed_s:.2f}s "
        f"({report.rate:,.0f} events/s)"
    )
    lines = [head + (" - stopped by signal" if report.interrupted else "")]
    lines.extend(f"  {topic:<24} {n:>12,}" for topic, n in sorted(report.by_topic.items()))
    # The generator is at most one record ahead of the producer, so its counts fit.
    share = stats.malformed / total if total else 0.0
    lines.append(f"  malformed {stats.malformed:,} ({share:.2%})")
    if stats.faults:
        lines.append("    " + ", ".join(f"{k} {n}" for k, n in sorted(stats.faults.items())))
    lines.append(
        f"  unkeyed {stats.unkeyed:,}, re-deliveries {stats.duplicates:,}, "
        f"engagement updates {stats.engagement_updates:,}, "
        f"order status changes {stats.status_changes:,}"
    )
    if stats.first_event_ms is not None and stats.last_event_ms is not None:
        lines.append(
            f"  event time {rfc3339(stats.first_event_ms)} .. {rfc3339(stats.last_event_ms)}"
        )
    return lines


# --------------------------------------------------------------------------- command line


def parse_time_ms(text: str) -> int:
    """An instant given as epoch milliseconds or RFC 3339 with an offset (`Z` allowed)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither epoch milliseconds nor RFC 3339 (2025-01-31T12:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add Z or +hh:mm")
    return int(parsed.timestamp() * 1000)


@dataclass(frozen=True)
class SimulateOptions:
    """The `creator-scores simulate` options, as the command line gives them."""

    creators: int = 1000
    rate: float = 0.0
    duration_s: float | None = None
    events: int | None = None
    seed: int = 42
    days: float = 28.0
    speedup: float | None = None
    malformed_share: float = 0.005
    mis_keyed_share: float = 0.01
    duplicate_share: float = 0.002
    to_file: Path | None = None
    end_time_ms: int | None = None
    compression: str = "none"


DEFAULT_EVENTS: Final = 100_000


def config_for(options: SimulateOptions, settings: Settings, *, now_ms: int) -> SimConfig:
    """The generator config a command line asks for; ValueError says what does not fit."""
    events = options.events
    if events is None and options.duration_s is None:
        events = DEFAULT_EVENTS
    if options.to_file is not None:
        # A file is written unpaced and replayed later: its clock ends at the end time.
        if options.speedup is not None:
            raise ValueError("--speedup paces a live run against --rate; it has no use with a file")
        if events is None and options.rate > 0 and options.duration_s:
            events = round(options.rate * options.duration_s)
        plan = plan_clock(
            now_ms=now_ms, rate=0.0, events=events, duration_s=None, days=options.days,
            speedup=None,
        )  # fmt: skip
    else:
        plan = plan_clock(
            now_ms=now_ms, rate=options.rate, events=events, duration_s=options.duration_s,
            days=options.days, speedup=options.speedup,
        )  # fmt: skip
    return SimConfig(
        end_ms=options.end_time_ms if options.end_time_ms is not None else plan.end_ms,
        events=plan.events,
        days=plan.days,
        seed=options.seed,
        creators=options.creators,
        backfill_events=plan.backfill_events,
        live_step_ms=plan.live_step_ms,
        malformed_share=options.malformed_share,
        mis_keyed_share=options.mis_keyed_share,
        duplicate_share=options.duplicate_share,
        topics=SimTopics.from_settings(settings),
    )


def run_simulate(
    options: SimulateOptions, settings: Settings, echo: Callable[[str], None] = print
) -> ProduceReport:
    """`creator-scores simulate`: generate, send (or write), print a summary."""
    config = config_for(options, settings, now_ms=int(time.time() * 1000))
    span = f"{config.days:g} simulated days" + (
        " then live" if config.events is None or config.events > config.backfill else ""
    )
    count = "until stopped" if config.events is None else f"{config.events:,} events"
    echo(f"{config.creators:,} creators, {count}, {span}, seed {config.seed}")

    def progress(sent: int, elapsed: float) -> None:
        echo(f"  ... {sent:,} sent in {elapsed:.0f}s ({sent / elapsed:,.0f} events/s)")

    if options.to_file is not None:
        stop = {"flag": False}

        def on_signal(signum: int, frame: object) -> None:
            stop["flag"] = True

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        sim = Simulator(config)
        try:
            report = write_file(
                sim, options.to_file, duration_s=options.duration_s, stop=lambda: stop["flag"]
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        stats = sim.stats
        destination = str(options.to_file)
    elif (os.cpu_count() or 1) > 1:
        # Generation is the costlier half; a second core does it in parallel.
        generator = GeneratorProcess(config)
        generator.start()
        try:
            report = asyncio.run(_produce_cli(generator.chunks(), settings, options, progress))
        finally:
            generator.close()
        stats = generator.stats
        destination = f"Kafka at {settings.kafka_bootstrap_servers}"
    else:
        sim = Simulator(config)
        report = asyncio.run(_produce_cli(sim, settings, options, progress))
        stats = sim.stats
        destination = f"Kafka at {settings.kafka_bootstrap_servers}"
    for line in summary_lines(stats, report, destination):
        echo(line)
    return report


async def _produce_cli(
    events: Iterable[Record] | AsyncIterator[Sequence[Record]],
    settings: Settings,
    options: SimulateOptions,
    progress: Callable[[int, float], None],
) -> ProduceReport:
    from streams.topics import ensure_topics

    await ensure_topics(settings)
    stop = asyncio.Event()
    with stop_on_signals(stop):
        return await produce(
            events,
            settings,
            rate=options.rate,
            duration_s=options.duration_s,
            compression=options.compression,
            stop=stop,
            progress=progress,
        )
