"""Windows end at the stream time: the same events scored at two stream times, and the
inactive card of an empty window (docs/scoring.md, "Stream time")."""

from __future__ import annotations

from scoring.columns import DAY_MS
from scoring.events import PostEvent
from scoring.merge import Outcome
from scoring.params import DEFAULT_PARAMS
from scoring.state import CreatorState, score
from scoring.validate import ValidationError, validate

P = DEFAULT_PARAMS
DAY0 = 20_400  # 2025-11-08 as days since the epoch
NOON = DAY_MS // 2


def _post(n: int, day: int) -> PostEvent:
    event = validate(
        "post",
        {
            "post_id": f"p{n}",
            "creator_id": "cr-1",
            "region": "ID",
            "content_type": "video",
            "themes": ["beauty"],
            "posted_at": day * DAY_MS + NOON,
            "views": 2000,
            "likes": 100,
            "comments": 10,
            "shares": 5,
        },
        now_ms=(DAY0 + 400) * DAY_MS,
        params=P,
    )
    assert isinstance(event, PostEvent), event
    return event


def _daily(days: int) -> CreatorState:
    """A creator that posted once a day on days DAY0 .. DAY0 + days - 1."""
    state = CreatorState.new("cr-1")
    state.apply_all([_post(n, DAY0 + n) for n in range(days)], P)
    return state


def test_a_later_stream_time_drops_the_oldest_days_and_the_scores_decay() -> None:
    own = _daily(28)
    last = DAY0 + 27
    assert own.watermark_ms // DAY_MS == last
    before = score(own, P)

    later = _daily(28)
    stream_ms = (last + 7) * DAY_MS + 1000  # a week after the creator's last post
    assert later.roll(stream_ms, P)
    after = score(later, P)

    # The window ends on the stream's day (the card is as of its start): its first 7 days
    # (posts 0..6) left it.
    assert after.as_of_ms == (last + 7) * DAY_MS
    assert later.counts() == (21, 0, 0)
    assert after.active and before.active
    # Nothing posted in the last 7 days and fewer days with a post: consistency falls,
    # and so does influence (fewer views a week).
    assert after.consistency < before.consistency
    assert after.influence < before.influence
    basis = [c for c in after.explanations["consistency"].contributions if c.name == "active_days"]
    assert basis[0].value == 21 / 28


def test_rolling_to_the_same_stream_time_again_changes_nothing() -> None:
    state = _daily(5)
    stream_ms = (DAY0 + 10) * DAY_MS
    assert state.roll(stream_ms, P)
    once = state.to_bytes()
    assert not state.roll(stream_ms, P)
    assert not state.roll(stream_ms - DAY_MS, P)  # the stream time never goes back
    assert state.to_bytes() == once


def test_an_empty_window_gives_the_inactive_card() -> None:
    state = _daily(3)
    stream_ms = (DAY0 + 2 + P.window_days) * DAY_MS  # every post is now before the window
    assert state.roll(stream_ms, P)
    card = score(state, P)
    assert state.counts() == (0, 0, 0)
    assert card.active is False
    assert card.provisional is True
    assert card.confidence == 0.0
    assert card.as_of_ms == stream_ms  # (the start of a day)
    assert card.region == "ID"  # the region is the creator's, not the window's
    # Scores from no data: the neutral prior, the same for every inactive creator.
    assert card.overall == score(CreatorState.new("cr-2"), P).overall
    assert card.to_dict()["active"] is False


def test_events_older_than_the_stream_window_are_late() -> None:
    state = CreatorState.new("cr-1")
    stream_ms = (DAY0 + P.window_days + 5) * DAY_MS
    outcomes = state.apply_all([_post(0, DAY0), _post(1, DAY0 + 10)], P, stream_ms=stream_ms)
    assert outcomes == [Outcome.LATE_STREAM, Outcome.APPLIED]
    assert state.watermark_ms == stream_ms  # a new creator's window starts at the stream time
    # Without the stream time both count (the creator's own clock).
    alone = CreatorState.new("cr-1")
    assert alone.apply_all([_post(0, DAY0), _post(1, DAY0 + 10)], P) == [Outcome.APPLIED] * 2


def test_a_creator_with_no_state_has_no_window_to_roll() -> None:
    state = CreatorState.new("cr-1")
    assert not state.roll((DAY0 + 100) * DAY_MS, P)
    assert state.watermark_ms == 0 and state.counts() == (0, 0, 0)


def test_a_new_creator_whose_events_are_all_late_is_held_inactive() -> None:
    # Lateness is judged against the creator's own clock, so the same events give the
    # same creators whatever the stream time when they arrive (replay equals live); its
    # events leave the window that ends on the stream's day at once, counted late.
    state = CreatorState.new("cr-1")
    stream_ms = (DAY0 + P.window_days + 5) * DAY_MS + 3_600_000
    assert state.apply_all([_post(0, DAY0)], P, stream_ms=stream_ms) == [Outcome.LATE_STREAM]
    assert state.watermark_ms == (DAY0 + P.window_days + 5) * DAY_MS
    assert state.counts() == (0, 0, 0) and state.region == "ID"
    assert score(state, P).active is False


def test_validation_of_the_helper() -> None:
    assert not isinstance(_post(0, DAY0), ValidationError)
