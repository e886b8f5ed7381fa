"""`top`, `show` and the dashboard read what the worker writes, from the real Redis.

Each test writes under its own key prefix. Most use hand-made hashes and boards
so orderings are known exactly; one builds real score cards with the scoring
model from simulated events and writes them with the worker sink's own field
and board builders, so the readers are checked against the writer's format.
"""

from __future__ import annotations

import dataclasses
import re
import time

import orjson
import pytest
import redis
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from redis.asyncio import Redis as AsyncRedis
from rich.console import Console

from scoring.params import DEFAULT_PARAMS
from scoring.state import CreatorState, score
from scoring.validate import ValidationError, validate
from streams.cli import main
from streams.devtools.dashboard import Dashboard, parse_metrics, read_leaders, scrape
from streams.devtools.simulate import SimConfig, Simulator
from streams.keys import Keys
from streams.layout import board_scores, creator_fields
from streams.readers import (
    ReaderError,
    board_key,
    board_size,
    creator_renderable,
    parse_creator,
    read_creator,
    read_top,
    regions_with_boards,
)
from streams.settings import Settings, redacted
from tests.support.population import score_population

pytestmark = pytest.mark.integration

#: Hand-made hashes carry `explain` (the texts themselves, as workers wrote them before
#: explanation bases) so that expected sentences are short and known; the worker's own
#: `basis` field is checked in test_readers_understand_what_the_worker_sink_writes.
EXPLAIN = {
    "overall": {
        "score": "overall",
        "value": 81.5,
        "summary": "strong sales, steady posting",
        "contributions": [
            {"name": "sales", "value": 90.0, "points": 30.0, "text": "sells well"},
            {"name": "consistency", "value": 70.0, "points": 14.0, "text": "posts most days"},
        ],
    },
    "sales": {"score": "sales", "value": 90.0, "summary": "GMV above peers", "contributions": []},
}


@pytest.fixture
def keys(redis_prefix: str) -> Keys:
    return Keys(redis_prefix)


def _put(
    client: redis.Redis,
    keys: Keys,
    creator_id: str,
    region: str,
    overall: float,
    *,
    provisional: bool = False,
    themes: dict[str, float] | None = None,
    content_types: dict[str, float] | None = None,
) -> None:
    fields = {
        "overall": repr(overall),
        "cooperation": "50.0",
        "diligence": "61.25",
        "influence": "40.0",
        "reception": "55.5",
        "sales": "90.0",
        "consistency": "70.0",
        "collaboration": "12.0",
        "provisional": "1" if provisional else "0",
        "confidence": "0.8",
        "region": region,
        "event_time": "1767225600000",
        "updated_at": str(int(time.time() * 1000)),
        "model_version": "test-1",
        "explain": orjson.dumps(EXPLAIN).decode(),
    }
    pipe = client.pipeline(transaction=False)
    pipe.hset(keys.creator(creator_id), mapping=fields)
    for board_region in ("ALL", region):
        pipe.zadd(keys.board("overall", board_region), {creator_id: overall})
        for theme, value in (themes or {}).items():
            pipe.zadd(keys.theme_board("overall", board_region, theme), {creator_id: value})
        for ct, value in (content_types or {}).items():
            pipe.zadd(keys.content_type_board("overall", board_region, ct), {creator_id: value})
    pipe.execute()


@pytest.fixture
def populated(client: redis.Redis, keys: Keys) -> None:
    _put(client, keys, "cr-a", "US", 91.0, themes={"beauty": 60.0}, content_types={"live": 70.0})
    _put(client, keys, "cr-b", "ID", 77.5, provisional=True, themes={"beauty": 88.0})
    _put(client, keys, "cr-c", "US", 85.25, content_types={"live": 95.0})
    _put(client, keys, "cr-d", "VN", 12.0)


# --------------------------------------------------------------------------- top


def test_top_orders_by_score_and_joins_flags_and_regions(
    client: redis.Redis, keys: Keys, populated: None
) -> None:
    entries = read_top(client, keys, board_key(keys), n=10)
    assert [(e.rank, e.creator_id, e.score) for e in entries] == [
        (1, "cr-a", 91.0),
        (2, "cr-c", 85.25),
        (3, "cr-b", 77.5),
        (4, "cr-d", 12.0),
    ]
    assert [e.region for e in entries] == ["US", "US", "ID", "VN"]
    assert [e.provisional for e in entries] == [False, False, True, False]
    assert [e.creator_id for e in read_top(client, keys, board_key(keys), n=2)] == ["cr-a", "cr-c"]


def test_region_theme_and_content_type_boards(
    client: redis.Redis, keys: Keys, populated: None
) -> None:
    us = read_top(client, keys, board_key(keys, region="US"))
    assert [e.creator_id for e in us] == ["cr-a", "cr-c"]
    beauty = read_top(client, keys, board_key(keys, theme="beauty"))
    assert [(e.creator_id, e.score) for e in beauty] == [("cr-b", 88.0), ("cr-a", 60.0)]
    live = read_top(client, keys, board_key(keys, region="US", content_type="live"))
    assert [(e.creator_id, e.score) for e in live] == [("cr-c", 95.0), ("cr-a", 70.0)]
    assert board_key(keys, theme="beauty").endswith("lb:overall:ALL:beauty")
    assert board_key(keys, region="US", content_type="live").endswith("lb:overall:US:ct:live")
    assert board_size(client, board_key(keys)) == 4


def test_an_empty_board_reads_as_no_entries(client: redis.Redis, keys: Keys) -> None:
    assert read_top(client, keys, board_key(keys, region="PH")) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score": "popularity"}, "unknown score"),
        ({"theme": "beauty", "content_type": "live"}, "not both"),
        ({"score": "sales", "theme": "beauty"}, "overall, influence only"),
        ({"region": " "}, "region must not be empty"),
    ],
)
def test_requests_without_a_board_are_refused(
    keys: Keys, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ReaderError, match=message):
        board_key(keys, **kwargs)  # type: ignore[arg-type]


def test_top_command_prints_table_and_json(
    stack_settings: Settings, redis_prefix: str, populated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREATOR_SCORES_REDIS_PREFIX", redis_prefix)
    runner = CliRunner()
    table = runner.invoke(main, ["top", "-n", "3"])
    assert table.exit_code == 0, table.output
    lines = [line for line in table.output.splitlines() if "cr-" in line]
    assert [re.findall(r"cr-\w+", line) for line in lines] == [["cr-a"], ["cr-c"], ["cr-b"]]
    assert "provisional" in lines[2]
    as_json = runner.invoke(main, ["top", "--theme", "beauty", "--json"])
    assert as_json.exit_code == 0, as_json.output
    doc = orjson.loads(as_json.output)
    assert doc["board"] == f"{redis_prefix}lb:overall:ALL:beauty"
    assert [(r["rank"], r["creator_id"], r["provisional"]) for r in doc["entries"]] == [
        (1, "cr-b", True),
        (2, "cr-a", False),
    ]
    refused = runner.invoke(main, ["top", "--score", "sales", "--content-type", "live"])
    assert refused.exit_code == 2
    assert "overall, influence only" in refused.output


async def test_top_for_a_region_without_creators_lists_the_regions_with_some(
    stack_settings: Settings,
    client: redis.Redis,
    keys: Keys,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A population the worker's own pipeline and Redis sink wrote: asked for a region no
    creator is in, `top` says which regions have creators (exit 2) instead of an empty board."""
    monkeypatch.setenv("CREATOR_SCORES_REDIS_PREFIX", redis_prefix)
    runner = CliRunner()
    nothing = runner.invoke(main, ["top", "--region", "XX"])
    assert nothing.exit_code == 0, nothing.output  # no boards at all: merely empty so far
    assert f"no creators on {redis_prefix}lb:overall:XX yet" in nothing.stdout

    writer = AsyncRedis.from_url(stack_settings.redis_url)
    try:
        await score_population(writer, keys, creators=60, events=3_000, seed=4)
    finally:
        await writer.aclose()
    listed = "no creators in region XX; regions with creators: GB, ID, MY, PH, US, VN"
    for args in (["--region", "XX"], ["--region", "xx", "--json"],
                 ["--region", "XX", "--theme", "beauty"]):  # fmt: skip
        unknown = runner.invoke(main, ["top", *args])
        assert unknown.exit_code == 2, (args, unknown.output)
        assert listed in unknown.stderr, unknown.stderr
        assert unknown.stdout == ""
    known = runner.invoke(main, ["top", "--region", "uk"])
    assert known.exit_code == 0, known.output
    assert re.search(r"cr-\d{6}", known.stdout) and "GB" in known.stdout
    # A region with creators but an empty board (no creator of theme `other`) is no error.
    empty = runner.invoke(main, ["top", "--region", "GB", "--theme", "other"])
    assert empty.exit_code == 0, empty.output
    assert f"no creators on {redis_prefix}lb:overall:GB:other yet" in empty.stdout

    # A creator without a region (no post seen) sits on ZZ boards: listed, and explained.
    _put(client, keys, "cr-tags-only", "ZZ", 5.0)
    unknown = runner.invoke(main, ["top", "--region", "XX"])
    assert (
        "regions with creators: GB, ID, MY, PH, US, VN, ZZ (region not known yet)" in unknown.stderr
    )
    board = runner.invoke(main, ["top", "--region", "ZZ"])
    assert board.exit_code == 0, board.output
    assert "cr-tags-only" in board.stdout
    assert "ZZ: region not known yet (no post seen)" in board.stdout


def test_regions_with_boards_reads_region_boards_only(
    client: redis.Redis, keys: Keys, populated: None
) -> None:
    # Theme and content-type boards (lb:overall:US:beauty, lb:overall:US:ct:live) and other
    # prefixes are not regions.
    other = Keys(keys.prefix.rstrip(":") + "*:")  # a glob character, taken literally
    client.zadd(other.board("overall", "PH"), {"cr-z": 1.0})
    try:
        assert regions_with_boards(client, keys) == ["ID", "US", "VN"]
        assert regions_with_boards(client, other) == ["PH"]
    finally:
        client.delete(other.board("overall", "PH"))


# --------------------------------------------------------------------------- show


def test_read_creator_types_every_field(client: redis.Redis, keys: Keys, populated: None) -> None:
    view = read_creator(client, keys, "cr-b")
    assert view is not None
    assert view.scores["overall"] == 77.5 and view.scores["diligence"] == 61.25
    assert set(view.scores) == {
        "overall", "cooperation", "diligence", "influence", "reception", "sales",
        "consistency", "collaboration",
    }  # fmt: skip
    assert view.provisional is True
    assert view.confidence == 0.8
    assert (view.region, view.model_version, view.event_time_ms) == ("ID", "test-1", 1767225600000)
    overall = view.explanations["overall"]
    assert overall.summary == "strong sales, steady posting"
    assert [(c.name, c.points) for c in overall.contributions] == [
        ("sales", 30.0),
        ("consistency", 14.0),
    ]
    assert view.problems == ()
    assert read_creator(client, keys, "cr-nobody") is None


def test_unreadable_fields_are_reported_not_raised() -> None:
    view = parse_creator(
        "cr-x",
        {"overall": "high", "provisional": "maybe", "explain": "{broken", "event_time": "noon"},
    )
    assert view.scores == {}
    assert len(view.problems) == 4
    rendered = _render(creator_renderable(view))
    assert "unreadable field - overall" in rendered


def test_an_inactive_creator_says_so() -> None:
    view = parse_creator("cr-x", {"overall": "50.0", "provisional": "1", "active": "0"})
    assert view.active is False and view.problems == ()
    assert view.to_dict()["active"] is False
    assert "inactive: nothing in its window, on no leaderboard" in _render(creator_renderable(view))
    # A hash written before the field existed is active; a bad flag is a problem.
    assert parse_creator("cr-x", {"overall": "50.0"}).active is True
    assert parse_creator("cr-x", {"active": "perhaps"}).problems == (
        "active: not a flag ('perhaps')",
    )


def test_show_command(
    stack_settings: Settings, redis_prefix: str, populated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREATOR_SCORES_REDIS_PREFIX", redis_prefix)
    runner = CliRunner()
    shown = runner.invoke(main, ["show", "cr-a"])
    assert shown.exit_code == 0, shown.output
    assert "cr-a" in shown.output and "91.00" in shown.output
    assert "strong sales, steady posting" in shown.output and "posts most days" in shown.output
    # Where it read from, on stderr (stdout stays the card), the password hidden.
    assert shown.stderr.startswith(f"using Redis {redacted(stack_settings.redis_url)} "
                                   f"(prefix '{redis_prefix}')")  # fmt: skip
    as_json = runner.invoke(main, ["show", "cr-a", "--json"])
    assert as_json.stderr == ""  # JSON alone
    doc = orjson.loads(as_json.stdout)
    assert doc["scores"]["overall"] == 91.0
    assert doc["explain"]["overall"]["contributions"][0]["name"] == "sales"
    assert doc["event_time"] == "2026-01-01T00:00:00Z"
    unknown = runner.invoke(main, ["show", "cr-nobody"])
    assert unknown.exit_code == 1
    assert "no scores for creator 'cr-nobody'" in unknown.stderr


def test_readers_understand_what_the_worker_sink_writes(
    client: redis.Redis, keys: Keys, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real score cards (simulated events through the model) in the sink's own layout."""
    config = SimConfig(end_ms=int(time.time() * 1000), events=6_000, creators=12, seed=3)
    states: dict[str, CreatorState] = {}
    now_ms = config.end_ms + 60_000
    for event, kind, fault in Simulator(config).annotated():
        if fault is not None:
            continue
        parsed = validate(kind, orjson.loads(event.value), now_ms=now_ms, params=DEFAULT_PARAMS)
        assert not isinstance(parsed, ValidationError)
        state = states.setdefault(parsed.creator_id, CreatorState.new(parsed.creator_id))
        state.apply(parsed, DEFAULT_PARAMS)
    cards = [score(state, DEFAULT_PARAMS) for state in states.values()]
    pipe = client.pipeline(transaction=False)
    for card in cards:
        pipe.hset(keys.creator(card.creator_id), mapping=creator_fields(card, updated_at_ms=now_ms))
        for board, value in board_scores(card).items():
            pipe.zadd(keys.prefix + board, {card.creator_id: value})
    pipe.execute()

    best = max(cards, key=lambda c: (c.overall, c.creator_id))
    top = read_top(client, keys, board_key(keys), n=len(cards))
    assert len(top) == len(cards)
    assert top[0].score == best.overall
    assert [e.score for e in top] == sorted((c.overall for c in cards), reverse=True)
    assert {e.creator_id: e.region for e in top} == {c.creator_id: c.region for c in cards}
    view = read_creator(client, keys, best.creator_id, DEFAULT_PARAMS)
    assert view is not None
    assert view.problems == ()
    assert view.scores == best.values()
    assert view.provisional == best.provisional
    assert view.event_time_ms == best.as_of_ms
    assert view.model_version == best.model_version
    # The hash holds the explanation basis; the reader writes the model's very sentences.
    assert set(view.explanations) == set(best.explanations)
    for name, explanation in best.explanations.items():
        got = view.explanations[name]
        assert (got.value, got.summary) == (explanation.value, explanation.summary)
        assert [(c.name, c.value, c.points, c.text) for c in got.contributions] == [
            (c.name, c.value, c.points, c.text) for c in explanation.contributions
        ]
    # Without the model's parameters, or with another version's, it says why there are none.
    bare = read_creator(client, keys, best.creator_id)
    assert bare is not None and not bare.explanations
    assert bare.problems == ("basis: no model parameters given to write the explanations with",)
    other = dataclasses.replace(DEFAULT_PARAMS, model_version="other-2")
    elsewhere = read_creator(client, keys, best.creator_id, other)
    assert elsewhere is not None and "this reader has 'other-2'" in elsewhere.problems[0]
    # `show` writes them with the worker's parameters.
    monkeypatch.setenv("CREATOR_SCORES_REDIS_PREFIX", redis_prefix)
    shown = CliRunner().invoke(main, ["show", best.creator_id, "--json"])
    assert shown.exit_code == 0, shown.output
    doc = orjson.loads(shown.output)
    assert doc["explain"]["sales"]["summary"] == best.explanations["sales"].summary


# --------------------------------------------------------------------------- dashboard


def _render(renderable: object) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_dashboard_frame_shows_leaders_by_region(
    client: redis.Redis, keys: Keys, populated: None
) -> None:
    leaders = read_leaders(client, keys)
    assert [e.creator_id for e in leaders.top] == ["cr-a", "cr-c", "cr-b", "cr-d"]
    assert [e.creator_id for e in leaders.by_region["US"]] == ["cr-a", "cr-c"]
    assert leaders.by_region["PH"] == []
    assert leaders.ranked == 4
    assert leaders.newest_update_ms is not None
    dashboard = Dashboard(client, keys, "http://127.0.0.1:9/metrics")
    text = _render(dashboard.frame())
    assert "no worker metrics at http://127.0.0.1:9/metrics" in text
    assert "top 10 overall" in text and "4 ranked" in text
    us_row = next(line for line in text.splitlines() if line.strip().startswith("│ US"))
    assert "cr-a 91.0" in us_row and "cr-c 85.2" in us_row
    assert "cr-b 77.5*" in text  # provisional mark


def test_dashboard_once_command(
    stack_settings: Settings, redis_prefix: str, populated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREATOR_SCORES_REDIS_PREFIX", redis_prefix)
    result = CliRunner().invoke(
        main, ["dashboard", "--once", "--metrics-url", "http://127.0.0.1:9/metrics"]
    )
    assert result.exit_code == 0, result.output
    assert "cr-a" in result.output and "leaders by region" in result.output


def test_pipeline_rates_come_from_two_scrapes() -> None:
    registry = CollectorRegistry()
    consumed = Counter("creator_scores_events_consumed", "", ["topic"], registry=registry)
    dead = Counter("creator_scores_dead_letters", "", ["topic", "reason"], registry=registry)
    lag = Gauge("kafka_consumergroup_group_sum_lag", "", ["group"], registry=registry)
    consumed.labels("posts").inc(100)
    consumed.labels("orders").inc(50)
    dead.labels("posts", "bad_json").inc(3)
    lag.labels("g").set(42)
    values = parse_metrics(generate_latest(registry).decode())
    assert values == {"consumed": 150.0, "dead_letters": 3.0, "lag": 42.0}
    assert isinstance(scrape("http://127.0.0.1:9/metrics", timeout_s=0.2), str)
