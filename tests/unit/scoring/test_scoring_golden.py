"""Golden cards: the scoring model gives exactly the answers it gave before it was optimised.

The fixture `golden_scorecards.json` was written by the straightforward model (every
figure recomputed from the records on each `score`) before the performance work. A
deterministic, varied population of creators (empty, thin, typical, heavy,
refund-heavy, multi-region, with late, duplicate and out-of-order events, scored
mid-stream and after a trip through bytes) is replayed here, and every card must
match to the last digit: headline scores, breakdowns, confidence and every
explanation sentence. The outcome of every event, the region, the watermark and the
records held are pinned too. Events between two checkpoints go in as one flush,
as a worker takes them; the outcomes are those of one event at a time.

To rewrite the fixture after a deliberate change (a new model version), run with
`CREATOR_SCORES_REGEN_GOLDEN=1` and say why in the commit. Every field is as the
straightforward model wrote it; the window figures and state bytes it also pinned
(the internals of the per-creator model) were dropped when the model moved to columns.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from scoring_testkit import CID, DAY_MS, NOW, T0, order, post, tag, typical_creator

from scoring.events import Event, OrderEvent, PostEvent, TagEvent
from scoring.explain import ScoreCard
from scoring.merge import Outcome
from scoring.params import DEFAULT_PARAMS, Component, Params
from scoring.state import CreatorState, score
from scoring.validate import ValidationError, validate

FIXTURE = Path(__file__).with_name("golden_scorecards.json")
VALIDATE_FIXTURE = Path(__file__).with_name("golden_validate.json")
REGEN = os.environ.get("CREATOR_SCORES_REGEN_GOLDEN") == "1"

_LETTER = {Outcome.APPLIED: "A", Outcome.UPDATED: "U", Outcome.DUPLICATE: "D", Outcome.LATE: "L"}

#: A second parameter set, so that nothing only works for the defaults.
OTHER_PARAMS = dataclasses.replace(
    DEFAULT_PARAMS,
    model_version="golden-alt",
    window_days=14,
    short_window_days=3,
    full_evidence_posts=5,
    full_evidence_views=7_000,
    share_prior=1.5,
    sales_prior_posts=2.0,
    overall_weights={**DEFAULT_PARAMS.overall_weights, "sales": 0.4, "consistency": 0.0},
    scores={
        **DEFAULT_PARAMS.scores,
        "influence": {
            "reach": Component(0.5, "ratio", 1.3, 1.7),
            "engagement": Component(0.2, "ratio", 0.8, 1.0),
            "weekly_views": Component(0.3, "ratio", 1.0, 0.6),
        },
    },
    fx_usd_per_unit={**DEFAULT_PARAMS.fx_usd_per_unit, "IDR": Decimal("0.0000625")},
)


@dataclasses.dataclass(frozen=True)
class Habit:
    """How a generated creator behaves over `days` days."""

    posts_per_day: float
    snapshots: int
    tags_per_post: float
    orders_per_day: float
    refund_share: float
    brands: int
    themes: int
    collab_share: float = 0.25
    days: int = 28
    regions: tuple[str, ...] = ("ID",)


THEMES = ("beauty", "fashion", "home", "food", "toys", "sports", "books", "pets")
TYPES = ("video", "video", "photo", "live", "story")  # story has no peer baseline
CURRENCIES = ("USD", "GBP", "IDR", "MYR", "VND", "PHP", "EUR", "SGD", "THB")


def generated(rng: random.Random, cid: str, h: Habit) -> list[Event]:
    """One creator's events: snapshots, tags (some on unknown posts), orders with updates."""
    events: list[Event] = []
    themes = THEMES[: h.themes]
    brands = [f"brand-{i}" for i in range(h.brands)]
    post_ids: list[str] = []
    for d in range(h.days):
        n = int(h.posts_per_day) + (rng.random() < h.posts_per_day % 1)
        for k in range(n):
            pid = f"{cid}-p{d}-{k}"
            post_ids.append(pid)
            at = d + rng.random() * 0.999
            views = int(rng.lognormvariate(8.0, 1.6)) if rng.random() > 0.05 else 0
            if rng.random() < 0.02:
                views = rng.randrange(2**40)
            ct = rng.choice(TYPES)
            th = tuple(sorted(rng.sample(themes, rng.randint(0, min(3, len(themes))))))
            brand = rng.choice(brands) if brands and rng.random() < h.collab_share else None
            region = rng.choice(h.regions)
            for snap in range(1, h.snapshots + 1):
                v = views * snap // h.snapshots
                observed = None if rng.random() < 0.1 else T0 + int((at + snap / 24) * DAY_MS)
                events.append(
                    post(pid, day=at, views=v, likes=v // rng.choice((12, 25, 60)),
                         comments=v // rng.choice((150, 300, 900)), shares=v // 800,
                         themes=th, content_type=ct, brand=brand, observed=observed,
                         region=region, creator=cid)
                )  # fmt: skip
            tags = int(h.tags_per_post) + (rng.random() < h.tags_per_post % 1)
            for j in range(tags):
                target = pid if rng.random() > 0.1 else f"{cid}-unknown-{rng.randrange(5)}"
                campaign = f"camp-{rng.randrange(4)}" if rng.random() < 0.3 else None
                events.append(
                    tag(f"{pid}-t{j}", post_id=target, day=at + 0.01,
                        brand=rng.choice(brands) if brands else "solo",
                        theme=rng.choice(themes) if themes else "misc",
                        campaign=campaign, creator=cid)
                )  # fmt: skip
        n_orders = int(h.orders_per_day) + (rng.random() < h.orders_per_day % 1)
        for k in range(n_orders):
            cur = rng.choice(CURRENCIES)
            amount = f"{rng.randrange(0, 30_000)}.{rng.randrange(100):02d}"
            if cur in ("IDR", "VND"):
                amount = str(rng.randrange(0, 3000) * 1000)
            elif rng.random() < 0.05:
                amount = f"{rng.randrange(10)}.{rng.randrange(10**6):06d}"
            linked = rng.choice(post_ids) if post_ids and rng.random() < 0.7 else None
            if linked is None and rng.random() < 0.3:
                linked = f"{cid}-elsewhere-{rng.randrange(9)}"
            base: dict[str, Any] = dict(
                post_id=linked, day=d + rng.random() * 0.999, amount=amount, currency=cur,
                brand=rng.choice(brands) if brands else "solo",
                theme=rng.choice(themes) if themes else "misc",
                quantity=rng.randint(1, 4), creator=cid,
            )  # fmt: skip
            oid = f"{cid}-o{d}-{k}"
            events.append(order(oid, **base))
            if rng.random() < h.refund_share:
                events.append(order(oid, status=rng.choice(("cancelled", "refunded")), **base))
    return events


def jumble(rng: random.Random, events: list[Event], shuffle: float) -> list[Event]:
    """Redeliveries, and some events out of order (a `shuffle` share of swaps)."""
    out = list(events)
    out.sort(key=lambda e: e.event_time_ms)
    for _ in range(int(len(out) * shuffle)):
        i, j = rng.randrange(len(out)), rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    for i in range(0, len(out), 13):
        out.insert(rng.randrange(len(out) + 1), out[i])
    return out


def population() -> Iterator[tuple[str, list[Event], Params]]:
    """(name, events in arrival order, params) for every golden creator."""
    rng = random.Random(20251126)
    P = DEFAULT_PARAMS
    yield "empty", [], P
    yield "one-post", [post()], P
    yield "one-unseen-post", [post(views=0, likes=0, comments=0, shares=0)], P
    yield "one-order", [order(post_id=None)], P
    yield "one-tag", [tag(campaign="c1")], P
    yield "zero-amount-order", [post(), order(amount="0"), order("o2", amount="0.000001")], P
    yield "refund-before-placed", [order(status="refunded"), order(), post()], P
    for seed in range(3):
        yield f"testkit-typical-{seed}", typical_creator(seed), P
    yield "testkit-typical-alt-params", typical_creator(5), OTHER_PARAMS
    habits = {
        "thin": Habit(0.15, 2, 0.3, 0.1, 0.1, 2, 2),
        "typical": Habit(1.0, 3, 0.5, 0.6, 0.1, 5, 3),
        "refund-heavy": Habit(1.0, 2, 0.5, 2.0, 0.6, 4, 3),
        "multi-region": Habit(1.2, 3, 0.7, 0.8, 0.15, 6, 4, regions=("ID", "MY", "PH", "VN")),
        "collab-heavy": Habit(0.8, 2, 1.5, 0.4, 0.05, 8, 5, collab_share=0.7),
        "no-brands": Habit(0.7, 2, 0.0, 0.0, 0.0, 0, 2),
        "long-history": Habit(0.6, 2, 0.6, 0.5, 0.2, 5, 4, days=60),
        "bursty": Habit(0.25, 4, 0.8, 0.3, 0.1, 3, 3, days=45),
    }
    for name, h in habits.items():
        for i in range(3):
            cid = f"{name}-{i}"
            events = jumble(rng, generated(rng, cid, h), shuffle=0.02 * i)
            yield cid, events, P if i < 2 else OTHER_PARAMS
    heavy = Habit(6.0, 4, 1.5, 30.0, 0.1, 20, 8)
    for i in range(2):
        cid = f"heavy-{i}"
        yield cid, jumble(rng, generated(rng, cid, heavy), shuffle=0.05 * i), P
    # Late arrivals: the watermark moves on, then old events trickle in.
    h = Habit(1.0, 2, 0.5, 0.7, 0.1, 4, 3, days=50)
    events = generated(rng, "late-arrivals", h)
    events.sort(key=lambda e: e.event_time_ms)
    cut = len(events) * 2 // 3
    yield "late-arrivals", [*events[cut:], *events[:cut]], P
    # Another creator's name in the events: built under its own id, still deterministic.
    yield "other-creator-id", [post(creator="c-x"), order(creator="c-x")], P


def run_case(name: str, events: list[Event], params: Params) -> dict[str, Any]:
    """Apply events in arrival order; score at three checkpoints and after a bytes trip."""
    cid = events[0].creator_id if events else CID
    state = CreatorState.new(cid)
    outcomes: list[str] = []
    cards: list[dict[str, object]] = []
    checkpoints = sorted(c for c in {len(events) // 3, 2 * len(events) // 3} if c < len(events))
    pos = 0
    for i in checkpoints:
        outcomes.extend(_LETTER[o] for o in state.apply_all(events[pos:i], params))
        pos = i
        cards.append(score(state, params).to_dict())
        # Half the creators continue from their stored bytes, as a worker would.
        if i == len(events) // 3 and (len(name) % 2 == 0 or "heavy" in name):
            state = CreatorState.from_bytes(cid, state.to_bytes())
    outcomes.extend(_LETTER[o] for o in state.apply_all(events[pos:], params))
    final = score(state, params)
    cards.append(final.to_dict())
    data = state.to_bytes()
    back = CreatorState.from_bytes(cid, data)
    assert back.to_bytes() == data
    assert score(back, params) == final
    return {
        "name": name,
        "model_version": params.model_version,
        "outcomes": "".join(outcomes),
        "cards": cards,
        "region": state.region,
        "watermark_ms": state.watermark_ms,
        "counts": list(state.counts()),
    }


def _write(path: Path, cases: list[dict[str, Any]]) -> None:
    # One case per line: readable diffs when something does change.
    lines = ",\n".join(json.dumps(c, sort_keys=True, allow_nan=False) for c in cases)
    path.write_text("[\n" + lines + "\n]\n", encoding="utf-8")


def _golden_cases() -> list[dict[str, Any]]:
    return [run_case(name, events, params) for name, events, params in population()]


@pytest.fixture(scope="module")
def cases() -> list[dict[str, Any]]:
    return _golden_cases()


def test_population_is_varied(cases: list[dict[str, Any]]) -> None:
    outcomes = "".join(c["outcomes"] for c in cases)
    assert {"A", "U", "D", "L"} <= set(outcomes)
    assert len(cases) >= 30
    assert any(sum(c["counts"]) > 1000 for c in cases)  # heavy
    assert any(len({card["region"] for card in c["cards"]}) > 1 for c in cases)  # type: ignore[index]
    assert any(not card["provisional"] for c in cases for card in c["cards"])  # type: ignore[index]


def test_cards_match_the_golden_fixture(cases: list[dict[str, Any]]) -> None:
    if REGEN:
        _write(FIXTURE, cases)
    golden = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert [g["name"] for g in golden] == [c["name"] for c in cases]
    # Round-trip through JSON so floats compare exactly as the fixture stores them.
    fresh = json.loads(json.dumps(cases, allow_nan=False))
    for want, got in zip(golden, fresh, strict=True):
        assert got["outcomes"] == want["outcomes"], want["name"]
        for i, (a, b) in enumerate(zip(want["cards"], got["cards"], strict=True)):
            assert b == a, (want["name"], i)
        assert (got["region"], got["watermark_ms"], got["counts"]) == (
            want["region"],
            want["watermark_ms"],
            want["counts"],
        ), want["name"]


def test_cards_rebuilt_from_the_fixture_equal_fresh_ones(cases: list[dict[str, Any]]) -> None:
    # from_dict of a golden card must equal the freshly scored card (explanations included).
    golden = json.loads(FIXTURE.read_text(encoding="utf-8"))
    for want, got in zip(golden, cases, strict=True):
        assert ScoreCard.from_dict(want["cards"][-1]).to_dict() == json.loads(
            json.dumps(got["cards"][-1])
        )


# --- validation ---------------------------------------------------------------------------


def _payloads() -> Iterator[tuple[str, object]]:
    """Valid and broken payloads of every kind, timestamps in every accepted shape."""
    rng = random.Random(7)
    times: list[object] = [
        NOW - 5, "2025-11-24T22:00:00+07:00", "2025-11-24T15:00:00Z", "2025-11-24t15:00:00z",
        "2025-11-24 15:00:00.123456789-03:30", "2025-11-24T15:00:00.1Z", "2024-02-29T23:59:60Z",
        "2025-02-29T00:00:00Z", "2025-11-24T15:00:00", "2025-13-01T00:00:00Z",
        "2025-11-24T24:00:00Z", "2025-11-24T15:00:00+24:00", float(NOW - 1000), NOW + 10**9,
        1_700_000_000, -5, True, None, "", " 2025-11-24T15:00:00Z", "1999-12-31T23:59:59Z",
        "2000-01-01T00:00:00+00:00", "9999-12-31T23:59:59.999Z", "２０２５-11-24T15:00:00Z",
        "2025-11-24T15:00:00.Z", 1.5, "2025-11-24T15:00:00+0700",
    ]  # fmt: skip
    for t in times:
        yield "post", {
            "post_id": "p1", "creator_id": "c1", "region": "id", "content_type": " Video ",
            "themes": ["Beauty", "home", "beauty "], "posted_at": t, "views": 10, "likes": 1,
            "comments": 0, "shares": 0, "observed_at": t if rng.random() < 0.5 else None,
        }  # fmt: skip
        yield "tag", {
            "tag_id": "t1", "post_id": "p1", "creator_id": "c1", "product_id": "s",
            "brand_id": "b", "theme": "Home", "tagged_at": t, "campaign_id": "k",
        }  # fmt: skip
        yield "order", {
            "order_id": "o1", "creator_id": "c1", "product_id": "s", "brand_id": "b",
            "theme": "home", "quantity": 1, "amount": "12.5", "currency": "usd",
            "status": "Placed", "ordered_at": t, "post_id": None,
        }  # fmt: skip
    broken: list[tuple[str, str, object]] = [
        ("post", "views", -1), ("post", "views", 1.5), ("post", "views", "10"),
        ("post", "views", 2**60), ("post", "region", "IDN"), ("post", "themes", "beauty"),
        ("post", "themes", ["x"] * 17), ("post", "themes", [""]), ("post", "post_id", "p\n1"),
        ("post", "post_id", "x" * 129), ("post", "content_type", "   "), ("post", "likes", None),
        ("post", "brand_id", 5), ("post", "creator_id", False), ("tag", "campaign_id", ""),
        ("tag", "theme", "t" * 65), ("order", "amount", "1e3"), ("order", "amount", "NaN"),
        ("order", "amount", "-1"), ("order", "amount", "1.0000001"), ("order", "amount", 12.25),
        ("order", "amount", True), ("order", "amount", "1" * 70), ("order", "currency", "XYZ"),
        ("order", "status", "lost"), ("order", "quantity", 0), ("order", "quantity", 10**7),
        ("order", "amount", "10000000000000"), ("order", "post_id", ""),
    ]  # fmt: skip
    base = {kind: payload for kind, payload in list(_good())}
    for kind, field, value in broken:
        yield kind, {**base[kind], field: value}  # type: ignore[dict-item]
        missing = dict(base[kind])  # type: ignore[call-overload]
        missing.pop(field, None)
        yield kind, missing
    yield "post", [1, 2]
    yield "post", None
    yield "video", {}  # type: ignore[misc]


def _good() -> Iterator[tuple[str, dict[str, object]]]:
    yield "post", {
        "post_id": "p1", "creator_id": "c1", "region": "ID", "content_type": "video",
        "themes": [], "posted_at": NOW - 1, "views": 1, "likes": 1, "comments": 1, "shares": 1,
    }  # fmt: skip
    yield "tag", {
        "tag_id": "t1", "post_id": "p1", "creator_id": "c1", "product_id": "s",
        "brand_id": "b", "theme": "home", "tagged_at": NOW - 1,
    }  # fmt: skip
    yield "order", {
        "order_id": "o1", "creator_id": "c1", "product_id": "s", "brand_id": "b",
        "theme": "home", "quantity": 1, "amount": "12.5", "currency": "USD",
        "status": "placed", "ordered_at": NOW - 1,
    }  # fmt: skip


def _validated(kind: str, payload: object) -> object:
    r = validate(kind, payload, now_ms=NOW, params=DEFAULT_PARAMS)  # type: ignore[arg-type]
    if isinstance(r, ValidationError):
        return ["error", r.kind, r.field, r.problem, r.message]
    assert isinstance(r, PostEvent | TagEvent | OrderEvent)
    fields = dataclasses.asdict(r)
    return [type(r).__name__, {k: str(v) if isinstance(v, Decimal) else v
                               for k, v in fields.items()}]  # fmt: skip


def test_validation_matches_the_golden_fixture() -> None:
    results = [[kind, _validated(kind, p)] for kind, p in _payloads()]
    fresh = json.loads(json.dumps(results))
    if REGEN:
        _write(VALIDATE_FIXTURE, fresh)
    golden = json.loads(VALIDATE_FIXTURE.read_text(encoding="utf-8"))
    assert len(golden) == len(fresh)
    for want, got in zip(golden, fresh, strict=True):
        assert got == want
