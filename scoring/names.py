"""The names of the scores and of their inputs, defined once for the model, the sinks and readers.

Every list of score names (card fields, Redis hash fields, leaderboards, explanation
labels) is derived from these tuples, so adding or renaming a score is one edit.
"""

from __future__ import annotations

from typing import Final

#: The seven scores that blend into `overall`, in display order.
COMPONENT_SCORES: Final = (
    "cooperation",
    "diligence",
    "influence",
    "reception",
    "sales",
    "consistency",
    "collaboration",
)

#: Every headline score of a card: `overall` first, then the components.
SCORE_NAMES: Final = ("overall", *COMPONENT_SCORES)

#: The scores also computed per product theme and per content type.
SLICED_SCORES: Final = ("influence", "reception", "sales")

#: Region of a creator none of whose posts has been seen (CLDR's "unknown region").
UNKNOWN_REGION: Final = "ZZ"
#: Region codes people and producers write for another ISO 3166-1 code: the United
#: Kingdom's is GB, but UK is what most people say (and reserved by ISO for it).
REGION_ALIASES: Final = {"UK": "GB"}

#: The pseudo-input that holds the points a thin-data score takes from the neutral 50.
PRIOR: Final = "neutral_prior"

SCORE_LABELS: Final = {
    "overall": "Overall",
    "cooperation": "Cooperation",
    "diligence": "Diligence",
    "influence": "Influence",
    "reception": "Reception",
    "sales": "Sales",
    "consistency": "Consistency",
    "collaboration": "Collaboration",
}

COMPONENT_LABELS: Final = {
    "collab_posts_per_week": "brand collaboration posts",
    "campaigns_answered": "campaigns answered",
    "distinct_brands": "brands worked with",
    "repeat_brands": "returning brands",
    "tagged_share": "share of posts with product tags",
    "shoppable_posts_per_week": "shoppable posts per week",
    "shoppable_posts_recent": "recent shoppable posts",
    "reach": "views per post",
    "engagement": "engagement per post",
    "weekly_views": "views per week",
    "engagement_rate": "engagement per view",
    "conversation_rate": "comments and shares per view",
    "net_sales_per_post": "net sales per post",
    "orders_per_post": "orders per post",
    "sales_per_1k_views": "sales per 1,000 views",
    "refund_rate": "refund rate",
    "active_days": "days with a post",
    "recent_active_days": "recent days with a post",
    "weekly_coverage": "weeks with a post",
    "evenness": "steadiness of daily posting",
    "brands": "partner brands",
    "brand_depth": "days per partner brand",
    "sustained_share": "lasting partnerships",
    "selling_share": "partnerships that sell",
    PRIOR: "neutral starting value",
}
