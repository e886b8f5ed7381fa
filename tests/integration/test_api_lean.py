"""`streams.api.lean`: the routes it answers give what FastAPI gives, to the byte, errors and
headers included, and it answers the hot reads itself rather than passing them on.

Each request goes to two apps over the same Redis, one with LeanRoutes and one without;
a key with a small rate has a twin per app, so both count the same requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from scoring.params import DEFAULT_PARAMS
from streams.api import lean
from streams.api.app import create_app
from streams.api.auth import Keyring
from streams.api.lean import LeanRoutes
from streams.keys import Keys
from streams.settings import Settings
from tests.support.population import scored_prefix

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Seeded:
    settings: Settings
    keys: Keys
    everywhere: str
    indonesia: str
    revoked: str
    #: (token for the lean app, token for FastAPI's), 3 requests per window each.
    small: tuple[str, str]
    inside: str
    outside: str


@pytest.fixture(scope="module")
def seeded(stack_settings: Settings) -> Iterator[Seeded]:
    async def made(client: Redis, keys: Keys) -> tuple[str, ...]:
        ring = Keyring(client, keys)
        _, everywhere = await ring.create("acme", None, 100_000)
        _, indonesia = await ring.create("jakarta", frozenset({"ID"}), 100_000)
        gone, revoked = await ring.create("former", None, 100_000)
        await ring.revoke(gone.key_id)
        small = ((await ring.create("small", None, 3))[1], (await ring.create("small", None, 3))[1])
        inside = (await client.zrevrange(keys.board("overall", "ID"), 5, 5))[0]
        outside = (await client.zrevrange(keys.board("overall", "GB"), 5, 5))[0]
        return everywhere, indonesia, revoked, small, inside, outside

    with scored_prefix(stack_settings, "lean", made) as (settings, (e, i, r, small, ins, out)):
        yield Seeded(settings, Keys(settings.redis_prefix), e, i, r, small, ins, out)


_COUNTED = ("x-ratelimit-remaining", "x-ratelimit-reset")


@dataclass
class Apps:
    lean: httpx.AsyncClient
    plain: httpx.AsyncClient
    redis: Redis


def without_lean(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not LeanRoutes]
    return app


@pytest.fixture
async def apps(seeded: Seeded) -> AsyncIterator[Apps]:
    client = Redis.from_url(seeded.settings.redis_url)
    made = [create_app(seeded.settings, params=DEFAULT_PARAMS, client=client)]
    made.append(without_lean(create_app(seeded.settings, params=DEFAULT_PARAMS, client=client)))
    https = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
             for app in made]  # fmt: skip
    try:
        yield Apps(https[0], https[1], client)
    finally:
        for http, app in zip(https, made, strict=True):
            await http.aclose()
            await app.state.api.hub.close()
        await client.aclose()


def answer(
    response: httpx.Response, *, counted: bool = True
) -> tuple[int, list[tuple[str, str]], object]:
    """Status, headers and body; `counted=False` leaves out the rate headers that change
    from one request to the next on a shared key."""
    body: object = response.content
    if response.headers.get("content-type") == "application/json":
        body = orjson.loads(response.content)
        if isinstance(body, dict) and "freshness" in body:
            body["freshness"]["age_ms"] = None  # the clock moved between the two calls
    drop = {"content-length"} if counted else {"content-length", *_COUNTED}
    headers = sorted((k, v) for k, v in response.headers.items() if k not in drop)
    return response.status_code, headers, body


async def both(apps: Apps, seeded: Seeded, url: str, headers: dict[str, str]) -> None:
    """The same request to both apps (a fresh search each time): the same answer."""
    got = []
    for http in (apps.lean, apps.plain):
        await apps.redis.delete(*[k async for k in apps.redis.scan_iter(
            match=f"{seeded.keys.prefix}api:search:*")] or ["-"])  # fmt: skip
        got.append(answer(await http.get(url, headers=headers), counted=False))
    assert got[0] == got[1], url


URLS = [
    "/v1/leaderboards/overall",
    "/v1/leaderboards/influence?region=id&theme=%20Beauty&n=5&offset=3",
    "/v1/leaderboards/influence?region=ALL&content_type=VIDEO",
    "/v1/leaderboards/overall?n=2&n=3",
    "/v1/leaderboards/charm",
    "/v1/leaderboards/overall?n=0",
    "/v1/leaderboards/overall?n=ten",
    "/v1/leaderboards/overall?n=1001",
    "/v1/leaderboards/overall?n=",
    "/v1/leaderboards/overall?offset=5&cursor=xyz",
    "/v1/leaderboards/overall?cursor=xyz",
    "/v1/leaderboards/overall?region=FR",
    "/v1/leaderboards/overall?region=ZZZ",
    "/v1/leaderboards/overall?theme=beauty&content_type=video",
    "/v1/leaderboards/overall?limit=5",
    "/v1/creators/cr-000001",
    "/v1/creators/cr-nobody",
    "/v1/creators/" + "x" * 300,
    "/v1/creators/cr-000001/changes?n=3",
    "/v1/creators/cr-000001/changes?n=0",
    "/v1/creators/cr-nobody/changes",
    "/v1/search",
    "/v1/search?region=id&theme=beauty&content_type=video&min_influence=40&min_cooperation=20"
    "&sort=sales&n=100",
    "/v1/search?region=GB&exclude_provisional=true&n=9&offset=9",
    "/v1/search?region=GB&exclude_provisional=yes",
    "/v1/search?region=GB&exclude_provisional=maybe",
    "/v1/search?sort=charm",
    "/v1/search?min_influence=101",
    "/v1/search?min_influence=7e1",
    "/v1/search?min_charm=50",
    "/v1/search?region=FR",
    "/v1/search/",
    "/v1/nothing-here",
    "/healthz",
    "/readyz",
]


@pytest.mark.parametrize("url", URLS)
async def test_every_answer_is_fastapi_s(apps: Apps, seeded: Seeded, url: str) -> None:
    await both(apps, seeded, url, {"X-API-Key": seeded.everywhere})


@pytest.mark.parametrize(
    "url",
    ["/v1/leaderboards/overall", "/v1/leaderboards/overall?region=id",
     "/v1/leaderboards/overall?n=0", "/v1/search", "/v1/search?region=ID&theme=beauty",
     "/v1/creators/{inside}", "/v1/creators/{outside}", "/v1/creators/{outside}/changes"],
)  # fmt: skip
@pytest.mark.parametrize("who", ["indonesia", "revoked", "none", "wrong", "bearer", "basic"])
async def test_keys_and_regions_are_checked_as_fastapi_checks_them(
    apps: Apps, seeded: Seeded, url: str, who: str
) -> None:
    headers = {
        "indonesia": {"X-API-Key": seeded.indonesia},
        "revoked": {"X-API-Key": seeded.revoked},
        "none": {},
        "wrong": {"X-API-Key": "csk_0123456789abcdef_wrong"},
        "bearer": {"Authorization": f"Bearer {seeded.indonesia}"},
        "basic": {"Authorization": f"Basic {seeded.indonesia}"},
    }[who]
    await both(apps, seeded, url.format(inside=seeded.inside, outside=seeded.outside), headers)


async def test_the_rate_limit_counts_and_refuses_alike(apps: Apps, seeded: Seeded) -> None:
    seen = []
    for http, token in zip((apps.lean, apps.plain), seeded.small, strict=True):
        seen.append([answer(await http.get("/v1/leaderboards/overall?n=1",
                                           headers={"X-API-Key": token}))
                     for _ in range(5)])  # fmt: skip
    assert [status for status, _, _ in seen[0]] == [200, 200, 200, 429, 429]
    assert seen[0] == seen[1]


async def test_the_hot_reads_are_answered_without_fastapi(
    apps: Apps, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered: list[str] = []
    original = lean._answer

    async def counted(plan: lean.Plan, request: object, values: dict[str, object]) -> object:
        answered.append(plan.route.path)
        return await original(plan, request, values)  # type: ignore[arg-type]

    monkeypatch.setattr(lean, "_answer", counted)
    headers = {"X-API-Key": seeded.everywhere}
    for url in ("/v1/leaderboards/overall", "/v1/creators/cr-000001", "/v1/search?region=ID",
                "/v1/leaderboards/overall?n=0"):  # fmt: skip
        await apps.lean.get(url, headers=headers)
    assert answered == ["/v1/leaderboards/{score}", "/v1/creators/{creator_id}", "/v1/search"]
