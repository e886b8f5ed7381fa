"""The batch pipeline with the real model and recording sinks (no Kafka, no Redis).

The sinks here only record what they are given (and can be told to fail); the
state table is a dict. Everything else is the production code path, so expected
values come from applying the same events to the model directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pytest

from scoring import packed
from scoring.explain import ScoreCard, explanation_basis, explanation_dicts, explanations_from_basis
from scoring.packed import NewerFormatError
from scoring.params import DEFAULT_PARAMS, Params
from scoring.state import CreatorState, score
from scoring.validate import ValidationError, validate
from streams import envelope, metrics
from streams.codec import RawRecord, frame_rekeyed
from streams.layout import basis_json, board_scores
from streams.partitioning import partitions_for
from streams.pipeline import Pipeline, PipelineConfig
from streams.sinks.base import CreatorSnapshot, OutboundRecord
from streams.state_store import DictStore
from tests.support.payloads import CONFIG, HOUR, NOW_MS, order, post


class Recorder:
    """A sink that keeps every batch and what the state table held when it was called."""

    def __init__(self, table: Mapping[bytes, bytes], fail: int = 0) -> None:
        self.batches: list[list[Any]] = []
        self.table_seen: list[dict[bytes, bytes]] = []
        self._table = table
        self._fail = fail

    async def write(self, batch: Sequence[Any]) -> None:
        if self._fail:
            self._fail -= 1
            raise ConnectionError("sink down")
        self.batches.append(list(batch))
        self.table_seen.append(dict(self._table))

    @property
    def last(self) -> list[Any]:
        return self.batches[-1]


class Harness:
    def __init__(self, params: Params = DEFAULT_PARAMS, config: PipelineConfig = CONFIG) -> None:
        self.table = DictStore()
        self.redis = Recorder(self.table)
        self.kafka = Recorder(self.table)
        self.pipeline = Pipeline(
            config, params, self.table, self.redis, self.kafka, clock=lambda: NOW_MS / 1000
        )
        self._offset = 0

    def record(self, topic: str, key: bytes | None, payload: object) -> RawRecord:
        self._offset += 1
        value = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return RawRecord(topic, 0, self._offset, key, value, NOW_MS - 1000)

    def snapshots(self) -> list[CreatorSnapshot]:
        return self.redis.last

    def outbound(self, topic: str) -> list[OutboundRecord]:
        return [r for r in self.kafka.last if r.topic == topic]


def model_card(payloads: Sequence[tuple[str, Mapping[str, object]]]) -> ScoreCard:
    """The model's own answer for one creator's events."""
    state: CreatorState | None = None
    for kind, payload in payloads:
        event = validate(kind, payload, now_ms=NOW_MS, params=DEFAULT_PARAMS)  # type: ignore[arg-type]
        assert not isinstance(event, ValidationError)
        state = state or CreatorState.new(event.creator_id)
        state.apply(event, DEFAULT_PARAMS)
    assert state is not None
    return score(state, DEFAULT_PARAMS)


def stored_card(h: Harness, creator: str) -> ScoreCard:
    """The card of the state the table holds for `creator` (the one Redis shows)."""
    model, state = envelope.unwrap(h.table[creator.encode()])
    assert model == DEFAULT_PARAMS.model_version
    return score(CreatorState.from_bytes(creator, state), DEFAULT_PARAMS)


async def test_batch_groups_by_creator_and_matches_the_model() -> None:
    h = Harness()
    a = [("post", post("a", i)) for i in range(3)] + [("order", order("a", 0))]
    b = [("post", post("b", i, region="MY")) for i in range(2)]
    records = [h.record(f"{k}s", p["creator_id"].encode(), p) for k, p in a + b]  # type: ignore[union-attr]
    result = await h.pipeline.process(records)

    assert (result.records, result.applied, result.creators) == (6, 6, 2)
    assert result.states_written == 2 and result.snapshots_written == 2
    # One sink call per batch, one state write per creator.
    assert len(h.redis.batches) == 1 and len(h.kafka.batches) == 1
    assert set(h.table) == {b"a", b"b"}

    snaps = {s.creator_id: s for s in h.snapshots()}
    for creator, payloads in (("a", a), ("b", b)):
        card = model_card(payloads)
        snap = snaps[creator]
        assert {k: v for k, v in snap.fields.items() if k != "updated_at"} == {
            **{name: repr(value) for name, value in card.values().items()},
            "provisional": "1" if card.provisional else "0",
            "confidence": repr(card.confidence),
            "region": card.region,
            "event_time": str(card.as_of_ms),
            "model_version": card.model_version,
            "basis": snap.fields["basis"],
            "active": "1",
        }
        assert snap.fields["updated_at"] == str(NOW_MS)
        # The stored basis writes the model's explanations, word for word.
        written = explanations_from_basis(orjson.loads(snap.fields["basis"]), DEFAULT_PARAMS)
        assert explanation_dicts(written) == explanation_dicts(card.explanations)
        assert snap.set_boards == board_scores(card)
        assert snap.previous_known is False  # new creators: the sink asks Redis what to leave
        model, state = envelope.unwrap(h.table[creator.encode()])
        assert model == DEFAULT_PARAMS.model_version
        assert CreatorState.from_bytes(creator, state).to_bytes() == state
        assert stored_card(h, creator).to_dict() == card.to_dict()


async def test_first_card_emits_a_change_and_small_moves_do_not() -> None:
    h = Harness()
    first = [h.record("posts", b"a", post("a", i)) for i in range(4)]
    await h.pipeline.process(first)
    changes = [orjson.loads(r.value) for r in h.outbound("changes")]
    assert len(changes) == 1
    assert changes[0]["old"] is None and changes[0]["creator_id"] == "a"
    assert h.outbound("changes")[0].key == b"a"

    # A handful more likes on an old post: the card changes (Redis is rewritten) but no
    # score moves by more than the threshold, so nothing is announced.
    bump = post("a", 3, likes=44, observed_at=NOW_MS - 500)
    result = await h.pipeline.process([h.record("posts", b"a", bump)])
    before = model_card([("post", post("a", i)) for i in range(4)])
    after = model_card([("post", post("a", i)) for i in range(3)] + [("post", bump)])
    assert before.values() != after.values()
    assert all(abs(v - before.values()[n]) <= 1.0 for n, v in after.values().items())
    assert result.applied == 1 and result.snapshots_written == 1
    assert h.outbound("changes") == []
    assert h.snapshots()[0].fields["reception"] == repr(after.reception)

    # A big new post moves scores: announced with old and new values and reasons.
    big = post(
        "a", 9, views=400_000, likes=30_000, comments=4_000, shares=3_000, posted_at=NOW_MS - HOUR
    )
    await h.pipeline.process([h.record("posts", b"a", big)])
    (change,) = [orjson.loads(r.value) for r in h.outbound("changes")]
    assert change["old"] is not None and change["changed"]
    for name in change["changed"]:
        assert abs(change["new"][name] - change["old"][name]) > 1.0
        assert change["reasons"][name]


async def test_replayed_batch_changes_nothing() -> None:
    h = Harness()
    batch = [h.record("posts", b"a", post("a", i)) for i in range(3)]
    batch.append(h.record("orders", b"a", order("a", 1)))
    await h.pipeline.process(batch)
    table_after = dict(h.table)

    result = await h.pipeline.process(batch)
    assert result.duplicates == 4 and result.applied == 0
    assert result.states_written == 0 and result.snapshots_written == 0
    assert h.redis.last == [] and h.kafka.last == []
    assert h.table == table_after


async def test_bad_records_are_dead_lettered_and_the_rest_goes_on() -> None:
    h = Harness()
    before = metrics.DEAD_LETTERS.labels("posts", "bad_json")._value.get()
    batch = [
        h.record("posts", b"a", b"{oops"),
        h.record("posts", b"a", post("a", 0)),
        h.record("orders", b"a", order("a", 0, currency="XXX")),
        h.record("elsewhere", b"a", post("a", 1)),
        h.record("tags", None, b"[]"),
        h.record("posts", b"a", post("a", 2)),
    ]
    result = await h.pipeline.process(batch)
    assert result.applied == 2 and result.dead_letters == 4
    assert dict(result.dead_reasons) == {
        "bad_json": 1,
        "unknown_currency": 1,
        "unknown_topic": 1,
        "not_an_object": 1,
    }
    dead = [orjson.loads(r.value) for r in h.outbound("dead")]
    assert [d["offset"] for d in dead] == [batch[i].offset for i in (0, 2, 3, 4)]
    assert dead[0]["topic"] == "posts" and dead[0]["value"] == "{oops"
    assert [r.key for r in h.outbound("dead")] == [b"a", b"a", b"a", None]
    assert metrics.DEAD_LETTERS.labels("posts", "bad_json")._value.get() == before + 1


async def test_mis_keyed_records_are_rekeyed_not_applied() -> None:
    h = Harness()
    unkeyed = h.record("posts", None, post("a", 0))
    other = h.record("orders", b"a-o0", order("a", 0))
    result = await h.pipeline.process([unkeyed, other])
    assert result.rerouted == 2 and result.applied == 0 and h.table == {}
    forwarded = h.outbound("app-rekeyed")
    assert [r.key for r in forwarded] == [b"a", b"a"]
    assert forwarded[0].value == frame_rekeyed("post", unkeyed.value)
    assert forwarded[1].value == frame_rekeyed("order", other.value)
    assert [r.timestamp_ms for r in forwarded] == [unkeyed.timestamp_ms, other.timestamp_ms]

    # Arriving on the repartition topic they are applied (and never bounced again, even
    # if someone else wrote there with a wrong key).
    arrived = [
        RawRecord("app-rekeyed", 0, i, r.key if i else b"wrong", r.value, r.timestamp_ms or 0)
        for i, r in enumerate(forwarded)
    ]
    result = await h.pipeline.process(arrived)
    assert result.applied == 2 and result.rerouted == 0
    assert set(h.table) == {b"a"}
    garbage = RawRecord("app-rekeyed", 0, 9, b"a", b"nonsense", 0)
    result = await h.pipeline.process([garbage])
    assert dict(result.dead_reasons) == {"bad_frame": 1}


async def test_records_on_another_partition_than_their_creators_are_routed_there(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A producer keying by creator id but partitioning with CRC32 (librdkafka's default)."""
    config = dataclasses.replace(CONFIG, partitions=8)
    h = Harness(config=config)
    ids = [f"c{i}" for i in range(40)]
    home = dict(zip(ids, partitions_for([c.encode() for c in ids], 8).tolist(), strict=True))
    crc = {c: (zlib.crc32(c.encode()) & 0x7FFFFFFF) % 8 for c in ids}
    moved = [c for c in ids if crc[c] != home[c]]
    assert moved and len(moved) < len(ids)  # both cases occur among these ids
    records = [
        dataclasses.replace(h.record("posts", c.encode(), post(c, 0)), partition=crc[c])
        for c in ids
    ]
    before = metrics.EVENTS_REROUTED.labels("posts", "partition")._value.get()
    with caplog.at_level(logging.WARNING, logger="streams.pipeline"):
        result = await h.pipeline.process(records)
        await h.pipeline.process(records)  # the warning is said once per topic
    assert result.rerouted == len(moved) and result.applied == len(ids) - len(moved)
    assert set(h.table) == {c.encode() for c in ids if c not in moved}
    forwarded = h.outbound("app-rekeyed")
    assert sorted(r.key for r in forwarded) == sorted(c.encode() for c in moved)
    after = metrics.EVENTS_REROUTED.labels("posts", "partition")._value.get()
    assert after - before == 2 * len(moved)
    warnings = [r for r in caplog.records if "murmur2_random" in r.getMessage()]
    assert len(warnings) == 1 and "'posts'" in warnings[0].getMessage()

    # Back on the repartition topic (where our producer put them: their home partition)
    # they are applied, and a repartitioned record is never bounced again.
    arrived = [
        RawRecord("app-rekeyed", (home[r.key.decode()] + 1) % 8, i, r.key, r.value, 0)
        for i, r in enumerate(forwarded)
        if r.key is not None
    ]
    result = await h.pipeline.process(arrived)
    assert result.applied == len(moved) and result.rerouted == 0
    assert set(h.table) == {c.encode() for c in ids}


async def test_a_record_over_the_size_limit_is_dead_lettered_unparsed() -> None:
    h = Harness(config=dataclasses.replace(CONFIG, max_record_bytes=2048))
    big = orjson.dumps({**post("a", 0), "caption": "x" * 3000})
    huge_key = b"k" * 5000
    records = [h.record("posts", huge_key, big), h.record("posts", b"b", post("b", 0))]
    result = await h.pipeline.process(records)
    assert dict(result.dead_reasons) == {"too_large": 1} and result.applied == 1
    (letter,) = h.outbound("dead")
    assert letter.key == huge_key[:1024]  # the dead letter's own key is capped too
    envelope = orjson.loads(letter.value)
    assert envelope["reason"] == "too_large" and envelope["value_bytes"] == len(big)
    assert "over the limit of 2,048" in envelope["error"]["message"]


async def test_decoding_a_large_batch_yields_to_the_event_loop() -> None:
    h = Harness()
    padded = [{**post(f"c{i}", 0), "caption": "x" * 200_000} for i in range(40)]
    records = [h.record("posts", f"c{i}".encode(), p) for i, p in enumerate(padded)]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    started = ticks
    result = await h.pipeline.process(records)  # 8 MB of JSON: four slices at least
    task.cancel()
    assert result.applied == 40
    assert ticks - started >= 4


async def test_an_oversized_state_keeps_its_newest_days_and_is_scored_as_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = 2048
    h = Harness(config=dataclasses.replace(CONFIG, max_state_bytes=limit))
    events = [("post", post("a", n, brand_id=f"brand-{n}", themes=[f"t{n}"])) for n in range(120)]
    events += [("order", order("a", n, brand_id=f"brand-{n}")) for n in range(0, 120, 3)]
    before = metrics.STATES_TRIMMED._value.get()
    with caplog.at_level(logging.WARNING, logger="streams.pipeline"):
        await h.pipeline.process([h.record(f"{k}s", b"a", p) for k, p in events])
    value = h.table[b"a"]
    assert len(envelope.unwrap(value)[1]) <= limit
    assert metrics.STATES_TRIMMED._value.get() == before + 1
    assert any("over CREATOR_SCORES_MAX_STATE_BYTES" in r.getMessage() for r in caplog.records)

    # The newest days are kept whole, the oldest dropped whole; the card is the kept days'.
    kept = CreatorState.from_bytes("a", envelope.unwrap(value)[1])
    first_day = int(min(kept.columns.posts["day"].min(), kept.columns.orders["day"].min()))

    def day(payload: Mapping[str, object]) -> int:
        t = payload.get("posted_at", payload.get("ordered_at"))
        assert isinstance(t, int)
        return t // 86_400_000

    survivors = [(k, p) for k, p in events if day(p) >= first_day]
    assert 0 < len(survivors) < len(events)
    assert kept.counts()[0] == sum(k == "post" for k, _ in survivors)
    assert stored_card(h, "a").to_dict() == model_card(survivors).to_dict()


async def test_an_unlisted_label_is_counted_once_even_when_the_record_goes_round() -> None:
    h = Harness()
    counter = metrics.LABELS_UNMAPPED.labels("theme")
    before = counter._value.get()
    await h.pipeline.process([h.record("posts", None, post("a", 0, themes=["crypto"]))])
    assert counter._value.get() == before  # on its way to the repartition topic
    (forwarded,) = h.outbound("app-rekeyed")
    arrived = RawRecord("app-rekeyed", 0, 1, forwarded.key, forwarded.value, 0)
    result = await h.pipeline.process([arrived])
    assert result.applied == 1 and counter._value.get() == before + 1


@pytest.mark.parametrize("seen_days", [28, 0])
async def test_a_replay_with_another_time_after_the_record_left_the_window(seen_days: int) -> None:
    """An order comes back with a new event time once its first version has left the
    window: recognised as seen (seen_days 28), or counted again as new (0: no memory)."""
    day = 86_400_000
    h = Harness(params=dataclasses.replace(DEFAULT_PARAMS, seen_days=seen_days))
    old = NOW_MS - 40 * day
    first = [
        ("posts", post("a", 0, posted_at=old)),
        ("orders", order("a", 0, post_id="a-p0", ordered_at=old)),
    ]
    await h.pipeline.process([h.record(t, b"a", p) for t, p in first])
    # Five weeks later: the old post and order leave the window.
    await h.pipeline.process([h.record("posts", b"a", post("a", 1, posted_at=NOW_MS - 5 * day))])
    card = stored_card(h, "a")
    assert (
        card.values()["sales"]
        == model_card([("post", post("a", 1, posted_at=NOW_MS - 5 * day))]).values()["sales"]
    )
    _, _, (hashes, _) = envelope.unwrap_seen(h.table[b"a"])
    assert len(hashes) == (2 if seen_days else 0)

    replayed = order("a", 0, post_id="a-p0", ordered_at=NOW_MS - 4 * day)
    result = await h.pipeline.process([h.record("orders", b"a", replayed)])
    if seen_days:
        assert (result.applied, result.duplicates) == (0, 1)
        assert stored_card(h, "a").to_dict() == card.to_dict()
    else:
        assert (result.applied, result.duplicates) == (1, 0)
        assert stored_card(h, "a").values()["sales"] != card.values()["sales"]


async def test_state_is_written_only_after_the_sinks() -> None:
    h = Harness()
    await h.pipeline.process([h.record("posts", b"a", post("a", 0))])
    # Both sinks saw the table as it was before the batch: empty.
    assert h.redis.table_seen[-1] == {} and h.kafka.table_seen[-1] == {}
    assert b"a" in h.table


async def test_a_failing_sink_leaves_the_state_untouched() -> None:
    """A sink that raises (cancellation, a bug) must not leave the state ahead of Redis."""
    h = Harness()
    h.redis = Recorder(h.table, fail=1)
    h.pipeline = Pipeline(
        CONFIG, DEFAULT_PARAMS, h.table, h.redis, h.kafka, clock=lambda: NOW_MS / 1000
    )
    batch = [h.record("posts", b"a", post("a", 0))]
    with pytest.raises(ConnectionError):
        await h.pipeline.process(batch)
    assert h.table == {}
    # The redelivered batch is then processed in full.
    result = await h.pipeline.process(batch)
    assert result.applied == 1 and result.snapshots_written == 1


async def test_region_and_theme_moves_leave_the_old_boards() -> None:
    h = Harness()
    await h.pipeline.process([h.record("posts", b"a", post("a", i)) for i in range(3)])
    old_boards = board_scores(stored_card(h, "a"))

    moved = post("a", 7, region="MY", themes=["food"], content_type="live", posted_at=NOW_MS - 1000)
    await h.pipeline.process([h.record("posts", b"a", moved)])
    (snap,) = h.snapshots()
    card = model_card([("post", post("a", i)) for i in range(3)] + [("post", moved)])
    new_boards = board_scores(card)
    assert card.region == "MY"
    assert snap.previous_known
    assert snap.leave_boards == frozenset(old_boards) - frozenset(new_boards)
    assert snap.join_boards == frozenset(new_boards) - frozenset(old_boards)
    assert "lb:overall:MY" in snap.join_boards and "lb:overall:ALL" not in snap.join_boards
    assert "lb:overall:SG" in snap.leave_boards
    assert "lb:overall:MY" in snap.set_boards
    # Only boards whose score is new or moved are rewritten.
    assert snap.set_boards == {b: v for b, v in new_boards.items() if old_boards.get(b) != v}


async def test_late_events_are_counted_and_change_nothing() -> None:
    h = Harness()
    await h.pipeline.process([h.record("posts", b"a", post("a", 0))])
    ancient = order("a", 5, ordered_at=NOW_MS - 60 * 24 * HOUR)
    result = await h.pipeline.process([h.record("orders", b"a", ancient)])
    assert result.late == 1 and result.states_written == 0 and h.redis.last == []
    assert result.late_by_topic == {("orders", "creator_window"): 1}


async def test_events_before_the_stream_window_are_late_with_their_own_reason() -> None:
    """A new creator's event 40 days behind the stream time: taken (its id is recognised
    later) but outside every window that ends on the stream's day."""
    h = Harness()
    h.pipeline.observe_stream_time(NOW_MS + 40 * 24 * HOUR)
    result = await h.pipeline.process([h.record("posts", b"b", post("b", 0))])
    assert result.late == 1 and result.applied == 0
    assert result.late_by_topic == {("posts", "stream_window"): 1}


async def test_model_failure_dead_letters_only_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.pipeline as pipeline_module

    real = pipeline_module.arrivals

    def arrivals(pairs: Any, vocab: Any) -> Any:
        if any(getattr(e, "post_id", None) == "a-p1" and e.kind == "post" for _, e in pairs):
            raise ValueError("model bug")
        return real(pairs, vocab)

    monkeypatch.setattr(pipeline_module, "arrivals", arrivals)
    h = Harness()
    result = await h.pipeline.process([h.record("posts", b"a", post("a", i)) for i in range(3)])
    assert result.applied == 2
    assert dict(result.dead_reasons) == {"model_error": 1}
    (dead,) = [orjson.loads(r.value) for r in h.outbound("dead")]
    assert "model bug" in dead["error"]["message"]
    monkeypatch.undo()
    expected = model_card([("post", post("a", i)) for i in (0, 2)])
    assert stored_card(h, "a").to_dict() == expected.to_dict()


async def test_corrupt_state_starts_afresh() -> None:
    h = Harness()
    h.table[b"a"] = b"garbage"
    h.table[b"b"] = envelope.wrap(DEFAULT_PARAMS.model_version, b"CS\x03\x00nonsense")
    batch = [h.record("posts", b"a", post("a", 0)), h.record("posts", b"b", post("b", 0))]
    result = await h.pipeline.process(batch)
    assert result.applied == 2
    assert stored_card(h, "a").to_dict() == model_card([("post", post("a", 0))]).to_dict()
    assert stored_card(h, "b").to_dict() == model_card([("post", post("b", 0))]).to_dict()
    assert all(s.previous_known is False for s in h.snapshots())


async def test_a_card_from_another_model_is_announced_as_a_model_change() -> None:
    h = Harness()
    await h.pipeline.process([h.record("posts", b"a", post("a", 0))])
    _, state = envelope.unwrap(h.table[b"a"])
    h.table[b"a"] = envelope.wrap("model-of-last-year", state)
    await h.pipeline.process([h.record("posts", b"a", post("a", 1))])
    (snap,) = h.snapshots()
    assert snap.previous_known is False  # its boards were another model's: ask Redis
    (change,) = [orjson.loads(r.value) for r in h.outbound("changes")]
    assert change["reasons"]["model_version"] == (
        f"Scored with model {DEFAULT_PARAMS.model_version} (was model-of-last-year)."
    )
    assert envelope.unwrap(h.table[b"a"])[0] == DEFAULT_PARAMS.model_version


async def test_an_unchanged_card_moves_the_state_but_not_redis() -> None:
    h = Harness()
    await h.pipeline.process([h.record("posts", b"a", post("a", 0, observed_at=NOW_MS - 9000))])
    before = h.table[b"a"]
    # A newer observation with the same counters: the record moves, the card does not.
    again = post("a", 0, observed_at=NOW_MS - 5000)
    result = await h.pipeline.process([h.record("posts", b"a", again)])
    assert result.applied == 1 and result.states_written == 1
    assert result.snapshots_written == 0 and h.redis.last == [] and h.outbound("changes") == []
    assert h.table[b"a"] != before


async def test_only_fields_and_boards_that_moved_are_written() -> None:
    h = Harness()
    await h.pipeline.process([h.record("posts", b"a", post("a", i)) for i in range(4)])
    bump = post("a", 3, likes=44, observed_at=NOW_MS - 500)
    await h.pipeline.process([h.record("posts", b"a", bump)])
    (snap,) = h.snapshots()
    before = model_card([("post", post("a", i)) for i in range(4)])
    after = model_card([("post", post("a", i)) for i in range(3)] + [("post", bump)])
    moved = {n for n, v in after.values().items() if v != before.values()[n]}
    assert moved and moved < set(after.values())
    assert set(snap.fields) == {*moved, "basis", "updated_at"} | (
        {"confidence"} if after.confidence != before.confidence else set()
    )
    assert snap.leave_boards == frozenset() and snap.join_boards == frozenset()
    assert set(snap.set_boards) < set(board_scores(after))
    assert snap.set_boards == {
        b: v for b, v in board_scores(after).items() if board_scores(before).get(b) != v
    }


def test_basis_json_is_the_cards_basis() -> None:
    payloads = [("post", post("a", i)) for i in range(4)] + [
        ("order", order("a", 0)),
        ("order", order("a", 1, status="refunded")),
    ]
    card = model_card(payloads)
    basis = explanation_basis(card.explanations)
    assert basis is not None
    assert orjson.loads(basis_json(card)) == basis
    # A card not fresh from the model has no basis to publish.
    with pytest.raises(ValueError, match="basis"):
        basis_json(ScoreCard.from_dict(card.to_dict()))


def test_envelope_round_trip_and_corruption() -> None:
    value = envelope.wrap("creator-scores-1.0", b"CS\x03state")
    assert envelope.unwrap(value) == ("creator-scores-1.0", b"CS\x03state")
    assert envelope.unwrap(envelope.wrap("", b"")) == ("", b"")
    for bad, problem in (
        (b"", "CE header"),
        (b"CS\x01\x00\x00\x00\x02{}", "CE header"),
        (b"CE\x00\x00", "layout 0"),
        (b"CE\x01\x09abc", "truncated"),
        (b"CE\x01\x02\xff\xfe", "UTF-8"),
    ):
        with pytest.raises(ValueError, match=problem):
            envelope.unwrap(bad)
    with pytest.raises(ValueError, match="longer than 255"):
        envelope.wrap("v" * 256, b"")
    # A newer layout is sealed (ends with the CRC-32 of what comes before it): a damaged
    # layout byte is not, and stays a plain error.
    newer = sealed(b"CE\x03\x00" + b"future")
    with pytest.raises(NewerFormatError, match="layout 3 is newer than this worker's"):
        envelope.unwrap(newer)
    with pytest.raises(ValueError, match="layout 3, this worker reads layouts 1 and 2"):
        envelope.unwrap(b"CE\x03\x00" + b"future\x00\x00\x00\x00")


def test_seen_ids_travel_beside_the_state_and_are_checked() -> None:
    hashes = np.array([3, 2**63 + 5, 2**64 - 1], dtype=np.uint64)
    days = np.array([20_000, 20_001, 20_002], dtype=np.int64)
    value = envelope.wrap("m", b"CS\x03state", (hashes, days))
    assert value[2] == 2 and packed.is_sealed(value)
    model, state, (got_h, got_d) = envelope.unwrap_seen(value)
    assert (model, state) == ("m", b"CS\x03state")
    assert got_h.tolist() == hashes.tolist() and got_d.tolist() == days.tolist()
    assert envelope.unwrap(value) == ("m", b"CS\x03state")
    # None to keep: the plain layout, byte for byte what older releases wrote.
    assert envelope.wrap("m", b"s", (hashes[:0], days[:0])) == envelope.wrap("m", b"s")
    flipped = value[:20] + bytes([value[20] ^ 1]) + value[21:]
    with pytest.raises(ValueError, match="fails its checksum"):
        envelope.unwrap_seen(flipped)
    with pytest.raises(ValueError, match="out of order"):
        envelope.unwrap_seen(envelope.wrap("m", b"s", (hashes[::-1].copy(), days)))


def sealed(data: bytes) -> bytes:
    return data + zlib.crc32(data).to_bytes(4, "little")


async def test_a_state_from_a_newer_release_stops_the_flush_and_changes_nothing() -> None:
    """A rollback must not wipe creators: a newer state is neither reset nor dead-lettered."""
    h = Harness()
    await h.pipeline.process([h.record("posts", b"a", post("a", 0))])
    stored = envelope.unwrap(h.table[b"a"])[1]
    newer = sealed(stored[:2] + bytes((packed.FORMAT + 1,)) + stored[3:])
    h.table[b"a"] = envelope.wrap(DEFAULT_PARAMS.model_version, newer)
    before = dict(h.table)
    batches = (len(h.redis.batches), len(h.kafka.batches))
    batch = [h.record("posts", b"a", post("a", 1)), h.record("posts", b"b", post("b", 0))]
    with pytest.raises(NewerFormatError, match=r"state format \d+ is newer"):
        await h.pipeline.process(batch)
    assert dict(h.table) == before
    assert (len(h.redis.batches), len(h.kafka.batches)) == batches


async def test_freshness_is_observed_per_applied_event() -> None:
    h = Harness()
    count = metrics.ARRIVAL_TO_REDIS._sum.get()
    before = sum(
        s.value for s in metrics.ARRIVAL_TO_REDIS.collect()[0].samples if s.name.endswith("_count")
    )
    await h.pipeline.process([h.record("posts", b"a", post("a", i)) for i in range(3)])
    after = sum(
        s.value for s in metrics.ARRIVAL_TO_REDIS.collect()[0].samples if s.name.endswith("_count")
    )
    assert after - before == 3
    # Records arrived a second before the (fixed) clock, so each waited about a second.
    assert metrics.ARRIVAL_TO_REDIS._sum.get() - count == pytest.approx(3.0)


async def test_sinks_run_concurrently() -> None:
    """Redis and Kafka writes overlap instead of adding up their latencies."""
    h = Harness()
    started: list[str] = []

    class Slow(Recorder):
        def __init__(self, name: str) -> None:
            super().__init__(h.table)
            self.name = name

        async def write(self, batch: Sequence[Any]) -> None:
            started.append(self.name)
            await asyncio.sleep(0.05)
            assert set(started) == {"redis", "kafka"}
            await super().write(batch)

    h.pipeline = Pipeline(
        CONFIG, DEFAULT_PARAMS, h.table, Slow("redis"), Slow("kafka"), clock=lambda: NOW_MS / 1000
    )
    await h.pipeline.process([h.record("posts", b"a", post("a", 0))])
    assert b"a" in h.table


def test_board_layout_follows_the_key_contract() -> None:
    card = model_card(
        [
            ("post", post("a", 0, themes=["beauty", "food"], content_type="video")),
            ("post", post("a", 1, themes=["food"], content_type="live")),
        ]
    )
    assert card.region == "SG"
    boards = board_scores(card)
    headline = {f"lb:{name}:{region}" for name in card.values() for region in ("ALL", "SG")}
    breakdown = {
        f"lb:{name}:{region}:{suffix}"
        for name in ("overall", "influence")
        for region in ("ALL", "SG")
        for suffix in ("beauty", "food", "ct:video", "ct:live")
    }
    assert set(boards) == headline | breakdown
    assert boards["lb:sales:SG"] == card.sales
    assert boards["lb:influence:ALL:food"] == card.influence_by_theme["food"]
    assert boards["lb:overall:SG:ct:live"] == card.overall_by_content_type["live"]


async def test_scoring_failure_dead_letters_the_creator_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import streams.pipeline as pipeline_module

    real = pipeline_module.plan

    def failing(scores: Any, published: Any, *args: Any) -> Any:
        if any(p.creator_id == "b" for p in published):
            raise AttributeError("model bug in scoring")
        return real(scores, published, *args)

    monkeypatch.setattr(pipeline_module, "plan", failing)
    h = Harness()
    batch = [h.record("posts", b"a", post("a", 0))]
    batch += [h.record("posts", b"b", post("b", i)) for i in range(2)]
    result = await h.pipeline.process(batch)
    assert dict(result.dead_reasons) == {"model_error": 2}
    assert result.applied == 1  # b's events count as dead letters, not as applied
    assert set(h.table) == {b"a"}
    assert [s.creator_id for s in h.snapshots()] == ["a"]
    assert [r.key for r in h.outbound("dead")] == [b"b", b"b"]


async def test_the_cards_topic_carries_the_basis_redis_holds() -> None:
    """The card's basis is the hash's, whether it was just written to Redis (embedded as
    serialised) or not (a card written although its basis did not move)."""
    h = Harness()
    await h.pipeline.process([h.record("posts", b"a", post("a", 0)),
                              h.record("posts", b"b", post("b", 0))])  # fmt: skip
    cards = {r.key: r for r in h.outbound("cards")}
    hashes = {s.creator_id.encode(): s.fields for s in h.snapshots()}
    assert set(cards) == {b"a", b"b"}
    for key, record in cards.items():
        assert record.value is not None
        card = orjson.loads(record.value)
        assert card["basis"] == orjson.loads(hashes[key]["basis"])
        assert card["scores"]["overall"] == float(hashes[key]["overall"])
