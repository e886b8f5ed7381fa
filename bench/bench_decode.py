"""Cost of `streams.codec.decode` per event, as a ratio to plain `orjson.loads` of the same bytes.

The worker decodes and validates every record it reads, so this cost sits under
every other per-event cost. The development machines are small, shared and noisy,
so absolute microseconds drift from run to run; each figure is therefore also a
ratio to a baseline measured in the same process, in the same round, right before
it: `orjson.loads` of the same values, the least any JSON consumer does per record.

The records are the simulator's (valid events and its usual share of malformed
ones), cut into rounds in stream order. Each round is decoded once, so the
validator's memos see new values the way a running worker does, and the first
round (empty memos) is shown on its own; the same rounds decoded a second time
show what the memos are worth. Ratios are the median over the rounds. Collections
are kept out of the timed loops (the worker raises the collector's threshold so
far that they are rare there too).

Usage: PYTHONPATH=. .venv/bin/python bench/bench_decode.py [--events 100000] [--rounds 10]
       [--json out.json]   (run it from the checkout whose code it should time)
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.events import EventKind
from scoring.params import DEFAULT_PARAMS
from scoring.validate import ValidationError
from streams.codec import decode
from streams.devtools.simulate import SimConfig, generate_events

END_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z: the simulated clock's end, and "now"
KINDS: dict[str, EventKind] = {"posts": "post", "shoppable-tags": "tag", "orders": "order"}

Records = Sequence[tuple[EventKind, bytes]]


def simulated(events: int, seed: int) -> list[tuple[EventKind, bytes]]:
    config = SimConfig(end_ms=END_MS, events=events, seed=seed)
    return [(KINDS[e.topic], e.value) for e in generate_events(config) if e.topic in KINDS]


def load_all(records: Records) -> None:
    loads, bad = orjson.loads, orjson.JSONDecodeError
    for _, value in records:
        # try/except rather than contextlib.suppress: a context manager per record
        # would add its own cost to the baseline.
        try:  # noqa: SIM105
            loads(value)
        except bad:
            pass


def decode_all(records: Records) -> None:
    params = DEFAULT_PARAMS
    for kind, value in records:
        decode(kind, value, now_ms=END_MS, params=params)


def timed_ns(fn: Callable[[Records], None], records: Records) -> int:
    gc.collect()
    gc.disable()
    try:
        t = time.perf_counter_ns()
        fn(records)
        return time.perf_counter_ns() - t
    finally:
        gc.enable()


def one_round(records: Records) -> tuple[float, float]:
    """(baseline, decode) in µs per event, the baseline timed right before decode."""
    base = timed_ns(load_all, records) / len(records) / 1000
    cost = timed_ns(decode_all, records) / len(records) / 1000
    return base, cost


def summary(rounds: list[tuple[float, float]]) -> dict[str, float]:
    return {
        "baseline_us": statistics.median(b for b, _ in rounds),
        "decode_us": statistics.median(d for _, d in rounds),
        "ratio": statistics.median(d / b for b, d in rounds),
    }


def outcomes(records: Records) -> Counter[str]:
    counts: Counter[str] = Counter()
    for kind, value in records:
        r = decode(kind, value, now_ms=END_MS, params=DEFAULT_PARAMS)
        counts["rejected" if isinstance(r, ValidationError) else kind] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000, help="simulated records")
    ap.add_argument("--rounds", type=int, default=10, help="rounds the records are cut into")
    ap.add_argument("--seed", type=int, default=42, help="simulator seed")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    records = simulated(args.events, args.seed)
    size = -(-len(records) // args.rounds)
    chunks = [records[i : i + size] for i in range(0, len(records), size)]
    fresh = [one_round(chunk) for chunk in chunks]
    again = [one_round(chunk) for chunk in chunks]
    by_kind: dict[str, dict[str, float]] = {}
    for kind in KINDS.values():
        of_kind = [r for r in records if r[0] == kind]
        by_kind[kind] = summary([one_round(of_kind) for _ in range(3)])
    counts = outcomes(records)
    rows = {
        "first round (empty memos)": summary(fresh[:1]),
        "new values (median of rounds)": summary(fresh[1:] or fresh),
        "same values again": summary(again),
        **{f"  {kind}s only, seen again": r for kind, r in by_kind.items()},
    }

    python = sys.version.split()[0]
    mix = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"python {python}: {len(records)} simulated records ({mix})")
    print(f"{'decode + validate':<40}{'µs/event':>10}{'orjson µs':>11}{'x orjson':>10}")
    for label, r in rows.items():
        print(f"{label:<40}{r['decode_us']:>10.2f}{r['baseline_us']:>11.2f}{r['ratio']:>10.1f}")
    if args.json:
        results = {"python": python, "records": len(records), "outcomes": dict(counts)}
        results["us_per_event"] = {label.strip(): r for label, r in rows.items()}
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
