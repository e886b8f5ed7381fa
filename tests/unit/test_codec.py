"""Decoding raw records into events, re-key framing, and the dead-letter envelope."""

from __future__ import annotations

import base64

import orjson
import pytest

from scoring.events import OrderEvent, PostEvent
from scoring.params import DEFAULT_PARAMS
from scoring.validate import ValidationError
from streams.codec import (
    BAD_FRAME,
    BAD_JSON,
    MAX_DEAD_KEY_BYTES,
    MAX_DEAD_MESSAGE_CHARS,
    MAX_DEAD_VALUE_BYTES,
    RawRecord,
    count_unmapped,
    dead_letter_key,
    dead_letter_value,
    decode,
    frame_rekeyed,
    refused_value,
    topic_kinds,
    unframe_rekeyed,
)
from streams.metrics import REGISTRY

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

POST = {
    "post_id": "p1",
    "creator_id": "c1",
    "region": "sg",
    "content_type": "Video",
    "themes": ["Beauty"],
    "posted_at": "2025-12-31T10:00:00+08:00",
    "views": 1000,
    "likes": 50,
    "comments": 5,
    "shares": 2,
}
ORDER = {
    "order_id": "o1",
    "creator_id": "c1",
    "post_id": "p1",
    "product_id": "sku1",
    "brand_id": "b1",
    "theme": "beauty",
    "quantity": 2,
    "amount": "19.90",
    "currency": "SGD" if "SGD" in DEFAULT_PARAMS.fx_usd_per_unit else "USD",
    "status": "placed",
    "ordered_at": NOW_MS - 3_600_000,
}


def test_decode_valid_post_normalises_through_validate() -> None:
    event = decode("post", orjson.dumps(POST), now_ms=NOW_MS, params=DEFAULT_PARAMS)
    assert isinstance(event, PostEvent)
    assert (event.creator_id, event.region, event.content_type) == ("c1", "SG", "video")
    assert event.posted_at_ms == NOW_MS - 22 * 3_600_000  # 02:00Z the day before


def test_decode_valid_order_from_memoryview() -> None:
    framed = b"xx" + orjson.dumps(ORDER)
    event = decode("order", memoryview(framed)[2:], now_ms=NOW_MS, params=DEFAULT_PARAMS)
    assert isinstance(event, OrderEvent)
    assert event.quantity == 2


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b'{"a": 1} trailing', b"NaN"])
def test_decode_broken_json_is_bad_json(raw: bytes) -> None:
    error = decode("post", raw, now_ms=NOW_MS, params=DEFAULT_PARAMS)
    assert isinstance(error, ValidationError)
    assert error.problem == BAD_JSON
    assert error.kind == "post"
    assert "not valid JSON" in error.message


def test_decode_passes_model_problems_through() -> None:
    missing = decode(
        "post", orjson.dumps({**POST, "creator_id": None}), now_ms=NOW_MS, params=DEFAULT_PARAMS
    )
    assert isinstance(missing, ValidationError)
    assert missing.field == "creator_id"
    not_object = decode("tag", b"[1, 2]", now_ms=NOW_MS, params=DEFAULT_PARAMS)
    assert isinstance(not_object, ValidationError)
    assert not_object.problem == "not_an_object"


def _unmapped(kind: str) -> float:
    value = REGISTRY.get_sample_value("creator_scores_labels_unmapped_total", {"kind": kind})
    return value or 0.0


def test_labels_outside_the_taxonomy_become_other_and_are_counted() -> None:
    themes, types = _unmapped("theme"), _unmapped("content_type")
    post = {**POST, "content_type": "Vlog", "themes": ["beauty", "Crypto", "ct:video"]}
    event = decode("post", orjson.dumps(post), now_ms=NOW_MS, params=DEFAULT_PARAMS)
    assert isinstance(event, PostEvent)
    assert (event.content_type, event.themes) == ("other", ("beauty", "other"))
    order = decode(
        "order", orjson.dumps({**ORDER, "theme": "garden"}), now_ms=NOW_MS, params=DEFAULT_PARAMS
    )
    assert isinstance(order, OrderEvent) and order.theme == "other"
    listed = decode("post", orjson.dumps(POST), now_ms=NOW_MS, params=DEFAULT_PARAMS)
    assert isinstance(listed, PostEvent)
    assert (_unmapped("theme"), _unmapped("content_type")) == (themes, types)  # not yet
    count_unmapped([event, order, listed])
    assert (_unmapped("theme"), _unmapped("content_type")) == (themes + 3, types + 1)


@pytest.mark.parametrize("kind", ["post", "tag", "order"])
def test_rekey_frame_round_trips(kind: str) -> None:
    original = b'{"x": "\n"}'
    framed = frame_rekeyed(kind, original)  # type: ignore[arg-type]
    result = unframe_rekeyed(framed)
    assert not isinstance(result, ValidationError)
    assert result[0] == kind
    assert bytes(result[1]) == original


@pytest.mark.parametrize("value", [b"", b"posts\n{}", b"{}", b"postX{}", b"\npost{}"])
def test_rekey_frame_rejects_unknown_heads(value: bytes) -> None:
    result = unframe_rekeyed(value)
    assert isinstance(result, ValidationError)
    assert result.problem == BAD_FRAME


def test_topic_kinds_needs_distinct_names() -> None:
    assert topic_kinds("a", "b", "c") == {"a": "post", "b": "tag", "c": "order"}
    with pytest.raises(ValueError, match="distinct"):
        topic_kinds("a", "a", "c")


def _record(key: bytes | None, value: bytes) -> RawRecord:
    return RawRecord("posts", 3, 42, key, value, 1_700_000_000_123)


def test_dead_letter_envelope_keeps_everything() -> None:
    record = _record(b"c1", b'{"post_id": 1}')
    error = ValidationError("post", "post_id", "wrong_type", "post.post_id must be a string")
    env = orjson.loads(dead_letter_value(record, error, now_ms=NOW_MS))
    assert env["topic"] == "posts"
    assert (env["partition"], env["offset"], env["timestamp_ms"]) == (3, 42, 1_700_000_000_123)
    assert env["key"] == "c1"
    assert base64.b64decode(env["key_b64"]) == b"c1"
    assert env["reason"] == "wrong_type"
    assert env["error"] == {
        "kind": "post",
        "field": "post_id",
        "problem": "wrong_type",
        "message": "post.post_id must be a string",
    }
    assert env["value"] == '{"post_id": 1}'
    assert base64.b64decode(env["value_b64"]) == record.value
    assert env["value_truncated"] is False
    assert env["dead_lettered_at_ms"] == NOW_MS


def test_dead_letter_envelope_survives_binary_and_missing_key() -> None:
    record = _record(None, b"\x00\xff\xfebinary")
    error = ValidationError("post", "", BAD_JSON, "value is not valid JSON")
    env = orjson.loads(dead_letter_value(record, error, now_ms=NOW_MS))
    assert env["key"] is None and env["key_b64"] is None
    assert env["value"] is None
    assert base64.b64decode(env["value_b64"]) == record.value


def test_dead_letter_envelope_cuts_huge_values() -> None:
    record = _record(b"k", b"x" * (MAX_DEAD_VALUE_BYTES + 10))
    error = ValidationError("post", "", BAD_JSON, "value is not valid JSON")
    raw = dead_letter_value(record, error, now_ms=NOW_MS)
    env = orjson.loads(raw)
    assert env["value_truncated"] is True
    assert env["value_bytes"] == MAX_DEAD_VALUE_BYTES + 10
    assert len(base64.b64decode(env["value_b64"])) == MAX_DEAD_VALUE_BYTES
    assert len(raw) < 1_000_000  # still fits a default Kafka request


def test_dead_letter_envelope_fits_whatever_the_key_value_and_message() -> None:
    # The worst a source record can be: a 1 MB value, a 100 KB key, a long error message.
    record = _record(b"K" * 100_000, b"\xff" * 1_048_576)
    error = ValidationError("post", "f" * 50_000, BAD_JSON, "m" * 50_000)
    raw = dead_letter_value(record, error, now_ms=NOW_MS)
    assert len(raw) < 400_000
    env = orjson.loads(raw)
    assert env["key"] is None and env["key_truncated"] is True and env["key_bytes"] == 100_000
    assert base64.b64decode(env["key_b64"]) == b"K" * MAX_DEAD_KEY_BYTES
    assert len(env["error"]["message"]) == MAX_DEAD_MESSAGE_CHARS
    assert dead_letter_key(record.key) == b"K" * MAX_DEAD_KEY_BYTES
    assert dead_letter_key(None) is None
    small = orjson.loads(dead_letter_value(_record(b"cr-1", b"{"), error, now_ms=NOW_MS))
    assert small["key"] == "cr-1" and small["key_bytes"] == 4 and small["key_truncated"] is False


def test_a_refused_output_record_is_described_with_its_destination() -> None:
    exc = RuntimeError("MESSAGE_TOO_LARGE")
    env = orjson.loads(refused_value("changes", b"cr-1", b"v" * 10, exc, now_ms=NOW_MS))
    assert env["topic"] == "changes" and env["offset"] is None and env["partition"] is None
    assert env["reason"] == "unwritable" and env["error"]["kind"] == "output"
    assert env["error"]["message"].endswith("RuntimeError: MESSAGE_TOO_LARGE")
    assert env["value"] == "v" * 10 and env["value_bytes"] == 10


def test_the_simulators_labels_are_all_in_the_default_taxonomy() -> None:
    # The demo and the benchmarks then count no unmapped label and keep their boards.
    from streams.devtools.simulate import CONTENT_TYPES, THEMES

    assert set(THEMES) <= set(DEFAULT_PARAMS.themes)
    assert set(CONTENT_TYPES) <= set(DEFAULT_PARAMS.content_types)
