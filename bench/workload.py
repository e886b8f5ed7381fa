"""Input for the benchmarks: the simulator's stream, preloaded once per creator count.

The scale profile has a stream of its own (`ScaleWorkload`): the simulator's
record shapes, but every creator of a large population posts at least once and
no population is held in memory.

Every consumer of one creator count (the pipeline and all baselines) reads the
same preloaded topics with its own consumer group, so they all see identical
bytes in identical order. Records are produced with aiokafka's batch API
(`create_batch` + `send_batch`, one open batch per partition), partitioned with
the default murmur2 partitioner on the key exactly as the simulator's own
producer does, so the pipeline's co-partitioning holds.

While producing, the harness remembers, for a sample of creators, the newest
valid event time the pipeline should end up publishing for them
(`creator hash event_time`); that is how "every event is reflected in Redis" is
checked without reading all of Redis.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import math
import multiprocessing
import random
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from bench.common import BenchError, Ctx, create_topics, end_offsets, source_partitions
from streams.devtools.simulate import (
    CONTENT_TYPES,
    DAY_MS,
    HABITS,
    HOUR_MS,
    MINUTE_MS,
    ORDER_HEAD,
    POST_HEAD,
    REGION_WEIGHTS,
    REGIONS,
    SNAPSHOT,
    TAG_RECORD,
    THEMES,
    UPDATE_PLAN,
    Brand,
    Creator,
    Habit,
    SimConfig,
    SimEvent,
    SimStats,
    SimTopics,
    brands_by_theme,
    build_brands,
    generate_events,
    rfc3339,
    themes_json,
)

SAMPLE_CREATORS = 200
#: What the simulator's record codes (`SimStats.by_code`) count, in order.
RECORD_KINDS = ("post", "engagement_update", "tag", "order", "status_change")


@dataclass
class Dataset:
    """One preloaded input: three source topics and what the harness knows about them."""

    label: str
    creators: int
    events: int
    topics: tuple[str, str, str]
    partitions: int
    end_offsets: dict[TopicPartition, int]
    #: creator id -> newest valid event time (ms) among that creator's events
    expected_watermarks: dict[str, int]
    distinct_keys: int
    value_bytes: int
    generate_s: float
    produce_s: float
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.end_offsets.values())

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "creators": self.creators,
            "events": self.total,
            "distinct_keys": self.distinct_keys,
            "mean_value_bytes": round(self.value_bytes / max(1, self.total), 1),
            "topics": list(self.topics),
            "partitions": self.partitions,
            "generate_s": round(self.generate_s, 2),
            "preload_s": round(self.produce_s, 2),
            "preload_events_per_s": round(self.total / self.produce_s) if self.produce_s else None,
            "expected_sample_creators": len(self.expected_watermarks),
            **self.stats,
        }


class WatermarkTracker:
    """Newest valid event time per sampled creator, judged by the model's own validator."""

    def __init__(self, creators: Iterable[str], now_ms: int) -> None:
        self.wanted = set(creators)
        self.now_ms = now_ms
        self.watermarks: dict[str, int] = {}
        try:
            from scoring.params import DEFAULT_PARAMS
            from scoring.validate import validate
        except ImportError as exc:  # the model is not there yet: offsets alone decide "done"
            self.validate: Any = None
            self.reason = f"scoring.validate unavailable ({exc}); Redis check skipped"
        else:
            self.validate = validate
            self.params = DEFAULT_PARAMS
            self.reason = ""

    def observe(self, kind: str, value: bytes) -> None:
        if self.validate is None:
            return
        try:
            payload = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if not isinstance(payload, dict) or payload.get("creator_id") not in self.wanted:
            return
        event = self.validate(kind, payload, now_ms=self.now_ms, params=self.params)
        if hasattr(event, "event_time_ms"):
            cid = event.creator_id
            self.watermarks[cid] = max(self.watermarks.get(cid, 0), event.event_time_ms)


class BatchProducer:
    """Many records per request: one open aiokafka batch per (topic, partition)."""

    def __init__(self, producer: AIOKafkaProducer, partitions: int) -> None:
        self.producer = producer
        self.partitions = list(range(partitions))
        self._partitioner = DefaultPartitioner()
        self._cache: dict[bytes, int] = {}
        self._rng = random.Random(7)
        self._open: dict[tuple[str, int], Any] = {}
        self._futures: list[asyncio.Future[Any]] = []

    def partition_of(self, key: bytes | None) -> int:
        if key is None:
            return self._rng.choice(self.partitions)
        part = self._cache.get(key)
        if part is None:
            part = int(self._partitioner(key, self.partitions, self.partitions))
            self._cache[key] = part
        return part

    async def add(
        self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int | None = None
    ) -> None:
        slot = (topic, self.partition_of(key))
        batch = self._open.get(slot)
        if batch is None:
            batch = self._open[slot] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
            await self._send(slot, batch)
            batch = self._open[slot] = self.producer.create_batch()
            if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
                raise BenchError(f"a {len(value)}-byte record does not fit in an empty batch")

    async def _send(self, slot: tuple[str, int], batch: Any) -> None:
        topic, partition = slot
        self._futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        if len(self._futures) >= 64:
            await asyncio.gather(*self._futures)
            self._futures.clear()

    async def flush(self) -> None:
        for slot, batch in list(self._open.items()):
            if batch.record_count():
                await self._send(slot, batch)
        self._open.clear()
        await asyncio.gather(*self._futures)
        self._futures.clear()


#: Where a dataset's records come from: (creators, events, topics, seed, end_ms, stats)
#: -> records in arrival order, counted into `stats` as they go.
EventSource = Callable[[int, int, SimTopics, int, int, SimStats], Iterator[SimEvent]]


def simulator_events(
    creators: int, events: int, topics: SimTopics, seed: int, end_ms: int, stats: SimStats
) -> Iterator[SimEvent]:
    """The simulator's stream: the throughput datasets' source."""
    config = SimConfig(end_ms=end_ms, events=events, creators=creators, seed=seed, topics=topics)
    return generate_events(config, stats)


# --------------------------------------------------------------------------- scale profile

# Record codes, as the simulator counts them in SimStats.by_code: the first snapshot
# of a post, a later one, a tag, a placed order, an order's status change.
_POST, _UPDATE, _TAG, _ORDER, _STATUS = 0, 1, 2, 3, 4
_CONTENT_TYPES_B = tuple(t.encode() for t in CONTENT_TYPES)
#: Follow-ups of sample posts drawn to learn how many records a post brings.
_CALIBRATION_POSTS = 4_000
_NOISE_SIZE = 4096


def _coprime_step(n: int, rng: random.Random) -> int:
    """A stride that visits every number below n once (i * step mod n), and looks random."""
    if n <= 2:
        return 1
    step = rng.randrange(n // 3, 2 * n // 3) | 1
    while math.gcd(step, n) != 1:
        step += 2
    return step


class _Creators:
    """Creators made from (seed, number) on demand, like the simulator's population.

    The simulator builds every creator first (kilobytes each); here a creator is
    rebuilt from its own seeded draws whenever it posts and dropped afterwards, so
    memory does not grow with the population. Habits, regions, themes, audience
    and own brands are drawn as `build_population` draws them; popularity ranks are
    a permutation of 1..n, so views keep the simulator's Zipf tail. Calendars
    (newcomers' late start, irregular posters' quiet days) are left out: the
    scale profile needs every creator to post somewhere in the span.
    """

    def __init__(self, count: int, seed: int, by_theme: dict[str, tuple[Brand, ...]]) -> None:
        self.count = count
        self._by_theme = by_theme
        self._base = (seed % 2**32) << 32
        self._own = random.Random()
        layout = random.Random(f"scale-creators:{seed}")
        self._rank_step = _coprime_step(count, layout)
        self._rank_shift = layout.randrange(count)
        self._habit_cum = list(itertools.accumulate(h.share for h in HABITS))
        self._region_cum = list(itertools.accumulate(REGION_WEIGHTS[r] for r in REGIONS))
        self.max_activity = max(h.activity for h in HABITS) * 1.4

    def _habit(self, number: int) -> tuple[Habit, float]:
        """Creator `number`'s habit and posting weight: its own generator's first draws."""
        rng = self._own
        rng.seed(self._base + number)
        habit = HABITS[bisect.bisect_right(self._habit_cum, rng.random() * self._habit_cum[-1])]
        return habit, habit.activity * rng.uniform(0.6, 1.4)

    def activity(self, number: int) -> float:
        """Creator `number`'s posting weight, without making the rest of the creator."""
        return self._habit(number)[1]

    def make(self, number: int) -> Creator:
        """Creator `number`, the same every time it is made."""
        habit, activity = self._habit(number)
        rng = self._own
        rand = rng.random
        region = REGIONS[bisect.bisect_right(self._region_cum, rand() * self._region_cum[-1])]
        c = Creator(f"cr-{number:06d}", region, habit)
        c.activity = activity
        primary = THEMES[int(rand() * len(THEMES))]
        others = [t for t in THEMES if t != primary]
        c.themes = (primary, *rng.sample(others, rng.choice((0, 1, 1, 2))))
        c.themes_json = [themes_json(primary)]
        c.themes_json += [themes_json(primary, t) for t in c.themes[1:]]
        cum = 0.0
        for w in habit.content_weights:
            cum += w * rng.uniform(0.5, 1.5)
            c.content_cum.append(cum)
        rank = (number * self._rank_step + self._rank_shift) % self.count + 1
        c.views_base = max(150.0, 1_500_000.0 / rank**1.1 * habit.popularity)
        c.like_rate = habit.like_rate * rng.lognormvariate(0.0, 0.25)
        factor = min(5.0, max(0.3, (c.views_base / 5_000.0) ** 0.35))
        c.order_mean = habit.orders_per_tagged_post * factor
        for _ in range(habit.own_brands):
            pool = self._by_theme[c.themes[int(rand() * len(c.themes))]]
            c.own_brands.append(pool[int(rand() * len(pool))])
        return c


class _Posts:
    """Posts as the simulator makes them: the first snapshot now, follow-ups to `follow`.

    The same draws as `Simulator._new_post` and `_schedule_order` in the
    backfill phase (engagement re-sent as counters grow, tags minutes after the
    post, orders over the next days, some cancelled or refunded), written with
    the simulator's own templates.
    """

    def __init__(
        self,
        seed: str,
        by_theme: dict[str, tuple[Brand, ...]],
        follow: Callable[[int, int, bytes, bytes], None],
    ) -> None:
        self.rng = random.Random(seed)
        self._by_theme = by_theme
        self._follow = follow
        noise = random.Random(f"noise:{seed}")
        self._views_noise = [noise.lognormvariate(0.0, 0.7) for _ in range(_NOISE_SIZE)]
        self.posts = self.tags = self.orders = 0

    def _brand_for(self, c: Creator, theme: str) -> Brand:
        rand = self.rng.random
        if c.own_brands and rand() < c.habit.repeat_brand_share:
            return c.own_brands[int(rand() * len(c.own_brands))]
        pool = self._by_theme[theme]
        return pool[int(rand() * len(pool))]

    def make(self, c: Creator, now: int) -> bytes:
        """The post's first snapshot, observed `now`; its follow-ups go to `follow`."""
        rand = self.rng.random
        follow = self._follow
        h = c.habit
        posted_at = now - int(MINUTE_MS + rand() * 2 * HOUR_MS)
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
        self.posts += 1
        post_no = self.posts
        offset, suffix = c.offset_min, c.offset_suffix
        prefix = POST_HEAD % (
            post_no,
            c.fields,
            _CONTENT_TYPES_B[ct],
            c.themes_json[second],
            rfc3339(posted_at, offset, suffix).encode(),
        )
        if rand() < h.collab_share:
            prefix += b',"brand_id":"%s"' % self._brand_for(c, themes[0]).brand_id.encode()
        views = c.views_base * self._views_noise[int(rand() * _NOISE_SIZE)]
        if rand() < 0.02:
            views *= 5.0 + 15.0 * rand()
        if ct == 1:  # live streams are watched by fewer
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
                observed = posted_at + int(lo + (hi - lo) * rand())
                value = SNAPSHOT % (
                    prefix,
                    int(views * share),
                    int(likes * share),
                    int(comments * share),
                    int(shares * share),
                    observed,
                )
                follow(observed, _UPDATE, c.key, value)
        if rand() < h.tag_share:
            tagged: list[tuple[Brand, int]] = []
            for _ in range(1 + int(rand() * h.max_tags)):
                brand = self._brand_for(c, themes[int(rand() * len(themes))])
                product = int(rand() * len(brand.products))
                tagged.append((brand, product))
                self.tags += 1
                tagged_at = posted_at + int(5_000 + rand() * 30 * MINUTE_MS)
                campaign = b""
                if rand() < h.campaign_share:
                    chosen = brand.campaigns[int(rand() * len(brand.campaigns))]
                    campaign = b',"campaign_id":"%s"' % chosen.encode()
                tag = TAG_RECORD % (
                    self.tags,
                    post_no,
                    c.key,
                    brand.products[product].encode(),
                    brand.fields,
                    rfc3339(tagged_at, offset, suffix).encode(),
                    campaign,
                )
                follow(max(now, tagged_at), _TAG, c.key, tag)
            if c.order_mean > 0:
                for _ in range(int(self.rng.expovariate(1.0 / c.order_mean) + 0.5)):
                    brand, product = tagged[int(rand() * len(tagged))]
                    self._order(c, brand, product, post_no, posted_at)
        return first

    def _order(self, c: Creator, brand: Brand, product: int, post_no: int, posted_at: int) -> None:
        rand = self.rng.random
        quantity = 1 if rand() < 0.75 else 2 + int(rand() * 3)
        delay = min(self.rng.expovariate(1.0 / DAY_MS), 7 * DAY_MS)
        ordered_at = posted_at + int(30_000 + delay)
        self.orders += 1
        prefix = ORDER_HEAD % (
            self.orders,
            c.key,
            # Storefront orders are credited to the creator but to no post.
            b'"po-%010d"' % post_no if rand() < 0.88 else b"null",
            brand.products[product].encode(),
            brand.fields,
            quantity,
            str(brand.prices[c.currency][product] * quantity).encode(),
            c.currency.encode(),
            ordered_at,
        )
        arrival = ordered_at
        if rand() < 0.02:  # a partner feed delivers a few orders hours late
            arrival += int(HOUR_MS + rand() * 5 * HOUR_MS)
        self._follow(arrival, _ORDER, c.key, prefix + b',"status":"placed"}')
        r = rand()
        if r < c.habit.cancel_rate:
            later = ordered_at + int(10 * MINUTE_MS + rand() * 12 * HOUR_MS)
            self._follow(later, _STATUS, c.key, prefix + b',"status":"cancelled"}')
        elif r < c.habit.cancel_rate + c.habit.refund_rate:
            later = ordered_at + int(2 * DAY_MS + rand() * 8 * DAY_MS)
            self._follow(later, _STATUS, c.key, prefix + b',"status":"refunded"}')


class ScaleWorkload:
    """The scale profile's stream: every creator posts at least once, in the simulator's shapes.

    The simulator draws each post's creator by activity from a population it
    builds first, so a few million events reach only part of a million
    creators, and the population alone is a large allocation. Here one slot per
    record walks the span (`days` ending at `end_ms`) as the simulator's clock
    does: a slot emits a follow-up that has come due (engagement snapshot, tag,
    order, status change), or else a new post. Follow-ups wait in a heap whose
    size follows the event rate, not the population. Posts visit every creator
    once, in a scrambled order spread evenly over the span, and between those
    visits creators drawn by activity post again. Exactly `events` records, all
    valid and keyed, in arrival order; bad, unkeyed and re-delivered records
    are the throughput datasets' business. When `events` cannot hold one post
    per creator plus the simulator's follow-ups, every follow-up is kept with
    the same probability, so the kinds of follow-up keep their proportions.
    Iterate it once; `stats` counts as it goes.
    """

    def __init__(
        self,
        creators: int,
        events: int,
        seed: int,
        end_ms: int,
        topics: SimTopics | None = None,
        days: float = 28.0,
        stats: SimStats | None = None,
    ) -> None:
        if creators < 1:
            raise ValueError(f"creators must be at least 1, got {creators}")
        if events < creators:
            raise ValueError(
                f"every creator posts at least once: {events:,} events cannot cover "
                f"{creators:,} creators"
            )
        self.creators = creators
        self.events = events
        self.seed = seed
        self.end_ms = end_ms
        self.start_ms = end_ms - round(days * DAY_MS)
        self.topics = topics or SimTopics()
        self.stats = stats or SimStats()
        self.stats.topics = self.topics
        by_theme = brands_by_theme(build_brands(random.Random(f"scale-brands:{seed}"), creators))
        self._creators = _Creators(creators, seed, by_theme)
        self._heap: list[tuple[int, int, int, bytes, bytes]] = []
        self._seq = 0
        self._posts = _Posts(f"scale-events:{seed}", by_theme, self._follow)
        self._keep_rng = random.Random(f"scale-keep:{seed}")
        self.followups_per_post = m = self._calibrate(by_theme)
        #: posts the stream is planned around: one per creator at least
        self.planned_posts = max(creators, round(events / (1.0 + m)))
        # The share of follow-ups kept so that planned posts and their follow-ups make
        # `events`; the slots decide the exact count, this only keeps the mix in shape.
        spare = events - self.planned_posts
        self.keep = min(1.0, spare / (self.planned_posts * m)) if m > 0 else 1.0
        self._iterated = False

    def _calibrate(self, by_theme: dict[str, tuple[Brand, ...]]) -> float:
        """Follow-ups a post brings before the span ends, over sample posts of its own draws."""
        due: list[int] = []
        posts = _Posts(f"scale-calibration:{self.seed}", by_theme, lambda t, *_: due.append(t))
        rng = random.Random(f"scale-calibration:{self.seed}")
        span = self.end_ms - self.start_ms
        for _ in range(_CALIBRATION_POSTS):
            c = self._creators.make(rng.randrange(self.creators))
            posts.make(c, self.start_ms + int(rng.random() * span))
        return sum(1 for t in due if t <= self.end_ms) / _CALIBRATION_POSTS

    def _follow(self, due: int, code: int, key: bytes, value: bytes) -> None:
        """Keep a follow-up until `due`, unless the span ends first or thinning drops it."""
        if due > self.end_ms or (self.keep < 1.0 and self._keep_rng.random() >= self.keep):
            return
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, code, key, value))

    def __iter__(self) -> Iterator[SimEvent]:
        if self._iterated:
            raise RuntimeError("a ScaleWorkload yields its stream once; make a new one")
        self._iterated = True
        return self._records()

    def _records(self) -> Iterator[SimEvent]:
        n, events, start = self.creators, self.events, self.start_ms
        step = (self.end_ms - start) / events
        heap, heappop = self._heap, heapq.heappop
        make_creator, make_post = self._creators.make, self._posts.make
        stats, by_code = self.stats, self.stats.by_code
        topic_of = (self.topics.posts, self.topics.posts, self.topics.tags,
                    self.topics.orders, self.topics.orders)  # fmt: skip
        pick = random.Random(f"scale-picks:{self.seed}")
        top, activity = self._creators.max_activity, self._creators.activity
        visit_step = _coprime_step(n, pick)
        visit_shift = pick.randrange(n)
        covered = 0
        stats.first_event_ms = start
        for i in range(events):
            now = start + int(i * step)
            uncovered = n - covered
            if heap and heap[0][0] <= now and uncovered < events - i:
                _, _, code, key, value = heappop(heap)
            else:
                code = _POST
                # Visits keep pace with the clock: creator k of the scrambled order
                # posts by slot k * events / n, and always when slots run short.
                if uncovered and (covered * events <= i * n or uncovered >= events - i):
                    c = make_creator((covered * visit_step + visit_shift) % n)
                    covered += 1
                else:
                    number = pick.randrange(n)
                    while pick.random() * top >= activity(number):
                        number = pick.randrange(n)
                    c = make_creator(number)
                key = c.key
                value = make_post(c, now)
            by_code[code] += 1
            stats.last_event_ms = now
            yield SimEvent(topic_of[code], key, value)
        stats.dropped_followups = len(heap)
        heap.clear()


def scale_profile_events(
    creators: int, events: int, topics: SimTopics, seed: int, end_ms: int, stats: SimStats
) -> Iterator[SimEvent]:
    """The scale profile's source: `ScaleWorkload`, in `simulator_events`' shape."""
    return iter(ScaleWorkload(creators, events, seed, end_ms, topics, stats=stats))


async def preload(
    ctx: Ctx,
    label: str,
    creators: int,
    events: int,
    seed: int = 42,
    source: EventSource = simulator_events,
) -> Dataset:
    """Create three source topics and fill them with `events` records of `source`."""
    topics = SimTopics(
        posts=ctx.name(label, "posts"),
        tags=ctx.name(label, "tags"),
        orders=ctx.name(label, "orders"),
    )
    names = (topics.posts, topics.tags, topics.orders)
    kinds = {topics.posts: "post", topics.tags: "tag", topics.orders: "order"}
    await create_topics(ctx, names)
    now_ms = int(time.time() * 1000)
    rng = random.Random(seed)
    sample = [f"cr-{i:06d}" for i in rng.sample(range(creators), min(SAMPLE_CREATORS, creators))]
    tracker = WatermarkTracker(sample, now_ms + 60_000)
    stats = SimStats()
    producer = AIOKafkaProducer(
        bootstrap_servers=ctx.bootstrap,
        linger_ms=5,
        max_batch_size=1_048_576,
        max_request_size=4 * 1_048_576,
        acks=1,
    )
    await producer.start()
    keys: set[bytes] = set()
    value_bytes = 0
    gen_s = 0.0
    started = time.perf_counter()
    try:
        sender = BatchProducer(producer, ctx.partitions)
        t0 = time.perf_counter()
        # Generation time includes what a source builds first (the simulator's population).
        it = source(creators, events, topics, seed, now_ms, stats)
        gen_s += time.perf_counter() - t0
        while True:
            t0 = time.perf_counter()
            chunk = [e for _, e in zip(range(10_000), it, strict=False)]
            gen_s += time.perf_counter() - t0
            if not chunk:
                break
            for ev in chunk:
                if ev.key is not None:
                    keys.add(ev.key)
                value_bytes += len(ev.value)
                tracker.observe(kinds[ev.topic], ev.value)
                await sender.add(ev.topic, ev.key, ev.value)
        await sender.flush()
    finally:
        await producer.stop()
    elapsed = time.perf_counter() - started
    offsets = await end_offsets(ctx, source_partitions(names, ctx.partitions))
    total = sum(offsets.values())
    if total != stats.total:
        raise BenchError(f"preload {label}: broker holds {total} records, produced {stats.total}")
    dataset = Dataset(
        label=label,
        creators=creators,
        events=events,
        topics=names,
        partitions=ctx.partitions,
        end_offsets=offsets,
        expected_watermarks=tracker.watermarks,
        distinct_keys=len(keys),
        value_bytes=value_bytes,
        generate_s=gen_s,
        produce_s=elapsed - gen_s,
        stats={
            "source": source.__name__,
            "malformed": stats.malformed,
            "unkeyed": stats.unkeyed,
            "duplicates": stats.duplicates,
            "by_topic": dict(stats.by_topic),
            "by_record": dict(zip(RECORD_KINDS, stats.by_code, strict=True)),
            "redis_check": tracker.reason or "sampled creators' event_time",
        },
    )
    ctx.say(
        f"preloaded {label}: {total:,} events, {len(keys):,} keyed creators, "
        f"generated in {gen_s:.1f}s, produced in {elapsed - gen_s:.1f}s"
    )
    return dataset


async def preload_apart(
    ctx: Ctx, label: str, creators: int, events: int, source: EventSource = simulator_events
) -> Dataset:
    """`preload` in a child process, whose memory goes back to the system when it ends.

    Generating and producing hold the key of every creator seen (and the
    simulator its whole population); at a million creators that is memory the
    harness would go on holding, since CPython keeps most of it after it is
    dropped, while the worker it measures runs on the same machine.
    """
    spawn = multiprocessing.get_context("spawn")  # no fork of a process running a loop
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        dataset, said = await asyncio.get_running_loop().run_in_executor(
            pool, _preload_in_child, ctx, label, creators, events, source
        )
    ctx.log.extend(said)
    return dataset


def _preload_in_child(
    ctx: Ctx, label: str, creators: int, events: int, source: EventSource
) -> tuple[Dataset, list[str]]:
    """The child's side of `preload_apart`: the dataset, and the log lines said meanwhile."""
    before = len(ctx.log)
    dataset = asyncio.run(preload(ctx, label, creators, events, source=source))
    return dataset, ctx.log[before:]
