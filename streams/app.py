"""Builds the Faust app, its topics and its state table from `Settings`, in one place.

Everything Faust needs to know about the deployment (broker, group id,
partition counts, client tuning, the changelog-backed table) is decided here
so that the worker, the tests and the benchmarks all run the very same
topology. Topics carry raw bytes: the pipeline decodes each record itself,
once, and Faust never runs a serializer over the payload.

Co-partitioning is what keeps state and input together: the source topics,
the repartition topic and the table's changelog all have
`Settings.topic_partitions` partitions, and every write (by producers keyed by
creator id, by our own re-keying, and by the table) goes through the default
murmur2 partitioner on the creator id's UTF-8 bytes, so a creator's records and
its state share one partition number and therefore one worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import faust
import mode.loop
from aiokafka.admin import NewTopic

from streams.batching import batch_url
from streams.settings import Settings
from streams.topics import topic_specs

#: Name of the per-creator state table; its changelog is `{app_id}-{TABLE_NAME}-changelog`.
TABLE_NAME = "creator_state"

#: Faust's own name for the scoring agent (shows up in logs and in the agent registry).
AGENT_NAME = "score"


def rekeyed_topic_name(settings: Settings) -> str:
    """The repartition topic: records whose Kafka key is not their creator id go here."""
    return f"{settings.app_id}-rekeyed"


def changelog_topic_name(settings: Settings) -> str:
    """The compacted changelog topic backing the state table (Faust's naming)."""
    return f"{settings.app_id}-{TABLE_NAME}-changelog"


#: The changelog is compacted, in segments of 4 MiB (or 10 minutes) with a low dirty
#: ratio, so that the log cleaner can work while the worker runs: Kafka never compacts
#: the active segment (1 GiB by default), and a worker taking over replays every record
#: left in it. Below ~4 MiB per partition nothing rolls, so small runs see no difference.
CHANGELOG_TOPIC_CONFIG: dict[str, str] = {
    "cleanup.policy": "compact",
    "segment.bytes": str(4 * 1024 * 1024),
    "segment.ms": str(10 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.1",
}


def worker_topic_specs(settings: Settings) -> list[NewTopic]:
    """Every topic a worker needs, with its shape, so start-up can create them all up front.

    The changelog is declared here too (compacted, same partition count) rather than left to
    Faust, so that its partition count can never drift from the source topics.
    """
    parts, repl = settings.topic_partitions, settings.topic_replication
    specs = topic_specs(settings)
    specs.append(NewTopic(rekeyed_topic_name(settings), parts, repl))
    specs.append(
        NewTopic(
            changelog_topic_name(settings),
            parts,
            repl,
            topic_configs=CHANGELOG_TOPIC_CONFIG,
        )
    )
    return specs


def broker_urls(settings: Settings) -> list[str]:
    """`host:port[,host:port]` as Faust's list of `kafka://` URLs."""
    servers = [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]
    return [s if "://" in s else f"kafka://{s}" for s in servers]


@dataclass(frozen=True)
class ScoringApp:
    """The Faust objects one worker runs: the app, the topic set it consumes, the table."""

    settings: Settings
    app: faust.App
    source: faust.TopicT
    table: faust.Table[bytes, bytes]


def use_event_loop(settings: Settings) -> None:
    """Install the event loop the settings ask for, before anything creates a loop.

    `uvloop` is mode's supported alternative to asyncio's own loop (what `faust -L uvloop`
    selects): its callbacks, futures and socket transports are written in C, which is
    where a worker spends what the pipeline leaves (the producer, the fetcher, Redis I/O).
    `aio` keeps asyncio's loop.
    """
    mode.loop.use(settings.event_loop)


def faust_config(settings: Settings) -> dict[str, Any]:
    """Faust settings derived from ours; kept separate so tests can inspect them."""
    config: dict[str, Any] = {
        "broker": broker_urls(settings),
        "store": "memory://",
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        # A short session and a fast heartbeat let a group form (and notice a dead member)
        # within seconds instead of the client defaults' tens of seconds.
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.heartbeat_interval_s,
        "broker_max_poll_interval": settings.max_poll_interval_s,
        "producer_linger": settings.producer_linger_ms / 1000.0,
        "producer_max_batch_size": settings.producer_max_batch_size,
        "stream_buffer_maxsize": settings.stream_buffer_maxsize,
        # A poll hands at most this many records over: fetches arrive in pieces a flush
        # can take, and the records waiting for the agent stay bounded (streams.batching).
        "broker_max_poll_records": settings.max_poll_records,
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "table_standby_replicas": 0,
        # Our observability endpoint lives on metrics_port; Faust's web server would only
        # add a port to clash on when several workers share a host (as in the tests).
        "web_enabled": False,
        "web_port": settings.web_port,
        "datadir": str(settings.stack_dir / "faust"),
        # Faust would otherwise turn every print and log line into a WARNING record.
        "worker_redirect_stdouts": False,
    }
    if settings.group_instance_id:
        # Static membership (KIP-345): a worker restarted under the same id takes its
        # predecessor's place and partitions at once, instead of waiting out the session
        # timeout of a member that died without leaving.
        config["consumer_group_instance_id"] = settings.group_instance_id
        # Faust's assignor checks that an assignment was made for this worker's URL; the
        # coordinator hands a restarted static member the assignment its predecessor got,
        # so the URL must not depend on the host or port it restarts on. Faust's web
        # server is off, so the URL names the member and nothing else.
        config["canonical_url"] = f"http://{settings.group_instance_id}"
    # Whole fetches for the agent (streams.batching); producers stay on the stock transport.
    config["broker_consumer"] = [batch_url(u) for u in config["broker"]]
    return config


def build_app(settings: Settings) -> ScoringApp:
    """The one place that declares the Faust app, its source topics and the state table."""
    app = faust.App(settings.app_id, **faust_config(settings))
    source = app.topic(
        *settings.source_topics,
        rekeyed_topic_name(settings),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )
    # use_partitioner: the changelog partition comes from murmur2 over the key bytes rather
    # than from "the partition of the event being processed", which with batches is whatever
    # record happened to be last and would scatter a creator's state across partitions.
    table = cast(
        "faust.Table[bytes, bytes]",
        app.Table(
            TABLE_NAME,
            key_type=bytes,
            value_type=bytes,
            partitions=settings.topic_partitions,
            use_partitioner=True,
        ),
    )
    return ScoringApp(settings=settings, app=app, source=source, table=table)
