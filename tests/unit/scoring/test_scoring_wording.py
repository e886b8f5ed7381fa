"""Explanations a person trusts: the cases a brand manager questioned, over every golden card.

Each golden card (typical, thin, heavy, odd creators: `golden_scorecards.json`) is read
back, and its summaries are checked against the complaints that started this: an input
named as both the biggest lift and the most room to grow, a lift named for a score of 0,
"refund rate" as the biggest lift of a creator with no orders, jargon ("a typical
start"), and "little data" beside a confidence of 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).with_name("golden_scorecards.json")


def _cards() -> list[dict[str, Any]]:
    cases = json.loads(FIXTURE.read_text())
    return [card for case in cases for card in case["cards"]]


CARDS = _cards()


def _summaries(card: dict[str, Any]) -> dict[str, str]:
    return {name: e["summary"] for name, e in card["explanations"].items()}


def test_the_gallery_is_large_enough_to_mean_something() -> None:
    assert len(CARDS) > 100


@pytest.mark.parametrize("card", CARDS, ids=lambda c: f"{c['creator_id']}@{c['as_of_ms']}")
def test_no_summary_contradicts_itself_or_its_card(card: dict[str, Any]) -> None:
    for name, summary in _summaries(card).items():
        if "Biggest lift: " in summary and "most room to grow: " in summary and name != "overall":
            lift = summary.split("Biggest lift: ", 1)[1].split(";", 1)[0]
            grow = summary.split("most room to grow: ", 1)[1].split(".", 1)[0]
            assert lift != grow, summary
        value = card["explanations"][name]["value"]
        if name != "overall" and value < 0.5:
            assert "Biggest lift" not in summary, summary
        assert "typical start" not in summary
        if card["confidence"] >= 1.0:
            assert "little data" not in summary, summary
    for e in card["explanations"].values():
        for c in e["contributions"]:
            assert "typical start" not in c["text"], c["text"]
    overall = _summaries(card)["overall"]
    if "strongest: " in overall:
        # A strongest and a weakest score only where they differ (as shown, rounded).
        strongest = overall.split("strongest: ", 1)[1].split(" (", 1)[1].split(")", 1)[0]
        weakest = overall.split("most room to grow: ", 1)[1].split(" (", 1)[1].split(")", 1)[0]
        assert strongest != weakest, overall


def test_a_creator_without_orders_is_told_so_not_praised_for_its_refund_rate() -> None:
    seen = 0
    for card in CARDS:
        sales = card["explanations"]["sales"]
        no_orders = any(
            c["name"] == "refund_rate" and c["text"].startswith("0 of 0 orders")
            for c in sales["contributions"]
        )
        if no_orders:
            seen += 1
            assert "No orders in the last" in sales["summary"], sales["summary"]
            assert "Biggest lift" not in sales["summary"]
    assert seen > 5
