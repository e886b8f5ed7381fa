"""Baseline (d), the peer: Quix Streams counting events per creator in tumbling windows.

The three source topics are concatenated into one dataframe and counted per
Kafka key (the creator id) in 60 s tumbling windows over the records'
timestamps, with RocksDB state and changelog topics as Quix Streams ships them.
Malformed JSON is counted and skipped, as the pipeline does. Quix Streams is a
`bench` extra only, never a runtime dependency of creator-scores.

Run: `python -m bench.quix_peer` with the worker's environment variables plus
`BENCH_STATE_DIR` (the RocksDB folder) and `BENCH_COMMIT_INTERVAL_S`.
`BENCH_QUIX_MODE` picks the topology: `concat` (default, one count per creator
over all three topics, which needs Quix's cross-topic time alignment),
`separate` (one windowed count per topic) or `none` (no state: Quix's own
ceiling); the harness uses the default, the others are for comparisons.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any, cast

from quixstreams import Application

from bench.marker import FirstRecord
from streams.settings import load_settings


def main() -> None:
    settings = load_settings()
    first = FirstRecord()
    skipped = 0

    def skip_bad(exc: Exception, _msg: object, _log: logging.Logger) -> bool:
        nonlocal skipped
        skipped += 1
        return True

    def on_processed(_topic: str, _partition: int, _offset: int) -> None:
        if not first.done:
            first.seen()

    app = Application(
        broker_address=settings.kafka_bootstrap_servers,
        consumer_group=settings.app_id,
        auto_offset_reset="earliest",
        commit_interval=float(os.environ.get("BENCH_COMMIT_INTERVAL_S", "1.0")),
        state_dir=os.environ.get("BENCH_STATE_DIR", "quix-state"),
        consumer_extra_config={
            "session.timeout.ms": int(settings.session_timeout_s * 1000),
            "heartbeat.interval.ms": int(settings.heartbeat_interval_s * 1000),
        },
        on_consumer_error=skip_bad,
        on_processing_error=skip_bad,
        on_message_processed=on_processed,
        loglevel=cast("Any", os.environ.get("BENCH_QUIX_LOGLEVEL", "WARNING")),
    )
    topics = [
        app.topic(name, value_deserializer="json", key_deserializer="str")
        for name in settings.source_topics
    ]
    mode = os.environ.get("BENCH_QUIX_MODE", "concat")
    if mode == "concat":
        sdf = app.dataframe(topics[0])
        for topic in topics[1:]:
            sdf = sdf.concat(app.dataframe(topic))
        sdf = sdf.tumbling_window(timedelta(seconds=60)).count().final()
    elif mode == "separate":
        for topic in topics:
            app.dataframe(topic).tumbling_window(timedelta(seconds=60)).count().final()
    elif mode == "none":
        for topic in topics:
            app.dataframe(topic)
    else:
        raise SystemExit(f"BENCH_QUIX_MODE must be concat, separate or none, not {mode!r}")
    app.run()
    print(f"quix_peer: skipped {skipped} records", flush=True)


if __name__ == "__main__":
    main()
