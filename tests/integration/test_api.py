"""The read API against the real Redis, holding what the worker's own pipeline and sink wrote
for a few hundred simulated creators (`tests.support.population`): every route, and every
error a partner can get.

Expected values come from Redis itself (ZREVRANGE, ZREVRANK, the creator hashes) and from
the readers `creator-scores show` uses, never from the API's own code.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import redis
from pydantic import BaseModel
from redis.asyncio import Redis

from scoring.names import SCORE_NAMES
from scoring.params import DEFAULT_PARAMS
from streams.api import models
from streams.api.app import create_app
from streams.api.auth import Keyring
from streams.keys import Keys
from streams.readers import read_creator
from streams.settings import Settings
from tests.support.population import QUIET, scored_prefix

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Seeded:
    settings: Settings
    keys: Keys
    #: Tokens: every region, Indonesia only, and a revoked one.
    everywhere: str
    indonesia: str
    revoked: str


@pytest.fixture(scope="module")
def seeded(stack_settings: Settings) -> Iterator[Seeded]:
    """One scored population for the module, under a prefix of its own."""

    async def tokens(client: Redis, keys: Keys) -> tuple[str, str, str]:
        ring = Keyring(client, keys)
        _, everywhere = await ring.create("acme", None, 100_000)
        _, indonesia = await ring.create("jakarta agency", frozenset({"ID"}), 100_000)
        gone, revoked = await ring.create("former partner", None, 100_000)
        assert await ring.revoke(gone.key_id)
        return everywhere, indonesia, revoked

    with scored_prefix(stack_settings, "api", tokens) as (settings, made):
        yield Seeded(settings, Keys(settings.redis_prefix), *made)


@pytest.fixture
async def api(seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process, with the every-region key."""
    client = Redis.from_url(seeded.settings.redis_url)
    app = create_app(seeded.settings, params=DEFAULT_PARAMS, client=client)
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": seeded.everywhere}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api",
                                     headers=headers) as http:  # fmt: skip
            yield http
    finally:
        await app.state.api.hub.close()
        await client.aclose()


def shaped(model: type[BaseModel], response: httpx.Response, status: int = 200) -> Any:
    """The response's JSON after checking its status and its documented shape."""
    assert response.status_code == status, response.text
    body = response.json()
    model.model_validate(body)
    return body


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body = shaped(models.Error, response, status)["error"]
    assert body["status"] == status and body["code"] == code, body
    return dict(body)


# --------------------------------------------------------------------------- leaderboards


async def test_top_10_is_the_board_with_each_creators_flags(
    api: httpx.AsyncClient, seeded: Seeded, direct: redis.Redis
) -> None:
    body = shaped(models.Leaderboard, await api.get("/v1/leaderboards/overall"))
    board = seeded.keys.board("overall")
    expected = direct.zrevrange(board, 0, 9, withscores=True)
    assert [(e["creator_id"], e["score"]) for e in body["entries"]] == expected
    assert [e["rank"] for e in body["entries"]] == list(range(1, 11))
    assert body["board"] == {"score": "overall", "region": "ALL", "theme": None,
                             "content_type": None, "size": direct.zcard(board)}  # fmt: skip
    for entry in body["entries"]:
        card = direct.hgetall(seeded.keys.creator(entry["creator_id"]))
        assert entry["provisional"] == (card["provisional"] == "1")
        assert entry["confidence"] == float(card["confidence"])
        assert entry["region"] == card["region"]
    assert body["next_offset"] == 10 and body["next_cursor"]


@pytest.mark.parametrize(
    ("query", "board"),
    [
        ("region=id", ("influence", "ID", None, None)),
        ("region=uk", ("influence", "GB", None, None)),
        ("region=Id&theme=%20Beauty", ("influence", "ID", "beauty", None)),
        ("region=ALL&content_type=VIDEO", ("influence", "ALL", None, "video")),
    ],
)
async def test_names_are_read_in_any_case_and_uk_is_gb(
    api: httpx.AsyncClient, seeded: Seeded, direct: redis.Redis, query: str,
    board: tuple[str, str, str | None, str | None],
) -> None:  # fmt: skip
    body = shaped(models.Leaderboard, await api.get(f"/v1/leaderboards/influence?n=5&{query}"))
    score, region, theme, content_type = board
    assert body["board"]["region"] == region
    assert (body["board"]["theme"], body["board"]["content_type"]) == (theme, content_type)
    if theme is not None:
        key = seeded.keys.theme_board(score, region, theme)
    elif content_type is not None:
        key = seeded.keys.content_type_board(score, region, content_type)
    else:
        key = seeded.keys.board(score, region)
    expected = direct.zrevrange(key, 0, 4, withscores=True)
    assert expected and [(e["creator_id"], e["score"]) for e in body["entries"]] == expected
    assert all(e["region"] == region for e in body["entries"] if region != "ALL")


async def test_offset_and_cursor_pages_walk_the_whole_board_once(
    api: httpx.AsyncClient, seeded: Seeded, direct: redis.Redis
) -> None:
    board = seeded.keys.board("overall", "ID")
    everyone = direct.zrevrange(board, 0, -1)
    assert len(everyone) > 25
    by_offset: list[str] = []
    offset: int | None = 0
    while offset is not None:
        url = f"/v1/leaderboards/overall?region=ID&n=7&offset={offset}"
        page = shaped(models.Leaderboard, await api.get(url))
        by_offset += [e["creator_id"] for e in page["entries"]]
        assert [e["rank"] for e in page["entries"]] == list(range(offset + 1, offset + 8))[
            : len(page["entries"])
        ]
        offset = page["next_offset"]
    by_cursor: list[str] = []
    url = "/v1/leaderboards/overall?region=ID&n=7"
    while True:
        page = shaped(models.Leaderboard, await api.get(url))
        by_cursor += [e["creator_id"] for e in page["entries"]]
        if page["next_cursor"] is None:
            break
        url = f"/v1/leaderboards/overall?region=ID&n=7&cursor={page['next_cursor']}"
    assert by_offset == everyone == by_cursor


# --------------------------------------------------------------------------- creators


async def test_a_creator_has_the_explanations_show_writes_and_percentiles_from_the_boards(
    api: httpx.AsyncClient, seeded: Seeded, direct: redis.Redis
) -> None:
    creator_id = direct.zrevrange(seeded.keys.theme_board("influence", "ID", "beauty"), 3, 3)[0]
    body = shaped(models.Creator, await api.get(f"/v1/creators/{creator_id}"))
    view = read_creator(direct, seeded.keys, creator_id, DEFAULT_PARAMS)
    assert view is not None and not view.problems and body["problems"] == []
    assert body["region"] == "ID" and body["active"] is True
    for name in SCORE_NAMES:
        score = body["scores"][name]
        explanation = view.explanations[name]
        assert score["value"] == view.scores[name]
        assert score["summary"] == explanation.summary
        assert [c["text"] for c in score["contributions"]] == [
            c.text for c in explanation.contributions
        ]
        region_board = seeded.keys.board(name, "ID")
        rank = direct.zrevrank(region_board, creator_id) + 1
        size = direct.zcard(region_board)
        mine = score["percentiles"][0]
        assert (mine["region"], mine["theme"], mine["rank"], mine["of"]) == ("ID", None, rank, size)
        assert mine["top_percent"] == math.ceil(1000 * rank / size) / 10
        assert mine["text"] == f"top {mine['top_percent']:g} % of creators in ID by {name}"
    beauty = [p for p in body["scores"]["influence"]["percentiles"]
              if p["theme"] == "beauty" and p["region"] == "ID"]  # fmt: skip
    size = direct.zcard(seeded.keys.theme_board("influence", "ID", "beauty"))
    assert beauty[0]["rank"] == 4 and beauty[0]["of"] == size
    assert beauty[0]["text"].endswith("% of beauty creators in ID by influence")
    # Every board the worker put the creator on has its percentile, and only those.
    boards = direct.smembers(seeded.keys.creator_boards(creator_id))
    assert sum(len(s["percentiles"]) for s in body["scores"].values()) == len(boards)


async def test_freshness_says_how_far_the_card_is_behind_the_stream(
    api: httpx.AsyncClient, seeded: Seeded, direct: redis.Redis
) -> None:
    body = shaped(models.Creator, await api.get("/v1/creators/cr-000001"))
    card = direct.hgetall(seeded.keys.creator("cr-000001"))
    stream = int(direct.zscore(seeded.keys.stream_time(), "stream"))
    fresh = body["freshness"]
    assert fresh["event_time_ms"] == int(card["event_time"])
    assert fresh["updated_at_ms"] == int(card["updated_at"])
    assert fresh["stream_time_ms"] == stream
    assert fresh["lag_ms"] == stream - int(card["event_time"])
    assert 0 <= fresh["age_ms"] < 600_000


async def test_an_inactive_creator_is_shown_as_such_with_no_ranks(
    api: httpx.AsyncClient, direct: redis.Redis, seeded: Seeded
) -> None:
    assert direct.hget(seeded.keys.creator(QUIET), "active") == "0"
    body = shaped(models.Creator, await api.get(f"/v1/creators/{QUIET}"))
    assert body["active"] is False
    assert all(s["percentiles"] == [] for s in body["scores"].values())
    assert "Provisional" in body["scores"]["overall"]["summary"]


async def test_recent_changes_are_the_records_the_topic_got_newest_first(
    api: httpx.AsyncClient, seeded: Seeded, direct: redis.Redis
) -> None:
    creator_id = "cr-000001"
    body = shaped(models.Changes, await api.get(f"/v1/creators/{creator_id}/changes?n=3"))
    own = direct.xrevrange(seeded.keys.creator_changes(creator_id), count=3)
    assert len(own) == 3
    assert [c["id"] for c in body["changes"]] == [entry_id for entry_id, _ in own]
    assert [c["change"] for c in body["changes"]] == [orjson.loads(f["change"]) for _, f in own]
    newest = body["changes"][0]["change"]
    assert newest["creator_id"] == creator_id and set(newest["changed"]) <= set(newest["reasons"])
    assert newest["new"]["overall"] == float(
        direct.hget(seeded.keys.creator(creator_id), "overall")
    )


# --------------------------------------------------------------------------- search


async def test_search_with_three_filters_matches_a_reading_of_the_boards(
    api: httpx.AsyncClient, seeded: Seeded, direct: redis.Redis
) -> None:
    keys = seeded.keys
    url = ("/v1/search?region=id&theme=beauty&content_type=video&min_influence=40"
           "&min_cooperation=20&sort=sales&n=100")  # fmt: skip
    body = shaped(models.Search, await api.get(url))
    influence = dict(direct.zrange(keys.theme_board("influence", "ID", "beauty"), 0, -1,
                                   withscores=True))  # fmt: skip
    videos = set(direct.zrange(keys.content_type_board("overall", "ID", "video"), 0, -1))
    cooperation = dict(direct.zrange(keys.board("cooperation", "ID"), 0, -1, withscores=True))
    sales = dict(direct.zrange(keys.board("sales", "ID"), 0, -1, withscores=True))
    passing = [c for c, v in influence.items()
               if v >= 40 and c in videos and cooperation.get(c, -1) >= 20]  # fmt: skip
    expected = sorted(passing, key=lambda c: (sales[c], c), reverse=True)
    assert 3 <= len(expected) < len(influence)
    assert body["matches"] == len(expected)
    assert [r["creator_id"] for r in body["results"]] == expected
    for r in body["results"]:
        card = direct.hgetall(keys.creator(r["creator_id"]))
        assert r["sort_value"] == sales[r["creator_id"]] == r["scores"]["sales"]
        assert r["scores"] == {name: float(card[name]) for name in SCORE_NAMES}
        beauty = next(p for p in r["percentiles"]["influence"] if p["theme"] == "beauty")
        assert beauty["rank"] == direct.zrevrank(keys.theme_board("influence", "ID", "beauty"),
                                                 r["creator_id"]) + 1  # fmt: skip
    assert body["query"]["minimums"] == {"cooperation": 20.0, "influence": 40.0}


async def test_search_pages_and_leaves_out_provisional_creators_on_request(
    api: httpx.AsyncClient, seeded: Seeded, direct: redis.Redis
) -> None:
    everyone = shaped(models.Search, await api.get("/v1/search?region=GB&n=100"))
    provisional = {r["creator_id"] for r in everyone["results"] if r["provisional"]}
    assert provisional and everyone["matches"] == direct.zcard(seeded.keys.board("overall", "GB"))
    firm = shaped(
        models.Search, await api.get("/v1/search?region=GB&n=100&exclude_provisional=true")
    )
    assert firm["matches"] == everyone["matches"] - len(provisional)
    assert not provisional & {r["creator_id"] for r in firm["results"]}
    pages: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = shaped(models.Search, await api.get(f"/v1/search?region=GB&n=9&offset={offset}"))
        pages += [r["creator_id"] for r in page["results"]]
        offset = page["next_offset"]
    assert pages == [r["creator_id"] for r in everyone["results"]]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("url", "param", "valid"),
    [
        ("/v1/leaderboards/charm", "score", "cooperation"),
        ("/v1/leaderboards/cooperation?theme=beauty", "score", "influence"),
        ("/v1/leaderboards/overall?theme=knitting", "theme", "beauty"),
        ("/v1/leaderboards/overall?content_type=podcast", "content_type", "video"),
        ("/v1/leaderboards/overall?region=ZZZ", "region", None),
        ("/v1/leaderboards/overall?region=FR", "region", "GB"),
        ("/v1/leaderboards/overall?n=0", "n", None),
        ("/v1/leaderboards/overall?n=1001", "n", None),
        ("/v1/leaderboards/overall?n=ten", "n", None),
        ("/v1/leaderboards/overall?cursor=xyz", "cursor", None),
        ("/v1/leaderboards/overall?theme=beauty&content_type=video", "theme", None),
        ("/v1/leaderboards/overall?limit=5", "limit", "n"),
        ("/v1/search?sort=charm", "sort", "sales"),
        ("/v1/search?min_influence=101", "min_influence", None),
        ("/v1/search?min_charm=50", "min_charm", "min_influence"),
        ("/v1/search?region=FR", "region", "ID"),
        ("/v1/creators/cr-000001/changes?n=0", "n", None),
    ],
)
async def test_a_bad_parameter_is_a_400_that_names_it(
    api: httpx.AsyncClient, url: str, param: str, valid: str | None
) -> None:
    body = error(await api.get(url), 400, "bad_parameter")
    assert body["param"] == param
    if valid is not None:
        assert valid in body["valid"]


async def test_an_unknown_creator_is_a_404(api: httpx.AsyncClient) -> None:
    for url in ("/v1/creators/cr-nobody", "/v1/creators/cr-nobody/changes"):
        body = error(await api.get(url), 404, "unknown_creator")
        assert "cr-nobody" in body["message"]
    error(await api.get("/v1/nothing-here"), 404, "not_found")


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "csk_0123456789abcdef_wrong"}, {"X-API-Key": "not a key"},
     {"Authorization": "Bearer csk_nope"}],
)  # fmt: skip
async def test_without_a_valid_key_every_v1_route_is_a_401(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    api.headers.clear()
    for url in ("/v1/leaderboards/overall", "/v1/creators/cr-000001", "/v1/search",
                "/v1/creators/cr-000001/changes", "/v1/leaderboards/charm?n=0"):  # fmt: skip
        response = await api.get(url, headers=headers)
        error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_revoked_key_is_refused_and_a_bearer_token_is_taken(
    api: httpx.AsyncClient, seeded: Seeded
) -> None:
    api.headers.clear()
    error(await api.get("/v1/leaderboards/overall", headers={"X-API-Key": seeded.revoked}), 401,
          "unauthorized")  # fmt: skip
    bearer = {"Authorization": f"Bearer {seeded.everywhere}"}
    assert (await api.get("/v1/leaderboards/overall", headers=bearer)).status_code == 200


async def test_a_key_reads_its_regions_only(
    api: httpx.AsyncClient, seeded: Seeded, direct: redis.Redis
) -> None:
    api.headers["X-API-Key"] = seeded.indonesia
    outside = direct.zrevrange(seeded.keys.board("overall", "GB"), 0, 0)[0]
    inside = direct.zrevrange(seeded.keys.board("overall", "ID"), 0, 0)[0]
    for url in ("/v1/leaderboards/overall", "/v1/leaderboards/overall?region=GB",
                "/v1/leaderboards/influence?region=uk&theme=beauty", "/v1/search",
                "/v1/search?region=GB", f"/v1/creators/{outside}",
                f"/v1/creators/{outside}/changes"):  # fmt: skip
        body = error(await api.get(url), 403, "forbidden_region")
        assert body["valid"] == ["ID"]
    assert (await api.get("/v1/leaderboards/overall?region=id")).status_code == 200
    assert (await api.get("/v1/search?region=ID&theme=beauty")).status_code == 200
    card = shaped(models.Creator, await api.get(f"/v1/creators/{inside}"))
    # No global ranks for a key that may not read the global boards.
    assert all(p["region"] == "ID" for s in card["scores"].values() for p in s["percentiles"])


async def test_past_its_rate_a_key_gets_429_with_retry_after(
    api: httpx.AsyncClient, seeded: Seeded
) -> None:
    client = Redis.from_url(seeded.settings.redis_url)
    try:
        _, token = await Keyring(client, seeded.keys).create("small", None, 3)
    finally:
        await client.aclose()
    api.headers["X-API-Key"] = token
    remaining = []
    for _ in range(3):
        response = await api.get("/v1/leaderboards/overall?n=1")
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        remaining.append(response.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    response = await api.get("/v1/leaderboards/overall?n=1")
    error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= seeded.settings.api_rate_window_s


# --------------------------------------------------------------------------- health


async def test_health_readiness_and_metrics_by_route(api: httpx.AsyncClient) -> None:
    assert shaped(models.Live, await api.get("/healthz")) == {"live": True}
    assert shaped(models.Ready, await api.get("/readyz")) == {"ready": True, "redis": "ok"}
    await api.get("/v1/creators/cr-000002")
    await api.get("/v1/leaderboards/charm")
    text = (await api.get("/metrics")).text
    assert ('creator_scores_api_request_seconds_count{method="GET",'
            'route="/v1/creators/{creator_id}",status="200"}') in text  # fmt: skip
    assert 'route="/v1/leaderboards/{score}",status="400"' in text


async def test_readiness_fails_when_redis_does_not_answer(seeded: Seeded) -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    app = create_app(seeded.settings, params=DEFAULT_PARAMS, client=client)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            body = shaped(models.Ready, await http.get("/readyz"), 503)
            assert body["ready"] is False and body["redis"]
            assert (await http.get("/healthz")).status_code == 200
            response = await http.get("/v1/leaderboards/overall",
                                      headers={"X-API-Key": seeded.everywhere})  # fmt: skip
            error(response, 503, "redis_unavailable")
    finally:
        await client.aclose()
