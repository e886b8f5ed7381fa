"""One creator's rolling state, for tests, tools and readers that handle creators one by one.

The worker keeps many creators in columns and merges and scores them in bulk
(`scoring.columns`, `scoring.merge`, `scoring.window`, `scoring.model`); this wraps
the same code for a single creator: apply events, score, write and read the bytes.
Nothing here is a second implementation: a card from `score` is the one the worker
publishes for the same events.
"""

from __future__ import annotations

from collections.abc import Sequence

from scoring.columns import DAY_MS, Columns, Heads, arrivals
from scoring.events import Event
from scoring.explain import ScoreCard, card_of
from scoring.merge import Outcome
from scoring.merge import merge as merge_columns
from scoring.model import Scores, score_totals
from scoring.packed import decode, encode
from scoring.params import Params
from scoring.vocab import NONE, Vocabulary
from scoring.window import window_totals

__all__ = ["DAY_MS", "CreatorState", "Outcome", "score"]

_SHARED = Vocabulary()


class CreatorState:
    """The records of one creator and the heads that go with them (see `scoring.merge`)."""

    __slots__ = ("columns", "creator_id", "heads", "vocab")

    def __init__(self, creator_id: str, vocab: Vocabulary | None = None) -> None:
        self.creator_id = creator_id
        self.vocab = _SHARED if vocab is None else vocab
        self.heads = Heads.empty(1)
        self.columns = Columns.empty()

    @classmethod
    def new(cls, creator_id: str, vocab: Vocabulary | None = None) -> CreatorState:
        return cls(creator_id, vocab)

    def __repr__(self) -> str:
        posts, tags, orders = self.counts()
        return (
            f"CreatorState({self.creator_id!r}, region={self.region!r}, "
            f"watermark_ms={self.watermark_ms}, posts={posts}, tags={tags}, orders={orders})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CreatorState):
            return NotImplemented
        return self.creator_id == other.creator_id and self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    @property
    def watermark_ms(self) -> int:
        return int(self.heads.watermark[0])

    @property
    def region(self) -> str | None:
        code = int(self.heads.region[0])
        return None if code == NONE else self.vocab.name(code)

    def counts(self) -> tuple[int, int, int]:
        """Posts, tags and orders held."""
        c = self.columns
        return len(c.posts), len(c.tags), len(c.orders)

    def apply(self, event: Event, params: Params) -> Outcome:
        """Fold one validated event in; ValueError for another creator's event or values no
        validated event has."""
        return self.apply_all([event], params)[0]

    def apply_all(
        self, events: Sequence[Event], params: Params, stream_ms: int | None = None
    ) -> list[Outcome]:
        """Fold events in as one flush (the outcome of each, in order), the stream being at
        `stream_ms` (None: the creator's own newest event; see `scoring.merge`)."""
        for e in events:
            if e.creator_id != self.creator_id:
                raise ValueError(
                    f"event for creator {e.creator_id!r} applied to state of {self.creator_id!r}"
                )
        if not events:
            return []
        new = arrivals([(0, e) for e in events], self.vocab)
        merged = merge_columns(self.heads, self.columns, new, self.vocab, params.window_days,
                               stream_ms=stream_ms)  # fmt: skip
        self.heads, self.columns = merged.heads, merged.columns
        return [Outcome(o) for o in merged.outcomes.tolist()]

    def roll(self, stream_ms: int, params: Params) -> bool:
        """Move the window's end to the stream time `stream_ms`, with no event: the days
        before the new window fall out (what the day-boundary sweep does). Returns whether
        the state changed. A creator with no state yet has no window to move."""
        empty = arrivals([], self.vocab)
        merged = merge_columns(self.heads, self.columns, empty, self.vocab, params.window_days,
                               stream_ms=stream_ms)  # fmt: skip
        self.heads, self.columns = merged.heads, merged.columns
        return bool(merged.changed.any())

    def scores(self, params: Params) -> Scores:
        """Every figure and score, as of the watermark's day (creator 0 of the result)."""
        totals = window_totals(self.columns, self.heads.watermark // DAY_MS, self.vocab, params)
        return score_totals(totals, params)

    def to_bytes(self) -> bytes:
        return encode(self.heads, self.columns, self.vocab)[0]

    @classmethod
    def from_bytes(
        cls, creator_id: str, data: bytes, vocab: Vocabulary | None = None
    ) -> CreatorState:
        """A state written by `to_bytes`; ValueError on anything else."""
        state = cls(creator_id, vocab)
        try:
            state.heads, state.columns = decode([data], state.vocab)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("value 0: ")) from exc
        return state


def score(state: CreatorState, params: Params) -> ScoreCard:
    """The creator's card as of its watermark (roll it first to score it at a stream time)."""
    return card_of(
        state.scores(params), 0, state.creator_id, state.region, state.watermark_ms, state.vocab
    )
