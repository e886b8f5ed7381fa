"""The read API's response shapes, for its OpenAPI document (docs/openapi.json).

Routes build their JSON with orjson and return it as it is (validating every response
through these models cost more than reading Redis); the tests check each route's real
answers against these models, which forbid unknown fields, so the document cannot drift
from what is served.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Model):
    status: int = Field(description="The HTTP status, again.")
    code: str = Field(
        description="Stable: bad_parameter, unauthorized, forbidden_region, rate_limited, "
        "unknown_creator, not_found, method_not_allowed, redis_unavailable."
    )
    message: str = Field(description="What was wrong, and what to do instead.")
    param: str | None = Field(None, description="The parameter at fault.")
    valid: list[str] | None = Field(None, description="The values that parameter may take.")


class Error(_Model):
    error: ErrorBody


class Board(_Model):
    score: str
    region: str = Field(description="A region code, or ALL for the global board.")
    theme: str | None
    content_type: str | None
    size: int = Field(description="Creators on the board.")


class BoardEntry(_Model):
    rank: int = Field(description="1 is the best.")
    creator_id: str
    score: float = Field(description="The creator's score on this board, 0-100.")
    provisional: bool | None = Field(description="Little data: pulled toward 50.")
    confidence: float | None = Field(description="0-1: how much data the scores rest on.")
    region: str | None


class Leaderboard(_Model):
    board: Board
    offset: int
    entries: list[BoardEntry]
    next_offset: int | None = Field(description="The offset of the next page; null: last.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the entries after this page, even if ranks above "
        "moved meanwhile; null: last page."
    )


class Percentile(_Model):
    region: str
    theme: str | None
    content_type: str | None
    rank: int = Field(description="The creator's rank on that board, 1 the best.")
    of: int = Field(description="Creators on that board.")
    top_percent: float = Field(description="Share of the board at or above the creator, %.")
    percentile: float = Field(description="Share of the board below the creator, %.")
    text: str = Field(examples=["top 4 % of beauty creators in ID by influence"])


class Contribution(_Model):
    name: str
    value: float | None
    points: float | None
    text: str


class ScoreDetail(_Model):
    value: float | None
    summary: str | None = Field(description="Why, in one sentence.")
    contributions: list[Contribution] = Field(description="Each input and its points.")
    percentiles: list[Percentile] = Field(
        description="Rank on every board of this score the creator is on: its region, the "
        "world (keys for every region only), each theme and content type."
    )


class Freshness(_Model):
    event_time_ms: int | None = Field(description="Where the creator's window ends.")
    updated_at_ms: int | None = Field(description="When the worker wrote the card.")
    stream_time_ms: int | None = Field(description="The newest event time of the stream.")
    lag_ms: int | None = Field(description="How far the card's window end is behind it.")
    age_ms: int | None = Field(description="How long ago the card was written.")


class Creator(_Model):
    creator_id: str
    region: str | None
    active: bool = Field(description="False: nothing in its window, on no leaderboard.")
    provisional: bool | None
    confidence: float | None
    model_version: str | None
    freshness: Freshness
    scores: dict[str, ScoreDetail]
    problems: list[str] = Field(description="Fields the worker wrote that could not be read.")


class ChangeEntry(_Model):
    id: str = Field(description="The stream id (also the live feed's event id).")
    at_ms: int = Field(description="When Redis took the record.")
    change: dict[str, object] = Field(
        description="The score-change record, as on the creator-score-changes topic: "
        "creator_id, region, model_version, event_time_ms, changed, old, new, reasons, "
        "provisional, active, cause."
    )


class Changes(_Model):
    creator_id: str
    changes: list[ChangeEntry] = Field(description="Newest first.")


class SearchQuery(_Model):
    region: str
    theme: str | None
    content_type: str | None
    minimums: dict[str, float]
    exclude_provisional: bool
    sort: str


class SearchResult(_Model):
    position: int = Field(description="1-based place in the search's order.")
    creator_id: str
    sort_value: float = Field(description="The score the search sorts by.")
    region: str | None
    provisional: bool | None
    confidence: float | None
    scores: dict[str, float | None]
    percentiles: dict[str, list[Percentile]] = Field(
        description="Per score: rank in the region, and in the theme and content type asked."
    )


class Search(_Model):
    query: SearchQuery
    matches: int = Field(description="Creators that pass every filter.")
    offset: int
    results: list[SearchResult]
    next_offset: int | None
    fresh: bool = Field(description="False: read from the result of the same search just made.")


class Live(_Model):
    live: bool


class Ready(_Model):
    ready: bool
    redis: str
