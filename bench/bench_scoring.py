"""Cost and size of the pure scoring model, as ratios to a trivial loop run alongside.

The development machines are small, shared and noisy, so absolute microseconds
mean little from one run to the next. Every figure is therefore also given as
a ratio to a baseline measured in the same process right before it: a plain
per-event dict update (`counts[key] = counts.get(key, 0) + value`), the least
any stateful stream processor does per event. Each measurement keeps the best
of several rounds.

Usage: .venv/bin/python bench/bench_scoring.py [--creators 200] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.events import Event, OrderEvent, PostEvent, TagEvent
from scoring.params import DEFAULT_PARAMS, Params
from scoring.scores import score
from scoring.state import DAY_MS, CreatorState
from scoring.validate import validate

T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z
THEMES = ("beauty", "fashion", "electronics", "food", "home", "toys", "sports", "books")
CURRENCIES = ("USD", "GBP", "IDR", "MYR", "VND", "PHP")


@dataclass(frozen=True)
class Profile:
    name: str
    posts_per_day: float
    snapshots_per_post: int
    tags_per_post: float
    orders_per_day: float
    refund_share: float
    brands: int
    themes: int


TYPICAL = Profile("typical", 1.0, 3, 0.5, 0.6, 0.1, 5, 3)
HEAVY = Profile("heavy", 6.0, 5, 1.5, 40.0, 0.1, 20, 8)


def creator_events(rng: random.Random, cid: str, prof: Profile, days: int = 28) -> list[Event]:
    """One creator's events over `days`, in event-time order (with redelivered duplicates)."""
    out: list[tuple[int, Event]] = []
    themes = THEMES[: prof.themes]
    brands = [f"brand-{i:03d}" for i in range(prof.brands)]
    region = rng.choice(("US", "GB", "ID", "MY", "VN", "PH"))
    post_ids: list[str] = []
    for d in range(days):
        n = int(prof.posts_per_day) + (rng.random() < prof.posts_per_day % 1)
        for k in range(n):
            pid = f"{cid}-p{d}-{k}"
            post_ids.append(pid)
            t = T0 + d * DAY_MS + rng.randrange(DAY_MS)
            views = int(rng.lognormvariate(8.5, 1.2))
            ct = rng.choice(("video", "video", "photo", "live"))
            th = tuple(sorted(rng.sample(themes, rng.randint(1, min(2, len(themes))))))
            brand = rng.choice(brands) if rng.random() < 0.25 else None
            for snap in range(1, prof.snapshots_per_post + 1):
                v = views * snap // prof.snapshots_per_post
                obs = t + snap * 3_600_000
                out.append(
                    (
                        obs,
                        PostEvent(
                            pid, cid, region, ct, th, t, v, v // 25, v // 300, v // 800, brand, obs
                        ),
                    )
                )
            tags = int(prof.tags_per_post) + (rng.random() < prof.tags_per_post % 1)
            for j in range(tags):
                campaign = f"camp-{rng.randrange(6)}" if rng.random() < 0.3 else None
                tag = TagEvent(
                    f"{pid}-t{j}", pid, cid, f"sku-{rng.randrange(500)}", rng.choice(brands),
                    rng.choice(themes), t + 60_000, campaign,
                )  # fmt: skip
                out.append((t + 60_000, tag))
        n_orders = int(prof.orders_per_day) + (rng.random() < prof.orders_per_day % 1)
        for k in range(n_orders):
            oid = f"{cid}-o{d}-{k}"
            t = T0 + d * DAY_MS + rng.randrange(DAY_MS)
            cur = rng.choice(CURRENCIES)
            amount = Decimal(rng.randrange(500, 20_000)) / 100
            if cur in ("IDR", "VND"):
                amount = Decimal(rng.randrange(50, 2000) * 1000)
            post = rng.choice(post_ids) if post_ids and rng.random() < 0.8 else None
            args = (oid, cid, post, f"sku-{rng.randrange(500)}", rng.choice(brands),
                    rng.choice(themes), rng.randint(1, 3), amount, cur)  # fmt: skip
            out.append((t, OrderEvent(*args, "placed", t)))
            if rng.random() < prof.refund_share:
                status = rng.choice(("cancelled", "refunded"))
                out.append((t + DAY_MS, OrderEvent(*args, status, t)))  # type: ignore[arg-type]
    out.sort(key=lambda x: x[0])
    events = [e for _, e in out]
    # At-least-once delivery: a few redeliveries.
    for i in range(0, len(events), 17):
        events.insert(i, events[i])
    return events


def to_payload(ev: Event) -> tuple[str, dict[str, object]]:
    """The JSON payload a producer would send for an event (for validate)."""
    if isinstance(ev, PostEvent):
        return "post", {
            "post_id": ev.post_id, "creator_id": ev.creator_id, "region": ev.region,
            "content_type": ev.content_type, "themes": list(ev.themes),
            "posted_at": ev.posted_at_ms, "views": ev.views, "likes": ev.likes,
            "comments": ev.comments, "shares": ev.shares, "brand_id": ev.brand_id,
            "observed_at": "2025-11-24T17:00:00.250+07:00",
        }  # fmt: skip
    if isinstance(ev, TagEvent):
        return "tag", {
            "tag_id": ev.tag_id, "post_id": ev.post_id, "creator_id": ev.creator_id,
            "product_id": ev.product_id, "brand_id": ev.brand_id, "theme": ev.theme,
            "tagged_at": ev.tagged_at_ms, "campaign_id": ev.campaign_id,
        }  # fmt: skip
    return "order", {
        "order_id": ev.order_id, "creator_id": ev.creator_id, "post_id": ev.post_id,
        "product_id": ev.product_id, "brand_id": ev.brand_id, "theme": ev.theme,
        "quantity": ev.quantity, "amount": str(ev.amount), "currency": ev.currency,
        "status": ev.status, "ordered_at": ev.ordered_at_ms,
    }  # fmt: skip


def timed(fn: Callable[[], object]) -> int:
    t = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t


class Meter:
    """Times an operation against the baseline in alternating rounds.

    Each round runs the baseline loop, then the operation; the ratio of the two
    is taken within the round (so a busy neighbour slows both) and the median
    ratio over the rounds is reported next to the best absolute time.
    """

    def __init__(self, baseline: Callable[[], object], n_events: int, rounds: int) -> None:
        self.baseline = baseline
        self.n_events = n_events
        self.rounds = rounds

    def __call__(self, fn: Callable[[], object], per: int) -> tuple[float, float]:
        best = float("inf")
        ratios = []
        for _ in range(self.rounds):
            base = timed(self.baseline) / self.n_events
            op = timed(fn) / per
            best = min(best, op)
            ratios.append(op / base)
        return best, statistics.median(ratios)


def baseline_loop(keys: list[tuple[str, int]]) -> Callable[[], object]:
    def run() -> object:
        counts: dict[str, int] = {}
        for key, value in keys:
            counts[key] = counts.get(key, 0) + value
        return counts

    return run


def measure(prof: Profile, n_creators: int, rounds: int, params: Params) -> dict[str, float]:
    rng = random.Random(20251126)
    streams = [creator_events(rng, f"{prof.name}-{i}", prof) for i in range(n_creators)]
    n_events = sum(len(s) for s in streams)
    keys = [(e.creator_id, i) for s in streams for i, e in enumerate(s)]
    meter = Meter(baseline_loop(keys), n_events, rounds)
    base, _ = meter(baseline_loop(keys), n_events)

    def apply_all() -> list[CreatorState]:
        states = []
        for events in streams:
            st = CreatorState.new(events[0].creator_id)
            for e in events:
                st.apply(e, params)
            states.append(st)
        return states

    states = apply_all()
    blobs = [s.to_bytes() for s in states]
    payloads = [to_payload(e) for s in streams for e in s]
    now = T0 + 40 * DAY_MS

    def run_validate() -> None:
        for kind, payload in payloads:
            validate(kind, payload, now_ms=now, params=params)  # type: ignore[arg-type]

    def run_score() -> None:
        for st in states:
            score(st, params)

    def run_score_dict() -> None:
        for st in states:
            score(st, params).to_dict()

    def run_to_bytes() -> None:
        for st in states:
            st.to_bytes()

    def run_from_bytes() -> None:
        for blob in blobs:
            CreatorState.from_bytes(blob)

    # The streaming layer's per-batch path: load, apply the batch, score, store.
    batch = 10
    batches = [(blobs[i], streams[i][-batch:]) for i in range(n_creators)]

    def run_batch() -> None:
        for blob, events in batches:
            st = CreatorState.from_bytes(blob)
            for e in events:
                st.apply(e, params)
            score(st, params).to_dict()
            st.to_bytes()

    out: dict[str, float] = {
        "events_per_creator": n_events / n_creators,
        "baseline_ns_per_event": base,
    }
    for key, fn, per in (
        ("apply_ns_per_event", apply_all, n_events),
        ("validate_ns_per_event", run_validate, n_events),
        ("score_ns", run_score, n_creators),
        ("score_to_dict_ns", run_score_dict, n_creators),
        ("to_bytes_ns", run_to_bytes, n_creators),
        ("from_bytes_ns", run_from_bytes, n_creators),
        ("batch_of_10_ns", run_batch, n_creators),
    ):
        out[key], out[key.replace("_ns", "_ratio")] = meter(fn, per)
    sizes = sorted(len(b) for b in blobs)
    counts = [s.counts() for s in states]
    out.update(
        {
            "bytes_mean": statistics.fmean(sizes),
            "bytes_p50": sizes[len(sizes) // 2],
            "bytes_max": sizes[-1],
            "posts_held": statistics.fmean(c[0] for c in counts),
            "tags_held": statistics.fmean(c[1] for c in counts),
            "orders_held": statistics.fmean(c[2] for c in counts),
        }
    )
    return out


def report(name: str, r: dict[str, float]) -> None:
    base = r["baseline_ns_per_event"]
    print(
        f"\n== {name}: {r['events_per_creator']:.0f} events/creator over 28 days; state holds "
        f"{r['posts_held']:.0f} posts, {r['tags_held']:.0f} tags, {r['orders_held']:.0f} orders"
    )
    print(
        f"state size: mean {r['bytes_mean']:.0f} B, median {r['bytes_p50']:.0f} B, "
        f"max {r['bytes_max']:.0f} B"
    )
    print(f"{'operation':<36}{'best µs':>10}{'x baseline (median)':>22}")
    rows = [
        ("validate / event", "validate_ns_per_event"),
        ("apply / event", "apply_ns_per_event"),
        ("score / creator", "score_ns"),
        ("score + to_dict / creator", "score_to_dict_ns"),
        ("to_bytes / creator", "to_bytes_ns"),
        ("from_bytes / creator", "from_bytes_ns"),
        ("batch of 10 (load..store) / creator", "batch_of_10_ns"),
    ]
    print(f"{'baseline dict update / event':<36}{base / 1000:>10.3f}{1.0:>22.1f}")
    for label, key in rows:
        ratio = r[key.replace("_ns", "_ratio")]
        print(f"{label:<36}{r[key] / 1000:>10.2f}{ratio:>22.0f}")
    per_event = r["batch_of_10_ns"] / 10
    print(
        f"batch path per event (10 events per creator per batch): {per_event / 1000:.2f} µs, "
        f"{r['batch_of_10_ratio'] / 10:.0f}x baseline, ~{1e9 / per_event:,.0f} events/s here"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--creators", type=int, default=200, help="typical creators (heavy: 1/10)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per measurement (best kept)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    results = {
        "typical": measure(TYPICAL, args.creators, args.rounds, DEFAULT_PARAMS),
        "heavy": measure(HEAVY, max(2, args.creators // 10), args.rounds, DEFAULT_PARAMS),
    }
    print(f"python {sys.version.split()[0]}, model {DEFAULT_PARAMS.model_version}")
    for name, r in results.items():
        report(name, r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
