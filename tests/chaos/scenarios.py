"""The faults, each a short script over a running `Run`, and the driver around them.

Every scenario runs on the same events as the undisturbed reference, in a run of
its own (fresh app id, topics and prefix): workers start, the feed produces the
events at a steady pace, the fault lands at a set point of the feed, and the run
ends once the group has committed everything. `seconds to serving` is measured
from the end of the fault (the kill, the signal, the last join, the moment Redis
or the broker came back) until the group has committed every record that had
been produced by then.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from tests.chaos.compare import Outcome, compare
from tests.chaos.run import CANONICAL, Feed, Run, Send, Snapshot, as_sends
from tests.chaos.stack import ExternalStack, PrivateStack
from tests.support.events import EventSet

Stack = PrivateStack | ExternalStack


@dataclass
class Context:
    run: Run
    feed: Feed
    stack: Stack


#: A fault: given the running context, do it and return when it ended (monotonic).
Fault = Callable[[Context], Awaitable[float]]


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    workers: int
    fault: Fault
    #: "pass", or why it is expected to fail with today's code
    expected: str = "pass"
    static: bool = False
    private_stack: bool = False
    shape: Callable[[Sequence[Send]], list[Send]] | None = None
    #: Settings every worker of the scenario gets (environment variables).
    env: Mapping[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- faults


def joins(at: Sequence[float]) -> Fault:
    async def fault(ctx: Context) -> float:
        end = time.monotonic()
        for i, fraction in enumerate(at, start=2):
            await ctx.feed.reached(fraction)
            ctx.run.start(f"w{i}", static=ctx.run.static)
            end = time.monotonic()
        return end

    return fault


def kill9_one(at: float) -> Fault:
    async def fault(ctx: Context) -> float:
        await ctx.feed.reached(at)
        ctx.run.kill9("w2")
        return time.monotonic()

    return fault


def sigterm_and_restart(at: float, down_s: float = 3.0) -> Fault:
    async def fault(ctx: Context) -> float:
        await ctx.feed.reached(at)
        signalled = time.monotonic()
        code = await asyncio.to_thread(ctx.run.sigterm, "w2")
        if code != 0:
            ctx.run.notes.append(f"w2 exited with {code} on SIGTERM")
        await asyncio.sleep(max(0.0, down_s - (time.monotonic() - signalled)))
        ctx.run.start("w2", static=ctx.run.static)
        return signalled

    return fault


def redis_frozen(at: float, seconds: float) -> Fault:
    async def fault(ctx: Context) -> float:
        assert isinstance(ctx.stack, PrivateStack)
        await ctx.feed.reached(at)
        ctx.stack.freeze_redis()
        try:
            await asyncio.sleep(seconds)
        finally:
            ctx.stack.thaw_redis()
        return time.monotonic()

    return fault


def redis_back_empty(at: float, seconds: float) -> Fault:
    async def fault(ctx: Context) -> float:
        assert isinstance(ctx.stack, PrivateStack)
        await ctx.feed.reached(at)
        ctx.stack.kill_redis()
        try:
            await asyncio.sleep(seconds)
        finally:
            await asyncio.to_thread(ctx.stack.start_redis_empty)
        return time.monotonic()

    return fault


def broker_restart(at: float, seconds: float) -> Fault:
    async def fault(ctx: Context) -> float:
        assert isinstance(ctx.stack, PrivateStack)
        await ctx.feed.reached(at)
        # The feed holds its records while the broker is down, as a client with a
        # buffer would; what is measured is the worker.
        ctx.feed.pause()
        stopped = time.monotonic()
        try:
            await asyncio.to_thread(ctx.stack.stop_kafka)
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - stopped)))
        finally:
            await asyncio.to_thread(ctx.stack.start_kafka)
            ctx.feed.resume()
        return time.monotonic()

    return fault


def marks(at: float) -> Fault:
    """No fault of ours: the records are the fault; timed from the feed passing `at`."""

    async def fault(ctx: Context) -> float:
        return await ctx.feed.reached(at)

    return fault


def crc32_then_join(at: float) -> Fault:
    async def fault(ctx: Context) -> float:
        await ctx.feed.reached(at)
        ctx.run.start("w2")
        return time.monotonic()

    return fault


# ----------------------------------------------------------------------------- records


def with_hostile(sends: Sequence[Send], at: float = 0.5) -> list[Send]:
    """The events with hostile records spliced in at `at` of the stream."""
    cut = int(len(sends) * at)
    return [*sends[:cut], *hostile_records(), *sends[cut:]]


def hostile_records() -> list[Send]:
    """Records no validator should let through, each labelled; none may stop the stream."""
    rng = random.Random(99)
    posts, tags, orders = CANONICAL.posts_topic, CANONICAL.tags_topic, CANONICAL.orders_topic
    post = {
        "post_id": "hostile-p",
        "creator_id": "hostile-1",
        "region": "SG",
        "content_type": "video",
        "themes": ["beauty"],
        "posted_at": 1_760_000_000_000,
        "views": 1,
        "likes": 1,
        "comments": 1,
        "shares": 1,
    }

    def post_with(**fields: object) -> bytes:
        return orjson.dumps({**post, **fields})

    key = b"hostile-1"
    out = [
        # About 1 MB: an id far past the limit, and junk that is not JSON.
        Send(posts, key, post_with(post_id="p" * 1_000_000), label="1mb-id"),
        Send(posts, key, rng.randbytes(1_000_000), label="1mb-junk"),
        # A 100 KB key (not a creator id) on a value that does not parse.
        Send(tags, b"k" * 100_000, b"{not json", label="huge-key"),
        # Past the broker's record limit: refused at the door, reported as such.
        Send(orders, key, b"x" * 1_200_000, label="oversized"),
        # Nesting past any parser's depth, and nesting where a list of names belongs.
        Send(
            posts,
            key,
            b'{"post_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            label="deep-nesting",
        ),
        Send(posts, key, post_with(themes=_nested(200)), label="nested-themes"),
        # Huge lists where a list of a few names or a number belongs.
        Send(posts, key, post_with(themes=["a"] * 100_000), label="huge-list"),
        Send(posts, key, post_with(views=list(range(100_000))), label="list-for-number"),
        # Invalid UTF-8 inside a string, and a bare invalid byte sequence.
        Send(
            posts, key, b'{"post_id": "p\xff\xfe", "creator_id": "hostile-1"}', label="invalid-utf8"
        ),
        Send(orders, None, b"\xc3\x28\xa0\xa1", label="invalid-utf8-bare"),
        # Non-finite numbers, which JSON does not have.
        Send(posts, key, post_with(views=1).replace(b'"views":1', b'"views":NaN'), label="nan"),
        Send(
            posts,
            key,
            post_with(views=1).replace(b'"views":1', b'"views":Infinity'),
            label="infinity",
        ),
        Send(
            posts, key, post_with(views=1).replace(b'"views":1', b'"views":1e400'), label="overflow"
        ),
        Send(
            posts,
            key,
            post_with(views=1).replace(b'"views":1', b'"views":' + b"9" * 400),
            label="huge-int",
        ),
        # Times at and past the ends of what a time can be.
        Send(posts, key, post_with(posted_at=10**18), label="time-far-future"),
        Send(posts, key, post_with(posted_at=-1), label="time-negative"),
        Send(posts, key, post_with(posted_at=0), label="time-epoch"),
        Send(posts, key, post_with(posted_at="9999-12-31T23:59:59.999Z"), label="time-9999"),
        Send(posts, key, post_with(posted_at="0001-01-01T00:00:00Z"), label="time-0001"),
        Send(posts, key, post_with(posted_at="2025-13-45T99:99:99Z"), label="time-invalid"),
        Send(tags, key, orjson.dumps({"tag_id": "t", "tagged_at": 2**63}), label="time-2^63"),
    ]
    return out


def _nested(depth: int) -> object:
    value: object = "beauty"
    for _ in range(depth):
        value = [value]
    return value


def crc32_half(sends: Sequence[Send], after: float = 0.4) -> list[Send]:
    """After `after` of the stream, every other record goes out partitioned by CRC-32."""
    cut = int(len(sends) * after)
    return [replace(s, via="crc32") if i >= cut and i % 2 else s for i, s in enumerate(sends)]


# ----------------------------------------------------------------------------- catalogue


SCENARIOS: list[Scenario] = [
    Scenario("join-2-3", "1 worker, a 2nd joins at 30% of the feed, a 3rd at 60%", 1,
             joins([0.3, 0.6])),
    Scenario("join-2-3-static", "the same, static membership", 1, joins([0.3, 0.6]),
             static=True),
    Scenario("kill9", "3 workers, one killed with kill -9 at 40%", 3, kill9_one(0.4)),
    Scenario("kill9-static", "the same, static membership", 3, kill9_one(0.4), static=True),
    Scenario("sigterm", "3 workers, one stopped with SIGTERM at 40%, restarted 3 s later", 3,
             sigterm_and_restart(0.4)),
    Scenario("sigterm-static", "the same, static membership (restarted under its id)", 3,
             sigterm_and_restart(0.4), static=True),
    Scenario("redis-frozen-30s", "Redis frozen (SIGSTOP) for 30 s at 30%, then SIGCONT", 1,
             redis_frozen(0.3, 30.0), private_stack=True),
    Scenario("redis-empty-30s", "Redis killed at 30%, back empty 30 s later", 1,
             redis_back_empty(0.3, 30.0), private_stack=True),
    Scenario("redis-frozen-past-poll", "Redis frozen for 45 s at 30%, past the worker's poll "
             "timeout (CREATOR_SCORES_MAX_POLL_INTERVAL_S 20 s: it leaves the group)", 1,
             redis_frozen(0.3, 45.0), private_stack=True,
             env={"CREATOR_SCORES_MAX_POLL_INTERVAL_S": "20"}),
    Scenario("redis-empty-past-poll", "Redis killed at 30%, back empty 45 s later, past the "
             "worker's poll timeout (20 s)", 1, redis_back_empty(0.3, 45.0), private_stack=True,
             env={"CREATOR_SCORES_MAX_POLL_INTERVAL_S": "20"}),
    Scenario("broker-restart-20s", "the broker's JVM stopped (SIGTERM) at 40%, back 20 s later",
             1, broker_restart(0.4, 20.0), private_stack=True),
    Scenario("hostile-records", "21 hostile records (1 MB values, huge keys, deep nesting, "
             "huge lists, invalid UTF-8, NaN/Infinity, extreme times) at 50%", 1,
             marks(0.5), shape=with_hostile),
    Scenario("crc32-producer", "from 40%, every other record partitioned by CRC-32 "
             "(librdkafka's default); a 2nd worker joins at 50%", 1,
             crc32_then_join(0.5), shape=crc32_half),
]  # fmt: skip

BY_NAME = {s.name: s for s in SCENARIOS}


# ----------------------------------------------------------------------------- driver


async def run_reference(stack: Stack, events: EventSet, workdir: Path, tag: str) -> Snapshot:
    """One worker, the events all at once, nothing disturbed."""
    run = Run(stack, f"chaos-{tag}-reference", workdir / "reference")
    try:
        await run.create_topics()
        run.start("w1")
        feed = Feed(run, as_sends(events.records), seconds=0)
        await feed.run_feed()
        reached = await run.wait_reached(None, timeout=300, since=time.monotonic())
        if reached is None or run.crashed():
            raise RuntimeError(
                f"the reference run did not finish (exits {run.crashed()}):\n{run.log_tail('w1')}"
            )
        return await run.snapshot()
    finally:
        run.stop_all()
        await run.cleanup()


async def run_scenario(
    scenario: Scenario,
    stack: Stack,
    events: EventSet,
    reference: Snapshot,
    workdir: Path,
    tag: str,
    *,
    feed_seconds: float,
    settle_timeout: float = 150.0,
) -> Outcome:
    outcome = Outcome(scenario=scenario.name, expected=scenario.expected)
    if scenario.private_stack and not stack.owned:
        outcome.notes.append("needs the suite's private stack: not run")
        return outcome
    started = time.monotonic()
    run = Run(stack, f"chaos-{tag}-{scenario.name}", workdir / scenario.name)
    run.static = scenario.static
    run.env.update(scenario.env)
    try:
        await run.create_topics()
        sends = as_sends(events.records)
        if scenario.shape is not None:
            sends = scenario.shape(sends)
        for i in range(1, scenario.workers + 1):
            run.start(f"w{i}", static=scenario.static)
        feed = Feed(run, sends, seconds=feed_seconds)
        feeding = asyncio.create_task(feed.run_feed())
        ctx = Context(run=run, feed=feed, stack=stack)
        faulting = asyncio.create_task(scenario.fault(ctx))
        try:
            # A feed that fails (the broker refused it for good) must not leave the fault
            # waiting for a point of the feed that never comes.
            await asyncio.wait({faulting, feeding}, return_when=asyncio.FIRST_COMPLETED)
            if feeding.done() and feeding.exception() is not None:
                raise RuntimeError(f"the feed failed: {feeding.exception()!r}")
            fault_end = await faulting
            targets = None
            for _ in range(40):
                try:
                    targets = await run.ends()
                    break
                except Exception:
                    await asyncio.sleep(0.5)
            serving = asyncio.create_task(
                run.wait_reached(targets, timeout=settle_timeout, since=fault_end)
            )
            await feeding
        except BaseException:
            feeding.cancel()
            faulting.cancel()
            raise
        outcome.seconds_to_serving = await serving
        outcome.caught_up = (
            await run.wait_reached(None, timeout=settle_timeout, since=time.monotonic()) is not None
        )
        if not outcome.caught_up:
            outcome.notes.append(f"still behind: {await run.behind()}")
        crashed = run.crashed()
        outcome.worker_exits = {"crashed": crashed, "signalled": dict(run.exits)}
        for name in crashed:
            outcome.notes.append(f"{name} exited by itself:\n{run.log_tail(name, 15)}")
        if feed.librdkafka != "not used":
            outcome.notes.append(f"CRC-32 producer: {feed.librdkafka}")
        outcome.notes.extend(run.notes)
        if outcome.caught_up:
            waited = await run.wait_redis_complete(timeout=60)
            if waited is None:
                outcome.notes.append("Redis never marked complete (partition markers)")
            elif waited > 1:
                outcome.notes.append(f"Redis marked complete {waited:.1f} s after catch-up "
                                     "(the repair republished from the state)")  # fmt: skip
        got = await run.snapshot()
        compare(outcome, reference, got, hostile=feed.placed)
        if not outcome.passed and outcome.caught_up:
            # Everything was committed, so Redis should be final; look again a little later
            # to tell a late write (reported) from a lasting difference.
            await asyncio.sleep(10)
            again = compare(Outcome(scenario.name, scenario.expected), reference,
                            await run.snapshot(), hostile=feed.placed)  # fmt: skip
            if again.creators_different != outcome.creators_different:
                outcome.notes.append(
                    f"10 s later {again.creators_different} creators differed "
                    f"(at catch-up: {outcome.creators_different})"
                )
        outcome.error_log_lines = run.error_lines()
    except Exception as exc:
        outcome.notes.append(f"the scenario could not complete: {exc!r}")
        for name in [*run.workers, *run.exits]:
            outcome.notes.append(f"{name} log:\n{run.log_tail(name, 15)}")
    finally:
        run.stop_all()
        await run.cleanup()
        outcome.wall_s = round(time.monotonic() - started, 1)
    return outcome
