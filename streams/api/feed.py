"""Live score changes as Server-Sent Events, for one creator or one leaderboard.

The worker appends every score-change record to a capped Redis stream (`Keys.changes`)
with the card it describes. One reader per API process follows that stream (XREAD BLOCK,
on a connection of its own) and hands each record to the subscribers whose filter takes
it, so a thousand open widgets cost one blocked read, not a thousand. Each event's id is
the record's stream id: a client that reconnects with `Last-Event-ID` (browsers do it by
themselves) first gets what it missed from the stream (XRANGE), then the live ones; if
what it missed was already trimmed from the stream it gets a `reset` event, so it can
read the board again instead of trusting a feed with a hole.

A slow subscriber is not waited for: past `QUEUE_SIZE` pending records its feed ends
with a `reset` event, and the client reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from streams.keys import GLOBAL_REGION, BoardRef, Keys

log = logging.getLogger(__name__)

#: Records a subscriber may have pending before its feed is ended.
QUEUE_SIZE: Final = 1_000
#: A feed with nothing to send sends a comment this often, seconds.
KEEPALIVE_S: Final = 15.0
#: What `changes` yields besides records.
KEEPALIVE: Final = "keepalive"
RESET: Final = "reset"
#: Stream entries read per round trip when a reconnecting client catches up.
BACKLOG_PAGE: Final = 1_000


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change stream: its id and the record (the score-changes topic's JSON)."""

    id: str
    creator_id: str
    record: dict[str, Any]

    @classmethod
    def of(cls, entry_id: bytes | str, fields: dict[Any, Any]) -> Change | None:
        raw = fields.get(b"change", fields.get("change"))
        try:
            record = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            return None
        if not isinstance(record, dict):
            return None
        text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        return cls(text, str(record.get("creator_id", "")), record)


def stream_id(text: str) -> tuple[int, int]:
    """A stream id as a comparable pair; ValueError for what is not one."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def for_creator(creator_id: str) -> Callable[[Change], bool]:
    return lambda change: change.creator_id == creator_id


def for_board(board: BoardRef) -> Callable[[Change], bool]:
    """Records that can move a board: creators of its region whose board score moved by
    more than the change threshold, first cards, and creators that left every board."""

    def wants(change: Change) -> bool:
        record = change.record
        if board.region != GLOBAL_REGION and record.get("region") != board.region:
            return False
        changed = record.get("changed") or ()
        return board.score in changed or record.get("old") is None or not record.get("active")

    return wants


@dataclass(eq=False)
class Subscription:
    wants: Callable[[Change], bool]
    queue: asyncio.Queue[Change | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False


class ChangeHub:
    """Follows the change stream for every subscriber of this process."""

    def __init__(self, client: Redis, keys: Keys, block_ms: int = 2_000) -> None:
        self._redis = client
        self._stream = keys.changes()
        self._block_ms = block_ms
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.asynccontextmanager
    async def subscribe(self, wants: Callable[[Change], bool]) -> AsyncIterator[Subscription]:
        """A subscription to the records from now on (the reader starts with the first)."""
        if self._task is None or self._task.done():
            self._started = asyncio.Event()
            self._task = asyncio.create_task(self._follow(), name="change-hub")
        await self._started.wait()
        sub = Subscription(wants)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    async def backlog(self, after: str, wants: Callable[[Change], bool]) -> list[Change] | None:
        """The records after id `after` that `wants` takes; None if some were trimmed."""
        redis: Any = self._redis  # redis-py types stream replies loosely
        if not await redis.xrange(self._stream, min=after, max=after):
            oldest = await redis.xrange(self._stream, count=1)
            if not oldest or stream_id(_text(oldest[0][0])) > stream_id(after):
                return None  # the client's last record is gone: it may have missed others
        out: list[Change] = []
        while True:
            entries = await redis.xrange(self._stream, min=f"({after}", count=BACKLOG_PAGE)
            for entry_id, fields in entries:
                change = Change.of(entry_id, fields)
                if change is not None and wants(change):
                    out.append(change)
            if len(entries) < BACKLOG_PAGE:
                return out
            after = _text(entries[-1][0])

    async def _follow(self) -> None:
        redis: Any = self._redis
        last = "0-0"
        while True:
            try:
                newest = await redis.xrevrange(self._stream, count=1)
                last = _text(newest[0][0]) if newest else "0-0"
                break
            except (RedisError, OSError) as exc:
                log.warning("change feed cannot read %s: %s; retrying", self._stream, exc)
                await asyncio.sleep(1.0)
        self._started.set()
        while True:
            try:
                replies = await redis.xread({self._stream: last}, count=500, block=self._block_ms)
            except (RedisError, OSError) as exc:
                log.warning("change feed lost %s: %s; retrying", self._stream, exc)
                await asyncio.sleep(1.0)
                continue
            for _, entries in replies or ():
                for entry_id, fields in entries:
                    last = _text(entry_id)
                    change = Change.of(entry_id, fields)
                    if change is not None:
                        self._dispatch(change)

    def _dispatch(self, change: Change) -> None:
        for sub in list(self._subscribers):
            if sub.overflowed or not sub.wants(change):
                continue
            try:
                sub.queue.put_nowait(change)
            except asyncio.QueueFull:
                sub.overflowed = True
                self._subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)  # ends the feed with a reset


async def changes(
    hub: ChangeHub,
    wants: Callable[[Change], bool],
    last_event_id: str | None,
    keepalive_s: float = KEEPALIVE_S,
) -> AsyncIterator[Change | str]:
    """The records `wants` takes, from after `last_event_id` (or from now) on; `KEEPALIVE`
    after `keepalive_s` without one (proxies close silent connections), and `RESET` (then
    the end) when the client missed records."""
    async with hub.subscribe(wants) as sub:
        sent = (0, 0)
        if last_event_id:
            backlog = await hub.backlog(last_event_id, wants)
            if backlog is None:
                yield RESET
                return
            for change in backlog:
                sent = stream_id(change.id)
                yield change
        while True:
            try:
                async with asyncio.timeout(keepalive_s):
                    live = await sub.queue.get()
            except TimeoutError:
                yield KEEPALIVE
                continue
            if live is None:
                yield RESET
                return
            if stream_id(live.id) > sent:
                yield live


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
