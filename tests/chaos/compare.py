"""A scenario's snapshot against the undisturbed reference: what differs, lost, doubled.

What is compared, and why that much and no more:

- Redis, whole: every key under the prefix, `updated_at` left out (wall-clock).
  A creator differs when its hash, its board-membership set or any of its board
  entries differs. Keys that belong to no creator are counted apart.
- Events lost or counted twice: each creator's card carries the counts the
  model applied (`basis.facts`: posts, shoppable posts, orders in the window).
  Below the reference's is events lost; above it is events counted twice. A
  creator missing from Redis lost all its events.
- Score-change records: a record is emitted when a flush moves a score past the
  threshold, comparing with the card before that flush, so how many records a
  creator gets and their intermediate values depend on where flushes cut the
  stream (load, rebalances, redelivery). What is deterministic, and compared:
  the set of creators with records, that each creator's first record is a first
  card (`old` null), and the region and model version of its last record. A
  first card emitted more than once is reported (at-least-once redelivery after a
  crash legitimately re-emits a flush), not failed.
- Dead letters: the reference's, plus every hostile record the scenario sent,
  each found once or more by (topic, partition, offset) with a reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from scoring.explain import _Facts
from tests.chaos.run import Snapshot

#: The counts in a card's basis that grow by one per applied event of each kind.
COUNTED = ("posts", "shoppable", "orders")
_INDEX = [_Facts._fields.index(name) for name in COUNTED]


@dataclass
class Outcome:
    """One scenario's verdict; `passed` only with nothing different, lost or doubled."""

    scenario: str
    expected: str
    creators: int = 0
    creators_different: int = 0
    events_lost: int = 0
    counted_twice: int = 0
    other_keys_different: int = 0
    change_records_different: int = 0
    first_cards_repeated: int = 0
    dead_letters_expected: int = 0
    dead_letters_missing: int = 0
    dead_letters_unexpected: int = 0
    hostile_rejected_by_broker: int = 0
    seconds_to_serving: float | None = None
    caught_up: bool = False
    worker_exits: dict[str, Any] = field(default_factory=dict)
    error_log_lines: int = 0
    examples: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return (
            self.caught_up
            and self.creators_different == 0
            and self.events_lost == 0
            and self.counted_twice == 0
            and self.other_keys_different == 0
            and self.change_records_different == 0
            and self.dead_letters_missing == 0
            and self.dead_letters_unexpected == 0
            and not self.worker_exits.get("crashed")
        )

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def _per_creator(redis: Mapping[str, object]) -> tuple[dict[str, dict[str, object]], set[str]]:
    """Each creator's hash, membership set and board entries; the keys of no creator."""
    out: dict[str, dict[str, object]] = defaultdict(dict)
    loose: set[str] = set()
    for key, value in redis.items():
        if key.startswith("creator:"):
            out[key.removeprefix("creator:")]["hash"] = value
        elif key.startswith("creator-boards:"):
            out[key.removeprefix("creator-boards:")]["boards"] = value
        elif key.startswith("lb:") and isinstance(value, list):
            for member, score in value:
                out[member.decode()][key] = score
        else:
            loose.add(key)
    return dict(out), loose


def _counts(entry: Mapping[str, object]) -> list[float]:
    card = entry.get("hash")
    basis = orjson.loads(card.get(b"basis") or b"null") if isinstance(card, dict) else None
    if not isinstance(basis, dict):
        return [0.0] * len(COUNTED)
    return [float(basis["facts"][i]) for i in _INDEX]


def compare(
    outcome: Outcome,
    reference: Snapshot,
    got: Snapshot,
    hostile: Mapping[str, tuple[str, int, int]] | None = None,
) -> Outcome:
    want_c, want_loose = _per_creator(reference.redis)
    got_c, got_loose = _per_creator(got.redis)
    outcome.creators = len(want_c)
    different: set[str] = set()
    for creator in set(want_c) | set(got_c):
        want, have = want_c.get(creator, {}), got_c.get(creator, {})
        if want != have:
            different.add(creator)
            if len(outcome.details) < 3:
                outcome.details[creator] = {
                    "parts_differing": sorted(
                        k for k in set(want) | set(have) if want.get(k) != have.get(k)
                    ),
                    "counts_reference": _counts(want),
                    "counts_run": _counts(have),
                }
        for w, g in zip(_counts(want), _counts(have), strict=True):
            outcome.events_lost += int(max(0.0, w - g))
            outcome.counted_twice += int(max(0.0, g - w))
    outcome.other_keys_different = sum(
        1 for k in want_loose | got_loose if reference.redis.get(k) != got.redis.get(k)
    )

    changed: set[str] = set()
    for creator in set(reference.changes) | set(got.changes):
        want_r, have_r = reference.changes.get(creator), got.changes.get(creator)
        if not want_r or not have_r:
            changed.add(creator)
            continue
        if have_r[0]["old"] is not None or any(
            have_r[-1][k] != want_r[-1][k] for k in ("region", "model_version")
        ):
            changed.add(creator)
        firsts = sum(1 for r in have_r if r["old"] is None)
        outcome.first_cards_repeated += max(0, firsts - 1)
    outcome.change_records_different = len(changed)
    outcome.creators_different = len(different | changed)
    outcome.examples = sorted(different | changed)[:5]

    # Dead letters, by where the record was: the reference's (valid events: none) and ours.
    def where(env: Mapping[str, Any]) -> tuple[str, int, int]:
        return (str(env["topic"]), int(env["partition"]), int(env["offset"]))

    expected: dict[tuple[str, int, int], str] = {}
    for label, place in (hostile or {}).items():
        if place[1] < 0:
            outcome.hostile_rejected_by_broker += 1
            outcome.notes.append(f"{label}: {place[0]}")
        else:
            expected[place] = label
    outcome.dead_letters_expected = len(expected) + len(reference.dead)
    found = {where(e): e for e in got.dead}
    missing = [label for place, label in expected.items() if place not in found]
    no_reason = [expected[p] for p, e in found.items() if p in expected and not e.get("reason")]
    outcome.dead_letters_missing = len(missing) + len(no_reason)
    if missing:
        outcome.notes.append("not dead-lettered: " + ", ".join(sorted(missing)))
    reference_places = {where(e) for e in reference.dead}
    # The reference's dead letters sit at other offsets of other topics: compare by count.
    unexpected = [p for p in found if p not in expected]
    outcome.dead_letters_unexpected = max(0, len(unexpected) - len(reference_places))
    reasons = sorted(
        {f"{expected[p]}={e.get('reason')}" for p, e in found.items() if p in expected}
    )
    if reasons:
        outcome.notes.append("dead-letter reasons: " + ", ".join(reasons))
    return outcome
