"""The live view's rates and its output off a terminal (no Redis, no worker needed)."""

from __future__ import annotations

import io

import pytest
import redis
from rich.console import Console

from streams.devtools import dashboard as dash
from streams.devtools.dashboard import Dashboard, Scrape
from streams.keys import Keys
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
