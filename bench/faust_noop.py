"""Baseline (b): a Faust agent that does nothing, the framework's own ceiling.

One agent reads the three source topics as raw bytes (no serializer runs) and
drops every record, so what it costs is Faust's stream machinery alone:
fetching, the conductor, the stream iterator, acking and committing. It uses
the worker's own Faust settings (`streams.app.faust_config`), so the only
difference from the pipeline is the work done per record.

Run: `python -m bench.faust_noop` with the worker's environment variables.
"""

from __future__ import annotations

import faust

from bench.faust_baseline import plain_faust_app, run
from bench.marker import FirstRecord
from streams.settings import load_settings


def build() -> faust.App:
    settings = load_settings()
    app = plain_faust_app(settings)
    topic = app.topic(
        *settings.source_topics,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )
    first = FirstRecord()

    @app.agent(topic, name="noop")
    async def noop(stream: faust.StreamT[bytes]) -> None:
        async for _value in stream:
            if not first.done:
                first.seen()

    return app


def main() -> None:
    run(build())


if __name__ == "__main__":
    main()
