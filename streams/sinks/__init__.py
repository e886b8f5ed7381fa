"""Where a processed batch goes: creator snapshots to Redis, records to Kafka.

`base` holds the values the pipeline produces and the small protocols it writes
through; `redis` and `kafka` are the real implementations, each retrying a batch
until it is stored.
"""

from streams.sinks.base import (
    Backoff,
    CreatorSnapshot,
    OutboundRecord,
    RecordSink,
    SnapshotSink,
)

__all__ = ["Backoff", "CreatorSnapshot", "OutboundRecord", "RecordSink", "SnapshotSink"]
