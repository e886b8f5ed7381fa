"""The output topics' JSON Schemas: valid, documented, in step with the code, and strict.

The records are the pipeline's own (the real model, recording sinks): a flush's score
changes, dead letters and cards, a tombstone, and a requested re-score's cards must all
validate; hand-made records with one thing wrong must not. The end-to-end tests check the
same schemas against what a real worker wrote (`tests.support.contracts`).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from scoring.columns import DAY_MS
from scoring.model import BASIS_VERSION
from scoring.names import COMPONENT_SCORES, SCORE_NAMES
from scoring.params import DEFAULT_PARAMS
from scoring.validate import PROBLEMS
from streams import codec
from streams.codec import RawRecord
from streams.pipeline import Pipeline
from streams.sinks.base import CreatorSnapshot, OutboundRecord
from streams.state_store import DictStore
from tests.support.contracts import OUTPUT_SCHEMAS, SCHEMAS, problems, validator
from tests.support.payloads import CONFIG, NOW_MS, order, post, tag

NAMES = sorted(OUTPUT_SCHEMAS.values())


def schema(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((SCHEMAS / f"{name}.schema.json").read_bytes())
    return doc


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    doc = schema(name)
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"].endswith(f"/scoring/schemas/{name}.schema.json")
    assert doc["title"] == name and doc["description"]


def _properties(node: object, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every declared property of a schema, however deep, with its path."""
    if isinstance(node, dict):
        for key, sub in node.get("properties", {}).items():
            yield f"{path}.{key}", sub
        for key, sub in node.items():
            yield from _properties(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for sub in node:
            yield from _properties(sub, path)


@pytest.mark.parametrize("name", NAMES)
def test_every_field_is_documented_and_closed(name: str) -> None:
    doc = schema(name)
    undocumented = [path for path, sub in _properties(doc) if not sub.get("description")]
    assert not undocumented
    # The worker writes exactly the declared fields: an object with fixed fields is closed.
    for _, sub in [("$", doc), *_properties(doc)]:
        if "properties" in sub:
            assert sub.get("additionalProperties") is False, sub.get("description")


def test_the_enums_are_the_codes_of_the_code() -> None:
    dead = schema("scorer-dead-letters")["properties"]
    streams_codes = [codec.BAD_JSON, codec.BAD_FRAME, codec.UNKNOWN_TOPIC, codec.MODEL_ERROR,
                     codec.TOO_LARGE, codec.UNWRITABLE]  # fmt: skip
    assert dead["reason"]["enum"] == [*PROBLEMS, *streams_codes]
    assert dead["error"]["properties"]["problem"]["enum"] == dead["reason"]["enum"]
    changes = schema("creator-score-changes")["properties"]
    assert changes["changed"]["items"]["enum"] == list(SCORE_NAMES)
    assert changes["new"]["required"] == list(SCORE_NAMES)
    cards = schema("creator-scores")["properties"]
    assert cards["scores"]["required"] == list(SCORE_NAMES)
    assert cards["basis"]["properties"]["figures"]["required"] == list(COMPONENT_SCORES)
    assert cards["basis"]["properties"]["v"]["const"] == BASIS_VERSION


class _Recorder:
    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    async def write(self, batch: Sequence[Any]) -> None:
        self.batches.append(list(batch))


async def _flushes() -> tuple[list[OutboundRecord], list[CreatorSnapshot], list[OutboundRecord]]:
    """The records and snapshots of one flush (three creators, one of them 40 days behind the
    others, and bad records), and the records of a requested re-score of every creator after
    it (which rolls the late creator's window past its events)."""
    redis, kafka = _Recorder(), _Recorder()
    pipeline = Pipeline(CONFIG, DEFAULT_PARAMS, DictStore(), redis, kafka,
                        clock=lambda: NOW_MS / 1000)  # fmt: skip
    old = NOW_MS - 40 * DAY_MS
    payloads = [
        *[("posts", post("cr-a", n, themes=["beauty", "home"])) for n in range(4)],
        ("tags", tag("cr-a", 0)),
        ("orders", order("cr-a", 0)),
        ("posts", post("cr-b", 0, content_type="live", region="uk")),
        ("posts", post("cr-gone", 0, posted_at=old)),  # 40 days before the stream time
    ]
    records = [
        RawRecord(topic, 0, i, str(p["creator_id"]).encode(), orjson.dumps(p), NOW_MS)
        for i, (topic, p) in enumerate(payloads)
    ]
    records.append(RawRecord("posts", 0, 90, b"cr-x", b"{not json", NOW_MS))
    records.append(RawRecord("orders", 1, 91, b"\xff" * 2000, orjson.dumps({"order_id": 1}), 5))
    records.append(RawRecord("posts", 2, 92, None, b"\x00" * 300_000, NOW_MS))
    await pipeline.process(records)
    flushed = list(kafka.batches[-1])
    await pipeline.sweep([b"cr-a", b"cr-b", b"cr-gone"], rescore=True)
    return flushed, redis.batches[0], list(kafka.batches[-1])


async def test_records_of_a_flush_and_a_rescore_keep_their_contracts() -> None:
    flushed, snapshots, rescored = await _flushes()
    by_schema: dict[str, list[OutboundRecord]] = {}
    topics = {CONFIG.changes_topic: "creator-score-changes", CONFIG.dead_letter_topic:
              "scorer-dead-letters", CONFIG.cards_topic: "creator-scores"}  # fmt: skip
    for record in [*flushed, *rescored]:
        by_schema.setdefault(topics[record.topic], []).append(record)
        if record.value is not None:
            document = orjson.loads(record.value)
            assert problems(topics[record.topic], document) == [], document
    assert len(by_schema["scorer-dead-letters"]) == 3
    assert {r.key for r in by_schema["creator-score-changes"]} == {b"cr-a", b"cr-b", b"cr-gone"}

    # One card per creator whose Redis card was written, stamped with the Redis hash's
    # `updated_at`; on the re-score every creator again, and a tombstone for the one whose
    # window the stream time has left empty.
    cards = {r.key: r for r in flushed if r.topic == CONFIG.cards_topic}
    assert set(cards) == {b"cr-a", b"cr-b", b"cr-gone"}
    fields = {s.creator_id: s.fields for s in snapshots}
    for key in (b"cr-a", b"cr-b"):
        value = cards[key].value
        assert value is not None
        card = orjson.loads(value)
        hash_ = fields[key.decode()]
        assert cards[key].timestamp_ms == int(hash_["updated_at"])
        assert card["scores"] == {name: float(hash_[name]) for name in SCORE_NAMES}
        assert card["confidence"] == float(hash_["confidence"])
        assert card["basis"] == orjson.loads(hash_["basis"])
        assert (card["region"], card["event_time_ms"]) == (hash_["region"],
                                                           int(hash_["event_time"]))  # fmt: skip
    assert set(orjson.loads(cards[b"cr-a"].value or b"")["themes"]) == {"beauty", "home"}
    assert set(orjson.loads(cards[b"cr-b"].value or b"")["content_types"]) == {"live"}
    assert orjson.loads(cards[b"cr-b"].value or b"")["region"] == "GB"
    again = {r.key: r.value for r in rescored if r.topic == CONFIG.cards_topic}
    assert again == {b"cr-a": cards[b"cr-a"].value, b"cr-b": cards[b"cr-b"].value, b"cr-gone": None}


def _good() -> dict[str, dict[str, Any]]:
    scores = {name: 50.0 for name in SCORE_NAMES}
    return {
        "creator-score-changes": {
            "creator_id": "cr-1", "region": "ID", "model_version": "m-1",
            "event_time_ms": NOW_MS, "changed": ["overall"], "old": dict(scores),
            "new": {**scores, "overall": 52.5}, "reasons": {"overall": "Overall rose."},
            "provisional": False, "active": True, "cause": "events",
        },
        "scorer-dead-letters": orjson.loads(
            codec.dead_letter_value(
                RawRecord("posts", 3, 17, b"cr-1", b"{oops", NOW_MS),
                codec.model_error("post", ValueError("boom")), now_ms=NOW_MS,
            )
        ),
        "creator-scores": {
            "creator_id": "cr-1", "region": "ZZ", "model_version": "m-1",
            "event_time_ms": NOW_MS, "active": True, "provisional": True, "confidence": 0.25,
            "scores": dict(scores), "themes": {"beauty": {"overall": 40.0, "influence": 61.5}},
            "content_types": {}, "basis": {
                "v": 1, "facts": [1, 2.5], "values": [50.0] * 7, "overall": 50.0,
                "provisional": True, "figures": {n: [[1.0, 0.5], 0.3] for n in COMPONENT_SCORES},
            },
        },
    }  # fmt: skip


def test_hand_made_good_records_pass() -> None:
    for name, document in _good().items():
        assert problems(name, document) == []
    refused = codec.refused_value("creator-scores", b"cr-1", b"x" * 10, OSError("too big"),
                                  now_ms=NOW_MS)  # fmt: skip
    assert problems("scorer-dead-letters", orjson.loads(refused)) == []


BROKEN: list[tuple[str, str, object]] = [
    ("creator-score-changes", "surprise", 1),  # an undeclared field
    ("creator-score-changes", "cause", "whim"),
    ("creator-score-changes", "region", "idn"),
    ("creator-score-changes", "changed", ["popularity"]),
    ("creator-score-changes", "new", {"overall": 50.0}),
    ("creator-score-changes", "old", {**{n: 50.0 for n in SCORE_NAMES}, "overall": 101.0}),
    ("creator-score-changes", "reasons", {"mood": "Happier."}),
    ("creator-score-changes", "event_time_ms", "2026-01-01T00:00:00Z"),
    ("creator-score-changes", "creator_id", ""),
    ("creator-score-changes", "provisional", None),
    ("scorer-dead-letters", "reason", "bad_vibes"),
    ("scorer-dead-letters", "partition", -1),
    ("scorer-dead-letters", "value_b64", "not base64!"),
    ("scorer-dead-letters", "error", {"kind": "post", "field": "", "problem": "missing"}),
    ("scorer-dead-letters", "key_truncated", "no"),
    ("creator-scores", "active", False),  # a creator that left is a tombstone, not a card
    ("creator-scores", "confidence", 1.5),
    ("creator-scores", "themes", {"beauty": {"overall": 40.0}}),
    ("creator-scores", "themes", {"Beauty": {"overall": 40.0, "influence": 1.0}}),
    ("creator-scores", "basis", {"v": 1}),
    ("creator-scores", "updated_at", NOW_MS),
]


@pytest.mark.parametrize(("name", "field", "value"), BROKEN)
def test_a_record_with_one_thing_wrong_is_rejected(name: str, field: str, value: object) -> None:
    document = copy.deepcopy(_good()[name])
    document[field] = value
    assert problems(name, document)
    missing = copy.deepcopy(_good()[name])
    del missing[next(iter(missing))]
    assert not validator(name).is_valid(missing)


def test_dead_letter_keys_and_values_round_trip() -> None:
    envelope = _good()["scorer-dead-letters"]
    assert base64.b64decode(envelope["key_b64"]) == b"cr-1"
    assert base64.b64decode(envelope["value_b64"]) == b"{oops"
