"""The frozen simulated population through the real pipeline: the change records of record.

tests/unit/scoring/golden_population.json.gz holds what the model of record (before
the columnar rework) gave for 370 simulated creators, chunk by chunk. Here every
flush carries the next chunk of every creator at once, as JSON records, through
`Pipeline.process` with recording sinks: each creator's score-change records must be
the fixture's, in order, and the card its stored state gives at the end the fixture's
last card.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from scoring.events import Event, OrderEvent, PostEvent, TagEvent
from scoring.params import DEFAULT_PARAMS, Params
from scoring.state import CreatorState, score
from streams import envelope
from streams.codec import RawRecord
from streams.pipeline import Pipeline
from streams.sinks.base import OutboundRecord
from streams.state_store import DictStore
from tests.support.payloads import CONFIG as PAYLOADS_CONFIG

HERE = Path(__file__).parent / "scoring"
# The recorded cards score each creator alone, as of its own events: this compares the
# bulk path with those rules (stream time has tests of its own: test_scoring_stream_time.py,
# test_sweep.py).
CONFIG = dataclasses.replace(PAYLOADS_CONFIG, stream_time=False)


def _module(name: str) -> ModuleType:
    """A helper module of the scoring tests (their folder is on the path)."""
    return importlib.import_module(name)


class _Keep:
    def __init__(self) -> None:
        self.records: list[OutboundRecord] = []

    async def write(self, batch: Sequence[Any]) -> None:
        self.records.extend(batch)


def _record(e: Event, offset: int) -> RawRecord:
    if isinstance(e, PostEvent):
        payload: dict[str, Any] = {
            "post_id": e.post_id, "creator_id": e.creator_id, "region": e.region,
            "content_type": e.content_type, "themes": list(e.themes),
            "posted_at": e.posted_at_ms, "views": e.views, "likes": e.likes,
            "comments": e.comments, "shares": e.shares, "brand_id": e.brand_id,
            "observed_at": e.observed_at_ms,
        }  # fmt: skip
        topic = "posts"
    elif isinstance(e, TagEvent):
        payload = {
            "tag_id": e.tag_id, "post_id": e.post_id, "creator_id": e.creator_id,
            "product_id": e.product_id, "brand_id": e.brand_id, "theme": e.theme,
            "tagged_at": e.tagged_at_ms, "campaign_id": e.campaign_id,
        }  # fmt: skip
        topic = "tags"
    else:
        assert isinstance(e, OrderEvent)
        payload = {
            "order_id": e.order_id, "creator_id": e.creator_id, "post_id": e.post_id,
            "product_id": e.product_id, "brand_id": e.brand_id, "theme": e.theme,
            "quantity": e.quantity, "amount": str(e.amount), "currency": e.currency,
            "status": e.status, "ordered_at": e.ordered_at_ms,
        }  # fmt: skip
        topic = "orders"
    return RawRecord(topic, 0, offset, e.creator_id.encode(), orjson.dumps(payload), 0)


async def test_the_population_through_the_pipeline_publishes_the_changes_of_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(HERE))  # the scoring tests' helpers import each other
    fixture = _module("population_fixture")
    other = _module("test_scoring_golden").OTHER_PARAMS
    data = fixture.load()
    # One worker per simulation (the two reuse creator ids) and per parameter set.
    groups: dict[tuple[str, str], list[tuple[dict[str, Any], list[Event]]]] = {}
    for case, events in fixture.creators(data):
        groups.setdefault((case["key"].split("-")[0], case["params"]), []).append((case, events))
    checked = 0
    for (_, name), cases in sorted(groups.items()):
        params = other if name == "other" else DEFAULT_PARAMS
        checked += await _run(fixture, cases, params, data["now_ms"])
    assert checked == len(data["creators"])


async def _run(
    fixture: ModuleType, cases: list[tuple[dict[str, Any], list[Event]]], params: Params, now: int
) -> int:
    table = DictStore()
    changes = _Keep()
    pipeline = Pipeline(CONFIG, params, table, _Keep(), changes, clock=lambda: now / 1000)
    chunked = []
    for case, events in cases:
        sizes = fixture.chunks(case["key"], len(events))
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        chunked.append([events[a : a + n] for a, n in zip(starts, sizes, strict=True)])
    offset = 0
    for k in range(max(len(c) for c in chunked)):
        batch = []
        for chunks in chunked:
            if k < len(chunks):
                for e in chunks[k]:
                    offset += 1
                    batch.append(_record(e, offset))
        result = await pipeline.process(batch)
        assert result.dead_letters == 0

    got: dict[str, list[str]] = {}
    for r in changes.records:
        if r.topic == "changes":
            got.setdefault(r.key.decode(), []).append(fixture.digest(json.loads(r.value)))  # type: ignore[union-attr]
    for case, events in cases:
        creator = events[0].creator_id
        assert got.get(creator, []) == [c for c in case["changes"] if c is not None], case["key"]
        model, state = envelope.unwrap(table[creator.encode()])
        final = score(CreatorState.from_bytes(creator, state), params).to_dict()
        assert model == params.model_version
        assert fixture.digest(final) == case["digests"][-1], case["key"]
    return len(cases)
