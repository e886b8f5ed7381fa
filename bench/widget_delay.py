"""The live ranking widget's delay: from an event produced to Kafka to the widget's SSE message
for it, p50/p99, with the stream idle and under load.

    python -m bench.widget_delay                         # 200 probes idle, 200 at 1,000 events/s
    python -m bench.widget_delay --probes 50 --load-rate 500   # a quick look

On the running stack (`creator-scores stack up`), with topics, an app id and a Redis prefix
of its own (`bench-<run id>-...`, deleted afterwards):

1. a worker (`creator-scores worker`, the production settings but the names) and the read
   API (`creator-scores serve`, one process) run as their own processes;
2. one client follows the board feed the widget follows by default,
   `/v1/leaderboards/overall/feed` (the global board), as the browser's EventSource does:
   one streaming HTTP request (httpx), with the key in `?api_key=`;
3. a probe is one post of a creator never seen before, sent alone (no linger) every
   `--interval` seconds: its first card always makes a score-change record, which the
   board feed always passes on. Its delay is the wall clock when the client has read the
   SSE message naming it minus the wall clock just before the producer was handed the post.
   The change stream id (Redis's clock, the same machine) splits it: produce to the worker's
   Redis write, and that write to the message read;
4. first with nothing else on the topics (idle), then with `--load-rate` posts a second of
   `--load-creators` other creators produced alongside (their changes reach the same feed,
   as a busy widget's do).

The first probes (the worker's start-up) are left out. Delay includes the worker's batching
(it takes what has arrived; nothing waits for a batch to fill), its Redis write, the API's
one blocked XREAD per process and the SSE write; not the browser's DOM update (milliseconds,
tests/e2e/test_widget.py sees it happen).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from bench.common import (
    REPO_ROOT,
    Ctx,
    Proc,
    create_topics,
    delete_redis_prefix,
    delete_topics,
    machine,
    new_run_id,
    percentile,
    python_argv,
    topics_of_run,
)
from bench.consumers import consumer_env
from streams.api.auth import Keyring
from streams.keys import Keys
from streams.settings import load_settings

_LISTENING = re.compile(r"Uvicorn running on (http://\S+:\d+)")
CONTENT_TYPES = ("video", "photo", "short", "live")
THEMES = ("beauty", "fashion", "home", "food")


@dataclass
class Probe:
    creator_id: str
    sent_s: float
    written_ms: int | None = None
    received_s: float | None = None


@dataclass
class Feed:
    """What the SSE client has read: probes by creator id, and how many messages in all."""

    probes: dict[str, Probe] = field(default_factory=dict)
    messages: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


def post(creator: str, n: int, now_ms: int, views: int) -> bytes:
    return orjson.dumps({
        "post_id": f"{creator}-p{n}", "creator_id": creator, "region": "ID",
        "content_type": CONTENT_TYPES[n % 4], "themes": [THEMES[n % 4]], "posted_at": now_ms,
        "views": views, "likes": views // 20, "comments": views // 200, "shares": views // 500,
    })  # fmt: skip


async def follow(base: str, token: str, feed: Feed) -> None:
    """Reads the board feed as a browser's EventSource would, until cancelled."""
    url = f"{base}/v1/leaderboards/overall/feed"
    timeout = httpx.Timeout(10.0, read=None)
    async with (
        httpx.AsyncClient(timeout=timeout) as http,
        http.stream("GET", url, params={"api_key": token}) as response,
    ):
        response.raise_for_status()
        event, data = "", ""
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(": ")
                if name == "event":
                    event = value
                elif name == "data":
                    data = value
                continue
            if event == "change" and data:
                now = time.time()
                feed.messages += 1
                body = orjson.loads(data)
                probe = feed.probes.get(body["change"]["creator_id"])
                if probe is not None and probe.received_s is None:
                    probe.received_s = now
                    probe.written_ms = int(body["id"].split("-", 1)[0])
                    feed.arrived.set()
            event, data = "", ""


async def load(producer: AIOKafkaProducer, topic: str, rate: float, creators: int) -> None:
    """`rate` posts a second of `creators` creators, counters growing, until cancelled."""
    tick = 0.05
    sent = 0
    started = time.monotonic()
    while True:
        due = int((time.monotonic() - started) * rate)
        now_ms = int(time.time() * 1000)
        while sent < due:
            creator = f"load-{sent % creators:06d}"
            n = sent // creators
            value = post(creator, n, now_ms, 1_000 + 37 * n + (sent * 7919) % 5_000)
            await producer.send(topic, value, key=creator.encode())
            sent += 1
        await asyncio.sleep(tick)


async def probe_phase(
    producer: AIOKafkaProducer, topic: str, feed: Feed, name: str, count: int, interval: float
) -> list[Probe]:
    """`count` probes `interval` apart; waits for the stragglers (at most 30 s)."""
    probes = []
    for i in range(count):
        creator = f"probe-{name}-{i:05d}"
        probe = Probe(creator, 0.0)
        feed.probes[creator] = probe
        probe.sent_s = time.time()
        await producer.send(topic, post(creator, 0, int(probe.sent_s * 1000), 5_000),
                            key=creator.encode())  # fmt: skip
        probes.append(probe)
        await asyncio.sleep(interval)
    deadline = time.monotonic() + 30
    while any(p.received_s is None for p in probes) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return probes


def summary(probes: list[Probe]) -> dict[str, Any]:
    seen = [p for p in probes if p.received_s is not None and p.written_ms is not None]
    total = [1000 * (p.received_s - p.sent_s) for p in seen if p.received_s is not None]
    worker = [p.written_ms - 1000 * p.sent_s for p in seen if p.written_ms is not None]
    api = [1000 * p.received_s - p.written_ms for p in seen
           if p.received_s is not None and p.written_ms is not None]  # fmt: skip
    out: dict[str, Any] = {"probes": len(probes), "received": len(seen)}
    for key, values in (("event_to_sse_ms", total), ("event_to_redis_ms", worker),
                        ("redis_to_sse_ms", api)):  # fmt: skip
        if values:
            out[key] = {"p50": round(percentile(values, 50), 1),
                        "p99": round(percentile(values, 99), 1),
                        "max": round(max(values), 1)}  # fmt: skip
    return out


def api_address(proc: Proc, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        found = _LISTENING.search(proc.log_path.read_text(errors="replace"))
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise RuntimeError(f"the read API did not start:\n{proc.tail()}")


async def run(args: argparse.Namespace, ctx: Ctx) -> dict[str, Any]:
    app_id = ctx.name("widget")
    topics = (ctx.name("posts"), ctx.name("tags"), ctx.name("orders"))
    await create_topics(ctx, topics)
    env = consumer_env(ctx, app_id, topics, ctx.workdir / "worker", ctx.workdir / "first")
    prefix = env["CREATOR_SCORES_REDIS_PREFIX"]
    worker = Proc("worker", python_argv("-m", "streams.cli", "worker", "--loglevel", "warning"),
                  env, ctx.workdir / "worker", ctx.workdir / "worker.log")  # fmt: skip
    api = Proc("api", python_argv("-m", "streams.cli", "serve", "--port", "0"),
               env, ctx.workdir / "api", ctx.workdir / "api.log")  # fmt: skip
    redis = Redis.from_url(ctx.redis_url)
    producer = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap, linger_ms=0, acks=1)
    load_producer = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap, linger_ms=5, acks=1)
    tasks: list[asyncio.Task[None]] = []
    try:
        _, token = await Keyring(redis, Keys(prefix)).create("bench", None, 10**9)
        base = api_address(api)
        ctx.say(f"worker pid {worker.pid}, read API {base}")
        await producer.start()
        await load_producer.start()
        feed = Feed()
        tasks.append(asyncio.create_task(follow(base, token, feed)))
        # Start-up: the worker joins its group and reads; probes until one comes through.
        deadline = time.monotonic() + 120
        i = 0
        while not feed.arrived.is_set():
            worker.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no probe reached the feed in 120 s:\n{worker.tail()}")
            creator = f"probe-warm-{i:05d}"
            feed.probes[creator] = Probe(creator, time.time())
            await producer.send(topics[0], post(creator, 0, int(time.time() * 1000), 5_000),
                                key=creator.encode())  # fmt: skip
            i += 1
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        ctx.say(f"worker ready; {args.probes} probes, {args.interval} s apart, idle")
        idle = summary(await probe_phase(producer, topics[0], feed, "idle", args.probes,
                                         args.interval))  # fmt: skip
        ctx.say(f"idle: {idle}")
        tasks.append(asyncio.create_task(
            load(load_producer, topics[0], args.load_rate, args.load_creators)))  # fmt: skip
        await asyncio.sleep(args.warmup)
        before = feed.messages
        ctx.say(f"{args.probes} probes with {args.load_rate:g} posts/s of "
                f"{args.load_creators:,} creators alongside")  # fmt: skip
        started = time.monotonic()
        loaded = summary(await probe_phase(producer, topics[0], feed, "loaded", args.probes,
                                           args.interval))  # fmt: skip
        loaded["feed_messages_per_s"] = round(
            (feed.messages - before) / (time.monotonic() - started), 1
        )
        worker.check_alive()
        ctx.say(f"loaded: {loaded}")
        return {"idle": idle, "loaded": loaded}
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await producer.stop()
        with contextlib.suppress(Exception):
            await load_producer.stop()
        api.stop()
        worker.stop()
        await redis.aclose()
        await delete_redis_prefix(ctx.redis_url, prefix)
        await delete_topics(ctx, await topics_of_run(ctx))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200, help="probes per phase")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between probes")
    parser.add_argument("--load-rate", type=float, default=1_000.0, help="posts/s alongside")
    parser.add_argument("--load-creators", type=int, default=5_000)
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds of load before the loaded probes")  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None,
        help="results JSON [default: bench/results/<run id>-widget-delay.json]",
    )  # fmt: skip
    args = parser.parse_args(argv)
    settings = load_settings()
    run_id = new_run_id()
    workdir = Path(f"/tmp/bench-widget-{run_id}")
    workdir.mkdir(parents=True)
    ctx = Ctx(run_id, settings.kafka_bootstrap_servers, settings.redis_url, workdir)
    results = asyncio.run(run(args, ctx))
    given = argv if argv is not None else sys.argv[1:]
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": " ".join(["python -m bench.widget_delay", *given]),
        "probes": args.probes,
        "interval_s": args.interval,
        "load_rate": args.load_rate,
        "load_creators": args.load_creators,
        "machine": machine(),
        **results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    out = args.out or REPO_ROOT / "bench" / "results" / f"{run_id}-widget-delay.json"
    out.write_text(text + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
