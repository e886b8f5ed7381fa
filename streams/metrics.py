"""Prometheus metrics the worker exports, defined once so names stay stable.

Names follow kafka-lag-exporter where they overlap (consumer lag) and use the
`creator_scores_` namespace for the pipeline's own figures. Dashboards and
alert rules under `deploy/` reference these names; a test checks that every
metric they use is defined here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
)
_IO_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

EVENTS_CONSUMED = Counter(
    "creator_scores_events_consumed",
    "Records read from the source topics.",
    ["topic"],
    registry=REGISTRY,
)
EVENTS_SCORED = Counter(
    "creator_scores_events_scored",
    "Valid events applied to creator state (duplicates included, late excluded).",
    ["topic"],
    registry=REGISTRY,
)
EVENTS_DUPLICATE = Counter(
    "creator_scores_events_duplicate",
    "Events already reflected in state (at-least-once redelivery, unchanged snapshots).",
    ["topic"],
    registry=REGISTRY,
)
EVENTS_LATE = Counter(
    "creator_scores_events_late",
    "Events older than the rolling window, counted and ignored. reason: creator_window "
    "(before the window ending at the creator's newest event) or stream_window (before the "
    "window ending on the stream's day, docs/scoring.md 'Stream time').",
    ["topic", "reason"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "creator_scores_dead_letters",
    "Records sent to the dead-letter topic, by source topic and reason.",
    ["topic", "reason"],
    registry=REGISTRY,
)
STATES_TRIMMED = Counter(
    "creator_scores_states_trimmed",
    "Creator states cut to CREATOR_SCORES_MAX_STATE_BYTES by dropping their oldest days.",
    registry=REGISTRY,
)
LABELS_UNMAPPED = Counter(
    "creator_scores_labels_unmapped",
    "Themes and content types outside the taxonomy, recorded as `other`, by kind.",
    ["kind"],
    registry=REGISTRY,
)
EVENTS_REROUTED = Counter(
    "creator_scores_events_rerouted",
    "Records routed through the repartition topic to the worker holding their creator: keyed "
    "other than by creator id (reason key) or on another partition than murmur2 of the "
    "creator id gives (reason partition: the producer's partitioner is not Kafka's default).",
    ["topic", "reason"],
    registry=REGISTRY,
)
SCORE_CHANGES = Counter(
    "creator_scores_score_changes",
    "Score-change events emitted to the score-change topic.",
    registry=REGISTRY,
)
BATCHES = Histogram(
    "creator_scores_batch_size",
    "Records per processed batch.",
    buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 20000),
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "creator_scores_batch_seconds",
    "Wall time to process one batch (validate, state, score, sinks).",
    buckets=_IO_BUCKETS,
    registry=REGISTRY,
)
EVENT_TO_REDIS = Histogram(
    "creator_scores_event_time_to_redis_seconds",
    "Freshness: from an event's own timestamp to its score written in Redis.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
ARRIVAL_TO_REDIS = Histogram(
    "creator_scores_arrival_to_redis_seconds",
    "Freshness: from the record's Kafka timestamp (arrival) to its score written in Redis.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
REDIS_WRITE_SECONDS = Histogram(
    "creator_scores_redis_write_seconds",
    "Latency of one Redis pipeline write.",
    buckets=_IO_BUCKETS,
    registry=REGISTRY,
)
REDIS_ERRORS = Counter(
    "creator_scores_redis_errors",
    "Failed Redis writes (retried with backoff).",
    registry=REGISTRY,
)
KAFKA_PRODUCE_SECONDS = Histogram(
    "creator_scores_kafka_produce_seconds",
    "Latency of producing one batch of score changes or dead letters.",
    buckets=_IO_BUCKETS,
    registry=REGISTRY,
)
KAFKA_ERRORS = Counter(
    "creator_scores_kafka_errors",
    "Failed Kafka produce calls (retried with backoff).",
    registry=REGISTRY,
)
REBALANCES = Counter(
    "creator_scores_rebalances",
    "Consumer group rebalances seen by this worker.",
    registry=REGISTRY,
)
RECOVERY_REMAINING = Gauge(
    "creator_scores_table_recovery_remaining",
    "Changelog records still to read while the worker recovers its tables.",
    registry=REGISTRY,
)
CHANGELOG_APPLIED = Counter(
    "creator_scores_changelog_records_applied",
    "State-table changelog records applied by the bulk path (recovery and standbys).",
    registry=REGISTRY,
)
CHANGELOG_REREAD = Counter(
    "creator_scores_changelog_rereads",
    "Changelog partitions read again during a recovery because records fetched before a "
    "rebalance were never applied (streams.batching.BatchConsumer._mend_recovery).",
    registry=REGISTRY,
)
CHANGELOG_WRITTEN = Counter(
    "creator_scores_changelog_records_written",
    "State-table changelog records written (one per changed creator per flush).",
    registry=REGISTRY,
)
CHANGELOG_WRITE_SECONDS = Histogram(
    "creator_scores_changelog_write_seconds",
    "Time to append a flush's changelog records and have the broker acknowledge them.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
CREATORS_IN_STATE = Gauge(
    "creator_scores_creators_in_state",
    "Creators held in this worker's state table.",
    registry=REGISTRY,
)
REDIS_REPUBLISHES = Counter(
    "creator_scores_redis_republishes",
    "Republishes of held creators to a Redis whose partition markers were missing "
    "(Redis lost its data, or `creator-scores republish`).",
    registry=REGISTRY,
)
REDIS_REPUBLISHED_CREATORS = Counter(
    "creator_scores_redis_republished_creators",
    "Creators whose full card a republish wrote to Redis again.",
    registry=REGISTRY,
)
STREAM_TIME_IDLE_ADVANCES = Counter(
    "creator_scores_stream_time_idle_advances",
    "Times the stream time was moved by the wall clock, the stream being silent for "
    "CREATOR_SCORES_STREAM_IDLE_S (streams.sweep.StreamClock).",
    registry=REGISTRY,
)
STREAM_TIME = Gauge(
    "creator_scores_stream_time_seconds",
    "The stream time this worker scores at (Unix seconds): the newest event time of the "
    "whole stream; windows end there (docs/scoring.md, Stream time).",
    registry=REGISTRY,
)
SWEPT = Counter(
    "creator_scores_swept_creators",
    "Held creators a sweep looked at (whether or not they were due).",
    registry=REGISTRY,
)
RESCORED = Counter(
    "creator_scores_rescored_creators",
    "Creators re-scored without events of their own, by cause: window_rolled (stream time "
    "entered a new UTC day) or model_rollout (last scored with another model version).",
    ["cause"],
    registry=REGISTRY,
)
SWEEP_REMAINING = Gauge(
    "creator_scores_sweep_remaining_creators",
    "Held creators the sweep under way has still to look at (0: none under way).",
    registry=REGISTRY,
)
SWEEPS = Counter(
    "creator_scores_sweeps",
    "Completed sweeps over every held creator (a day boundary, a model rollout, or an "
    "operator's `creator-scores rescore`).",
    registry=REGISTRY,
)
LAST_REDIS_WRITE = Gauge(
    "creator_scores_last_redis_write_timestamp_seconds",
    "Unix time of the last successful Redis write.",
    registry=REGISTRY,
)


def observe_many(histogram: Histogram, amounts: Sequence[float]) -> None:
    """`histogram.observe(a)` for every amount, bucket by bucket instead of one by one.

    A flush observes the freshness of every event it applied; prometheus_client's
    `observe` costs microseconds each. This adds each bucket's count once (the bucket of
    an amount is the first whose upper bound is at or above it, as `observe` picks it)
    and the total to the sum; the exposition is that of the same observations. It uses
    the histogram's internals (`_upper_bounds`, `_buckets`, `_sum`), which a unit test
    checks against `observe`.
    """
    if not amounts:
        return
    values = np.asarray(amounts, dtype=np.float64)
    bounds = np.asarray(histogram._upper_bounds, dtype=np.float64)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    buckets = histogram._buckets
    for i, count in enumerate(counts.tolist()[: len(buckets)]):
        if count:
            buckets[i].inc(count)
    histogram._sum.inc(float(values.sum()))
