"""The live view's rates, its output off a terminal, and the legends of the boards (no Redis,
no worker needed)."""

from __future__ import annotations

import io
import time

import pytest
import redis
from rich.console import Console

from streams.devtools import dashboard as dash
from streams.devtools.dashboard import Dashboard, Scrape
from streams.keys import Keys
from streams.readers import BoardEntry, top_table
from streams.settings import Settings


def test_rates_are_averaged_over_the_window_not_between_two_scrapes() -> None:
    view = Dashboard(redis.Redis(port=1), Keys("t:"), "http://127.0.0.1:9/metrics", window_s=10)
    # A worker's counters move once per flush: +20,000 every 4 s, flat in between.
    rates = []
    for second in range(0, 21):
        consumed = 20_000.0 * (second // 4)
        rates.append(view.rates(Scrape(float(second), {"consumed": consumed}))("consumed"))
    assert rates[0] == "-"
    steady = [float(r.removesuffix("/s").replace(",", "")) for r in rates[12:]]
    # Two scrapes a second apart would say 0/s or 20,000/s; the window says ~5,000/s.
    assert all(3_500 <= r <= 6_500 for r in steady), steady
    assert len(view.scrapes) <= 12


def test_off_a_terminal_plain_frames_are_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    settings = Settings(redis_url="redis://127.0.0.1:1/0")
    monkeypatch.setattr(dash, "PLAIN_EVERY_S", 0.0)
    dash.run_dashboard(
        settings, seconds=0.35, refresh_s=0.1, metrics_url="http://127.0.0.1:9/metrics",
        console=console,
    )  # fmt: skip
    text = out.getvalue()
    assert text.count("pipeline") >= 2  # several frames, one after the other
    assert "Redis unavailable" in text


def test_a_slow_answer_shows_the_last_figures_not_a_flicker() -> None:
    view = Dashboard(redis.Redis(port=1), Keys("t:"), "http://127.0.0.1:9/metrics", window_s=10)
    now = time.monotonic()
    view.pipeline_panel(Scrape(now - 3.0, {"consumed": 1000.0}))
    view.pipeline_panel(Scrape(now - 1.0, {"consumed": 3000.0}))
    text = _text(view.pipeline_panel("no worker metrics at http://x/metrics (timed out)"))
    assert "consumed 3,000 (1,000/s)" in text and "figures 1s old" in text
    assert "no worker metrics" not in text
    # Past STALE_S the reason is shown, and the window starts over.
    view.scrapes[-1] = Scrape(now - dash.STALE_S - 1, {"consumed": 3000.0})
    text = _text(view.pipeline_panel("no worker metrics at http://x/metrics (timed out)"))
    assert "no worker metrics" in text and not view.scrapes


def _text(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


def _leaders(*regions: str) -> dash.Leaders:
    top = [BoardEntry(i, f"cr-{i}", 90.0 - i, False, r) for i, r in enumerate(regions, start=1)]
    return dash.Leaders(
        top=top,
        by_region={r: [e for e in top if e.region == r][: dash.REGION_N] for r in dash.REGIONS},
        ranked=len(top),
        newest_update_ms=None,
    )


def test_region_zz_is_explained_where_it_is_shown() -> None:
    note = "ZZ: region not known yet (no post seen)"
    board = _text(dash.leaders_view(_leaders("US", "ZZ", "GB"), 0.0))
    assert "cr-2" in board and note in board
    assert "* provisional (thin data)" in board
    # Only where a ZZ creator is on the screen.
    assert note not in _text(dash.leaders_view(_leaders("US", "GB"), 0.0))
    table = _text(top_table(_leaders("ZZ", "ID").top, "cs:lb:overall:ALL"))
    assert note in table.split("cr-2", 1)[1]  # under the table
    assert note not in _text(top_table(_leaders("ID").top, "cs:lb:overall:ALL"))


def test_the_widget_address_is_shown_above_the_boards() -> None:
    url = "http://127.0.0.1:8080/widget?key=csk_demo"
    view = Dashboard(redis.Redis(port=1), Keys("t:"), "http://127.0.0.1:9/metrics",
                     widget_url=url)  # fmt: skip
    text = _text(view.frame())
    assert "live ranking widget" in text and url in text
    assert text.index(url) < text.index("Redis unavailable")
