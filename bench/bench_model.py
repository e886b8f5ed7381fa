"""The model's cost in bulk, stage by stage, as ratios to a trivial loop run alongside.

A worker's flush reads the states of the creators it touches (decode), turns its
events into rows (arrivals), merges them (merge), scores every changed creator
before and after (window totals, then the formulas), and writes the states back
(encode). This times each stage on simulator events, flush after flush over a
warmed-up population, without Kafka, Redis or the publish path
(`bench/bench_pipeline.py` times the whole pipeline). The machines are small, shared
and noisy, so every figure is also given as a ratio to a baseline measured in the
same process: a plain per-event dict update, the least any stateful stream
processor does per event.

    .venv/bin/python -m bench.bench_model --events 300000 --creators 3000 --flush 5000
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from typing import Any

import numpy as np
import orjson

from scoring.columns import DAY_MS, arrivals, place, stack
from scoring.events import Event, OrderEvent, PostEvent, TagEvent
from scoring.merge import merge
from scoring.model import score_totals
from scoring.packed import decode, encode
from scoring.params import DEFAULT_PARAMS as P
from scoring.validate import validate
from scoring.vocab import Vocabulary
from scoring.window import window_totals

NOW_MS = 1_795_676_400_000
_KINDS = {"posts": "post", "shoppable-tags": "tag", "orders": "order"}
STAGES = ("decode", "arrivals", "merge", "totals", "scores", "basis", "encode")


def simulated(events: int, creators: int) -> list[Event]:
    from streams.devtools.simulate import SimConfig, generate_events

    out: list[Event] = []
    for sim in generate_events(SimConfig(end_ms=NOW_MS, events=events, creators=creators)):
        try:
            payload = orjson.loads(sim.value)
        except orjson.JSONDecodeError:
            continue
        e = validate(_KINDS[sim.topic], payload, now_ms=NOW_MS, params=P)  # type: ignore[arg-type]
        if isinstance(e, PostEvent | TagEvent | OrderEvent):
            out.append(e)
    return out


def baseline_ns(events: list[Event]) -> float:
    """ns per event of `counts[creator] = counts.get(creator, 0) + 1` (median of 5)."""
    keys = [e.creator_id for e in events]
    runs = []
    for _ in range(5):
        counts: dict[str, int] = {}
        get = counts.get
        t = time.perf_counter_ns()
        for k in keys:
            counts[k] = get(k, 0) + 1
        runs.append((time.perf_counter_ns() - t) / len(keys))
    return statistics.median(runs)


class Stopwatch:
    """Adds the time spent in `with watch(stage):` blocks per stage, while `on`."""

    def __init__(self) -> None:
        self.spent = dict.fromkeys(STAGES, 0)
        self.on = False
        self._stage = ""
        self._started = 0

    def __call__(self, stage: str) -> Stopwatch:
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._started = time.perf_counter_ns()

    def __exit__(self, *exc: object) -> None:
        if self.on:
            self.spent[self._stage] += time.perf_counter_ns() - self._started


def run(events: list[Event], flush: int, warm_share: float) -> dict[str, Any]:
    vocab = Vocabulary()
    table: dict[str, bytes] = {}
    warm = int(len(events) * warm_share)
    watch = Stopwatch()
    changed_total = timed_events = 0
    gc.disable()
    for start in range(0, len(events), flush):
        batch = events[start : start + flush]
        watch.on = start >= warm
        if watch.on:
            timed_events += len(batch)
        ids = sorted({e.creator_id for e in batch})
        index = {c: i for i, c in enumerate(ids)}
        stored = [table[c] for c in ids if c in table]
        where = np.array([i for i, c in enumerate(ids) if c in table], dtype=np.int64)
        with watch("decode"):
            heads, columns = decode(stored, vocab)
        heads, columns = place(heads, columns, where, len(ids))
        with watch("arrivals"):
            new = arrivals([(index[e.creator_id], e) for e in batch], vocab)
        with watch("merge"):
            merged = merge(heads, columns, new, vocab, P.window_days)
        changed = np.flatnonzero(merged.changed)
        if watch.on:
            changed_total += len(changed)
        # Scored before and after, as the worker scores its changed creators.
        both_heads, both = stack((heads, columns), (merged.heads, merged.columns))
        with watch("totals"):
            totals = window_totals(both, both_heads.watermark // DAY_MS, vocab, P)
        with watch("scores"):
            scores = score_totals(totals, P)
        with watch("basis"):
            for i in changed.tolist():
                orjson.dumps(scores.basis(len(ids) + i))
        with watch("encode"):
            values = encode(merged.heads, merged.columns, vocab)
        for i, c in enumerate(ids):
            table[c] = values[i]
    gc.enable()
    sizes = [len(v) for v in table.values()]
    return {
        "events_timed": timed_events,
        "changed_creators": changed_total,
        "ns_per_event": {k: v / max(1, timed_events) for k, v in watch.spent.items()},
        "creators": len(table),
        "state_bytes_mean": round(statistics.mean(sizes), 1),
        "state_bytes_p99": float(np.percentile(sizes, 99)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--creators", type=int, default=3_000)
    ap.add_argument("--flush", type=int, default=5_000, help="events per flush")
    ap.add_argument("--warm", type=float, default=0.8, help="share of events before timing")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    events = simulated(args.events, args.creators)
    base = baseline_ns(events)
    out = run(events, args.flush, args.warm)
    out["baseline_ns_per_event"] = base
    per_event = out["ns_per_event"]
    total = sum(per_event.values())
    changed_share = out["changed_creators"] / max(1, out["events_timed"])
    print(
        f"{len(events):,} events over {out['creators']:,} creators, flushes of {args.flush:,} "
        f"events; timed the last {1 - args.warm:.0%} ({out['events_timed']:,} events, "
        f"{changed_share:.2f} changed creators per event)"
    )
    print(f"  baseline dict update: {base:.0f} ns/event")
    for stage in STAGES:
        ns = per_event[stage]
        print(f"  {stage:<9} {ns / 1000:7.2f} us/event  {ns / base:8.0f}x baseline")
    print(f"  {'all':<9} {total / 1000:7.2f} us/event  {total / base:8.0f}x baseline")
    print(f"  state: mean {out['state_bytes_mean']:,.0f} B, p99 {out['state_bytes_p99']:,.0f} B")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
