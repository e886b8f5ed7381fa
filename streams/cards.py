"""The compacted `creator-scores` topic: every creator's current card, readable from Kafka alone.

Redis holds the cards for readers that query them; a downstream service that keeps its
own copy (a search index, a CRM) needs every creator's current card without reading
Redis. So whenever a flush or a sweep writes a creator's card to Redis, the same card
goes to this topic as JSON, keyed by creator id; a creator that leaves (nothing left in
its window: on no leaderboard, its state soon dropped) gets a tombstone instead. Reading
the topic from the beginning and keeping the last value per key gives the current card
of every creator (`scoring/schemas/creator-scores.schema.json`). The records go out with
the flush's other records (`streams.sinks.kafka.KafkaSink`), so they are acknowledged
before the flush's offsets are, and a flush done twice writes the same cards again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from scoring.changes import Published
from scoring.model import Scores
from scoring.names import SCORE_NAMES
from scoring.vocab import Vocabulary
from streams.sinks.base import OutboundRecord

#: Why a card is written although Redis did not change: an operator asked for every
#: creator again (`creator-scores rescore`), which also fills a new or emptied topic.
REWRITE_CAUSE = "rescore"


def card_records(
    topic: str,
    scores: Scores,
    published: Sequence[Published],
    unchanged: Sequence[bool],
    vocab: Vocabulary,
    written_at_ms: int,
) -> list[OutboundRecord]:
    """The record of every creator of `published` whose Redis card is written (`unchanged`
    false, as `streams.publish.plan` says), and of every one re-scored on request: its card,
    or a tombstone when it is inactive. Timestamped `written_at_ms` (the
    `updated_at` the flush gives the Redis hashes)."""
    out: list[OutboundRecord] = []
    active = scores.active
    for p, same in zip(published, unchanged, strict=True):
        if same and p.cause != REWRITE_CAUSE:
            continue
        key = p.creator_id.encode()
        value = orjson.dumps(card_value(scores, p, vocab)) if active[p.new] else None
        out.append(OutboundRecord(topic, key, value, written_at_ms))
    return out


def card_value(scores: Scores, p: Published, vocab: Vocabulary) -> dict[str, Any]:
    """The card of creator `p` (row `p.new` of `scores`) as the topic carries it: what its
    Redis hash and boards hold, but `updated_at` (the record's timestamp says when)."""
    i = p.new
    headline = [float(scores.overall[i]), *scores.values[i].tolist()]
    influence_by_theme, overall_by_theme = scores.by_theme(i, vocab)
    influence_by_type, overall_by_type = scores.by_content_type(i, vocab)
    return {
        "creator_id": p.creator_id,
        "region": p.region,
        "model_version": scores.model.params.model_version,
        "event_time_ms": p.as_of_ms,
        "active": bool(scores.active[i]),
        "provisional": bool(scores.provisional[i]),
        "confidence": float(scores.confidence[i]),
        "scores": dict(zip(SCORE_NAMES, headline, strict=True)),
        "themes": {
            name: {"overall": overall, "influence": influence_by_theme[name]}
            for name, overall in overall_by_theme.items()
        },
        "content_types": {
            name: {"overall": overall, "influence": influence_by_type[name]}
            for name, overall in overall_by_type.items()
        },
        "basis": scores.basis(i),
    }
