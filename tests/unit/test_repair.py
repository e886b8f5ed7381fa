"""Republished cards: what a Redis rebuilt from the state holds is what the flushes built.

The pipeline runs for real over a dict state table with a recording Redis sink; the
recorded snapshots are applied to a small model of the sink's semantics (HSET merges
fields, ZADD/ZREM per board, SADD/SREM per membership set). `full_cards` of the final
states, applied to an empty model, must give the same model. The real Redis is
`tests/integration/test_repair.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from scoring.params import DEFAULT_PARAMS
from scoring.vocab import Vocabulary
from streams import envelope
from streams.codec import RawRecord
from streams.devtools.stack import LocalStack
from streams.keys import Keys
from streams.pipeline import Pipeline
from streams.repair import full_cards
from streams.settings import Settings
from streams.sinks.base import CreatorSnapshot, OutboundRecord
from streams.state_store import DictStore
from tests.support import payloads
from tests.support.payloads import CONFIG, HOUR, NOW_MS, post, tag


def order(creator: str, n: int, **over: object) -> dict[str, object]:
    """An order of one of three brands (the shared factory's brand varies by post here)."""
    return payloads.order(creator, n, **{"brand_id": f"brand-{n % 3}", **over})


@dataclass
class RedisModel:
    """What the Redis sink leaves in Redis, as dicts (no prefix)."""

    hashes: dict[str, dict[str, str]] = field(default_factory=dict)
    boards: dict[str, dict[str, float]] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)

    async def write(self, batch: Sequence[CreatorSnapshot]) -> None:
        for snap in batch:
            c = snap.creator_id
            on = self.members.setdefault(c, set())
            leave = snap.leave_boards
            if not snap.previous_known:
                leave = frozenset(on - set(snap.set_boards))
            for board in leave:
                self.boards.get(board, {}).pop(c, None)
            for board, value in snap.set_boards.items():
                self.boards.setdefault(board, {})[c] = value
            self.hashes.setdefault(c, {}).update(snap.fields)
            on -= leave
            on |= set(snap.set_boards if snap.join_boards is None else snap.join_boards)

    def normalised(self) -> tuple[object, ...]:
        boards = {b: entries for b, entries in self.boards.items() if entries}
        members = {c: on for c, on in self.members.items() if on}
        return self.hashes, boards, members


class Records:
    async def write(self, batch: Sequence[OutboundRecord]) -> None:
        pass


def flushes() -> list[list[tuple[str, dict[str, object]]]]:
    """Flushes that move cards every way: new creators, new themes and content types,
    boards left, a region change, refunds."""
    first = [("posts", post(c, i)) for c in ("a", "b", "c") for i in range(3)]
    second = [("tags", tag(c, i)) for c in ("a", "b") for i in range(3)] + [
        ("posts", post("a", 5, themes=["food", "travel"], content_type="live")),
        ("orders", order("b", 1)),
    ]
    third = [
        ("posts", post("b", 7, region="MY", posted_at=NOW_MS - HOUR)),
        ("posts", post("a", 5, themes=["food"], content_type="live", observed_at=NOW_MS - 10)),
        ("orders", order("b", 1, status="refunded")),
        ("posts", post("d", 0, region="ID", themes=[], content_type="photo")),
    ]
    return [first, second, third]


async def run_pipeline(model: RedisModel) -> DictStore:
    table = DictStore()
    pipeline = Pipeline(
        CONFIG, DEFAULT_PARAMS, table, model, Records(), clock=lambda: NOW_MS / 1000
    )
    offset = 0
    for flush in flushes():
        records = []
        for topic, payload in flush:
            offset += 1
            key = str(payload["creator_id"]).encode()
            records.append(RawRecord(topic, 0, offset, key, orjson.dumps(payload), NOW_MS - 1000))
        await pipeline.process(records)
    return table


async def test_full_cards_rebuild_what_the_flushes_wrote() -> None:
    flushed = RedisModel()
    table = await run_pipeline(flushed)
    assert set(table) == {b"a", b"b", b"c", b"d"}

    ids = [k.decode() for k in table]
    cards = full_cards(ids, list(table.values()), DEFAULT_PARAMS, Vocabulary(), NOW_MS)
    assert cards.unreadable == []
    assert all(not s.previous_known for s in cards.snapshots)
    rebuilt = RedisModel()
    await rebuilt.write(cards.snapshots)
    assert rebuilt.normalised() == flushed.normalised()
    # The region change left the old region's boards, and the rebuild does not put it back.
    assert "b" not in flushed.boards.get("lb:overall:SG", {})
    assert "b" in rebuilt.boards["lb:overall:MY"]


async def test_full_cards_over_a_redis_that_kept_stale_boards() -> None:
    """A republish over a Redis that was not emptied leaves what the creator no longer has."""
    flushed = RedisModel()
    table = await run_pipeline(flushed)
    stale = RedisModel()
    stale.members["a"] = {"lb:overall:VN", "lb:overall:ALL"}
    stale.boards["lb:overall:VN"] = {"a": 12.0}
    ids = [k.decode() for k in table]
    await stale.write(full_cards(ids, list(table.values()), DEFAULT_PARAMS, Vocabulary(),
                                 NOW_MS).snapshots)  # fmt: skip
    assert stale.normalised() == flushed.normalised()


async def test_unreadable_and_corrupt_states_are_named_and_skipped() -> None:
    table = await run_pipeline(RedisModel())
    good = table[b"a"]
    model, state = envelope.unwrap(good)
    corrupt = envelope.wrap(model, state[:-1] + bytes([state[-1] ^ 0xFF]))
    ids = ["x", "a", "y", "z"]
    values = [b"not a state", good, corrupt, envelope.wrap("other-model", state)]
    cards = full_cards(ids, values, DEFAULT_PARAMS, Vocabulary(), NOW_MS)
    assert sorted(cards.unreadable) == ["x", "y"]
    # A state last scored by another model is republished with this one.
    assert [s.creator_id for s in cards.snapshots] == ["a", "z"]
    assert cards.snapshots[0].fields == cards.snapshots[1].fields
    assert cards.snapshots[0].fields["model_version"] == DEFAULT_PARAMS.model_version


def test_full_cards_of_nothing() -> None:
    cards = full_cards([], [], DEFAULT_PARAMS, Vocabulary(), NOW_MS)
    assert cards.snapshots == [] and cards.unreadable == []


def test_markers_live_under_the_prefix_and_apart_from_creators() -> None:
    keys = Keys("p:")
    assert keys.partition_marker(3) == "p:meta:published:3"
    assert keys.partition_marker(3).startswith(keys.markers_pattern()[:-1])
    assert not keys.creator("meta").startswith(keys.markers_pattern()[:-1])


def test_local_redis_keeps_its_data_unless_told_otherwise(tmp_path: Path) -> None:
    def argv(**over: object) -> list[str]:
        stack = LocalStack(Settings(stack_dir=tmp_path, **over), log=lambda _: None)
        return stack.redis_argv("redis-server", tmp_path / "redis")

    on = argv()
    assert on[on.index("--appendonly") + 1] == "yes"
    assert on[on.index("--dir") + 1] == str(tmp_path / "redis")
    off = argv(redis_appendonly=False)
    assert off[off.index("--appendonly") + 1] == "no"
