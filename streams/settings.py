"""One settings object for all infrastructure, read once from the environment.

Kafka and Redis addresses keep their plain, conventional names
(`KAFKA_BOOTSTRAP_SERVERS`, `REDIS_URL`) so they work with any tooling; every
other setting shares the `CREATOR_SCORES_` prefix. Scoring parameters (weights,
windows, thresholds) are not here: they live in `scoring.params` with a model
version of their own.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scoring.params import DEFAULT_PARAMS, Params, load_params


class Settings(BaseSettings):
    """Infrastructure settings; every field is documented in docs/operations.md's table."""

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
    # Compacted: every creator's current card, keyed by creator id (streams.cards).
    cards_topic: str = "creator-scores"
    topic_partitions: int = 8
    topic_replication: int = 1

    # Stream processing.
    # Batch ingest: the most records per flush; under a backlog flushes grow toward it
    # while one takes under batch_target_s (0: always batch_size; streams.batching.BatchSizer).
    # A worker that keeps up takes what has arrived (small flushes, fresh scores), so the
    # target only bounds catch-up flushes.
    batch_size: int = Field(default=20_000, ge=1)
    batch_target_s: float = Field(default=1.0, ge=0)
    # On SIGTERM, how long the batch in progress may take to finish; one still retrying
    # then (Redis or Kafka down) is abandoned unacknowledged, so the worker exits within
    # its grace period (docker-compose: 30 s) and the batch is redone by the next owner.
    stop_batch_wait_s: float = Field(default=20.0, ge=0)
    # Once told to stop (SIGTERM, SIGINT), the worker exits within this many seconds even if
    # a graceful stop cannot finish (a broker gone for good leaves Faust's consumer thread
    # and final commit waiting for ever): a hard exit then, as safe as a kill -9, since
    # nothing is acknowledged before it is stored (0: wait for ever).
    stop_timeout_s: float = Field(default=28.0, ge=0)
    # Batch ingest: apply state changelog records a fetch at a time (recovery, standbys)
    # instead of through Faust's per-event recovery loop (streams.batching.ChangelogBulk).
    changelog_bulk: bool = True
    # Decoded states kept between flushes, MB (streams.row_cache; 0: decode every time).
    # Off by default: it pays where creators recur in most flushes (a few thousand busy
    # creators), and costs memory and time where they do not (bench/commentary.md).
    state_cache_mb: int = Field(default=0, ge=0)
    # Young-generation GC threshold for the worker process (0: keep CPython's default).
    gc_gen0_threshold: int = Field(default=100_000, ge=0)
    change_threshold: float = 1.0
    # A record value over this many bytes is dead-lettered (reason too_large) unparsed;
    # below the broker's default message size (1,048,588) so that re-keyed copies fit.
    max_record_bytes: int = Field(default=1_000_000, ge=1024)
    # A creator's state (its changelog record) is kept under this many bytes: one that
    # would pass it keeps its newest days only (streams.pipeline.Pipeline._bounded).
    max_state_bytes: int = Field(default=900_000, ge=4096)
    future_margin_s: int = 300
    scoring_params_file: Path | None = None

    # Faust / Kafka client tuning.
    # The worker's event loop: aio (asyncio's own) or uvloop (streams.app.use_event_loop).
    event_loop: Literal["aio", "uvloop"] = "aio"
    session_timeout_s: float = 6.0
    # Static group membership: a stable id per worker (e.g. a StatefulSet pod name).
    group_instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    heartbeat_interval_s: float = 1.0
    # A worker that has not fetched for this long (its batch stuck behind a Redis or Kafka
    # outage, the queue full) leaves the group, and its partitions go to another member
    # (Kafka's max.poll.interval.ms; Kafka's default, 5 minutes).
    max_poll_interval_s: float = Field(default=300.0, gt=0)
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
    # How often a worker checks that Redis still holds its partitions' creators, seconds
    # (streams.repair: a Redis that lost its data is written again from the state; 0: never).
    redis_repair_interval_s: float = Field(default=5.0, ge=0)
    # How often a worker shares the stream time through Redis and checks whether its
    # creators' windows must roll (a new UTC day) or a new model reach them, seconds
    # (streams.sweep; 0: never, and windows roll only with each creator's own events).
    sweep_interval_s: float = Field(default=2.0, ge=0)
    # A stream silent this long (no records, the stream time still), seconds of wall clock:
    # the stream time then follows the wall clock this far behind it, so windows still
    # roll (streams.sweep.StreamClock; 0: never, the stream time moves with events only).
    stream_idle_s: float = Field(default=3600.0, ge=0)
    # Creators per slice of a sweep: a live batch waits for at most one slice (about 40 ms
    # at 500, bench/sweep.py); smaller slices, a longer sweep.
    sweep_slice: int = Field(default=500, ge=1)
    # Score-change records kept in Redis for the read API (docs/api.md): the newest of all
    # creators in one stream (about 1.5 KB each; 0: none), and each creator's newest ones.
    redis_changes_maxlen: int = Field(default=10_000, ge=0)
    redis_changes_per_creator: int = Field(default=5, ge=0)

    # Read API (`creator-scores serve`, docs/api.md).
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    # A new key's rate limit when `keys create` is given none: requests per window.
    api_default_rate: int = Field(default=600, ge=1)
    api_rate_window_s: int = Field(default=60, ge=1)
    # How long a search's matches are kept so its next pages read the same result, ms.
    api_search_ttl_ms: int = Field(default=5_000, ge=1)
    # Web origins whose pages may call the API from the browser (CORS), comma-separated: a
    # partner portal that puts <creator-leaderboard> on its own pages. Empty: none (the
    # /widget page, served by the API itself, needs none; nor do servers).
    api_cors_origins: str = ""

    # Local stack (`creator-scores stack ...`).
    stack_dir: Path = Path(".stack")
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    redis_port: int = 6379
    # Local stack: Redis keeps its data across a restart (an append-only file in its folder).
    redis_appendonly: bool = True
    kafka_heap: str = "768m"

    @model_validator(mode="after")
    def _clients_follow_the_stack(self) -> Settings:
        """One address per service: a stack port set without its client address moves the
        client too (`CREATOR_SCORES_KAFKA_PORT=39092` alone means `localhost:39092`), so a
        moved stack is never mistaken for whatever answers on the default port.

        Ports not set at all are those the stack recorded when it started (`stack up`
        moves a service off a default port another stack holds: `STACK_PORTS_FILE` in
        the stack folder), so every command run here talks to this project's stack."""
        given = set(self.model_fields_set)
        recorded = read_stack_ports(self.stack_dir)
        for name in ("kafka_port", "kafka_controller_port", "redis_port"):
            if name not in given and name in recorded:
                object.__setattr__(self, name, recorded[name])
                given.add(name)
        if "kafka_port" in given and "kafka_bootstrap_servers" not in given:
            object.__setattr__(self, "kafka_bootstrap_servers", f"localhost:{self.kafka_port}")
        if "redis_port" in given and "redis_url" not in given:
            object.__setattr__(self, "redis_url", f"redis://localhost:{self.redis_port}/0")
        return self

    @model_validator(mode="after")
    def _stop_outlasts_the_batch_wait(self) -> Settings:
        if 0 < self.stop_timeout_s <= self.stop_batch_wait_s:
            raise ValueError(
                f"CREATOR_SCORES_STOP_TIMEOUT_S ({self.stop_timeout_s:g}) must be longer than "
                f"CREATOR_SCORES_STOP_BATCH_WAIT_S ({self.stop_batch_wait_s:g}), or 0"
            )
        return self

    def explicit_ports(self) -> set[str]:
        """The stack ports set in the environment (not defaults, not recorded)."""
        return {"kafka_port", "kafka_controller_port", "redis_port"} & self.model_fields_set

    def stack_mismatches(self) -> list[str]:
        """Where the clients would not talk to the local stack these settings start (empty:
        they agree). `stack up` refuses to start a stack its clients would not use."""
        problems = []
        kafka = self.kafka_bootstrap_servers.split(",")[0].strip()
        host, _, port = kafka.rpartition(":")
        if host.split("://")[-1] not in _LOCAL_HOSTS or port != str(self.kafka_port):
            problems.append(
                f"KAFKA_BOOTSTRAP_SERVERS={self.kafka_bootstrap_servers} but the stack's Kafka "
                f"listens on 127.0.0.1:{self.kafka_port} (CREATOR_SCORES_KAFKA_PORT)"
            )
        url = urlsplit(self.redis_url)
        if url.hostname not in _LOCAL_HOSTS or (url.port or 6379) != self.redis_port:
            problems.append(
                f"REDIS_URL={redacted(self.redis_url)} but the stack's Redis listens on "
                f"127.0.0.1:{self.redis_port} (CREATOR_SCORES_REDIS_PORT)"
            )
        return problems

    @property
    def source_topics(self) -> tuple[str, str, str]:
        return (self.posts_topic, self.tags_topic, self.orders_topic)


_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


#: Where `stack up` records the ports it moved its services to (in the stack folder).
STACK_PORTS_FILE = "ports.json"


def read_stack_ports(stack_dir: Path) -> dict[str, int]:
    """The ports the local stack in `stack_dir` recorded (empty: none, or unreadable)."""
    try:
        raw = json.loads((stack_dir / STACK_PORTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items()
            if k in ("kafka_port", "kafka_controller_port", "redis_port")
            and isinstance(v, int) and 0 < v < 65536}  # fmt: skip


def redacted(url: str) -> str:
    """`url` with any password replaced by `***`, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


#: Environment variables that used to choose something no longer offered, and why.
REMOVED: dict[str, str] = {
    "CREATOR_SCORES_INGEST": (
        "the worker always takes whole fetches (streams.batching); Faust's per-message "
        "stream path (`stream`) was removed: after a kill -9 it could acknowledge records "
        "whose state never reached the changelog"
    ),
}


class SettingsError(ValueError):
    """The environment asks for something the worker cannot do."""


def load_settings() -> Settings:
    """Read the environment once; callers pass the result down."""
    check_removed(os.environ)
    return Settings()


def check_removed(environ: Mapping[str, str]) -> None:
    """Refuse a removed setting set to anything but what the worker now always does."""
    value = environ.get("CREATOR_SCORES_INGEST")
    if value is not None and value.strip().lower() not in ("", "batch"):
        raise SettingsError(
            f"CREATOR_SCORES_INGEST={value} is no longer supported: "
            f"{REMOVED['CREATOR_SCORES_INGEST']}. Unset it."
        )


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
