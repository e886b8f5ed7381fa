"""The day-boundary sweep through the real pipeline (recording sinks, a dict for the table):
dormant creators leave the boards with a "window rolled" change, empty states are deleted,
a new model reaches every creator, and a sweep done twice changes nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson

from scoring.columns import DAY_MS
from scoring.params import DEFAULT_PARAMS, Params
from scoring.state import CreatorState, score
from streams import envelope
from streams.codec import RawRecord
from streams.partitioning import partitions_for
from streams.pipeline import Pipeline
from streams.sinks.base import CreatorSnapshot, OutboundRecord
from streams.state_store import DictStore
from streams.sweep import Sweeper
from streams.turns import Exclusive
from tests.support.payloads import CONFIG, NOW_MS, order, post


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    async def write(self, batch: Sequence[Any]) -> None:
        self.batches.append(list(batch))

    def all(self) -> list[Any]:
        return [item for batch in self.batches for item in batch]


class Harness:
    def __init__(self, table: DictStore | None = None, params: Params = DEFAULT_PARAMS) -> None:
        self.table = DictStore() if table is None else table
        self.redis = Recorder()
        self.kafka = Recorder()
        self.pipeline = Pipeline(
            CONFIG, params, self.table, self.redis, self.kafka, clock=lambda: NOW_MS / 1000
        )
        self._offset = 0

    async def feed(self, *payloads: tuple[str, dict[str, object]]) -> None:
        records = []
        for kind, payload in payloads:
            self._offset += 1
            records.append(RawRecord(f"{kind}s", 0, self._offset,
                                     str(payload["creator_id"]).encode(),
                                     orjson.dumps(payload), NOW_MS))  # fmt: skip
        result = await self.pipeline.process(records)
        assert result.dead_letters == 0

    def snapshots(self) -> dict[str, CreatorSnapshot]:
        return {s.creator_id: s for s in self.redis.all()}

    def changes(self) -> dict[str, dict[str, Any]]:
        out: list[OutboundRecord] = [r for r in self.kafka.all() if r.topic == CONFIG.changes_topic]
        return {r.key.decode(): orjson.loads(r.value) for r in out if r.key is not None}


DAYS_AGO_40 = NOW_MS - 40 * DAY_MS


async def _dormant_and_active() -> Harness:
    """Creator `old` posted 40 days before creator `new`; `old` came first."""
    h = Harness()
    await h.feed(*[("post", post("old", i, posted_at=DAYS_AGO_40 - i * 3_600_000))
                   for i in range(5)],
                 ("order", order("old", 0, ordered_at=DAYS_AGO_40)))  # fmt: skip
    await h.feed(*[("post", post("new", i)) for i in range(5)])
    assert h.pipeline.stream_ms > NOW_MS - DAY_MS
    h.redis.batches.clear()
    h.kafka.batches.clear()
    return h


async def test_a_dormant_creator_leaves_the_boards_with_a_window_rolled_change() -> None:
    h = await _dormant_and_active()
    result = await h.pipeline.sweep([b"old", b"new"])
    assert result.creators == 1  # only `old` is due: `new` is scored as of today already

    snap = h.snapshots()["old"]
    assert snap.fields["active"] == "0"
    assert snap.set_boards == {} and snap.previous_known is False  # the sink leaves every board
    day_start = h.pipeline.stream_ms // DAY_MS * DAY_MS
    assert snap.fields["event_time"] == str(day_start)  # as of the stream's day
    change = h.changes()["old"]
    assert change["cause"] == "window_rolled" and change["active"] is False
    assert change["reasons"]["window"].startswith("Window rolled: it now covers ")
    assert "left every leaderboard" in change["reasons"]["active"]
    assert "new" not in h.snapshots() and "new" not in h.changes()

    # The state is kept (its ids are still recognised), empty and as of the stream time.
    _, state = envelope.unwrap(h.table[b"old"])
    kept = CreatorState.from_bytes("old", state)
    assert kept.counts() == (0, 0, 0) and kept.watermark_ms == day_start
    assert envelope.unwrap_seen(h.table[b"old"])[2][0].size == 6  # 5 posts and 1 order
    assert score(kept, DEFAULT_PARAMS).active is False


async def test_a_sweep_done_twice_changes_nothing_the_second_time() -> None:
    h = await _dormant_and_active()
    await h.pipeline.sweep([b"old", b"new"])
    table = dict(h.table)
    writes = len(h.redis.batches), len(h.kafka.batches)
    again = await h.pipeline.sweep([b"old", b"new"])
    assert again.creators == 0 and dict(h.table) == table
    assert (len(h.redis.batches), len(h.kafka.batches)) == writes


async def test_an_empty_state_is_deleted_once_its_ids_are_forgotten() -> None:
    h = await _dormant_and_active()
    await h.pipeline.sweep([b"old", b"new"])
    # Past the window and `seen_days` more: `old` has nothing left, `new` has gone quiet.
    h.pipeline.observe_stream_time(NOW_MS + (DEFAULT_PARAMS.seen_days + 1) * DAY_MS)
    h.redis.batches.clear()
    h.kafka.batches.clear()
    await h.pipeline.sweep([b"old", b"new"])
    assert b"old" not in h.table  # deleted (a tombstone in the changelog)
    assert "old" not in h.snapshots()  # inactive before and after: Redis stays as it is
    assert h.snapshots()["new"].fields["active"] == "0"
    assert h.changes()["new"]["cause"] == "window_rolled"
    assert b"new" in h.table  # its ids are still recognised


async def test_events_after_the_sweep_bring_a_creator_back() -> None:
    h = await _dormant_and_active()
    await h.pipeline.sweep([b"old", b"new"])
    h.redis.batches.clear()
    await h.feed(("post", post("old", 9)))
    snap = h.snapshots()["old"]
    assert snap.fields["active"] == "1"
    assert snap.set_boards and snap.previous_known is False  # every board, joined again


async def test_a_new_model_reaches_every_creator_held() -> None:
    h = await _dormant_and_active()
    await h.pipeline.sweep([b"old", b"new"])
    v2 = dataclasses.replace(DEFAULT_PARAMS, model_version="creator-scores-2.0-test")
    rolled = Harness(h.table, v2)
    rolled.pipeline.observe_stream_time(h.pipeline.stream_ms)
    result = await rolled.pipeline.sweep([b"old", b"new"])
    assert result.creators == 2
    changes = rolled.changes()
    for creator in ("old", "new"):
        assert changes[creator]["cause"] == "model_rollout"
        assert changes[creator]["model_version"] == v2.model_version
        assert "was creator-scores-1.0" in changes[creator]["reasons"]["model_version"]
        assert envelope.unwrap(h.table[creator.encode()])[0] == v2.model_version
        assert rolled.snapshots()[creator].fields["model_version"] == v2.model_version
    assert (await rolled.pipeline.sweep([b"old", b"new"])).creators == 0


async def test_an_operator_rescore_scores_every_creator_once_more() -> None:
    h = await _dormant_and_active()
    await h.pipeline.sweep([b"old", b"new"])
    result = await h.pipeline.sweep([b"old", b"new"], rescore=True)
    assert result.creators == 2
    # The same cards: nothing to publish, and no change record.
    assert result.snapshots_written == 0 and result.score_changes == 0


async def test_the_sweeper_goes_through_what_it_owns_in_slices_and_stops_at_a_rebalance() -> None:
    h = await _dormant_and_active()
    for n in range(3):
        await h.feed(("post", post(f"more-{n}", 0)))
    h.pipeline.observe_stream_time(NOW_MS + 2 * DAY_MS)  # all 5 are due now
    partitions = 4
    owned: list[frozenset[int] | None] = [frozenset(range(partitions))]
    sweeper = Sweeper(h.pipeline, h.table, partitions, lambda: owned[0], Exclusive(),
                      slice_size=2)  # fmt: skip
    assert sweeper.due()
    seen: list[tuple[int, int]] = []

    async def rebalance_after_first_slice(done: int, total: int) -> None:
        seen.append((done, total))
        owned[0] = frozenset({0})

    first = await sweeper.sweep(progress=rebalance_after_first_slice)
    assert not first.complete and seen == [(2, 5)]
    assert sweeper.due()  # the pass did not finish: the next one takes it up

    done = await sweeper.sweep()
    mine = [k for k, p in zip(sorted(h.table), partitions_for(sorted(h.table), partitions).tolist(),
                              strict=True) if p == 0]  # fmt: skip
    assert done.complete and done.looked_at == len(mine)
    assert not sweeper.due()
    # Every creator of the partition owned is rolled to the stream time now.
    day = h.pipeline.stream_ms // DAY_MS
    for key in mine:
        state = envelope.unwrap(h.table[key])[1]
        assert CreatorState.from_bytes(key.decode(), state).watermark_ms // DAY_MS == day
