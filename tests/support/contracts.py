"""The worker's output records against their published contracts (`scoring/schemas/`).

Every end-to-end test that reads an output topic goes through `check_records`, and the
e2e harness reads every output topic once more when a test ends, so each score change,
dead letter and card a real worker wrote is validated against its JSON Schema. Beside
the schemas, the keys: a change and a card are keyed by their creator id, a dead letter
by the original record's key. `latest_cards` and `cards_in_redis` give the two sides of
the cards topic's promise: the last record per key is the creator's card in Redis.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from jsonschema import Draft202012Validator

from scoring.names import SCORE_NAMES
from streams.keys import GLOBAL_REGION
from streams.settings import Settings

SCHEMAS = Path(__file__).resolve().parents[2] / "scoring" / "schemas"

#: The schema of each output topic, by the setting that names the topic.
OUTPUT_SCHEMAS = {
    "changes_topic": "creator-score-changes",
    "dead_letter_topic": "scorer-dead-letters",
    "cards_topic": "creator-scores",
}

Record = ConsumerRecord[bytes, bytes]


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator of `scoring/schemas/{name}.schema.json` (checked as a schema first)."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(name: str, document: object) -> list[str]:
    """What is wrong with `document` under schema `name`, one line per error (empty: valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
        for e in validator(name).iter_errors(document)
    ]


def output_topics(settings: Settings) -> dict[str, str]:
    """Topic name -> schema name, for the output topics of `settings`."""
    return {getattr(settings, field): schema for field, schema in OUTPUT_SCHEMAS.items()}


def check_records(settings: Settings, topic: str, records: Iterable[Record]) -> int:
    """Assert that every record of an output topic keeps its contract; returns how many
    were checked (0 for a topic that is not an output topic)."""
    schema = output_topics(settings).get(topic)
    if schema is None:
        return 0
    checked = 0
    for record in records:
        where = f"{topic}:{record.partition}@{record.offset}"
        if record.value is None:
            assert schema == "creator-scores", f"{where}: a null value on {topic}"
            assert record.key, f"{where}: a tombstone without a key"
            checked += 1
            continue
        document = orjson.loads(record.value)
        wrong = problems(schema, document)
        assert not wrong, f"{where} breaks {schema}.schema.json:\n  " + "\n  ".join(wrong)
        if schema == "scorer-dead-letters":
            kept = document["key_b64"]
            assert record.key == (None if kept is None else base64.b64decode(kept)), where
        else:
            assert record.key == document["creator_id"].encode(), f"{where}: key {record.key!r}"
        checked += 1
    return checked


def latest_cards(records: Iterable[Record]) -> dict[str, dict[str, Any] | None]:
    """The cards topic read as a bootstrapping service reads it: the last value per key
    (offset order within a partition; a key lives on one partition), None for a tombstone."""
    out: dict[str, dict[str, Any] | None] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.key is not None
        out[record.key.decode()] = None if record.value is None else orjson.loads(record.value)
    return out


def cards_in_redis(dump: Mapping[str, object], prefix: str) -> dict[str, dict[str, Any] | None]:
    """What the cards topic must say of every creator in a Redis dump (`dump_prefix`): its
    card, from its hash and its boards (scores per theme and content type from the global
    ones), or None (a tombstone) for a creator that has left (`active` 0)."""
    creator = f"{prefix}creator:"
    slices: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    global_boards = f"{prefix}lb:"
    for key, members in dump.items():
        if not key.startswith(global_boards):
            continue
        score, region, *rest = key.removeprefix(global_boards).split(":")
        if region != GLOBAL_REGION or not rest:
            continue
        is_type = len(rest) == 2 and rest[0] == "ct"
        kind, name = ("content_types", rest[1]) if is_type else ("themes", rest[0])
        name = name.replace("%3A", ":").replace("%25", "%")
        assert isinstance(members, list)
        for member, value in members:
            mine = slices.setdefault(member.decode(), {}).setdefault(kind, {})
            mine.setdefault(name, {})[score] = value
    out: dict[str, dict[str, Any] | None] = {}
    for key, fields in dump.items():
        if not key.startswith(creator):
            continue
        assert isinstance(fields, dict)
        creator_id = key.removeprefix(creator)
        if fields[b"active"] != b"1":
            out[creator_id] = None
            continue
        mine = slices.get(creator_id, {})
        out[creator_id] = {
            "creator_id": creator_id,
            "region": fields[b"region"].decode(),
            "model_version": fields[b"model_version"].decode(),
            "event_time_ms": int(fields[b"event_time"]),
            "active": True,
            "provisional": fields[b"provisional"] == b"1",
            "confidence": float(fields[b"confidence"]),
            "scores": {name: float(fields[name.encode()]) for name in SCORE_NAMES},
            "themes": mine.get("themes", {}),
            "content_types": mine.get("content_types", {}),
            "basis": orjson.loads(fields[b"basis"]),
        }
    return out
