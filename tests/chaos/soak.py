"""The soak: workers under a steady stream for a long time, RSS and lag sampled.

The suite's events go out again and again, each round with every post's counters
grown (so every round is real work: snapshots replace, scores move) and the tags
and orders repeated (duplicates, deduplicated by id), so the state holds the same
creators and posts throughout. A worker whose memory or lag keeps growing under a
steady load has a leak or falls behind; flat is the only passing shape.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.chaos.run import CANONICAL, Feed, Run, Send
from tests.chaos.stack import ExternalStack, PrivateStack
from tests.support.events import EventSet

#: RSS may grow this much (share of the early median, plus a fixed allowance) and be flat.
RSS_GROWTH_ALLOWED = 0.15
RSS_SLACK_BYTES = 32 * 2**20


@dataclass
class SoakResult:
    minutes: float
    workers: int
    rounds: int = 0
    events_sent: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    rss_early_mb: float = 0.0
    rss_late_mb: float = 0.0
    lag_early_max: int = 0
    lag_late_max: int = 0
    caught_up: bool = False
    crashed: dict[str, int] = field(default_factory=dict)
    rss_flat: bool = False
    lag_flat: bool = False

    @property
    def passed(self) -> bool:
        return self.rss_flat and self.lag_flat and self.caught_up and not self.crashed

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def round_sends(events: EventSet, n: int) -> list[Send]:
    """The events of round `n`: posts with their counters grown by `n`, the rest as they were."""
    topics = {"post": CANONICAL.posts_topic, "tag": CANONICAL.tags_topic}
    topics["order"] = CANONICAL.orders_topic
    out = []
    for (kind, payload), (_, key, value) in zip(events.payloads, events.records, strict=True):
        if kind == "post" and n:
            grown: Mapping[str, object] = {
                **payload,
                "views": int(payload["views"]) + 100 * n,  # type: ignore[call-overload]
                "likes": int(payload["likes"]) + 5 * n,  # type: ignore[call-overload]
            }
            value = orjson.dumps(grown)
        out.append(Send(topics[kind], key, value))
    return out


async def soak(
    stack: PrivateStack | ExternalStack,
    events: EventSet,
    workdir: Path,
    tag: str,
    *,
    minutes: float,
    workers: int = 2,
    round_seconds: float = 60.0,
    sample_every_s: float = 10.0,
    say: Any = print,
) -> SoakResult:
    result = SoakResult(minutes=minutes, workers=workers)
    run = Run(stack, f"chaos-{tag}-soak", workdir / "soak")
    try:
        await run.create_topics()
        for i in range(1, workers + 1):
            run.start(f"w{i}")
        started = time.monotonic()
        end = started + minutes * 60

        async def sample() -> None:
            while time.monotonic() < end:
                await asyncio.sleep(sample_every_s)
                rss = run.rss()
                lag = await run.lag()
                result.samples.append(
                    {"t_s": round(time.monotonic() - started, 1), "lag": lag,
                     "rss_mb": {n: round(b / 2**20, 1) for n, b in rss.items()}}
                )  # fmt: skip

        sampler = asyncio.create_task(sample())
        n = 0
        # Whole rounds only: a short last round would be a burst, not the steady load.
        while end - time.monotonic() >= round_seconds:
            seconds = round_seconds
            sends = round_sends(events, n)
            await Feed(run, sends, seconds=seconds).run_feed()
            result.events_sent += len(sends)
            n += 1
            say(f"soak: round {n}, {result.events_sent} events, lag {await run.lag()}")
            if run.crashed():
                break
        result.rounds = n
        sampler.cancel()
        result.caught_up = (
            await run.wait_reached(None, timeout=240, since=time.monotonic()) is not None
        )
        result.crashed = run.crashed()
        _judge(result)
    finally:
        run.stop_all()
        await run.cleanup()
    return result


def _judge(result: SoakResult) -> None:
    """Early = the second quarter (after warm-up), late = the last quarter."""
    samples = result.samples
    if len(samples) < 8:
        return
    q = len(samples) // 4
    early, late = samples[q : 2 * q], samples[-q:]

    def total_rss(s: dict[str, Any]) -> float:
        return float(sum(s["rss_mb"].values()))

    result.rss_early_mb = round(statistics.median(total_rss(s) for s in early), 1)
    result.rss_late_mb = round(statistics.median(total_rss(s) for s in late), 1)
    result.rss_flat = result.rss_late_mb <= result.rss_early_mb * (1 + RSS_GROWTH_ALLOWED) + (
        RSS_SLACK_BYTES / 2**20
    )
    result.lag_early_max = max(int(s["lag"] or 0) for s in early)
    result.lag_late_max = max(int(s["lag"] or 0) for s in late)
    # Lag under a steady feed moves with the flush cycle; growing means falling behind.
    result.lag_flat = result.lag_late_max <= max(2 * result.lag_early_max, 2_000)
