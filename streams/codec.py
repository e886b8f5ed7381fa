"""Turns raw Kafka records into validated events, and bad ones into dead letters.

One record is decoded exactly once (orjson straight from the bytes) and handed to
`scoring.validate`, which never raises (and files themes and content types outside
the taxonomy under `other`: `decode` counts them); anything that is not a valid event comes
back as a `scoring.validate.ValidationError` whose `problem` is the stable reason
label used for metrics and in the dead-letter envelope. The envelope keeps
everything needed to find, understand and replay a rejected record: source topic,
partition, offset, key, error and the original bytes (base64, so any bytes survive
the JSON).

The repartition topic carries records whose Kafka key was not their creator id; as
its records come from three source topics, each value is framed with the event
kind (`b"post\\n" + original bytes`) so it can be validated again on arrival.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import orjson

from scoring.events import LABEL_KINDS, Event, EventKind
from scoring.params import Params
from scoring.validate import ValidationError, validate
from streams.metrics import LABELS_UNMAPPED

#: Reason labels the streams layer adds to the model's own `ValidationError.problem` codes.
BAD_JSON: Final = "bad_json"
BAD_FRAME: Final = "bad_frame"
UNKNOWN_TOPIC: Final = "unknown_topic"
MODEL_ERROR: Final = "model_error"
TOO_LARGE: Final = "too_large"
UNWRITABLE: Final = "unwritable"

_KINDS: Final[tuple[EventKind, ...]] = ("post", "tag", "order")
_UNMAPPED: Final = {kind: LABELS_UNMAPPED.labels(kind) for kind in LABEL_KINDS}
_FRAME_SEP: Final = b"\n"

#: Dead letters must stay producible whatever arrived: the original value is kept whole up
#: to this size (base64 grows it by a third) and cut beyond it, with its full length
#: recorded; the key (copied into the envelope and used as the dead letter's own key) and
#: the error message are cut likewise. A whole envelope stays under 400 KB, well within
#: the 1 MB default request and message sizes. The text copy is only for small values.
MAX_DEAD_VALUE_BYTES: Final = 256 * 1024
MAX_DEAD_TEXT_BYTES: Final = 16 * 1024
MAX_DEAD_KEY_BYTES: Final = 1024
MAX_DEAD_MESSAGE_CHARS: Final = 2000


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One Kafka record as the pipeline sees it: no Faust types, just what was on the wire."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


def decode(
    kind: EventKind, value: bytes | memoryview, *, now_ms: int, params: Params
) -> Event | ValidationError:
    """Parse JSON bytes and validate them as an event of `kind`; never raises.

    Labels outside the taxonomy come back as `other`, listed in the event's `unmapped`
    (`count_unmapped` counts them, once the event is known to be this worker's).
    """
    try:
        payload = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return ValidationError(
            kind=kind, field="", problem=BAD_JSON, message=f"value is not valid JSON: {exc}"
        )
    return validate(kind, payload, now_ms=now_ms, params=params)


def count_unmapped(events: Iterable[Event]) -> None:
    """Count the labels outside the taxonomy that `events` carried, in
    `creator_scores_labels_unmapped_total{kind}`."""
    for event in events:
        if event.unmapped:
            for label in event.unmapped:
                _UNMAPPED[label.kind].inc()


def frame_rekeyed(kind: EventKind, value: bytes) -> bytes:
    """Value for the repartition topic: the original bytes, prefixed with their kind."""
    return kind.encode() + _FRAME_SEP + value


def unframe_rekeyed(value: bytes) -> tuple[EventKind, memoryview] | ValidationError:
    """Split a repartition-topic value into (kind, original bytes) without copying them."""
    cut = value.find(_FRAME_SEP, 0, 8)
    head = value[:cut] if cut > 0 else b""
    for kind in _KINDS:
        if head == kind.encode():
            return kind, memoryview(value)[cut + 1 :]
    return ValidationError(
        kind="unknown",
        field="",
        problem=BAD_FRAME,
        message="repartition record does not start with 'post', 'tag' or 'order' and a newline",
    )


def topic_kinds(posts_topic: str, tags_topic: str, orders_topic: str) -> dict[str, EventKind]:
    """Which event kind each source topic carries."""
    kinds: dict[str, EventKind] = {posts_topic: "post", tags_topic: "tag", orders_topic: "order"}
    if len(kinds) != 3:
        raise ValueError("the posts, tags and orders topics must have three distinct names")
    return kinds


def unknown_topic_error(topic: str) -> ValidationError:
    return ValidationError(
        kind="unknown",
        field="",
        problem=UNKNOWN_TOPIC,
        message=f"records from topic {topic!r} are not events this worker knows how to read",
    )


def model_error(kind: str, exc: BaseException) -> ValidationError:
    """A valid-looking event the model could not apply or score: dead-lettered, not fatal."""
    return ValidationError(
        kind=kind, field="", problem=MODEL_ERROR, message=f"{type(exc).__name__}: {exc}"
    )


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def too_large_error(kind: str, size: int, limit: int) -> ValidationError:
    """A record over the size limit: dead-lettered without being parsed."""
    return ValidationError(
        kind=kind,
        field="",
        problem=TOO_LARGE,
        message=f"record value is {size:,} bytes, over the limit of {limit:,} "
        "(CREATOR_SCORES_MAX_RECORD_BYTES); not parsed",
    )


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The dead letter's own Kafka key: the original key, cut to MAX_DEAD_KEY_BYTES."""
    return None if key is None else key[:MAX_DEAD_KEY_BYTES]


def dead_letter_value(record: RawRecord, error: ValidationError, *, now_ms: int) -> bytes:
    """The JSON dead-letter envelope for `record` rejected with `error`.

    `key`/`value` hold the text when the bytes are UTF-8 (handy when reading the topic by
    eye); `key_b64`/`value_b64` hold the exact bytes (cut at MAX_DEAD_KEY_BYTES and
    MAX_DEAD_VALUE_BYTES, flagged by `key_truncated`/`value_truncated`, with the full sizes
    in `key_bytes`/`value_bytes`).
    """
    return _envelope(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp_ms,
        key=record.key,
        value=record.value,
        error=error,
        now_ms=now_ms,
    )


def refused_value(
    topic: str, key: bytes | None, value: bytes, exc: BaseException, *, now_ms: int
) -> bytes:
    """The dead-letter envelope for a record the worker made and the broker refused for good
    (too large, invalid, not authorised): `topic` is where it was going; no offset."""
    message = f"the broker refused the record for good: {type(exc).__name__}: {exc}"
    error = ValidationError(kind="output", field="", problem=UNWRITABLE, message=message)
    return _envelope(
        topic=topic,
        partition=None,
        offset=None,
        timestamp_ms=None,
        key=key,
        value=value,
        error=error,
        now_ms=now_ms,
    )


def _envelope(
    *,
    topic: str,
    partition: int | None,
    offset: int | None,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes,
    error: ValidationError,
    now_ms: int,
) -> bytes:
    size = len(value)
    key_size = 0 if key is None else len(key)
    kept_key = dead_letter_key(key)
    envelope: Mapping[str, object] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp_ms": timestamp_ms,
        "key": _text(kept_key) if key_size <= MAX_DEAD_KEY_BYTES else None,
        "key_b64": _b64(kept_key),
        "key_bytes": None if key is None else key_size,
        "key_truncated": key_size > MAX_DEAD_KEY_BYTES,
        "reason": error.problem,
        "error": {
            "kind": error.kind,
            "field": error.field[:MAX_DEAD_MESSAGE_CHARS],
            "problem": error.problem,
            "message": error.message[:MAX_DEAD_MESSAGE_CHARS],
        },
        "value": _text(value) if size <= MAX_DEAD_TEXT_BYTES else None,
        "value_b64": _b64(value[:MAX_DEAD_VALUE_BYTES]),
        "value_bytes": size,
        "value_truncated": size > MAX_DEAD_VALUE_BYTES,
        "dead_lettered_at_ms": now_ms,
    }
    return orjson.dumps(envelope)
