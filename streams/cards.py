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

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import orjson

from scoring.changes import Published
from scoring.model import Scores
from scoring.names import SCORE_NAMES
from scoring.vocab import Vocabulary
from scoring.window import Slices
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
    basis_json: Mapping[str, str] | None = None,
) -> list[OutboundRecord]:
    """The record of every creator of `published` whose Redis card is written (`unchanged`
    false, as `streams.publish.plan` says), and of every one re-scored on request: its card,
    or a tombstone when it is inactive. Timestamped `written_at_ms` (the `updated_at` the
    flush gives the Redis hashes).

    The figures are turned into Python values for all the cards at once (a sweep writes the
    card of nearly every creator it re-scores, so this is its share of the sweep's time).
    `basis_json`: creators' `basis` already serialised for Redis (`streams.publish.plan`),
    embedded as it is rather than built again.
    """
    made = basis_json or {}
    writing = [p for p, same in zip(published, unchanged, strict=True)
               if not same or p.cause == REWRITE_CAUSE]  # fmt: skip
    if not writing:
        return []
    rows = np.array([p.new for p in writing], dtype=np.int64)
    headline = np.column_stack((scores.overall[rows], scores.values[rows])).tolist()
    active = scores.active[rows].tolist()
    provisional = scores.provisional[rows].tolist()
    confidence = scores.confidence[rows].tolist()
    themes = _Slices(scores.totals.by_theme, scores.overall_by_theme, scores.influence_by_theme,
                     vocab)  # fmt: skip
    types = _Slices(scores.totals.by_content_type, scores.overall_by_content_type,
                    scores.influence_by_content_type, vocab)  # fmt: skip
    model_version = scores.model.params.model_version
    out: list[OutboundRecord] = []
    for j, p in enumerate(writing):
        key = p.creator_id.encode()
        if not active[j]:
            out.append(OutboundRecord(topic, key, None, written_at_ms))
            continue
        card = {
            "creator_id": p.creator_id,
            "region": p.region,
            "model_version": model_version,
            "event_time_ms": p.as_of_ms,
            "active": True,
            "provisional": provisional[j],
            "confidence": confidence[j],
            "scores": dict(zip(SCORE_NAMES, headline[j], strict=True)),
            "themes": themes.of(p.new),
            "content_types": types.of(p.new),
            "basis": orjson.Fragment(basis)
            if (basis := made.get(p.creator_id)) is not None
            else scores.basis(p.new),
        }
        out.append(OutboundRecord(topic, key, orjson.dumps(card), written_at_ms))
    return out


class _Slices:
    """One breakdown (themes or content types) of a flush's cards as Python values, made
    once: each card then reads its own entries without a call into numpy."""

    __slots__ = ("_influence", "_keys", "_names", "_overall", "_slices")

    def __init__(
        self,
        slices: Slices,
        overall: npt.NDArray[np.float64],
        influence: npt.NDArray[np.float64],
        vocab: Vocabulary,
    ) -> None:
        self._slices = slices
        self._keys: list[int] = slices.key.tolist()
        self._overall: list[float] = overall.tolist()
        self._influence: list[float] = influence.tolist()
        self._names = vocab.names

    def of(self, row: int) -> dict[str, dict[str, float]]:
        """The creator at `row`: its overall and influence per theme (or content type)."""
        lo, hi = self._slices.range(row)
        names, keys, overall, influence = self._names, self._keys, self._overall, self._influence
        return {
            names[keys[k]]: {"overall": overall[k], "influence": influence[k]}
            for k in range(lo, hi)
        }
