"""Ids of records that left the window are still recognised for `seen_days` (`scoring.merge`).

A producer replaying an old record with another event time must not have it counted
again as new once its first version has expired; after `seen_days` more days it is
forgotten, and an id of another kind (an order sharing a post's id) is never confused.
"""

from __future__ import annotations

import numpy as np
from scoring_testkit import order, post

from scoring.columns import SEEN, Columns, Heads, arrivals
from scoring.events import Event
from scoring.merge import Merged, Outcome, merge
from scoring.vocab import Vocabulary

VOCAB = Vocabulary()


def step(before: Merged | None, events: list[Event], seen_days: int = 28) -> Merged:
    heads = Heads.empty(1) if before is None else before.heads
    columns = Columns.empty() if before is None else before.columns
    seen = np.empty(0, SEEN) if before is None else before.seen
    new = arrivals([(0, e) for e in events], VOCAB)
    return merge(heads, columns, new, VOCAB, 28, seen, seen_days)


def test_an_expired_id_is_a_duplicate_for_seen_days_then_forgotten() -> None:
    m = step(None, [post("p1", day=0), order("o1", day=0)])
    m = step(m, [post("p2", day=35)])  # p1 and o1 leave the window
    assert m.columns.counts(1).tolist() == [[1, 0, 0]] and len(m.seen) == 2
    m = step(m, [order("o1", day=34), post("p1", day=35)])  # both back, with new times
    assert m.outcomes.tolist() == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert m.columns.counts(1).tolist() == [[1, 0, 0]] and not m.changed.any()
    # 28 days after leaving the window (day 0 + 28 + 28), they are forgotten.
    m = step(m, [post("p3", day=57)])
    assert len(m.seen) == 0
    m = step(m, [order("o1", day=57)])
    assert m.outcomes.tolist() == [Outcome.APPLIED]


def test_ids_are_remembered_per_kind_and_once() -> None:
    m = step(None, [post("x", day=0), post("x", day=0, views=9000)])
    m = step(m, [post("p2", day=35)])
    assert len(m.seen) == 1  # one entry per id, however many versions it had
    m = step(m, [order("x", day=35)])  # an order with the expired post's id is new
    assert m.outcomes.tolist() == [Outcome.APPLIED]


def test_without_memory_nothing_is_kept() -> None:
    m = step(None, [post("p1", day=0)], seen_days=0)
    m = step(m, [post("p2", day=35)], seen_days=0)
    assert len(m.seen) == 0
    m = step(m, [post("p1", day=35)], seen_days=0)
    assert m.outcomes.tolist() == [Outcome.APPLIED]
