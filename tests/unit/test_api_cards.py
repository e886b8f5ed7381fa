"""The read API's card cache: a creator's explanations are written once per version of its
hash, a rewritten card is a new version, and the cache stays within its size."""

from __future__ import annotations

from scoring.names import SCORE_NAMES
from scoring.params import DEFAULT_PARAMS
from streams.api.reads import CardCache, Percentile
from streams.keys import BoardRef


def card_hash(overall: str, updated_at: str) -> list[bytes]:
    fields = {name: "50.0" for name in SCORE_NAMES}
    fields |= {"overall": overall, "region": "ID", "provisional": "0", "confidence": "0.8",
               "event_time": "1000", "updated_at": updated_at}  # fmt: skip
    return [part.encode() for item in fields.items() for part in item]


def test_a_card_is_parsed_once_per_version() -> None:
    cache = CardCache(DEFAULT_PARAMS)
    first = cache.get("cr-1", card_hash("61.5", "5000"))
    assert cache.get("cr-1", card_hash("61.5", "5000")) is first
    rewritten = cache.get("cr-1", card_hash("62.0", "6000"))
    assert rewritten is not first
    assert (
        rewritten.answer({n: [] for n in SCORE_NAMES}, None, 7000)["scores"]["overall"]["value"]
        == 62.0
    )
    # Same content under another id is another creator's card.
    assert cache.get("cr-2", card_hash("61.5", "5000")) is not first


def test_the_least_recently_read_card_leaves_first() -> None:
    cache = CardCache(DEFAULT_PARAMS, size=2)
    a = cache.get("a", card_hash("1.0", "1"))
    b = cache.get("b", card_hash("2.0", "1"))
    assert cache.get("a", card_hash("1.0", "1")) is a
    cache.get("c", card_hash("3.0", "1"))  # b was read least recently
    assert cache.get("a", card_hash("1.0", "1")) is a
    assert cache.get("b", card_hash("2.0", "1")) is not b


def test_answers_of_one_card_differ_only_in_ranks_and_freshness() -> None:
    card = CardCache(DEFAULT_PARAMS).get("cr-1", card_hash("61.5", "5000"))
    board = BoardRef("overall", "ID")
    one = card.answer({n: [Percentile(board, 3, 10)] if n == "overall" else []
                       for n in SCORE_NAMES}, 9000, 8000)  # fmt: skip
    other = card.answer({n: [] for n in SCORE_NAMES}, None, 6000)
    assert one["scores"]["overall"]["percentiles"][0]["text"] == (
        "top 30 % of creators in ID by overall"
    )
    assert other["scores"]["overall"]["percentiles"] == []
    assert one["freshness"] == {"event_time_ms": 1000, "updated_at_ms": 5000,
                                "stream_time_ms": 9000, "lag_ms": 8000, "age_ms": 3000}  # fmt: skip
    assert other["freshness"]["age_ms"] == 1000 and other["freshness"]["lag_ms"] is None
    assert {k: v for k, v in one.items() if k not in ("scores", "freshness")} == {
        k: v for k, v in other.items() if k not in ("scores", "freshness")
    }
