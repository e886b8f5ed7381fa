"""One settings object for all infrastructure, read once from the environment.

Kafka and Redis addresses keep their plain, conventional names
(`KAFKA_BOOTSTRAP_SERVERS`, `REDIS_URL`) so they work with any tooling; every
other setting shares the `CREATOR_SCORES_` prefix. Scoring parameters (weights,
windows, thresholds) are not here: they live in `scoring.params` with a model
version of their own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from scoring.params import DEFAULT_PARAMS, Params, load_params


class Settings(BaseSettings):
    """Infrastructure settings; every field is documented in the README table."""

    model_config = SettingsConfigDict(
        env_prefix="CREATOR_SCORES_", frozen=True, extra="ignore", populate_by_name=True
    )

    kafka_bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    redis_url: str = Field(
        default="redis://localhost:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "redis_url"),
    )

    # Application and topics.
    app_id: str = "creator-scores"
    posts_topic: str = "posts"
    tags_topic: str = "shoppable-tags"
    orders_topic: str = "orders"
    changes_topic: str = "creator-score-changes"
    dead_letter_topic: str = "scorer-dead-letters"
    topic_partitions: int = 8
    topic_replication: int = 1

    # Stream processing.
    # Batch ingest: the most records per flush; under a backlog flushes grow toward it
    # while one takes under batch_target_s (0: always batch_size; streams.batching.BatchSizer).
    # A worker that keeps up takes what has arrived (small flushes, fresh scores), so the
    # target only bounds catch-up flushes.
    batch_size: int = Field(default=20_000, ge=1)
    batch_target_s: float = Field(default=1.0, ge=0)
    batch_within_s: float = 0.25
    # Batch ingest: apply state changelog records a fetch at a time (recovery, standbys)
    # instead of through Faust's per-event recovery loop (streams.batching.ChangelogBulk).
    changelog_bulk: bool = True
    # batch: whole fetches handed over (streams.batching); stream: Faust's per-message path.
    ingest: Literal["stream", "batch"] = "batch"
    # Decoded states kept between flushes, MB (streams.row_cache; 0: decode every time).
    # Off by default: it pays where creators recur in most flushes (a few thousand busy
    # creators), and costs memory and time where they do not (bench/commentary.md).
    state_cache_mb: int = Field(default=0, ge=0)
    # Young-generation GC threshold for the worker process (0: keep CPython's default).
    gc_gen0_threshold: int = Field(default=100_000, ge=0)
    change_threshold: float = 1.0
    future_margin_s: int = 300
    scoring_params_file: Path | None = None

    # Faust / Kafka client tuning.
    # The worker's event loop: aio (asyncio's own) or uvloop (streams.app.use_event_loop).
    event_loop: Literal["aio", "uvloop"] = "aio"
    session_timeout_s: float = 6.0
    # Static group membership: a stable id per worker (e.g. a StatefulSet pod name).
    group_instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    heartbeat_interval_s: float = 1.0
    producer_linger_ms: int = 5
    max_poll_records: int = Field(default=10_000, ge=1)
    producer_max_batch_size: int = 1_048_576
    stream_buffer_maxsize: int = 32_768
    web_port: int = 6066
    metrics_port: int = 9108
    # /readyz fails while one batch has been in progress longer than this (a dependency
    # down, a write that keeps failing); flushes normally take about batch_target_s.
    ready_batch_timeout_s: float = Field(default=60.0, gt=0)

    # Redis output.
    redis_prefix: str = "cs:"

    # Local stack (`creator-scores stack ...`).
    stack_dir: Path = Path(".stack")
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    redis_port: int = 6379
    kafka_heap: str = "768m"

    @property
    def source_topics(self) -> tuple[str, str, str]:
        return (self.posts_topic, self.tags_topic, self.orders_topic)


def load_settings() -> Settings:
    """Read the environment once; callers pass the result down."""
    return Settings()


def load_scoring_params(settings: Settings) -> Params:
    """The model parameters: the TOML file if configured, with the worker's future margin.

    Here rather than with the worker so that readers (`creator-scores show`) get the
    parameters without importing Faust.
    """
    params = (
        load_params(settings.scoring_params_file)
        if settings.scoring_params_file is not None
        else DEFAULT_PARAMS
    )
    return dataclasses.replace(params, future_margin_ms=settings.future_margin_s * 1000)
