"""Event payloads and a pipeline configuration for tests that run `Pipeline.process` in-process.

The unit tests of the pipeline and of the Redis repair, and the repair's integration
test, all feed the real pipeline hand-made events: the same shapes, one definition.
"""

from __future__ import annotations

from streams.pipeline import PipelineConfig

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000

#: Topics named as the payload kinds; thresholds as the worker's defaults.
CONFIG = PipelineConfig(
    kinds={"posts": "post", "tags": "tag", "orders": "order"},
    rekeyed_topic="app-rekeyed",
    changes_topic="changes",
    dead_letter_topic="dead",
    change_threshold=1.0,
    cards_topic="cards",
)


def post(creator: str, n: int, **over: object) -> dict[str, object]:
    """Post `n` of `creator`, five hours apart going back from NOW_MS."""
    base: dict[str, object] = {
        "post_id": f"{creator}-p{n}",
        "creator_id": creator,
        "region": "SG",
        "content_type": "video",
        "themes": ["beauty"],
        "posted_at": NOW_MS - (n + 1) * 5 * HOUR,
        "views": 1000 + 100 * n,
        "likes": 40 + n,
        "comments": 4,
        "shares": 1,
    }
    base.update(over)
    return base


def tag(creator: str, n: int, **over: object) -> dict[str, object]:
    """A product tag on post `n`, a second after it."""
    base: dict[str, object] = {
        "tag_id": f"{creator}-t{n}",
        "post_id": f"{creator}-p{n}",
        "creator_id": creator,
        "product_id": "sku",
        "brand_id": f"brand-{n % 3}",
        "theme": "beauty",
        "tagged_at": NOW_MS - (n + 1) * 5 * HOUR + 1000,
    }
    base.update(over)
    return base


def order(creator: str, n: int, **over: object) -> dict[str, object]:
    """Order `n` of `creator`, on post `n`, four hours apart going back from NOW_MS."""
    base: dict[str, object] = {
        "order_id": f"{creator}-o{n}",
        "creator_id": creator,
        "post_id": f"{creator}-p{n}",
        "product_id": "sku",
        "brand_id": "brand",
        "theme": "beauty",
        "quantity": 1,
        "amount": "25.00",
        "currency": "USD",
        "status": "placed",
        "ordered_at": NOW_MS - (n + 1) * 4 * HOUR,
    }
    base.update(over)
    return base
