"""The live ranking widget in a real browser on the real stack: a worker scores events from
Kafka, `creator-scores serve` serves the widget, headless Chromium (Debian's, driven by
Playwright) shows the top N, a rank change arrives live after more events are produced
(no reload: the rows move and show the move), and a click opens the creator's explanation.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from playwright.async_api import Page, expect
from redis.asyncio import Redis

from streams.api.auth import Keyring
from streams.devtools.browser import chromium
from streams.keys import Keys
from tests.support.api import start_api
from tests.support.payloads import HOUR, order, post, tag

if TYPE_CHECKING:
    from tests.e2e.conftest import Produced, WorkerEnv

pytestmark = pytest.mark.e2e

REGION = "SG"
TOP_N = 5
#: Six creators of growing strength: the weakest is off a top 5, the others on it.
CREATORS = [f"cr-widget-{k}" for k in range(1, 7)]
WIDGET = "creator-leaderboard"


def _events(creator: str, strength: int, now_ms: int, first: int = 0) -> list[Any]:
    """Posts, tags and orders whose views, engagement and sales grow with `strength`."""
    out: list[Any] = []
    for n in range(first, first + 2 + strength):
        at = now_ms - (n % 20 + 1) * 7 * HOUR
        out.append(("post", post(creator, n, region=REGION, posted_at=at,
                                 views=900 * strength * strength + 300 * n,
                                 likes=45 * strength * strength, comments=3 * strength,
                                 shares=strength)))  # fmt: skip
        out.append(("tag", tag(creator, n, tagged_at=at + 1000, brand_id=f"b{n % (1 + strength)}")))
        for o in range(strength // 2 + 1):
            sale = order(creator, n * 10 + o, post_id=f"{creator}-p{n}", ordered_at=at + HOUR,
                         amount=f"{12 * strength}.00")  # fmt: skip
            out.append(("order", sale))
    return out


def _records(env: WorkerEnv, payloads: list[Any]) -> list[Produced]:
    topics = {"post": env.settings.posts_topic, "tag": env.settings.tags_topic,
              "order": env.settings.orders_topic}  # fmt: skip
    return [(topics[k], str(p["creator_id"]).encode(), orjson.dumps(p)) for k, p in payloads]


async def _ranks(page: Page) -> list[tuple[str, str]]:
    """The widget's rows as shown: (creator id, rank) top down."""
    rows = page.locator(f"{WIDGET} .row[data-creator]")
    return [
        (await row.get_attribute("data-creator") or "", await row.get_attribute("data-rank") or "")
        for row in await rows.all()
    ]


async def test_the_widget_shows_the_top_n_moves_live_and_explains_a_creator(
    worker_env: WorkerEnv, now_ms: int, tmp_path: Path
) -> None:
    settings = worker_env.settings
    keys = Keys(settings.redis_prefix)
    redis = Redis.from_url(settings.redis_url)
    api: Any = None
    try:
        worker = worker_env.start()
        first = [e for k, c in enumerate(CREATORS, start=1) for e in _events(c, k, now_ms)]
        await worker_env.produce(_records(worker_env, first))

        async def all_scored() -> bool:
            return int(await redis.zcard(keys.board("overall", REGION))) == len(CREATORS)

        await worker_env.wait_for(all_scored, timeout=40, proc=worker,
                                  what="the six creators on the SG board")  # fmt: skip

        # A key for Singapore only: the widget reads its region's board like any client.
        _, token = await Keyring(redis, keys).create("widget test", frozenset({REGION}), 1000)
        api, base = start_api(worker_env.env, tmp_path)
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": token}) as http:
            board = (await http.get(f"/v1/leaderboards/overall?region={REGION}&n={TOP_N}")).json()
        expected = [(e["creator_id"], str(e["rank"])) for e in board["entries"]]
        provisional = {e["creator_id"]: e["provisional"] for e in board["entries"]}
        assert len(expected) == TOP_N

        async with chromium(width=1100, height=900) as browser:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            try:
                await page.goto(f"{base}/widget?key={token}&region=sg&n={TOP_N}")
                # The top N, as the API ranks it, with each creator's provisional flag.
                await expect(page.locator(f"{WIDGET} .status")).to_have_attribute(
                    "data-status", "live", timeout=10_000
                )
                rows = page.locator(f"{WIDGET} .row[data-creator]")
                await expect(rows).to_have_count(TOP_N, timeout=10_000)
                assert await _ranks(page) == expected
                for creator, flag in provisional.items():
                    row = page.locator(f'{WIDGET} .row[data-creator="{creator}"]')
                    await expect(row).to_have_attribute("data-provisional", str(flag).lower())
                assert await page.locator(f"{WIDGET} .title").inner_text() == "Top 5 creators"
                assert "Singapore" in await page.locator(f"{WIDGET} .subtitle").inner_text()
                await page.evaluate("window.__same_page = true")

                # The last of the top N sells and draws far more: it climbs, live.
                climber, was = expected[-1]
                boost = _events(climber, 12, now_ms, first=100)
                produced_at = time.monotonic()
                await worker_env.produce(_records(worker_env, boost))
                row = page.locator(f'{WIDGET} .row[data-creator="{climber}"]')
                await expect(row).to_have_attribute("data-rank", "1", timeout=20_000)
                moved_s = time.monotonic() - produced_at
                await expect(row).to_have_attribute("data-move", "up")
                await expect(row.locator(".move")).to_have_text(f"▲{int(was) - 1}")
                # Everyone it passed went down one place, and shows it.
                shown = await _ranks(page)
                assert shown == [(climber, "1")] + [
                    (c, str(int(r) + 1)) for c, r in expected[:-1]
                ], shown
                for creator, _ in expected[:-1]:
                    down = page.locator(f'{WIDGET} .row[data-creator="{creator}"]')
                    await expect(down).to_have_attribute("data-move", "down")
                assert await page.evaluate("window.__same_page === true"), "the page reloaded"
                assert len(navigations) == 1, navigations

                # A click opens the creator's card: every score with its sentences and ranks.
                await row.click()
                panel = page.locator(f"{WIDGET} .panel")
                await expect(panel.locator(".panel-title")).to_have_text(climber, timeout=10_000)
                await expect(panel.locator(".score-card")).to_have_count(7)
                card = (await http_card(base, token, climber))["scores"]
                influence = panel.locator('.score-card[data-score="influence"]')
                await expect(influence.locator(".summary")).to_have_text(
                    card["influence"]["summary"]
                )
                texts = [c["text"] for c in card["influence"]["contributions"]]
                await expect(influence.locator(".contributions .sentence")).to_have_text(texts)
                await expect(influence.locator(".chip").first).to_contain_text("in SG by influence")
                overall = card["overall"]["summary"]
                await expect(panel.locator(".hero .summary")).to_have_text(overall)
                await expect(panel.locator(".freshness")).to_contain_text("Card written")
                # The change that moved it came with reasons: the card shows them.
                await expect(panel.locator(".latest .sentence").first).to_be_visible()
                await page.screenshot(path=str(tmp_path / "widget.png"), full_page=True)
                assert not errors, errors
                print(f"rank change shown {moved_s:.1f} s after the events were produced")
            except BaseException:
                await page.screenshot(path=str(tmp_path / "widget-failed.png"), full_page=True)
                print(f"screenshot: {tmp_path / 'widget-failed.png'}")
                raise
    finally:
        if api is not None and api.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(api.pid, signal.SIGTERM)
            api.wait(10)
        await redis.aclose()


async def http_card(base: str, token: str, creator: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": token}) as http:
        reply = await http.get(f"/v1/creators/{creator}")
    assert reply.status_code == 200, reply.text
    card: dict[str, Any] = reply.json()
    return card
