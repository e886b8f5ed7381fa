"""Partner search: creators of a region, theme and content type above minimums on any scores,
sorted by any score, paged, each with its scores and percentile ranks.

Built on the leaderboards (sorted sets) the worker keeps, in one Lua script. The work
starts from the smallest cut: the board with the fewest creators at or above its minimum
(counted with ZCOUNT, O(log N) each), copied alone (ZRANGESTORE). Each other board with a
minimum is then applied to what is left (ZINTERSTORE, which walks the smaller side and
takes that board's scores, then ZREMRANGEBYSCORE below the minimum), the most selective
first, and a last ZINTERSTORE with the sort board and the boards that only restrict
membership (theme, content type) gives the result, its scores the sort score. So the
work follows the smallest cut and the matches, never a whole board's cut, and every step
runs in Redis's C code. Provisional creators are dropped from the result on request,
and a page is read off it with each creator's fields and ranks. The result is kept for
`api_search_ttl_ms` under a key named by the query (`Keys.api_search`), so the next
pages come from the same result, quickly.

Which board a minimum or the sort reads: `overall` and `influence` have boards per theme
and per content type, so with a theme they read the theme's board ("influence in beauty
at least 70"), else with a content type that type's board, else the region's; the other
scores read the region's board. A theme or content type given also restricts the
creators to that theme's or type's board.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from redis.asyncio import Redis

from scoring.names import SCORE_NAMES
from streams.api.reads import board_order, board_phrase, percentile_dict
from streams.api.scripts import Script
from streams.keys import BREAKDOWN_SCORES, BoardRef, Keys

#: Creator hash fields each result carries, in this order.
_FIELDS: Final = (*SCORE_NAMES, "provisional", "confidence", "region")

# KEYS: the result key. ARGV: ttl ms; number of boards, then (board, minimum or -inf) per
# board, the sort board first; exclude provisional (0/1); creator key prefix; first and
# last rank of the page; number of fields, the fields; number of rank boards, the boards.
# Replies {1 if the result was built now, matches, page (member, score, ...), rank board
# sizes, per member its fields then its 0-based rank (-1: absent) on each rank board}.
_SEARCH = """
local a = 1
local function arg() a = a + 1; return ARGV[a - 1] end
local ttl = arg()
local nb = tonumber(arg())
local boards, mins = {}, {}
for j = 1, nb do boards[j] = arg(); mins[j] = arg() end
local exclude = arg() == '1'
local prefix = arg()
local first, last = tonumber(arg()), tonumber(arg())
local nf = tonumber(arg())
local fields = {}
for j = 1, nf do fields[j] = arg() end
local nr = tonumber(arg())
local ranked = {}
for j = 1, nr do ranked[j] = arg() end

local dest = KEYS[1]
local built = 0
if redis.call('EXISTS', dest) == 0 then
  built = 1
  local counts, order = {}, {}
  for j = 1, nb do
    counts[j] = redis.call('ZCOUNT', boards[j], mins[j], '+inf')
    order[j] = j
  end
  table.sort(order, function(x, y) return counts[x] < counts[y] end)
  local walk = order[1]
  local cur = boards[walk]
  local tmp = dest .. ':tmp'
  if mins[walk] ~= '-inf' then
    redis.call('ZRANGESTORE', tmp, cur, mins[walk], '+inf', 'BYSCORE')
    cur = tmp
  end
  local rest = {}
  for k = 2, nb do
    local j = order[k]
    if mins[j] ~= '-inf' then
      redis.call('ZINTERSTORE', tmp, 2, cur, boards[j], 'WEIGHTS', 0, 1)
      redis.call('ZREMRANGEBYSCORE', tmp, '-inf', '(' .. mins[j])
      cur = tmp
    elseif j ~= 1 then
      rest[#rest + 1] = boards[j]
    end
  end
  local cmd = {'ZINTERSTORE', dest, 2 + #rest, cur, boards[1]}
  for _, b in ipairs(rest) do cmd[#cmd + 1] = b end
  cmd[#cmd + 1] = 'WEIGHTS'
  cmd[#cmd + 1] = 0
  cmd[#cmd + 1] = 1
  for _ = 1, #rest do cmd[#cmd + 1] = 0 end
  redis.call(unpack(cmd))
  redis.call('DEL', tmp)
  if exclude then
    local all = redis.call('ZRANGE', dest, 0, -1)
    local drop = {}
    for _, m in ipairs(all) do
      if redis.call('HGET', prefix .. m, 'provisional') == '1' then
        drop[#drop + 1] = m
        if #drop == 1000 then redis.call('ZREM', dest, unpack(drop)); drop = {} end
      end
    end
    if #drop > 0 then redis.call('ZREM', dest, unpack(drop)) end
  end
  redis.call('PEXPIRE', dest, ttl)
end
local total = redis.call('ZCARD', dest)
local page = redis.call('ZREVRANGE', dest, first, last, 'WITHSCORES')
local sizes = {}
for j = 1, nr do sizes[j] = redis.call('ZCARD', ranked[j]) end
local rows = {}
for i = 1, #page, 2 do
  local m = page[i]
  local h = redis.call('HMGET', prefix .. m, unpack(fields))
  for j = 1, nf do rows[#rows + 1] = h[j] or '' end
  for j = 1, nr do rows[#rows + 1] = redis.call('ZREVRANK', ranked[j], m) or -1 end
end
return {built, total, page, sizes, rows}
"""


@dataclass(frozen=True)
class Query:
    """A partner search, validated: names as boards spell them."""

    region: str
    theme: str | None = None
    content_type: str | None = None
    minimums: Mapping[str, float] | None = None
    exclude_provisional: bool = False
    sort: str = "overall"

    def board(self, score: str) -> BoardRef:
        """The board a score's minimum and sort read (see the module's docstring)."""
        if score in BREAKDOWN_SCORES:
            if self.theme is not None:
                return BoardRef(score, self.region, theme=self.theme)
            if self.content_type is not None:
                return BoardRef(score, self.region, content_type=self.content_type)
        return BoardRef(score, self.region)

    def filters(self) -> list[tuple[BoardRef, float | None]]:
        """(board, minimum or None) to intersect, the sort board first."""
        wanted: dict[BoardRef, float | None] = {self.board(self.sort): None}
        for score, minimum in sorted((self.minimums or {}).items()):
            board = self.board(score)
            previous = wanted.get(board)
            wanted[board] = minimum if previous is None else max(previous, minimum)
        if self.theme is not None:
            wanted.setdefault(BoardRef("overall", self.region, theme=self.theme), None)
        if self.content_type is not None:
            ct = BoardRef("overall", self.region, content_type=self.content_type)
            wanted.setdefault(ct, None)
        return list(wanted.items())

    def ranked_boards(self) -> list[BoardRef]:
        """The boards each result's percentile ranks are read from: every score in the
        region, and the theme's and content type's boards of the breakdown scores."""
        boards = [BoardRef(score, self.region) for score in SCORE_NAMES]
        for score in BREAKDOWN_SCORES:
            if self.theme is not None:
                boards.append(BoardRef(score, self.region, theme=self.theme))
            if self.content_type is not None:
                boards.append(BoardRef(score, self.region, content_type=self.content_type))
        return boards

    def to_dict(self) -> dict[str, object]:
        return {
            "region": self.region,
            "theme": self.theme,
            "content_type": self.content_type,
            "minimums": dict(sorted((self.minimums or {}).items())),
            "exclude_provisional": self.exclude_provisional,
            "sort": self.sort,
        }


class Searcher:
    """Runs partner searches (`Query`) on Redis."""

    def __init__(self, client: Redis, keys: Keys, ttl_ms: int) -> None:
        self._keys = keys
        self._ttl_ms = ttl_ms
        self._search = Script(client, _SEARCH)

    async def search(self, query: Query, n: int, offset: int = 0) -> dict[str, Any]:
        keys = self._keys
        filters = query.filters()
        ranked = query.ranked_boards()
        board_args: list[str | int] = []
        for board, minimum in filters:
            board_args += [board.key(keys), "-inf" if minimum is None else repr(minimum)]
        identity = orjson.dumps([board_args, query.exclude_provisional])
        result_key = keys.api_search(hashlib.sha256(identity).hexdigest()[:32])
        args: list[str | int] = [self._ttl_ms, len(filters), *board_args]
        args += ["1" if query.exclude_provisional else "0", keys.creator("")]
        args += [offset, offset + n - 1, len(_FIELDS), *_FIELDS]
        args += [len(ranked), *(b.key(keys) for b in ranked)]
        built, total, page, sizes, rows = await self._search(keys=[result_key], args=args)
        width = len(_FIELDS) + len(ranked)
        places = _places(ranked, [int(size) for size in sizes])
        results = []
        for i in range(0, len(page), 2):
            row = rows[i // 2 * width : (i // 2 + 1) * width]
            results.append(_result(offset + i // 2 + 1, page[i], float(page[i + 1]), row, places))
        total = int(total)
        more = offset + len(results) < total
        return {
            "query": query.to_dict(),
            "matches": total,
            "offset": offset,
            "results": results,
            "next_offset": offset + len(results) if more else None,
            "fresh": bool(built),
        }


#: Per score, the rank boards of that score as (index in the ranked boards, board, size,
#: its phrase), in the order an answer lists a creator's percentiles.
_Places = dict[str, list[tuple[int, BoardRef, int, str]]]


def _places(ranked: list[BoardRef], sizes: list[int]) -> _Places:
    """The same for every result of a search, so worked out once per page."""
    places: _Places = {name: [] for name in SCORE_NAMES}
    for j in sorted(range(len(ranked)), key=lambda j: board_order(ranked[j])):
        board = ranked[j]
        places[board.score].append((j, board, sizes[j], board_phrase(board)))
    return places


def _result(
    position: int, member: bytes | str, sort_value: float, row: list[Any], places: _Places
) -> dict[str, Any]:
    values = [_text(v) for v in row[: len(_FIELDS)]]
    fields = dict(zip(_FIELDS, values, strict=True))
    ranks = [int(r) for r in row[len(_FIELDS) :]]
    return {
        "position": position,
        "creator_id": _text(member),
        "sort_value": sort_value,
        "region": fields["region"] or None,
        "provisional": fields["provisional"] == "1" if fields["provisional"] else None,
        "confidence": float(fields["confidence"]) if fields["confidence"] else None,
        "scores": {name: float(fields[name]) if fields[name] else None for name in SCORE_NAMES},
        "percentiles": {
            name: [
                percentile_dict(board, ranks[j] + 1, size, phrase)
                for j, board, size, phrase in found
                if ranks[j] >= 0 and size > 0
            ]
            for name, found in places.items()
        },
    }


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
