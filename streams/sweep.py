"""Time moves scores: every held creator's window follows the stream time, without events.

A creator is scored as of the stream time (docs/scoring.md, "Stream time"), but a flush
only scores the creators it has events for. A creator that went quiet would keep its
last card, and its places on the boards, for ever. So when the stream time enters a new
UTC day, each worker re-scores every creator it holds whose window ends on an earlier
day (`Pipeline.sweep`): older days fall out, the cards move and are published with the
cause "window_rolled", a creator with nothing left in its window leaves every board
(its hash says `active` 0) and, once it has no ids left to recognise either, its state
is deleted. The same pass re-scores every creator last scored with another model version
("model_rollout"), so a new model reaches all creators, not only those with new events;
and an operator can ask for a full pass (`creator-scores rescore`, "rescore").

The stream time is the newest event time of the whole stream. A worker sees only its
partitions, so the workers share it through Redis (`Keys.stream_time`: `ZADD GT`, it
only grows): a worker whose partitions are quiet still rolls its creators' windows.

A pass runs in slices between batches (the agent's batches and the slices take turns on
`exclusive`, as the Redis repair's do), so live events keep their freshness; a slice is
computed while the previous one's writes are on their way (`streams.turns`). It needs no
bookkeeping to survive a restart or a rebalance: a creator swept is no longer due, so a
slice done again changes nothing, and a worker that starts (or gets new partitions) runs
a pass over what it holds, which finds whatever an interrupted pass left.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from redis.asyncio import Redis

from scoring.columns import DAY_MS
from streams import metrics
from streams.keys import Keys
from streams.partitioning import partitions_for
from streams.periodic import run_every
from streams.pipeline import BatchResult, Pipeline
from streams.repair import HeldStates, Ownership
from streams.turns import Exclusive

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_SLICE", "Pass", "RescoreRequests", "StreamClock", "Sweeper"]

#: Creators looked at per slice: about 40 ms when all are due (bench/sweep.py: 500 keeps live
#: freshness p99 within 1.3x of its figure without a sweep; 2,000 let it reach 2.6x).
DEFAULT_SLICE = 500
#: The member of the stream-time sorted set.
_MEMBER = "stream"


class StreamClock:
    """The stream time, shared between workers through Redis, with a bounded wall-clock
    fallback for a stream gone silent.

    With `idle_s` > 0: once the shared stream time has not moved and no records have
    reached this worker for `idle_s` seconds (wall clock), the stream time follows the
    wall clock, `idle_s` behind it (never back). So a stream that stops altogether still
    rolls its creators' windows: they leave the boards at most `idle_s` later than if
    events had kept coming. A replay of old events that goes quiet likewise ends rolled
    up to the wall clock (docs/scoring.md, "Stream time"); `idle_s` 0 turns this off.
    """

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        *,
        idle_s: float = 0.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = client
        self._key = keys.stream_time()
        self._idle_s = idle_s
        self._wall = wall
        self._monotonic = monotonic
        self._seen_ms = -1  # the stream time from events, as of the last sync
        self._still_since = monotonic()  # when it last moved
        self._advanced_to = -1  # the last stream time this clock set from the wall clock

    async def sync(self, pipeline: Pipeline) -> int:
        """Publish the pipeline's stream time and take the stream's; returns the latter."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if pipeline.stream_ms >= 0:
                pipe.zadd(self._key, {_MEMBER: pipeline.stream_ms}, gt=True)
            pipe.zscore(self._key, _MEMBER)
            replies = await pipe.execute()
        shared = replies[-1]
        if shared is not None:
            pipeline.observe_stream_time(int(shared))
        if self._idle_s > 0 and pipeline.stream_ms >= 0:
            await self._follow_wall_clock(pipeline)
        return pipeline.stream_ms

    async def _follow_wall_clock(self, pipeline: Pipeline) -> None:
        now = self._monotonic()
        current = pipeline.stream_ms
        if current != self._advanced_to and current != self._seen_ms:
            self._seen_ms = current  # moved by events (here or on another worker)
            self._still_since = now
            return
        quiet = min(now - self._still_since, now - pipeline.last_records_at)
        if quiet < self._idle_s:
            return
        target = int((self._wall() - self._idle_s) * 1000)
        if target <= current:
            return
        if self._advanced_to < 0:
            log.info("no events for %.0fs: the stream time follows the wall clock, %.0fs behind "
                     "it, until events come again (CREATOR_SCORES_STREAM_IDLE_S)",
                     quiet, self._idle_s)  # fmt: skip
        pipeline.observe_stream_time(target)
        self._advanced_to = target
        metrics.STREAM_TIME_IDLE_ADVANCES.inc()
        await self._redis.zadd(self._key, {_MEMBER: target}, gt=True)


class RescoreRequests:
    """An operator's request for a full re-score, and its progress, kept in Redis.

    `creator-scores rescore` writes a request id (`Keys.rescore`); each worker that owns
    partitions the request has not reached yet runs a full pass (`Sweeper.sweep` with
    `rescore`), adds what it looked at to the request's progress, and then adds its
    partitions to the request's set of partitions done. The request is complete when
    every partition is in that set; a rebalance in the middle leaves some out, and
    their new owner runs the pass for them.
    """

    #: How long a request's progress is kept, seconds.
    KEEP_S = 7 * 24 * 3600

    def __init__(self, client: Redis, keys: Keys) -> None:
        self._redis = client
        self._key = keys.rescore()

    def _progress(self, request: str) -> str:
        return f"{self._key}:{request}"

    def _parts(self, request: str) -> str:
        return f"{self._key}:{request}:partitions"

    async def request(self, now_ms: int) -> str:
        """Ask for a full pass; returns the request's id."""
        request = uuid.uuid4().hex[:16]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key, mapping={"id": request, "requested_at": now_ms})
            pipe.hset(self._progress(request), mapping={"total": 0, "done": 0})
            pipe.expire(self._progress(request), self.KEEP_S)
            await pipe.execute()
        return request

    async def pending(self, owned: frozenset[int]) -> str | None:
        """The request whose pass this worker still owes (some owned partition not done)."""
        request = await self._redis.hget(self._key, "id")
        if request is None:
            return None
        request_id = request.decode() if isinstance(request, bytes) else str(request)
        done = await self._redis.smembers(self._parts(request_id))
        finished = {int(p) for p in done}
        return request_id if owned - finished else None

    async def add(self, request: str, *, total: int = 0, done: int = 0) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            if total:
                pipe.hincrby(self._progress(request), "total", total)
            if done:
                pipe.hincrby(self._progress(request), "done", done)
            await pipe.execute()

    async def finish(self, request: str, partitions: frozenset[int]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            if partitions:
                pipe.sadd(self._parts(request), *sorted(partitions))
            pipe.expire(self._parts(request), self.KEEP_S)
            await pipe.execute()

    async def progress(self, request: str) -> tuple[int, int, frozenset[int]]:
        """(creators looked at, creators to look at, partitions done) of a request."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._progress(request), ["done", "total"])
            pipe.smembers(self._parts(request))
            (done, total), parts = await pipe.execute()
        return int(done or 0), int(total or 0), frozenset(int(p) for p in parts)


@dataclass
class Pass:
    """What one sweep over the held creators did."""

    looked_at: int = 0
    rescored: int = 0
    published: int = 0
    seconds: float = 0.0
    complete: bool = True


class Sweeper:
    """Runs a pass over this worker's creators whenever one is due (see the module doc)."""

    def __init__(
        self,
        pipeline: Pipeline,
        states: HeldStates,
        partitions: int,
        owned: Ownership,
        exclusive: Exclusive,
        *,
        clock: StreamClock | None = None,
        requests: RescoreRequests | None = None,
        slice_size: int = DEFAULT_SLICE,
        monotonic: Callable[[], float] = time.perf_counter,
    ) -> None:
        if slice_size < 1:
            raise ValueError(f"slice_size must be at least 1, got {slice_size}")
        self._pipeline = pipeline
        self._states = states
        self._partitions = partitions
        self._owned = owned
        self._exclusive = exclusive
        self._clock = clock
        self._requests = requests
        self._slice = slice_size
        self._monotonic = monotonic
        #: (stream day, partitions owned) of the last complete pass.
        self._done: tuple[int, frozenset[int]] | None = None

    def due(self) -> bool:
        """Whether a pass is due: a new stream day, other partitions, or none run yet."""
        owned = self._owned()
        if owned is None:
            return False
        return self._done != (self._day(), owned)

    def _day(self) -> int:
        ms = self._pipeline.stream_ms
        return ms // DAY_MS if ms >= 0 else -1

    async def run(self, interval_s: float) -> None:
        """Share the stream time and sweep when due, every `interval_s`, until cancelled."""
        await run_every(interval_s, self.step, "stream time sync or sweep", log)

    async def step(self) -> None:
        """Share the stream time; answer an operator's request, else sweep if due."""
        if self._clock is not None:
            await self._clock.sync(self._pipeline)
        if not await self._answer_request() and self.due():
            await self.sweep()

    async def _answer_request(self) -> bool:
        """Run the full pass an operator asked for, if this worker owes one; whether it ran."""
        requests = self._requests
        owned = self._owned()
        if requests is None or not owned:
            return False
        request = await requests.pending(owned)
        if request is None:
            return False
        log.info("re-scoring every creator held (request %s from creator-scores rescore)",
                 request)  # fmt: skip
        reported = -1  # creators looked at so far (-1: the total not added yet)

        async def report(done: int, total: int) -> None:
            nonlocal reported
            if reported < 0:
                await requests.add(request, total=total)
                reported = 0
            await requests.add(request, done=done - reported)
            reported = done

        result = await self.sweep(rescore=True, progress=report)
        if result.complete:
            await requests.finish(request, owned)
        return True

    async def sweep(
        self,
        *,
        rescore: bool = False,
        progress: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> Pass:
        """One pass over every creator held for the owned partitions (see the module doc).

        Stops early (`Pass.complete` false) when the partitions owned change; the next
        pass takes up what is left. `progress(done, total)` is called after each slice.
        """
        started = self._monotonic()
        owned = self._owned()
        done = Pass(complete=False)
        if owned is None:
            return done
        day = self._day()
        keys = list(map(bytes, self._states.keys()))
        total = len(keys)
        metrics.SWEEP_REMAINING.set(total)
        pipeline = self._pipeline
        try:
            for start in range(0, total, self._slice):
                chunk = keys[start : start + self._slice]
                # The slice is computed while the previous one's writes are on their way,
                # and its own are left on their way in turn (`streams.turns`).
                async with self._exclusive.turn(settle=False) as turn:
                    if self._owned() != owned:
                        _count(done, await turn.settle())
                        log.info("sweep stopped by a rebalance after %d of %d creators; the "
                                 "next pass takes it up", start, total)  # fmt: skip
                        return done
                    where = partitions_for(chunk, self._partitions).tolist()
                    mine = [k for k, p in zip(chunk, where, strict=True) if p in owned]
                    prepared = pipeline.prepare_sweep(mine, rescore=rescore)
                    _count(done, await turn.settle())
                    turn.defer(pipeline.commit(prepared), prepared.keys())
                done.looked_at += len(mine)
                done.rescored += prepared.result.creators
                metrics.SWEEP_REMAINING.set(total - start - len(chunk))
                if progress is not None:
                    await progress(start + len(chunk), total)
                await asyncio.sleep(0)  # let batches and heartbeats through between slices
            async with self._exclusive.turn(settle=False) as turn:
                _count(done, await turn.settle())
        finally:
            metrics.SWEEP_REMAINING.set(0)
        done.complete = True
        done.seconds = self._monotonic() - started
        self._done = (day, owned)
        metrics.SWEEPS.inc()
        if done.rescored or rescore:
            log.info("sweep: %d of %d held creators re-scored (stream day %s), %d cards "
                     "published, in %.2fs", done.rescored, done.looked_at,
                     _date(day), done.published, done.seconds)  # fmt: skip
        return done


def _count(done: Pass, written: BatchResult | None) -> None:
    if written is not None:
        done.published += written.snapshots_written


def _date(day: int) -> str:
    return "none" if day < 0 else str(np.datetime64(day, "D"))
