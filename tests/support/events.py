"""Deterministic events as they go on the wire: valid posts, tags and orders."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from streams.settings import Settings
from tests.support.kafka import Produced

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class EventSet:
    """Deterministic events for a few creators, each as it goes on the wire."""

    records: list[Produced]
    payloads: list[tuple[str, Mapping[str, object]]]  # (kind, payload) of the valid events
    creators: list[str]


def make_events(
    settings: Settings, *, creators: int, posts_per_creator: int, seed: int, now_ms: int
) -> EventSet:
    """Posts, tags and orders over the last two weeks; keys mixed on purpose.

    Most records are keyed by creator id; some carry no key and some the post/order id,
    which the worker must re-key to reach the creator's partition.
    """
    rng = random.Random(seed)
    regions = ["SG", "MY", "ID", "VN", "PH"]
    themes = ["beauty", "fashion", "food", "tech", "home"]
    types = ["video", "photo", "live"]
    records: list[Produced] = []
    payloads: list[tuple[str, Mapping[str, object]]] = []
    ids = [f"cr-{seed}-{i:04d}" for i in range(creators)]

    def key_for(creator: str, other: str) -> bytes | None:
        roll = rng.random()
        if roll < 0.15:
            return None
        if roll < 0.3:
            return other.encode()
        return creator.encode()

    topics = {"post": settings.posts_topic, "tag": settings.tags_topic}
    topics["order"] = settings.orders_topic
    for creator in ids:
        region = rng.choice(regions)
        for j in range(posts_per_creator):
            post_id = f"{creator}-p{j}"
            posted = now_ms - rng.randint(1, 14 * 24) * HOUR_MS
            post: dict[str, object] = {
                "post_id": post_id,
                "creator_id": creator,
                "region": region,
                "content_type": rng.choice(types),
                "themes": rng.sample(themes, rng.randint(1, 2)),
                "posted_at": posted,
                "views": rng.randint(100, 50_000),
                "likes": rng.randint(0, 3_000),
                "comments": rng.randint(0, 300),
                "shares": rng.randint(0, 200),
                "brand_id": rng.choice([None, "brand-a", "brand-b"]),
            }
            payloads.append(("post", post))
            if rng.random() < 0.6:
                tag = {
                    "tag_id": f"{post_id}-t",
                    "post_id": post_id,
                    "creator_id": creator,
                    "product_id": f"sku-{rng.randint(1, 50)}",
                    "brand_id": rng.choice(["brand-a", "brand-b", "brand-c"]),
                    "theme": rng.choice(themes),
                    "tagged_at": posted + 60_000,
                }
                payloads.append(("tag", tag))
                for k in range(rng.randint(0, 3)):
                    order = {
                        "order_id": f"{post_id}-o{k}",
                        "creator_id": creator,
                        "post_id": post_id,
                        "product_id": tag["product_id"],
                        "brand_id": tag["brand_id"],
                        "theme": tag["theme"],
                        "quantity": rng.randint(1, 3),
                        "amount": f"{rng.randint(500, 20_000) / 100:.2f}",
                        "currency": "USD",
                        "status": rng.choice(["placed", "placed", "placed", "refunded"]),
                        "ordered_at": min(posted + rng.randint(1, 48) * HOUR_MS, now_ms - 60_000),
                    }
                    payloads.append(("order", order))
    for kind, payload in payloads:
        creator = str(payload["creator_id"])
        other = str(payload.get(f"{kind}_id") or payload["post_id"])
        records.append((topics[kind], key_for(creator, other), orjson.dumps(payload)))
    return EventSet(records=records, payloads=payloads, creators=ids)
