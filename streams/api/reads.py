"""Leaderboard pages, creator cards with percentile ranks, and recent changes, read from Redis.

Each read is one Lua script (a page of a board with its creators' flags, or a creator's
hash with its rank on every board it sits on) so that it costs one round trip and one
reply, whatever its size. The scripts read the creator hashes and boards they find, not
only the keys they are given, which a single Redis (not a cluster) allows; the worker
writes to a single Redis too.

The sentences of a creator's explanations are written from the stored basis by the same
code as `creator-scores show` (`streams.readers.parse_creator`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from redis.asyncio import Redis

from scoring.names import SCORE_NAMES
from scoring.params import Params
from streams.api.scripts import Script
from streams.keys import GLOBAL_REGION, BoardRef, Keys
from streams.readers import CreatorView, ReaderError, parse_creator

#: The stream time's member in `Keys.stream_time` (`streams.sweep`).
STREAM_MEMBER: Final = "stream"
#: Board keys parsed at most (there are a few hundred; a bound all the same).
_MAX_BOARDS: Final = 100_000

# KEYS: a board. ARGV: first and last rank (0-based), the creator hash key prefix.
# Replies {board size, {member, score, ...}, {provisional, confidence, region, ...}}.
PAGE_SCRIPT = """
local m = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES')
local f = {}
for i = 1, #m, 2 do
  local h = redis.call('HMGET', ARGV[3] .. m[i], 'provisional', 'confidence', 'region')
  f[#f + 1] = h[1] or ''
  f[#f + 1] = h[2] or ''
  f[#f + 1] = h[3] or ''
end
return {redis.call('ZCARD', KEYS[1]), m, f}
"""

# KEYS: the creator's hash, its board set, the stream time. ARGV: the creator id.
# Replies nil for an unknown creator, else {hash fields and values, boards, {0-based rank
# or -1, board size, ...} per board, stream time or ''}.
CREATOR_SCRIPT = """
local card = redis.call('HGETALL', KEYS[1])
if #card == 0 then return false end
local boards = redis.call('SMEMBERS', KEYS[2])
local ranks = {}
for i = 1, #boards do
  ranks[#ranks + 1] = redis.call('ZREVRANK', boards[i], ARGV[1]) or -1
  ranks[#ranks + 1] = redis.call('ZCARD', boards[i])
end
return {card, boards, ranks, redis.call('ZSCORE', KEYS[3], 'stream') or ''}
"""


@dataclass(frozen=True)
class Percentile:
    """A creator's place on one board: rank `rank` of `of` (1 is the best)."""

    board: BoardRef
    rank: int
    of: int

    @property
    def top_percent(self) -> float:
        """The share of the board at or above the creator, rounded up to a tenth of a percent:
        rank 37 of 1,000 is the top 3.7 %."""
        return math.ceil(1000 * self.rank / self.of) / 10

    @property
    def percentile(self) -> float:
        """The share of the board ranked below the creator, percent."""
        return round(100 * (self.of - self.rank) / self.of, 2)

    def text(self) -> str:
        return f"top {self.top_percent:g} % of {board_phrase(self.board)}"

    def to_dict(self) -> dict[str, object]:
        return percentile_dict(self.board, self.rank, self.of)


def percentile_dict(
    b: BoardRef, rank: int, of: int, phrase: str | None = None
) -> dict[str, object]:
    """`Percentile(b, rank, of).to_dict()`, without the object (a search page has hundreds);
    `phrase`: `board_phrase(b)`, when the caller has it at hand."""
    tenths = math.ceil(1000 * rank / of)
    top = _TOPS.get(tenths) or _top(tenths)
    return {
        "region": b.region,
        "theme": b.theme,
        "content_type": b.content_type,
        "rank": rank,
        "of": of,
        "top_percent": top[0],
        "percentile": round(100 * (of - rank) / of, 2),
        "text": top[1] + (phrase or board_phrase(b)),
    }


#: Tenths of a percent -> (top_percent, the sentence's head), written once each (1,000 at most).
_TOPS: dict[int, tuple[float, str]] = {}


def _top(tenths: int) -> tuple[float, str]:
    top = tenths / 10
    _TOPS[tenths] = (top, f"top {top:g} % of ")
    return _TOPS[tenths]


@functools.lru_cache(maxsize=4096)
def board_phrase(b: BoardRef) -> str:
    """Who a board ranks, for a percentile's sentence: "beauty creators in ID by influence"
    (a few hundred boards, so written once each)."""
    who = f"{b.theme} creators" if b.theme is not None else "creators"
    if b.content_type is not None:
        who = f"creators of {b.content_type} posts"
    where = "worldwide" if b.region == GLOBAL_REGION else f"in {b.region}"
    return f"{who} {where} by {b.score}"


def percentile_order(p: Percentile) -> tuple[int, str, str]:
    """Region boards first, then the global one, then themes and content types by name."""
    return board_order(p.board)


def board_order(b: BoardRef) -> tuple[int, str, str]:
    """The order of `percentile_order`, by board."""
    kind = 0 if b.theme is None and b.content_type is None else 1 if b.theme is not None else 2
    return (kind, "" if b.region != GLOBAL_REGION else "~", b.theme or b.content_type or "")


@dataclass(frozen=True)
class Cursor:
    """Where a board page ended: the last entry's score and creator id (keyset paging, so a
    page follows on from the last one seen even when the ranks above it moved)."""

    score: float
    creator_id: str

    def encode(self) -> str:
        return base64.urlsafe_b64encode(orjson.dumps([self.score, self.creator_id])).decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            score, creator_id = orjson.loads(base64.urlsafe_b64decode(text.encode()))
            if not isinstance(creator_id, str) or not isinstance(score, int | float):
                raise ValueError("not a cursor")
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
            raise ReaderError(
                "cursor is not one this API returned (use next_cursor as given)", param="cursor"
            ) from exc
        return cls(float(score), creator_id)


class Reader:
    """The read API's queries over the worker's Redis layout (`streams.keys`)."""

    def __init__(self, client: Redis, keys: Keys, params: Params) -> None:
        self._redis = client
        self._keys = keys
        self._params = params
        self._page = Script(client, PAGE_SCRIPT)
        self._creator = Script(client, CREATOR_SCRIPT)
        self._regions: tuple[float, list[str]] = (0.0, [])
        self._cards = CardCache(params)
        self._boards: dict[bytes | str, BoardRef | None] = {}

    async def board_page(
        self, board: BoardRef, n: int, offset: int = 0, cursor: Cursor | None = None
    ) -> dict[str, Any]:
        """`n` entries of a board from `offset` (or after `cursor`), best first."""
        key = board.key(self._keys)
        if cursor is not None:
            offset = await self._after(key, cursor)
        size, members, flags = await self._page(
            keys=[key], args=[offset, offset + n - 1, self._keys.creator("")]
        )
        entries: list[dict[str, Any]] = []
        for i in range(0, len(members), 2):
            creator_id = _text(members[i])
            j = i // 2 * 3
            provisional, confidence, region = (_text(f) for f in flags[j : j + 3])
            entries.append({
                "rank": offset + i // 2 + 1,
                "creator_id": creator_id,
                "score": float(members[i + 1]),
                "provisional": provisional == "1" if provisional else None,
                "confidence": float(confidence) if confidence else None,
                "region": region or None,
            })  # fmt: skip
        more = offset + len(entries) < int(size)
        last = Cursor(entries[-1]["score"], entries[-1]["creator_id"]) if entries else None
        return {
            "board": _board_dict(board, int(size)),
            "offset": offset,
            "entries": entries,
            "next_offset": offset + len(entries) if more else None,
            "next_cursor": last.encode() if more and last is not None else None,
        }

    async def _after(self, key: str, cursor: Cursor) -> int:
        """How many entries rank at or above the cursor: those with a higher score, and those
        with its score whose id sorts at or after its id (equal scores rank in reverse id
        order)."""
        score = repr(cursor.score)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcount(key, f"({score}", "+inf")
            pipe.zrangebyscore(key, score, score)
            above, ties = await pipe.execute()
        return int(above) + sum(1 for t in ties if _text(t) >= cursor.creator_id)

    async def creator(
        self, creator_id: str, *, global_ranks: bool = True, now_ms: int | None = None
    ) -> dict[str, Any] | None:
        """A creator's card: scores with explanations and percentile ranks, and freshness."""
        keys = self._keys
        reply = await self._creator(
            keys=[keys.creator(creator_id), keys.creator_boards(creator_id), keys.stream_time()],
            args=[creator_id],
        )
        if reply is None:
            return None
        raw, boards, ranks, stream = reply
        card = self._cards.get(creator_id, raw)
        by_score: dict[str, list[Percentile]] = {name: [] for name in SCORE_NAMES}
        for i, board_key in enumerate(boards):
            board = self._board(board_key)
            rank, size = int(ranks[2 * i]), int(ranks[2 * i + 1])
            if board is None or rank < 0 or board.score not in by_score:
                continue
            if board.region == GLOBAL_REGION and not global_ranks:
                continue
            by_score[board.score].append(Percentile(board, rank + 1, size))
        stream_ms = int(float(_text(stream))) if stream else None
        return card.answer(by_score, stream_ms, now_ms or int(time.time() * 1000))

    def _board(self, key: bytes | str) -> BoardRef | None:
        """The board a key names; the few hundred boards are parsed once each."""
        if key in self._boards:
            return self._boards[key]
        if len(self._boards) >= _MAX_BOARDS:
            self._boards.clear()
        board = self._boards[key] = self._keys.parse_board(_text(key))
        return board

    async def region_of(self, creator_id: str) -> tuple[bool, str | None]:
        """Whether Redis has the creator, and its region."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(self._keys.creator(creator_id))
            pipe.hget(self._keys.creator(creator_id), "region")
            exists, region = await pipe.execute()
        return bool(exists), _text(region) if region is not None else None

    async def recent_changes(self, creator_id: str, n: int) -> list[dict[str, Any]]:
        """The creator's newest score-change records, newest first, with their stream ids."""
        redis: Any = self._redis  # redis-py types stream replies loosely
        entries = await redis.xrevrange(self._keys.creator_changes(creator_id), count=n)
        return [change_dict(_text(entry_id), fields) for entry_id, fields in entries]

    async def known_regions(self, max_age_s: float = 60.0) -> list[str]:
        """The regions that have boards, for the error that names a region without one.

        Found by scanning the keys (slow on a big Redis), so only on that error and at most
        once a `max_age_s`.
        """
        at, regions = self._regions
        if time.monotonic() - at < max_age_s:
            return regions
        found: set[str] = set()
        pattern = self._keys.board("overall", "*")
        async for raw in self._redis.scan_iter(match=pattern, count=5000):
            board = self._keys.parse_board(_text(raw))
            if board is not None and board.theme is None and board.content_type is None:
                found.add(board.region)
        found.discard(GLOBAL_REGION)
        regions = sorted(found)
        self._regions = (time.monotonic(), regions)
        return regions


class Card:
    """What a creator's answer takes from its hash alone (scores, flags, explanations): the
    same until the worker writes the card again, while its ranks and freshness change."""

    __slots__ = ("_head", "_problems", "_scores", "event_ms", "updated_ms")

    def __init__(self, view: CreatorView) -> None:
        self._head = {
            "creator_id": view.creator_id,
            "region": view.region,
            "active": view.active,
            "provisional": view.provisional,
            "confidence": view.confidence,
            "model_version": view.model_version,
        }
        self.event_ms, self.updated_ms = view.event_time_ms, view.updated_at_ms
        self._scores: dict[str, dict[str, Any]] = {}
        for name in SCORE_NAMES:
            explanation = view.explanations.get(name)
            self._scores[name] = {
                "value": view.scores.get(name),
                "summary": explanation.summary if explanation else None,
                "contributions": [
                    {"name": c.name, "value": c.value, "points": c.points, "text": c.text}
                    for c in (explanation.contributions if explanation else ())
                ],
            }
        self._problems = list(view.problems)

    def answer(
        self, percentiles: dict[str, list[Percentile]], stream_ms: int | None, now_ms: int
    ) -> dict[str, Any]:
        """The API's answer: this card with its percentile ranks and freshness now (a new
        dict; the parts it shares with other answers are never changed)."""
        event_ms, updated_ms = self.event_ms, self.updated_ms
        return {
            **self._head,
            "freshness": {
                "event_time_ms": event_ms,
                "updated_at_ms": updated_ms,
                "stream_time_ms": stream_ms,
                "lag_ms": (
                    max(0, stream_ms - event_ms)
                    if stream_ms is not None and event_ms is not None
                    else None
                ),
                "age_ms": max(0, now_ms - updated_ms) if updated_ms is not None else None,
            },
            "scores": {
                name: {
                    **static,
                    "percentiles": [
                        p.to_dict() for p in sorted(percentiles[name], key=percentile_order)
                    ],
                }
                for name, static in self._scores.items()
            },
            "problems": self._problems,
        }


class CardCache:
    """Cards by version, least recently read out first: writing a card's explanation
    sentences costs more than the rest of its read, and a card the widgets show is read many
    times between two writes of it. A version is the hash as Redis returned it, every field
    (the worker's `updated_at` among them), so a rewritten card is a new entry and a cached
    one is never stale."""

    def __init__(self, params: Params, size: int = 1024) -> None:
        self._params = params
        self._size = size
        self._cards: OrderedDict[tuple[str, tuple[bytes | str, ...]], Card] = OrderedDict()

    def get(self, creator_id: str, raw: Sequence[bytes | str]) -> Card:
        """The card of a creator's hash (HGETALL's flat field, value list)."""
        version = (creator_id, tuple(raw))
        card = self._cards.get(version)
        if card is not None:
            self._cards.move_to_end(version)
            return card
        fields = {_text(raw[i]): _text(raw[i + 1]) for i in range(0, len(raw), 2)}
        card = self._cards[version] = Card(parse_creator(creator_id, fields, self._params))
        if len(self._cards) > self._size:
            self._cards.popitem(last=False)
        return card


def change_dict(entry_id: str, fields: dict[Any, Any]) -> dict[str, Any]:
    """A change stream entry as the API gives it: its id, when Redis took it, the record."""
    record = fields.get(b"change", fields.get("change"))
    at_ms = int(entry_id.split("-", 1)[0])
    return {"id": entry_id, "at_ms": at_ms, "change": orjson.loads(record or b"null")}


def _board_dict(board: BoardRef, size: int) -> dict[str, object]:
    return {
        "score": board.score,
        "region": board.region,
        "theme": board.theme,
        "content_type": board.content_type,
        "size": size,
    }


def _text(value: bytes | str | int | float) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def percentiles_of(
    boards: Sequence[BoardRef], ranks: Sequence[int], sizes: Sequence[int]
) -> list[Percentile]:
    """Percentiles from 0-based ranks (-1: not on the board) and board sizes, aligned."""
    return [
        Percentile(board, rank + 1, size)
        for board, rank, size in zip(boards, ranks, sizes, strict=True)
        if rank >= 0 and size > 0
    ]
