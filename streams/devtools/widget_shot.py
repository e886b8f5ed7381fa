"""The README's picture of the live ranking widget (docs/widget.png), taken in headless Chromium.

A simulated population is scored by the worker's own pipeline and Redis sink into Redis
under a prefix of its own, the read API serves it in this process (a free port), and the
widget's page is opened with a key made for the picture. A few more flushes of events then
move ranks while the page is open, so the picture shows what a partner sees: rank moves
as they arrived over the live feed, and the card of a creator that just climbed, with its
latest change. Everything it wrote to Redis is deleted afterwards.

    python -m streams.devtools.widget_shot                 # rewrites docs/widget.png
    python -m streams.devtools.widget_shot --out /tmp/w.png --width 420
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import uvicorn
from redis.asyncio import Redis

from scoring.params import DEFAULT_PARAMS
from streams.api.app import create_app
from streams.api.auth import Keyring
from streams.codec import RawRecord
from streams.devtools.browser import chromium
from streams.devtools.simulate import SimConfig, SimEvent, generate_events
from streams.keys import Keys
from streams.pipeline import Pipeline, PipelineConfig
from streams.settings import Settings, load_settings
from streams.sinks.base import OutboundRecord
from streams.sinks.redis import ChangeRetention, RedisSink
from streams.state_store import DictStore
from streams.sweep import StreamClock

if TYPE_CHECKING:
    from playwright.async_api import FloatRect

DOCS: Final = Path(__file__).resolve().parents[2] / "docs" / "widget.png"
CONFIG: Final = PipelineConfig(
    kinds={"posts": "post", "shoppable-tags": "tag", "orders": "order"},
    rekeyed_topic="rekeyed", changes_topic="changes", dead_letter_topic="dead",
    change_threshold=1.0,
)  # fmt: skip
CREATORS: Final = 400
WIDGET: Final = "creator-leaderboard"


class _Dropped:
    """The Kafka side of the pipeline, which the picture does not need."""

    async def write(self, batch: Sequence[OutboundRecord]) -> None:
        return None


#: The population's history; the picture's live minutes follow it.
BACKFILL: Final = 30_000
#: Stream time per live record: a flush of 2,000 moves the stream 20 s on, and it starts 10
#: minutes back, so no event is ever ahead of the wall clock.
LIVE_STEP_MS: Final = 10.0


def _stream(now_ms: int) -> Iterator[SimEvent]:
    """One simulated population: its 28 days, then live events of the same creators."""
    config = SimConfig(end_ms=now_ms - 600_000, events=None, creators=CREATORS, seed=11,
                       backfill_events=BACKFILL, live_step_ms=LIVE_STEP_MS, malformed_share=0,
                       mis_keyed_share=0, duplicate_share=0)  # fmt: skip
    return generate_events(config)


async def _flush(pipeline: Pipeline, events: Iterator[SimEvent], count: int) -> None:
    now_ms = int(time.time() * 1000)
    records = [RawRecord(e.topic, 0, i, e.key, e.value, now_ms)
               for i, e in enumerate(itertools.islice(events, count))]  # fmt: skip
    step = max(1, len(records) // 4)
    for start in range(0, len(records), step):
        await pipeline.process(records[start : start + step])


async def take(settings: Settings, out: Path, width: int, height: int, scale: float) -> None:
    prefix = f"widget-shot-{uuid.uuid4().hex[:8]}:"
    settings = settings.model_copy(update={"redis_prefix": prefix})
    keys = Keys(prefix)
    client = Redis.from_url(settings.redis_url)
    sink = RedisSink(client, keys, changes=ChangeRetention(stream=100_000, per_creator=5))
    pipeline = Pipeline(CONFIG, DEFAULT_PARAMS, DictStore(), sink, _Dropped())
    sock = socket.socket()
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None
    try:
        events = _stream(int(time.time() * 1000))
        await _flush(pipeline, events, BACKFILL)
        await StreamClock(client, keys).sync(pipeline)
        _, token = await Keyring(client, keys).create("widget picture", None, 10_000)
        app = create_app(settings, params=DEFAULT_PARAMS, client=client)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                raise RuntimeError("the read API did not start")
            await asyncio.sleep(0.02)
        async with chromium(width=width, height=height, scale=scale) as browser:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/widget?key={token}&n=8")
            await page.locator(f"{WIDGET} .row[data-creator]").first.wait_for()
            await page.locator(f'{WIDGET} .status[data-status="live"]').wait_for()
            moved = page.locator(f'{WIDGET} .row[data-move="up"]')
            any_move = page.locator(f"{WIDGET} .row[data-move]")
            for _ in range(20):  # live events, 20 s of them at a time, until ranks move
                await _flush(pipeline, events, 2_000)
                await StreamClock(client, keys).sync(pipeline)
                await asyncio.sleep(0.5)
                # What the widget's periodic read (every 30 s) would show, without the wait.
                await page.locator(WIDGET).evaluate("widget => widget.refresh()")
                await asyncio.sleep(0.5)
                if await moved.count() >= 1 and await any_move.count() >= 3:
                    break
            await asyncio.sleep(3.0)  # the highlights fade; the arrows stay
            target = moved.first if await moved.count() else page.locator(f"{WIDGET} .row").nth(1)
            await target.click()
            await page.locator(f"{WIDGET} .score-card").first.wait_for()
            await asyncio.sleep(0.5)
            out.parent.mkdir(parents=True, exist_ok=True)
            box = await page.locator(WIDGET).bounding_box()
            assert box is not None
            edge = 20.0  # the page's background around the widget
            x, y = max(0.0, box["x"] - edge), max(0.0, box["y"] - edge)
            clip: FloatRect = {"x": x, "y": y, "width": box["width"] + 2 * edge,
                               "height": box["height"] + 2 * edge}  # fmt: skip
            await page.screenshot(path=str(out), clip=clip)
    finally:
        if server is not None and task is not None:
            server.should_exit = True
            await asyncio.wait_for(task, 10)
        sock.close()
        async for key in client.scan_iter(match=prefix + "*", count=1000):
            await client.delete(key)
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--width", type=int, default=1180)
    parser.add_argument("--height", type=int, default=760)
    parser.add_argument("--scale", type=float, default=2.0, help="device pixels per CSS pixel")
    args = parser.parse_args(argv)
    asyncio.run(take(load_settings(), args.out, args.width, args.height, args.scale))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
