"""The read API's live feeds (Server-Sent Events) over real HTTP (uvicorn on a free port),
fed by what the worker's pipeline and Redis sink write while a client listens."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from redis.asyncio import Redis

from scoring.params import DEFAULT_PARAMS
from streams.api.app import create_app
from streams.api.auth import Keyring
from streams.codec import RawRecord
from streams.devtools.simulate import SimConfig, generate_events
from streams.keys import Keys
from streams.settings import Settings
from tests.support.population import Population, score_population
from tests.support.redis import delete_prefix

pytestmark = pytest.mark.integration


@dataclass
class Served:
    url: str
    redis: Redis
    keys: Keys
    population: Population
    token: str
    indonesia: str


@pytest.fixture
async def served(stack_settings: Settings, redis_prefix: str) -> AsyncIterator[Served]:
    settings = stack_settings.model_copy(update={"redis_prefix": redis_prefix})
    keys = Keys(redis_prefix)
    client = Redis.from_url(settings.redis_url)
    population = await score_population(client, keys, creators=60, events=4_000)
    ring = Keyring(client, keys)
    _, token = await ring.create("acme", None, 10_000)
    _, indonesia = await ring.create("jakarta", frozenset({"ID"}), 10_000)
    app = create_app(settings, params=DEFAULT_PARAMS, client=client)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "the API server did not start"
        await asyncio.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", client, keys, population, token, indonesia)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
        await client.aclose()
        await delete_prefix(settings.redis_url, redis_prefix)


async def read_events(response: httpx.Response, count: int, timeout_s: float = 10.0) -> list[Any]:
    """The first `count` events of a feed: (event, id, data) each."""
    events: list[Any] = []
    fields: dict[str, str] = {}
    async with asyncio.timeout(timeout_s):
        async for line in response.aiter_lines():
            if line == "":
                if "event" in fields:
                    events.append((fields["event"], fields.get("id"),
                                   orjson.loads(fields.get("data", "null"))))  # fmt: skip
                    if len(events) == count:
                        return events
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return events


async def more_events(served: Served) -> None:
    """One more flush of the worker's pipeline: a day's new posts, tags and orders."""
    end_ms = int(time.time() * 1000)
    config = SimConfig(end_ms=end_ms, events=1_500, creators=60, seed=99, days=1,
                       malformed_share=0, mis_keyed_share=0, duplicate_share=0)  # fmt: skip
    await served.population.pipeline.process(
        [RawRecord(e.topic, 0, i, e.key, e.value, end_ms)
         for i, e in enumerate(generate_events(config))]
    )  # fmt: skip


async def stream_entries(served: Served, after: str) -> list[tuple[str, dict[str, Any]]]:
    entries = await served.redis.xrange(served.keys.changes(), min=f"({after}")
    return [(i.decode(), orjson.loads(f[b"change"])) for i, f in entries]


async def newest_id(served: Served) -> str:
    newest = await served.redis.xrevrange(served.keys.changes(), count=1)
    return str(newest[0][0].decode())


async def test_a_creator_feed_sends_its_new_changes_as_the_worker_writes_them(
    served: Served,
) -> None:
    before = await newest_id(served)
    headers = {"X-API-Key": served.token}
    async with (
        httpx.AsyncClient(base_url=served.url, headers=headers, timeout=10) as http,
        http.stream("GET", "/v1/creators/cr-000003/feed") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        await asyncio.sleep(0.3)  # subscribed before the worker writes
        await more_events(served)
        expected = [(i, c) for i, c in await stream_entries(served, before)
                        if c["creator_id"] == "cr-000003"]  # fmt: skip
        assert expected
        events = await read_events(response, len(expected))
    assert [(event, i) for event, i, _ in events] == [("change", i) for i, _ in expected]
    assert [data["change"] for _, _, data in events] == [c for _, c in expected]


async def test_a_board_feed_sends_its_regions_changes_with_the_board_rank(
    served: Served,
) -> None:
    before = await newest_id(served)
    board = served.keys.board("overall", "ID")
    url = f"/v1/leaderboards/overall/feed?region=id&api_key={served.indonesia}"
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=10) as http,
        http.stream("GET", url) as response,
    ):
        assert response.status_code == 200
        await asyncio.sleep(0.3)
        await more_events(served)
        expected = [
                (i, c) for i, c in await stream_entries(served, before)
                if c["region"] == "ID" and ("overall" in c["changed"] or not c["active"])
            ]  # fmt: skip
        others = [c for _, c in await stream_entries(served, before) if c["region"] != "ID"]
        assert expected and others
        events = await read_events(response, len(expected))
    assert [i for _, i, _ in events] == [i for i, _ in expected]
    for _, _, data in events:
        creator_id = data["change"]["creator_id"]
        rank = await served.redis.zrevrank(board, creator_id)
        assert data["board"] == {
            "score": await served.redis.zscore(board, creator_id),
            "rank": None if rank is None else rank + 1,
        }


async def test_a_client_that_reconnects_gets_what_it_missed_or_a_reset(served: Served) -> None:
    entries = await stream_entries(served, "0-0")
    mine = [(i, c) for i, c in entries if c["creator_id"] == "cr-000005"]
    assert len(mine) >= 3
    resume_after = mine[0][0]
    headers = {"X-API-Key": served.token, "Last-Event-ID": resume_after}
    async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=10) as http:
        async with http.stream("GET", "/v1/creators/cr-000005/feed") as response:
            events = await read_events(response, len(mine) - 1)
        assert [i for _, i, _ in events] == [i for i, _ in mine[1:]]
        # An id older than anything the capped stream still holds: the client missed records.
        await served.redis.xtrim(served.keys.changes(), minid=entries[1][0], approximate=False)
        headers["Last-Event-ID"] = entries[0][0]
        async with http.stream("GET", "/v1/creators/cr-000005/feed", headers=headers) as response:
            events = await read_events(response, 1)
        assert events[0][0] == "reset"


@pytest.mark.parametrize(
    ("path", "key", "status"),
    [
        ("/v1/creators/cr-000005/feed", None, 401),
        ("/v1/creators/cr-nobody/feed", "token", 404),
        ("/v1/leaderboards/overall/feed", "indonesia", 403),
        ("/v1/leaderboards/charm/feed", "token", 400),
        ("/v1/creators/cr-000005/feed?since=yesterday", "token", 400),
    ],
)
async def test_a_feed_refuses_before_it_starts(
    served: Served, path: str, key: str | None, status: int
) -> None:
    headers = {"X-API-Key": getattr(served, key)} if key else {}
    async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=10) as http:
        response = await http.get(path)
    assert response.status_code == status
    assert response.json()["error"]["status"] == status


async def test_metrics_count_open_feeds(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        url = f"/v1/leaderboards/overall/feed?api_key={served.token}"
        async with http.stream("GET", url) as response:
            assert response.status_code == 200
            text = (await http.get("/metrics")).text
            assert "creator_scores_api_feeds_open 1.0" in text
