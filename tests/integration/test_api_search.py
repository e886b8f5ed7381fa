"""Partner search (`streams.api.search`) against a reading of the boards themselves, for every
kind of filter: which board walks first must never change the answer.

The population is the worker's own (`tests.support.population`), plus exact copies of one
creator (same score on every board: ties) and of one provisional creator. Expected
matches are computed here from the whole boards (ZRANGE), never with the search's code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import redis
from redis.asyncio import Redis

from scoring.names import SCORE_NAMES
from streams.api.search import Query, Searcher
from streams.keys import Keys
from streams.settings import Settings
from tests.support.population import scored_prefix

pytestmark = pytest.mark.integration

#: Copies of one active creator: equal scores on every board it is on.
TWINS = ("cr-twin-a", "cr-twin-b", "cr-twin-c")


@dataclass(frozen=True)
class Seeded:
    settings: Settings
    keys: Keys
    #: The creator the twins copy, and its region.
    original: str
    region: str


# KEYS: none. ARGV: the prefix, the source creator id, the copies' ids. Copies the source's
# hash, board entries and board set (as bench.api does).
_COPY = """
local p, src = ARGV[1], ARGV[2]
local card = redis.call('HGETALL', p .. 'creator:' .. src)
local boards = redis.call('SMEMBERS', p .. 'creator-boards:' .. src)
for k = 3, #ARGV do
  local id = ARGV[k]
  redis.call('HSET', p .. 'creator:' .. id, unpack(card))
  redis.call('SADD', p .. 'creator-boards:' .. id, unpack(boards))
  for _, b in ipairs(boards) do redis.call('ZADD', b, redis.call('ZSCORE', b, src), id) end
end
"""


@pytest.fixture(scope="module")
def seeded(stack_settings: Settings) -> Iterator[Seeded]:
    async def twins(client: Redis, keys: Keys) -> str:
        original: str = (await client.zrevrange(keys.board("overall", "ID"), 40, 40))[0]
        await client.eval(_COPY, 0, keys.prefix, original, *TWINS)
        return original

    with scored_prefix(stack_settings, "search", twins) as (settings, original):
        yield Seeded(settings, Keys(settings.redis_prefix), original, "ID")


@pytest.fixture
async def client(seeded: Seeded) -> AsyncIterator[Redis]:
    connection = Redis.from_url(seeded.settings.redis_url)
    try:
        yield connection
    finally:
        await connection.aclose()


def expected(direct: redis.Redis, keys: Keys, query: Query) -> list[tuple[str, float]]:
    """The matches of a search from whole boards, in Redis's board order: by sort score,
    equal scores by creator id, best first."""
    on: dict[str, dict[str, float]] = {}
    for board, _ in query.filters():
        on[board.key(keys)] = dict(direct.zrange(board.key(keys), 0, -1, withscores=True))
    passing: set[str] | None = None
    for board, minimum in query.filters():
        scores = on[board.key(keys)]
        these = {c for c, v in scores.items() if minimum is None or v >= minimum}
        passing = these if passing is None else passing & these
    assert passing is not None
    if query.exclude_provisional:
        passing = {c for c in passing if direct.hget(keys.creator(c), "provisional") != "1"}
    sort = on[query.board(query.sort).key(keys)]
    return sorted(((c, sort[c]) for c in passing), key=lambda p: (p[1], p[0]), reverse=True)


async def search_all(searcher: Searcher, query: Query, n: int = 100) -> list[tuple[str, float]]:
    found = await searcher.search(query, n)
    out = [(r["creator_id"], r["sort_value"]) for r in found["results"]]
    while found["next_offset"] is not None:
        found = await searcher.search(query, n, found["next_offset"])
        out += [(r["creator_id"], r["sort_value"]) for r in found["results"]]
    assert len(out) == found["matches"]
    return out


# fmt: off
QUERIES = [
    Query("ID"),
    Query("ALL", sort="sales"),
    Query("ALL", minimums={"overall": 55.0}),
    Query("ID", theme="beauty", sort="influence"),
    Query("ID", theme="beauty", minimums={"influence": 40.0}, sort="cooperation"),
    Query("GB", content_type="video", minimums={"influence": 35.0}, sort="sales"),
    Query("ID", theme="beauty", content_type="video", minimums={"influence": 40.0,
          "cooperation": 20.0}, sort="sales"),
    Query("ID", minimums={"cooperation": 50.0}, sort="cooperation"),
    Query("ID", minimums={"diligence": 30.0, "reception": 30.0, "sales": 10.0,
                          "consistency": 20.0, "collaboration": 10.0}),
    Query("GB", minimums={"overall": 0.0}, exclude_provisional=True),
    Query("ID", theme="beauty", minimums={"cooperation": 30.0}, exclude_provisional=True,
          sort="consistency"),
    Query("ALL", content_type="video", minimums={"overall": 45.0, "influence": 30.0,
          "sales": 5.0}, sort="influence"),
]
# fmt: on


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q.to_dict()))
async def test_a_search_finds_what_a_reading_of_the_boards_finds(
    client: Redis, seeded: Seeded, direct: redis.Redis, query: Query
) -> None:
    want = expected(direct, seeded.keys, query)
    assert want, "a query of this table should match someone"
    searcher = Searcher(client, seeded.keys, 5_000)
    assert await search_all(searcher, query, n=7) == want


async def test_a_minimum_equal_to_a_score_takes_it(
    client: Redis, seeded: Seeded, direct: redis.Redis
) -> None:
    board = seeded.keys.board("cooperation", "ID")
    (creator_id, score), *_ = direct.zrevrange(board, 30, 30, withscores=True)
    query = Query("ID", minimums={"cooperation": score}, sort="cooperation")
    found = await search_all(Searcher(client, seeded.keys, 5_000), query)
    assert (creator_id, score) in found
    assert found == expected(direct, seeded.keys, query)
    assert all(value >= score for _, value in found)


async def test_equal_scores_are_in_board_order(
    client: Redis, seeded: Seeded, direct: redis.Redis
) -> None:
    query = Query(seeded.region, sort="overall")
    found = await search_all(Searcher(client, seeded.keys, 5_000), query)
    board = direct.zrevrange(seeded.keys.board("overall", seeded.region), 0, -1)
    assert [c for c, _ in found] == board
    # The copies and their original share one score: in reverse id order, as ZREVRANGE.
    place = board.index(TWINS[-1])
    assert [c for c, _ in found[place : place + 4]] == [*reversed(TWINS), seeded.original]
    assert len({v for _, v in found[place : place + 4]}) == 1


@pytest.mark.parametrize(
    "query",
    [
        Query("ID", minimums={"overall": 100.0}),
        Query("ID", theme="no-such-theme"),
        Query("ID", theme="beauty", content_type="no-such-type", minimums={"sales": 10.0}),
        Query("ID", minimums={"influence": 99.9, "cooperation": 99.9}, sort="sales"),
    ],
    ids=lambda q: repr(q.to_dict()),
)
async def test_an_empty_cut_matches_nobody(
    client: Redis, seeded: Seeded, direct: redis.Redis, query: Query
) -> None:
    assert expected(direct, seeded.keys, query) == []
    found = await Searcher(client, seeded.keys, 5_000).search(query, 20)
    assert (found["matches"], found["results"], found["next_offset"]) == (0, [], None)
    assert not [k for k in direct.scan_iter(match=f"{seeded.keys.prefix}api:search:*:tmp")]


async def test_pages_within_the_ttl_come_from_one_result_even_if_the_boards_move(
    client: Redis, seeded: Seeded, direct: redis.Redis
) -> None:
    query = Query("GB", minimums={"cooperation": 20.0}, sort="sales")
    before = expected(direct, seeded.keys, query)
    searcher = Searcher(client, seeded.keys, 60_000)
    first = await searcher.search(query, 5)
    assert first["fresh"] and first["matches"] == len(before)
    newcomer = "cr-newcomer"
    boards = [seeded.keys.board(score, "GB") for score in SCORE_NAMES]
    for key in boards:
        direct.zadd(key, {newcomer: 99.0})
    try:
        rest = await search_all_from(searcher, query, 5, 5)
        assert [(r[0], r[1]) for r in rest] == before[5:]
        assert {r[2] for r in rest} == {False}
    finally:
        for key in boards:
            direct.zrem(key, newcomer)
        await client.delete(*[k async for k in client.scan_iter(
            match=f"{seeded.keys.prefix}api:search:*")])  # fmt: skip


async def test_a_page_after_the_ttl_is_read_from_a_new_result(
    client: Redis, seeded: Seeded, direct: redis.Redis
) -> None:
    query = Query("ID", theme="beauty", minimums={"influence": 30.0}, sort="overall")
    want = expected(direct, seeded.keys, query)
    searcher = Searcher(client, seeded.keys, 50)
    first = await searcher.search(query, 4)
    await asyncio.sleep(0.2)
    rest = await search_all_from(searcher, query, 4, 4)
    assert first["fresh"] and rest[0][2] is True
    pages = [(r["creator_id"], r["sort_value"]) for r in first["results"]]
    assert pages + [(r[0], r[1]) for r in rest] == want


async def search_all_from(
    searcher: Searcher, query: Query, n: int, offset: int
) -> list[tuple[str, float, bool]]:
    """(creator, sort value, whether its page built a new result) from `offset` on."""
    out: list[tuple[str, float, bool]] = []
    at: int | None = offset
    while at is not None:
        found = await searcher.search(query, n, at)
        out += [(r["creator_id"], r["sort_value"], found["fresh"]) for r in found["results"]]
        at = found["next_offset"]
    return out
