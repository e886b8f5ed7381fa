"""Builders and hypothesis strategies shared by the scoring unit tests.

Named uniquely (not conftest) so it can be imported by path from the tests in
this folder without clashing with other test folders.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from scoring.events import Event, OrderEvent, PostEvent, TagEvent
from scoring.params import DEFAULT_PARAMS, Params
from scoring.state import DAY_MS, CreatorState
from scoring.window import Totals

P = DEFAULT_PARAMS
T0 = 1_763_942_400_000  # 2025-11-24T00:00:00Z, a UTC day boundary
NOW = T0 + 60 * DAY_MS
CID = "creator-1"


def post(
    post_id: str = "p1",
    *,
    day: float = 0,
    views: int = 5000,
    likes: int = 250,
    comments: int = 30,
    shares: int = 10,
    themes: tuple[str, ...] = ("beauty",),
    content_type: str = "video",
    brand: str | None = None,
    observed: int | None = None,
    region: str = "ID",
    creator: str = CID,
) -> PostEvent:
    t = T0 + int(day * DAY_MS)
    return PostEvent(
        post_id, creator, region, content_type, themes, t, views, likes, comments, shares,
        brand, observed,
    )  # fmt: skip


def tag(
    tag_id: str = "t1",
    *,
    post_id: str = "p1",
    day: float = 0,
    brand: str = "brand-a",
    theme: str = "beauty",
    campaign: str | None = None,
    creator: str = CID,
) -> TagEvent:
    t = T0 + int(day * DAY_MS)
    return TagEvent(tag_id, post_id, creator, "sku-1", brand, theme, t, campaign)


def order(
    order_id: str = "o1",
    *,
    post_id: str | None = "p1",
    day: float = 0,
    amount: str = "20.00",
    currency: str = "USD",
    status: str = "placed",
    brand: str = "brand-a",
    theme: str = "beauty",
    quantity: int = 1,
    creator: str = CID,
) -> OrderEvent:
    t = T0 + int(day * DAY_MS)
    return OrderEvent(
        order_id, creator, post_id, "sku-1", brand, theme, quantity, Decimal(amount), currency,
        status, t,  # type: ignore[arg-type]
    )  # fmt: skip


def build(events: list[Event], creator: str = CID, params: Params = P) -> CreatorState:
    """The state after `events`, applied as one flush."""
    state = CreatorState.new(creator)
    state.apply_all(events, params)
    return state


def build_one_by_one(events: list[Event], creator: str = CID, params: Params = P) -> CreatorState:
    """The state after `events`, applied one flush per event."""
    state = CreatorState.new(creator)
    for e in events:
        state.apply(e, params)
    return state


def totals(state: CreatorState, params: Params = P) -> Totals:
    """The window figures the scores read (creator 0 of the result)."""
    return state.scores(params).totals


def by_name(state: CreatorState, slices_codes: object, values: object) -> dict[str, object]:
    """Slice values by theme or content type name."""
    codes = list(slices_codes)  # type: ignore[call-overload]
    return {state.vocab.name(int(c)): v for c, v in zip(codes, list(values), strict=True)}  # type: ignore[call-overload]


def typical_creator(seed: int = 0) -> list[Event]:
    """~1 post a day over 28 days with growing snapshots, a few tags and orders a week."""
    events: list[Event] = []
    themes = ("beauty", "fashion", "home")
    for d in range(28):
        pid = f"p{seed}-{d}"
        for snap in (1, 2, 3):
            v = 3000 + 400 * ((d * 7 + seed) % 11)
            events.append(
                post(
                    pid, day=d + 0.3, views=v * snap, likes=v * snap // 25,
                    comments=v * snap // 300, shares=v * snap // 900,
                    themes=(themes[d % 3],), content_type=("video", "photo", "live")[d % 3],
                    brand="brand-a" if d % 5 == 0 else None,
                    observed=T0 + int((d + 0.3 + snap / 24) * DAY_MS),
                )
            )  # fmt: skip
        if d % 2 == 0:
            events.append(tag(f"t{seed}-{d}", post_id=pid, day=d + 0.31,
                              campaign="camp-1" if d % 4 == 0 else None))  # fmt: skip
        if d % 2 == 1:
            currency = ("USD", "IDR", "GBP")[d % 3]
            events.append(order(f"o{seed}-{d}", post_id=pid, day=d + 0.5, amount="24.90",
                                currency=currency))  # fmt: skip
            if d % 9 == 1:
                events.append(order(f"o{seed}-{d}", post_id=pid, day=d + 0.5, amount="24.90",
                                    currency="IDR", status="refunded"))  # fmt: skip
    return events


# --- hypothesis: event sets with stable event times per id ------------------------

_themes = st.lists(st.sampled_from(["beauty", "fashion", "food", "home"]), max_size=3).map(
    lambda xs: tuple(sorted(set(xs)))
)


@st.composite
def event_sets(draw: st.DrawFn, max_posts: int = 8, span_days: int = 40) -> list[Event]:
    """Events of one creator: several snapshots per post, tags, orders with status updates.

    Each id keeps one event time (snapshots of a post share posted_at), as in
    production; times spread over more than the window so some end up late.
    """
    events: list[Event] = []
    n_posts = draw(st.integers(0, max_posts))
    for i in range(n_posts):
        day = draw(st.integers(0, span_days)) + draw(st.sampled_from([0.1, 0.5, 0.9]))
        ct = draw(st.sampled_from(["video", "photo", "live", "story"]))
        themes = draw(_themes)
        brand = draw(st.sampled_from([None, None, "brand-a", "brand-b"]))
        for _ in range(draw(st.integers(1, 3))):
            views = draw(st.integers(0, 200_000))
            events.append(
                post(
                    f"p{i}", day=day, views=views, likes=draw(st.integers(0, 20_000)),
                    comments=draw(st.integers(0, 2000)), shares=draw(st.integers(0, 2000)),
                    themes=themes, content_type=ct, brand=brand,
                    observed=draw(st.sampled_from([None, T0 + int((day + 1) * DAY_MS),
                                                   T0 + int((day + 2) * DAY_MS)])),
                    region=draw(st.sampled_from(["ID", "US"])),
                )
            )  # fmt: skip
    for i in range(draw(st.integers(0, 5))):
        day = draw(st.integers(0, span_days)) + 0.2
        events.append(
            tag(
                f"t{i}", post_id=f"p{draw(st.integers(0, max(0, max_posts - 1)))}", day=day,
                brand=draw(st.sampled_from(["brand-a", "brand-b", "brand-c"])),
                theme=draw(st.sampled_from(["beauty", "home"])),
                campaign=draw(st.sampled_from([None, "camp-1", "camp-2"])),
            )
        )  # fmt: skip
    for i in range(draw(st.integers(0, 6))):
        day = draw(st.integers(0, span_days)) + 0.7
        base = dict(
            post_id=draw(st.sampled_from([None, "p0", "p1", "p9"])), day=day,
            amount=draw(st.sampled_from(["0", "9.99", "120.5", "35000"])),
            currency=draw(st.sampled_from(["USD", "IDR", "VND", "GBP"])),
            brand=draw(st.sampled_from(["brand-a", "brand-c"])),
            theme=draw(st.sampled_from(["beauty", "food"])),
        )  # fmt: skip
        for status in draw(st.lists(st.sampled_from(["placed", "cancelled", "refunded"]),
                                    min_size=1, max_size=2)):  # fmt: skip
            events.append(order(f"o{i}", status=status, **base))  # type: ignore[arg-type]
    return events
