"""Cost and size of the pure scoring model, as ratios to a trivial loop run alongside.

The development machines are small, shared and noisy, so absolute microseconds
mean little from one run to the next. Every figure is therefore also given as
a ratio to a baseline measured in the same process right before it: a plain
per-event dict update (`counts[key] = counts.get(key, 0) + value`), the least
any stateful stream processor does per event.

`score`, `to_dict` and `to_bytes` are timed the way the worker uses them: every
round applies one new event to each creator, then scores, writes the card out and
stores the state (the model keeps what did not change between those calls, so
timing them on an unchanged state would measure nothing). The same step on a
state read from bytes is timed too. Ratios are the median over the rounds.

Usage: .venv/bin/python bench/bench_scoring.py [--creators 200] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
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


def split_stream(events: list[Event], held: int) -> tuple[list[Event], list[Event]]:
    """(the events to build the state from, `held` later events it has not seen yet).

    The held-back events are the last first deliveries of the stream (never a
    redelivery of an earlier event), so each one changes the state the way a new
    event in a batch does: a new post, tag or order, a newer snapshot or a new status.
    """
    seen: set[Event] = set()
    firsts: list[int] = []
    for i, e in enumerate(events):
        if e not in seen:
            seen.add(e)
            firsts.append(i)
    take = set(firsts[-held:])
    return [e for i, e in enumerate(events) if i not in take], [events[i] for i in sorted(take)]


def measure(prof: Profile, n_creators: int, rounds: int, params: Params) -> dict[str, float]:
    rng = random.Random(20251126)
    streams = [creator_events(rng, f"{prof.name}-{i}", prof) for i in range(n_creators)]
    n_events = sum(len(s) for s in streams)
    keys = [(e.creator_id, i) for s in streams for i, e in enumerate(s)]
    baseline = baseline_loop(keys)
    meter = Meter(baseline, n_events, rounds)
    base, _ = meter(baseline, n_events)
    out: dict[str, float] = {
        "events_per_creator": n_events / n_creators,
        "baseline_ns_per_event": base,
    }

    def record(key: str, best: float, ratio: float) -> None:
        out[key], out[key.replace("_ns", "_ratio")] = best, ratio

    def apply_all() -> list[CreatorState]:
        states = []
        for events in streams:
            st = CreatorState.new(events[0].creator_id)
            for e in events:
                st.apply(e, params)
            states.append(st)
        return states

    payloads = [to_payload(e) for s in streams for e in s]
    now = T0 + 40 * DAY_MS

    def run_validate() -> None:
        for kind, payload in payloads:
            validate(kind, payload, now_ms=now, params=params)  # type: ignore[arg-type]

    record("validate_ns_per_event", *meter(run_validate, n_events))
    record("apply_ns_per_event", *meter(apply_all, n_events))

    # The worker's per-batch step on a state it keeps: each round applies one new
    # event to every creator, then scores, writes the card out and stores the state,
    # each step timed on its own against the baseline run in the same round.
    split = [split_stream(events, 2 * rounds + 1) for events in streams]
    states = []
    for head, _ in split:
        st = CreatorState.new(head[0].creator_id)
        for e in head:
            st.apply(e, params)
        states.append(st)
    for st in states:
        score(st, params)  # a first card: the next ones reuse what did not move
        st.to_bytes()  # and a first write: the next ones rewrite what changed
    steps: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("apply_one", "score", "to_dict", "to_bytes", "score_cold", "step")
    }
    outcomes: Counter[str] = Counter()
    for r in range(rounds):
        b = timed(baseline) / n_events
        events = [tail[r] for _, tail in split]
        t = time.perf_counter_ns()
        applied = [st.apply(e, params) for st, e in zip(states, events, strict=True)]
        steps["apply_one"].append(((time.perf_counter_ns() - t) / n_creators, b))
        outcomes.update(a.value for a in applied)
        t = time.perf_counter_ns()
        cards = [score(st, params) for st in states]
        steps["score"].append(((time.perf_counter_ns() - t) / n_creators, b))
        t = time.perf_counter_ns()
        for card in cards:
            card.to_dict()
        steps["to_dict"].append(((time.perf_counter_ns() - t) / n_creators, b))
        t = time.perf_counter_ns()
        for st in states:
            st.to_bytes()
        steps["to_bytes"].append(((time.perf_counter_ns() - t) / n_creators, b))
        # The same score with nothing to reuse (as after a restart or a new model).
        if hasattr(CreatorState, "_memo"):  # (a model that keeps nothing has nothing to drop)
            for st in states:
                st._memo = None
        t = time.perf_counter_ns()
        for st in states:
            score(st, params)
        steps["score_cold"].append(((time.perf_counter_ns() - t) / n_creators, b))
    for r in range(rounds, 2 * rounds):
        b = timed(baseline) / n_events
        t = time.perf_counter_ns()
        for st, (_, tail) in zip(states, split, strict=True):
            st.apply(tail[r], params)
            score(st, params).to_dict()
            st.to_bytes()
        steps["step"].append(((time.perf_counter_ns() - t) / n_creators, b))
    for key, samples in steps.items():
        record(
            f"{key}_ns", min(s for s, _ in samples), statistics.median(s / b for s, b in samples)
        )
    out["score_to_dict_ratio"] = out["score_ratio"] + out["to_dict_ratio"]
    out["score_to_dict_ns"] = out["score_ns"] + out["to_dict_ns"]
    out["new_events_applied_share"] = (outcomes["applied"] + outcomes["updated"]) / sum(
        outcomes.values()
    )

    # The same step on a state read from bytes (a worker that keeps no states in
    # memory, or the first batch after a restart): decode, rebuild the window
    # totals, apply, score from scratch, store.
    blobs = [st.to_bytes() for st in states]
    last = [tail[-1] for _, tail in split]
    record("from_bytes_ns", *meter(lambda: [CreatorState.from_bytes(b) for b in blobs], n_creators))

    def cold_step() -> None:
        for blob, e in zip(blobs, last, strict=True):
            st = CreatorState.from_bytes(blob)
            st.apply(e, params)
            score(st, params).to_dict()
            st.to_bytes()

    record("cold_step_ns", *meter(cold_step, n_creators))

    # A batch of 10 events per creator, state from bytes (as the worker does today).
    batch = 10
    batches = [(blobs[i], streams[i][-batch:]) for i in range(n_creators)]

    def run_batch() -> None:
        for blob, events in batches:
            st = CreatorState.from_bytes(blob)
            for e in events:
                st.apply(e, params)
            score(st, params).to_dict()
            st.to_bytes()

    record("batch_of_10_ns", *meter(run_batch, n_creators))
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
    print(f"{'operation':<52}{'best µs':>10}{'x baseline (median)':>22}")
    rows = [
        ("validate / event", "validate_ns_per_event"),
        ("apply / event (whole stream, new states)", "apply_ns_per_event"),
        ("after one new event, per creator:", ""),
        ("  apply", "apply_one_ns"),
        ("  score", "score_ns"),
        ("  to_dict (writes the explanations)", "to_dict_ns"),
        ("  score + to_dict", "score_to_dict_ns"),
        ("  to_bytes", "to_bytes_ns"),
        ("  score with nothing to reuse", "score_cold_ns"),
        ("  whole step: apply + score + to_dict + to_bytes", "step_ns"),
        ("from_bytes / creator", "from_bytes_ns"),
        ("whole step from bytes: from_bytes + apply + ...", "cold_step_ns"),
        ("batch of 10 from bytes (load..store) / creator", "batch_of_10_ns"),
    ]
    print(f"{'baseline dict update / event':<52}{base / 1000:>10.3f}{1.0:>22.1f}")
    for label, key in rows:
        if not key:
            print(label)
            continue
        ratio = r[key.replace("_ns", "_ratio")]
        print(f"{label:<52}{r[key] / 1000:>10.2f}{ratio:>22.0f}")
    print(
        f"(new events that changed the state: {r['new_events_applied_share']:.0%}; "
        "score + to_dict adds the two medians)"
    )
    for label, key in (("kept in memory", "step"), ("read from bytes", "cold_step")):
        per_event = r[f"{key}_ns"]
        print(
            f"one event per creator per batch, state {label}: {r[f'{key}_ratio']:.0f}x baseline, "
            f"~{1e9 / per_event:,.0f} events/s here (scoring model only)"
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
