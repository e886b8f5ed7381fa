"""Baseline (a): the Faust app a newcomer writes from Faust's documentation.

One agent per source topic; for every event, one update of a per-creator table
(a changelog record each) and one awaited Redis write. Values are decoded with
orjson from raw bytes rather than through `faust.Record` models, which makes
this baseline faster and harder to beat than the docs' version would be, and
keeps it alive on the simulator's malformed records. It uses the worker's own
Faust settings (`streams.app.faust_config`), so the difference from the
pipeline is the processing design, not client tuning.

Run: `python -m bench.faust_naive` with the worker's environment variables.
"""

from __future__ import annotations

import faust
import orjson
from redis.asyncio import Redis

from bench.faust_baseline import plain_faust_app, run
from bench.marker import FirstRecord
from streams.keys import Keys
from streams.settings import load_settings

#: Where each kind's event time lives in its payload.
TIME_FIELD = {"post": "posted_at", "tag": "tagged_at", "order": "ordered_at"}


def build() -> faust.App:
    settings = load_settings()
    app = plain_faust_app(settings)
    keys = Keys(settings.redis_prefix)
    redis = Redis.from_url(settings.redis_url)
    counts = app.Table(
        "naive_counts", default=int, partitions=settings.topic_partitions, key_type=str
    )
    first = FirstRecord()

    def make_agent(kind: str, topic_name: str) -> None:
        topic = app.topic(
            topic_name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
        )
        time_field = TIME_FIELD[kind]

        async def agent(stream: faust.StreamT[bytes]) -> None:
            async for value in stream:
                first.seen()
                try:
                    event = orjson.loads(value)
                    creator_id = str(event["creator_id"])
                except (orjson.JSONDecodeError, TypeError, KeyError):
                    continue
                count_key = f"{creator_id}:{kind}"
                counts[count_key] += 1
                await redis.hset(
                    keys.creator(creator_id),
                    mapping={f"{kind}s": counts[count_key], "last": str(event.get(time_field))},
                )

        app.agent(topic, name=f"naive_{kind}")(agent)

    make_agent("post", settings.posts_topic)
    make_agent("tag", settings.tags_topic)
    make_agent("order", settings.orders_topic)
    return app


def main() -> None:
    run(build())


if __name__ == "__main__":
    main()
