"""Writes creator snapshots and leaderboards to Redis, one pipeline per batch.

Every write is a snapshot (HSET of the whole hash, ZADD of absolute scores, ZREM
from boards left), never an increment, so replaying a batch converges to the same
Redis state. Keys come from `streams.keys` only; board ids travel without the
prefix and get it here. The sink retries a failed batch with backoff until it goes
through: a batch is never skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from streams import metrics
from streams.keys import Keys
from streams.sinks.base import Backoff, CreatorSnapshot

log = logging.getLogger(__name__)

_pack_command = hiredis.pack_command


def build_redis(url: str) -> Redis:
    """A client for the sink: failures surface at once, and the sink's backoff (which counts
    them in metrics) does the retrying instead of redis-py's own multi-second retry loop."""
    return Redis.from_url(
        url,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=2.0,
        socket_timeout=10.0,
        health_check_interval=30,
    )


@dataclass(frozen=True, slots=True)
class ChangeRetention:
    """How many score-change records the sink keeps in Redis (`Settings.redis_changes_*`):
    in the stream of all creators (about that many: trimmed with `MAXLEN ~`), and per
    creator (exactly). 0 keeps none."""

    stream: int = 10_000
    per_creator: int = 5


class RedisSink:
    """Applies a batch of snapshots with one pipelined round trip (two for unknown creators)."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        backoff: Backoff | None = None,
        *,
        changes: ChangeRetention | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._backoff = backoff or Backoff()
        self._changes = changes or ChangeRetention()

    async def write(self, batch: Sequence[CreatorSnapshot]) -> None:
        if not batch:
            return
        while True:
            started = time.perf_counter()
            try:
                await self._write_once(batch)
            except (RedisError, OSError) as exc:
                metrics.REDIS_ERRORS.inc()
                await self._backoff.sleep(log, f"Redis write of {len(batch)} creators", exc)
                continue
            metrics.REDIS_WRITE_SECONDS.observe(time.perf_counter() - started)
            metrics.LAST_REDIS_WRITE.set(time.time())
            self._backoff.reset()
            return

    async def _previous_boards(self, creators: Sequence[str]) -> list[set[str]]:
        """Board ids Redis says each creator sits on (for creators the state has not seen)."""
        prefix_len = len(self._keys.prefix)
        boards = self._keys.creator_boards
        replies = await self._execute([[b"SMEMBERS", boards(c).encode()] for c in creators])
        return [{m.decode()[prefix_len:] for m in members} for members in replies]

    async def _write_once(self, batch: Sequence[CreatorSnapshot]) -> None:
        keys = self._keys
        prefix = keys.prefix
        unknown = [s.creator_id for s in batch if not s.previous_known]
        previous = (
            dict(zip(unknown, await self._previous_boards(unknown), strict=True)) if unknown else {}
        )
        # Boards are shared by many creators: one ZADD/ZREM per board for the whole batch
        # instead of one per creator and board (tens of thousands of commands per batch,
        # where redis-py's command encoding, not Redis, was the bottleneck). A batch holds
        # one snapshot per creator, so a creator is added to a board at most once.
        adds: dict[str, list[bytes]] = defaultdict(list)
        removes: dict[str, list[bytes]] = defaultdict(list)
        commands: list[tuple[bytes, ...]] = []
        command = commands.append
        field_names = _FIELD_NAMES
        for snap in batch:
            creator_id = snap.creator_id
            member = creator_id.encode()
            leave = snap.leave_boards
            if not snap.previous_known:
                leave = frozenset(previous[creator_id].difference(snap.set_boards))
            for board in leave:
                removes[board].append(member)
            for board, value in snap.set_boards.items():
                entries = adds[board]
                entries.append(repr(float(value)).encode())
                entries.append(member)
            hset = [b"HSET", keys.creator(creator_id).encode()]
            for name, text in snap.fields.items():
                encoded = field_names.get(name)
                if encoded is None:
                    encoded = field_names[name] = name.encode()
                hset.append(encoded)
                hset.append(text.encode())
            command(tuple(hset))
            members_key = keys.creator_boards(creator_id).encode()
            if leave:
                command((b"SREM", members_key, *((prefix + b).encode() for b in leave)))
            joined = snap.set_boards.keys() if snap.join_boards is None else snap.join_boards
            if joined:
                command((b"SADD", members_key, *((prefix + b).encode() for b in joined)))
        # A creator never leaves and joins the same board in one snapshot, so the order of
        # removals and additions across boards does not matter.
        for board, members in removes.items():
            command((b"ZREM", (prefix + board).encode(), *members))
        for board, entries in adds.items():
            command((b"ZADD", (prefix + board).encode(), *entries))
        # Last, so a reader woken by a change finds the hash and boards already written.
        commands.extend(self._change_commands(batch))
        await self._execute(commands)

    def _change_commands(self, batch: Sequence[CreatorSnapshot]) -> list[tuple[bytes, ...]]:
        """XADDs of the batch's score-change records to the change streams (`Keys.changes`,
        `Keys.creator_changes`). A retried batch may add a record twice, as the topic may."""
        keep = self._changes
        out: list[tuple[bytes, ...]] = []
        if not keep.stream and not keep.per_creator:
            return out
        stream = self._keys.changes().encode()
        stream_len = str(keep.stream).encode()
        per_creator = str(keep.per_creator).encode()
        for snap in batch:
            change = snap.change
            if change is None:
                continue
            if keep.stream:
                member = snap.creator_id.encode()
                out.append((b"XADD", stream, b"MAXLEN", b"~", stream_len, b"*",
                            b"creator_id", member, b"change", change))  # fmt: skip
            if keep.per_creator:
                own = self._keys.creator_changes(snap.creator_id).encode()
                out.append((b"XADD", own, b"MAXLEN", per_creator, b"*", b"change", change))
        return out

    async def _execute(self, commands: Sequence[Sequence[bytes]]) -> list[Any]:
        """Send every command in one write and return every reply, as a pipeline would.

        redis-py's pipeline encodes each argument through several generic layers, and reads
        each reply through its own await and timeout, which together cost more than Redis
        took for the whole batch; our arguments are plain bytes and the replies few kinds,
        so the framing is built in one pass and the replies are read in bulk
        (`read_replies`). Any error reply or I/O failure drops the connection (its remaining
        replies would be out of step) and raises for a retry.
        """
        packed = pack_commands(commands)
        pool = self._redis.connection_pool
        # redis-py leaves get_connection unannotated; it returns a connected Connection.
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command(packed, check_health=False)
            timeout = conn.socket_timeout or DEFAULT_REPLY_TIMEOUT_S
            return await read_replies(conn._reader, len(commands), timeout)
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)


#: How long a batch's replies may take when the client sets no socket timeout.
DEFAULT_REPLY_TIMEOUT_S = 30.0


async def read_replies(
    stream: asyncio.StreamReader | None, count: int, timeout_s: float
) -> list[Any]:
    """`count` RESP2 replies read off a connection's stream with one hiredis reader.

    The connection is redis-py's (it did the handshake, authentication and database
    selection); only its pipelined replies are read here, in as few reads as the socket
    allows. An error reply raises `ResponseError` once all replies are in.
    """
    if stream is None:
        raise ConnectionError("Redis connection is not open")
    reader = hiredis.Reader()
    replies: list[Any] = []
    async with asyncio.timeout(timeout_s):
        while len(replies) < count:
            data = await stream.read(1 << 18)
            if not data:
                raise ConnectionError("Redis closed the connection mid-reply")
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                replies.append(reply)
    errors = [r for r in replies if isinstance(r, hiredis.ReplyError)]
    if errors:
        raise ResponseError(f"{len(errors)} error replies, first: {errors[0]}")
    return replies


#: Hash field names as bytes (a dozen names, encoded once).
_FIELD_NAMES: dict[str, bytes] = {}


def pack_commands(commands: Sequence[Sequence[bytes]]) -> bytes:
    """RESP2 framing of `commands` (each a sequence of byte-string arguments), back to back.

    hiredis (a dependency through `redis[hiredis]`) frames each command in C, about twice
    as fast as the same framing written in Python.
    """
    # hiredis's stub types the argument as a 1-tuple; it takes a tuple of any length.
    return b"".join(
        [
            _pack_command(args if type(args) is tuple else tuple(args))  # type: ignore[arg-type]
            for args in commands
        ]
    )
