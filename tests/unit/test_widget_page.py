"""The widget's page and files as the API serves them (no Redis needed: the page reads the API
from the browser): the board named in the query, checked; attributes escaped; the component
packaged; CORS only for the origins configured."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from scoring.params import DEFAULT_PARAMS
from streams.api.app import create_app
from streams.api.widget import STATIC_DIR, parse_board, widget_board
from streams.keys import BoardRef
from streams.readers import ReaderError
from streams.settings import Settings


@pytest.mark.parametrize(
    ("query", "board", "n"),
    [
        ({}, BoardRef("overall"), 10),
        ({"board": "influence:id:Beauty"}, BoardRef("influence", "ID", theme="beauty"), 10),
        ({"board": "overall:ALL:ct:video", "n": "5"},
         BoardRef("overall", content_type="video"), 5),
        ({"score": "sales", "region": "uk", "n": "100"}, BoardRef("sales", "GB"), 100),
        ({"score": "overall", "region": "MY", "content_type": "live", "key": "k"},
         BoardRef("overall", "MY", content_type="live"), 10),
    ],
)  # fmt: skip
def test_the_query_names_a_board(query: dict[str, str], board: BoardRef, n: int) -> None:
    assert widget_board(query, DEFAULT_PARAMS) == (board, n)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"board": "overall:ID:ct"}, "board"),
        ({"board": "overall:ID:x:y"}, "board"),
        ({"board": ":ID"}, "board"),
        ({"board": "overall", "region": "ID"}, "board"),
        ({"score": "fame"}, "score"),
        ({"theme": "yachts"}, "theme"),
        ({"score": "sales", "theme": "beauty"}, "score"),
        ({"region": "Indonesia"}, "region"),
        ({"n": "0"}, "n"),
        ({"n": "101"}, "n"),
        ({"n": "ten"}, "n"),
        ({"regoin": "ID"}, "regoin"),
    ],
)
def test_a_bad_query_says_which_parameter(query: dict[str, str], param: str) -> None:
    with pytest.raises(ReaderError) as caught:
        widget_board(query, DEFAULT_PARAMS)
    assert caught.value.param == param


def test_board_text_is_the_key_layout_without_prefix() -> None:
    assert parse_board("influence") == {"score": "influence", "region": None, "theme": None,
                                        "content_type": None}  # fmt: skip
    assert parse_board("overall:GB:ct:short")["content_type"] == "short"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(api_cors_origins="https://portal.example.com")
    client = Redis.from_url("redis://127.0.0.1:1/0")  # never reached by these routes
    app = create_app(settings, params=DEFAULT_PARAMS, client=client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http
    await client.aclose()


async def test_the_page_holds_the_component_with_escaped_attributes(
    http: httpx.AsyncClient,
) -> None:
    reply = await http.get("/widget", params={"key": 'csk_x"><script>', "board": "influence:id",
                                              "heading": "Top <b>picks</b>"})  # fmt: skip
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    page = reply.text
    assert 'api-key="csk_x&quot;&gt;&lt;script&gt;"' in page
    assert 'score="influence" region="ID" n="10" heading="Top &lt;b&gt;picks&lt;/b&gt;"' in page
    assert "<script>" not in page.replace('<script type="module"', "")
    assert "creator-leaderboard.js" in page
    # The URL holds the key: never sent on as a referrer, never cached.
    assert reply.headers["referrer-policy"] == "no-referrer"
    assert reply.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in reply.headers["content-security-policy"]


async def test_a_bad_board_is_a_400_page_saying_what_is_wrong(http: httpx.AsyncClient) -> None:
    reply = await http.get("/widget", params={"theme": "<yachts>"})
    assert reply.status_code == 400
    assert "no board for theme &#x27;&lt;yachts&gt;&#x27;" in reply.text
    assert "<yachts>" not in reply.text


async def test_the_component_files_are_served_from_the_package(http: httpx.AsyncClient) -> None:
    for name, kind in (("creator-leaderboard.js", "javascript"),
                       ("creator-leaderboard.css", "text/css"),
                       ("widget-page.css", "text/css")):  # fmt: skip
        assert (STATIC_DIR / name).is_file()
        reply = await http.get(f"/widget/static/{name}")
        assert reply.status_code == 200, name
        assert kind in reply.headers["content-type"]
    assert (await http.get("/widget/static/nothing.js")).status_code == 404


async def test_cors_only_for_the_configured_origins(http: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "x-api-key"}  # fmt: skip
    allowed = await http.options(
        "/v1/leaderboards/overall", headers={"Origin": "https://portal.example.com", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://portal.example.com"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    other = await http.options(
        "/v1/leaderboards/overall", headers={"Origin": "https://elsewhere.example", **preflight}
    )
    assert "access-control-allow-origin" not in other.headers


def test_every_static_file_is_packaged() -> None:
    """A wheel (or the Docker image's `pip install .`) ships what pyproject's package-data
    lists: every file of the widget's folder must match one of its patterns."""
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["streams"]
    package = STATIC_DIR.parent.parent
    packaged = {path for pattern in patterns for path in package.glob(pattern)}
    assert set(STATIC_DIR.iterdir()) <= packaged
