"""The scale profile's stream reaches every creator and looks like the simulator's.

`bench.workload.ScaleWorkload` exists so that the scale target (a worker holding
a million creators) can be judged at all: the simulator's stream reaches only
part of a large population. These tests hold it to that (every creator posts,
exactly the asked-for count), to the simulator's contracts (the same fields,
topics and keys, every record valid for `scoring.validate`), to the simulator's
mix of records, and to determinism.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import orjson
import pytest

from bench.workload import ScaleWorkload
from scoring.params import DEFAULT_PARAMS
from scoring.validate import ValidationError, validate
from streams.devtools.simulate import SimConfig, SimEvent, SimTopics, Simulator

END_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TOPICS = SimTopics(posts="p", tags="t", orders="o")
KIND = {"p": "post", "t": "tag", "o": "order"}


def _stream(creators: int, events: int, seed: int = 3) -> tuple[ScaleWorkload, list[SimEvent]]:
    workload = ScaleWorkload(creators, events, seed, END_MS, TOPICS)
    return workload, list(workload)


def _followup_mix(by_code: list[int]) -> list[float]:
    """Shares of engagement updates, tags, orders and status changes among follow-ups."""
    followups = sum(by_code[1:])
    return [n / followups for n in by_code[1:]]


@pytest.fixture(scope="module")
def tight() -> tuple[ScaleWorkload, list[SimEvent]]:
    """Two events per creator: one post each, and follow-ups thinned to fit."""
    return _stream(3_000, 6_000)


def test_every_creator_posts_and_the_count_is_exact(
    tight: tuple[ScaleWorkload, list[SimEvent]],
) -> None:
    workload, records = tight
    assert len(records) == 6_000 == workload.stats.total
    posted = {e.key for e in records if e.topic == "p"}
    assert posted == {f"cr-{i:06d}".encode() for i in range(3_000)}
    assert workload.keep < 1.0
    assert dict(workload.stats.by_topic) == dict(Counter(e.topic for e in records))


def test_every_record_is_valid_keyed_by_its_creator_and_in_the_span(
    tight: tuple[ScaleWorkload, list[SimEvent]],
) -> None:
    _, records = tight
    problems: Counter[tuple[str, str, str]] = Counter()
    for event in records:
        payload = orjson.loads(event.value)
        result = validate(KIND[event.topic], payload, now_ms=END_MS, params=DEFAULT_PARAMS)
        if isinstance(result, ValidationError):
            problems[(result.kind, result.field, result.problem)] += 1
            continue
        assert event.key == result.creator_id.encode()
    assert problems == Counter()


def test_the_same_fields_as_the_simulator_writes() -> None:
    _, records = _stream(1_000, 12_000)
    simulated = Simulator(
        SimConfig(
            end_ms=END_MS, events=12_000, creators=1_000, topics=TOPICS,
            malformed_share=0.0, mis_keyed_share=0.0,
        )
    )  # fmt: skip
    fields: dict[str, dict[str, set[str]]] = {"scale": defaultdict(set), "sim": defaultdict(set)}
    for source, stream in (("scale", records), ("sim", list(simulated))):
        for event in stream:
            fields[source][event.topic] |= orjson.loads(event.value).keys()
    assert fields["scale"] == fields["sim"]


def test_the_mix_of_records_follows_the_simulator() -> None:
    workload, _ = _stream(3_000, 30_000)
    simulated = Simulator(SimConfig(end_ms=END_MS, events=30_000, creators=3_000, seed=3))
    for _ in simulated:
        pass
    assert workload.keep == 1.0
    ours, theirs = workload.stats.by_code, simulated.stats.by_code
    assert ours[0] / sum(ours) == pytest.approx(theirs[0] / sum(theirs), abs=0.05)
    assert _followup_mix(ours) == pytest.approx(_followup_mix(theirs), abs=0.05)


def test_thinned_follow_ups_keep_their_proportions(
    tight: tuple[ScaleWorkload, list[SimEvent]],
) -> None:
    thinned, _ = tight
    ample, _ = _stream(3_000, 30_000)
    assert _followup_mix(thinned.stats.by_code) == pytest.approx(
        _followup_mix(ample.stats.by_code), abs=0.05
    )


def test_same_seed_same_bytes_another_seed_differs() -> None:
    first = _stream(500, 2_000, seed=11)[1]
    assert first == _stream(500, 2_000, seed=11)[1]
    assert [e.value for e in first] != [e.value for e in _stream(500, 2_000, seed=12)[1]]


def test_too_few_events_for_every_creator_to_post() -> None:
    with pytest.raises(ValueError, match="cannot cover"):
        ScaleWorkload(1_000, 999, 1, END_MS)


def test_a_stream_is_iterated_once() -> None:
    workload = ScaleWorkload(10, 20, 1, END_MS)
    list(workload)
    with pytest.raises(RuntimeError):
        iter(workload)
