"""A simulated population of creators, frozen, for comparing the model with how it once scored.

`golden_population.json.gz` holds validated events drawn from the simulator (two
densities: about 100 events per creator, as in the 10,000-creator benchmark, and
about 10, as in the 100,000-creator one), and what the model of record
(`scoring.state` / `scoring.scores` before the columnar rework) gave for them:
each creator's events are applied in arrival order, in chunks of varying size
(one chunk = one worker flush), and after each chunk the creator is scored. The
fixture keeps the outcome of every event, a digest of every card (its whole
`to_dict`, explanations included) and of every score-change record a worker would
publish (`diff_scores` against the last card that differed, threshold
`CHANGE_THRESHOLD`), plus the final card's headline values so a failure can be read.

The events are stored, not regenerated, so a later change to the simulator does
not move the fixture. After a deliberate change to the wording of explanations or
change records (say so in the commit), `python -m tests.unit.scoring.population_fixture`
records the new cards' digests for the same events (run it with
`PYTHONPATH=tests/unit/scoring`); it refuses if any event's
outcome or any final score moved.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from scoring.events import Event, OrderEvent, PostEvent, TagEvent

FIXTURE = Path(__file__).with_name("golden_population.json.gz")
#: The processing clock the events were validated against.
NOW_MS = 1_795_676_400_000
#: Chunk sizes are drawn from these (a flush holds one event of a creator, or many).
CHUNK_SIZES = (1, 1, 1, 2, 3, 5, 8, 13, 40)
#: The worker's default `change_threshold`.
CHANGE_THRESHOLD = 1.0


def encode_event(e: Event) -> list[object]:
    if isinstance(e, PostEvent):
        return ["p", e.post_id, e.creator_id, e.region, e.content_type, list(e.themes),
                e.posted_at_ms, e.views, e.likes, e.comments, e.shares, e.brand_id,
                e.observed_at_ms]  # fmt: skip
    if isinstance(e, TagEvent):
        return ["t", e.tag_id, e.post_id, e.creator_id, e.product_id, e.brand_id, e.theme,
                e.tagged_at_ms, e.campaign_id]  # fmt: skip
    return ["o", e.order_id, e.creator_id, e.post_id, e.product_id, e.brand_id, e.theme,
            e.quantity, str(e.amount), e.currency, e.status, e.ordered_at_ms]  # fmt: skip


def decode_event(row: Sequence[Any]) -> Event:
    kind, *f = row
    if kind == "p":
        return PostEvent(f[0], f[1], f[2], f[3], tuple(f[4]), *f[5:])
    if kind == "t":
        return TagEvent(*f)
    return OrderEvent(*f[:7], Decimal(f[7]), *f[8:])


def chunks(creator_id: str, n: int) -> list[int]:
    """The chunk sizes a creator's `n` events are applied in (deterministic per creator)."""
    rng = random.Random(creator_id)
    out: list[int] = []
    while sum(out) < n:
        out.append(min(rng.choice(CHUNK_SIZES), n - sum(out)))
    return out


def digest(doc: dict[str, Any]) -> str:
    text = json.dumps(doc, sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def load() -> dict[str, Any]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def creators(data: dict[str, Any]) -> Iterator[tuple[dict[str, Any], list[Event]]]:
    for case in data["creators"]:
        yield case, [decode_event(r) for r in case["events"]]


def _simulated() -> dict[str, list[Event]]:
    """Validated simulator events per creator, in arrival order."""
    import orjson

    from scoring.params import DEFAULT_PARAMS
    from scoring.validate import validate
    from streams.devtools.simulate import SimConfig, generate_events

    kinds = {"posts": "post", "shoppable-tags": "tag", "orders": "order"}
    by_creator: dict[str, list[Event]] = {}
    for seed, events, n in ((7, 16_000, 160), (8, 3_000, 300)):
        config = SimConfig(end_ms=NOW_MS, events=events, creators=n, seed=seed)
        for sim in generate_events(config):
            try:
                payload = orjson.loads(sim.value)
            except orjson.JSONDecodeError:
                continue
            event = validate(kinds[sim.topic], payload, now_ms=NOW_MS, params=DEFAULT_PARAMS)  # type: ignore[arg-type]
            if isinstance(event, PostEvent | TagEvent | OrderEvent):
                by_creator.setdefault(f"s{seed}-{event.creator_id}", []).append(event)
    return by_creator


def refresh() -> None:  # pragma: no cover - run by hand
    """Record the current model's cards and changes for the stored events, keeping the
    events; refuses if any outcome or final score moved (then the change is not wording)."""
    from scoring.changes import diff_scores
    from scoring.explain import ScoreCard
    from scoring.merge import Outcome
    from scoring.params import DEFAULT_PARAMS
    from scoring.state import CreatorState, score
    from tests.unit.scoring.test_scoring_golden import OTHER_PARAMS

    letters = {Outcome.APPLIED: "A", Outcome.UPDATED: "U", Outcome.DUPLICATE: "D",
               Outcome.LATE: "L"}  # fmt: skip
    data = load()
    for case, events in creators(data):
        params = OTHER_PARAMS if case["params"] == "other" else DEFAULT_PARAMS
        state = CreatorState.new(events[0].creator_id)
        outcomes: list[str] = []
        digests: list[str] = []
        changes: list[str | None] = []
        published: ScoreCard | None = None
        pos = 0
        for size in chunks(case["key"], len(events)):
            outcomes.extend(letters[o] for o in state.apply_all(events[pos : pos + size], params))
            pos += size
            card = score(state, params)
            doc = card.to_dict()
            digests.append(digest(doc))
            if published is not None and published.to_dict() == doc:
                changes.append(None)  # the same card: nothing published
                continue
            change = diff_scores(published, card, CHANGE_THRESHOLD)
            changes.append(None if change is None else digest(change.to_dict()))
            published = card
        if "".join(outcomes) != case["outcomes"] or score(state, params).values() != case["final"]:
            raise SystemExit(f"{case['key']}: outcomes or scores moved; this is not a refresh")
        case["digests"], case["changes"] = digests, changes
    with gzip.open(FIXTURE, "wt", encoding="utf-8", compresslevel=9) as f:
        json.dump(data, f, separators=(",", ":"))
    print(f"refreshed {FIXTURE} ({len(data['creators'])} creators)")


if __name__ == "__main__":  # pragma: no cover
    refresh()
