"""Typed, immutable events: what `validate` produces and `CreatorState.apply` consumes.

Raw JSON never reaches the state: it is turned into one of these first, so the
model code can rely on types, normalised names (themes and content types of the
taxonomy or `other`, upper-case region and currency) and integer epoch-millisecond
times.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

EventKind = Literal["post", "tag", "order"]
OrderStatus = Literal["placed", "cancelled", "refunded"]
LabelKind = Literal["theme", "content_type"]
EVENT_KINDS: tuple[EventKind, ...] = ("post", "tag", "order")
ORDER_STATUSES: tuple[OrderStatus, ...] = ("placed", "cancelled", "refunded")
LABEL_KINDS: tuple[LabelKind, ...] = ("theme", "content_type")


@dataclass(frozen=True, slots=True)
class UnmappedLabel:
    """A theme or content type outside the taxonomy, recorded as `other` (scoring.labels)."""

    kind: LabelKind
    label: str  # normalised


#: No label mapped away: the usual case, shared.
NO_UNMAPPED: tuple[UnmappedLabel, ...] = ()


@dataclass(frozen=True, slots=True)
class PostEvent:
    """A snapshot of one post; later snapshots of the same post replace earlier ones."""

    post_id: str
    creator_id: str
    region: str
    content_type: str
    themes: tuple[str, ...]
    posted_at_ms: int
    views: int
    likes: int
    comments: int
    shares: int
    brand_id: str | None = None
    observed_at_ms: int | None = None
    #: Labels outside the taxonomy, recorded as `other` in the fields above.
    unmapped: tuple[UnmappedLabel, ...] = NO_UNMAPPED

    @property
    def kind(self) -> EventKind:
        return "post"

    @property
    def event_id(self) -> str:
        return self.post_id

    @property
    def event_time_ms(self) -> int:
        return self.posted_at_ms


@dataclass(frozen=True, slots=True)
class TagEvent:
    """A shoppable product tag placed on a post (optionally answering a campaign)."""

    tag_id: str
    post_id: str
    creator_id: str
    product_id: str
    brand_id: str
    theme: str
    tagged_at_ms: int
    campaign_id: str | None = None
    unmapped: tuple[UnmappedLabel, ...] = NO_UNMAPPED

    @property
    def kind(self) -> EventKind:
        return "tag"

    @property
    def event_id(self) -> str:
        return self.tag_id

    @property
    def event_time_ms(self) -> int:
        return self.tagged_at_ms


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An order attributed to a creator; the same order may return with a new status."""

    order_id: str
    creator_id: str
    post_id: str | None
    product_id: str
    brand_id: str
    theme: str
    quantity: int
    amount: Decimal
    currency: str
    status: OrderStatus
    ordered_at_ms: int
    unmapped: tuple[UnmappedLabel, ...] = NO_UNMAPPED

    @property
    def kind(self) -> EventKind:
        return "order"

    @property
    def event_id(self) -> str:
        return self.order_id

    @property
    def event_time_ms(self) -> int:
        return self.ordered_at_ms


Event = PostEvent | TagEvent | OrderEvent
