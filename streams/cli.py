"""The `creator-scores` command line: one entry point for operators and developers.

Each command reads the settings once and hands them to the module that does
the work; heavy imports (Faust, Redis) happen inside the commands so that
`creator-scores --help` and `stack` stay quick.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from streams.api.cli import COMMANDS as API_COMMANDS
from streams.keys import BOARD_SCORES, GLOBAL_REGION
from streams.log_limit import setup_tool_logging
from streams.settings import (
    Settings,
    SettingsError,
    load_scoring_params,
    load_settings,
    redacted,
)

if TYPE_CHECKING:
    from streams.sweep import RescoreRequests


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Real-time creator scores: Kafka in, Faust state, Redis out."""
    try:
        ctx.obj = load_settings()
    except (SettingsError, ValidationError) as exc:
        # A setting that cannot work is the operator's to fix: say which, no traceback.
        raise click.ClickException(f"invalid settings: {exc}") from None


def _say_where(settings: Settings, *, kafka: bool = False, redis: bool = False) -> None:
    """Name the addresses a command uses, passwords hidden: on stderr, so that what it prints
    on stdout stays clean for a pipe."""
    parts = []
    if kafka:
        parts.append(f"Kafka {settings.kafka_bootstrap_servers}")
    if redis:
        parts.append(f"Redis {redacted(settings.redis_url)} (prefix {settings.redis_prefix!r})")
    click.echo("using " + ", ".join(parts), err=True)


def _redis_failed(settings: Settings, exc: BaseException, verb: str) -> click.ClickException:
    """Redis did not answer: where it was looked for (the password hidden, as everywhere a
    command prints an address) and why, as an error without a traceback (exit 1)."""
    return click.ClickException(f"cannot {verb} Redis at {redacted(settings.redis_url)}: {exc}")


@main.command("worker")
@click.option(
    "-l",
    "--loglevel",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.pass_obj
def worker(settings: Settings, loglevel: str) -> None:
    """Run a scoring worker (Faust) until SIGTERM/SIGINT; creates its topics first."""
    from streams.agents import run_worker

    run_worker(settings, loglevel=loglevel)


@main.group()
def stack() -> None:
    """The local Apache Kafka + Redis stack (background processes under .stack/)."""


@stack.command("up")
@click.pass_obj
def stack_up(settings: Settings) -> None:
    """Start Kafka (KRaft, from the official jars) and Redis; reuse what already runs."""
    from streams.devtools.stack import LocalStack, StackError

    mismatches = settings.stack_mismatches()
    if mismatches:
        raise click.ClickException(
            "the clients would not use the stack this starts:\n  - "
            + "\n  - ".join(mismatches)
            + "\nSet the ports only (the clients follow them), or make both agree."
        )
    started = time.monotonic()
    try:
        statuses = LocalStack(settings).up()
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    for status in statuses:
        click.echo(status.line())
    click.echo(f"stack up in {time.monotonic() - started:.1f}s (state in {settings.stack_dir}/)")


@stack.command("down")
@click.pass_obj
def stack_down(settings: Settings) -> None:
    """Stop the Kafka and Redis processes that `stack up` started."""
    from streams.devtools.stack import LocalStack

    stopped = LocalStack(settings).down()
    click.echo("stopped " + ", ".join(stopped) if stopped else "nothing to stop")


@stack.command("status")
@click.pass_obj
def stack_status(settings: Settings) -> None:
    """Say what runs, where, and whether it answers. Exit 1 if anything is down."""
    from streams.devtools.stack import LocalStack

    statuses = LocalStack(settings).status()
    for status in statuses:
        click.echo(status.line())
    click.echo(
        f"clients use Kafka at {settings.kafka_bootstrap_servers}, "
        f"Redis at {redacted(settings.redis_url)}"
    )
    for mismatch in settings.stack_mismatches():
        click.echo(f"warning: {mismatch}")
    if not all(s.reachable for s in statuses):
        sys.exit(1)


@main.command("lag")
@click.option(
    "--group", "groups", multiple=True, help="Consumer group (repeatable); default: app id."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document per refresh.")
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C; WARN/STALL need a few samples.")
@click.option("--interval", type=click.FloatRange(min=0.5), default=5.0, show_default=True)
@click.option("--serve", type=click.IntRange(0, 65535), help="Serve as Prometheus metrics on PORT.")
@click.pass_obj
def lag(
    settings: Settings,
    groups: tuple[str, ...],
    as_json: bool,
    watch: bool,
    interval: float,
    serve: int | None,
) -> None:
    """Consumer lag from the broker per topic and partition, with a Burrow-style status."""
    if not as_json:
        _say_where(settings, kafka=True)
    import asyncio

    setup_tool_logging()

    from streams.lag import LagError, lag_report
    from streams.observability import ObservabilityError, run_lag_exporter

    clear = click.clear if watch and sys.stdout.isatty() else None
    try:
        if serve is not None:  # a lag exporter that outlives the workers (docker-compose)
            asyncio.run(run_lag_exporter(settings, groups, port=serve, interval_s=interval))
        else:
            asyncio.run(lag_report(settings, groups, as_json=as_json, watch=watch,
                                   interval_s=interval, echo=click.echo, clear=clear))  # fmt: skip
    except (LagError, ObservabilityError) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        sys.exit(130)


_CODECS = ("none", "gzip", "lz4", "snappy", "zstd")
#: `replay` stopped because Kafka stayed away (EX_TEMPFAIL: try again later, with --skip).
EXIT_REPLAY_GAVE_UP = 75
_SHARE = click.FloatRange(0.0, 1.0, max_open=True)


@main.command("simulate")
@click.option("--creators", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Events per second; 0 sends as fast as possible.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=None,
    help="Wall-clock seconds to run; 0 runs until Ctrl-C/SIGTERM (needs --rate).",
)
@click.option(
    "--events",
    type=click.IntRange(min=0),
    default=None,
    help="Number of events [default: 100000 unless --duration is given].",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same events.")
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=28.0,
    show_default=True,
    help="Span of simulated event time, ending now.",
)
@click.option(
    "--speedup",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Simulated seconds per wall second while the days fill (paced runs).",
)
@click.option("--malformed-share", type=_SHARE, default=0.005, show_default=True)
@click.option("--mis-keyed-share", type=_SHARE, default=0.01, show_default=True,
              help="Share of records sent without a key.")  # fmt: skip
@click.option("--duplicate-share", type=_SHARE, default=0.002, show_default=True,
              help="Share of records delivered twice.")  # fmt: skip
@click.option(
    "--to-file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write JSON lines for `replay` instead of sending to Kafka.",
)
@click.option("--end-time", default=None, help="Where event time ends: RFC 3339 or epoch ms.")
@click.option("--compression", type=click.Choice(_CODECS), default="none", show_default=True)
@click.pass_obj
def simulate(
    settings: Settings,
    creators: int,
    rate: float,
    duration: float | None,
    events: int | None,
    seed: int,
    days: float,
    speedup: float | None,
    malformed_share: float,
    mis_keyed_share: float,
    duplicate_share: float,
    to_file: Path | None,
    end_time: str | None,
    compression: str,
) -> None:
    """Send a synthetic creator population's posts, tags and orders to Kafka."""
    if to_file is None:
        _say_where(settings, kafka=True)
    from aiokafka.errors import KafkaError

    setup_tool_logging()

    from streams.devtools.simulate import SimulateOptions, parse_time_ms, run_simulate

    try:
        options = SimulateOptions(
            creators=creators, rate=rate, duration_s=duration, events=events, seed=seed,
            days=days, speedup=speedup, malformed_share=malformed_share,
            mis_keyed_share=mis_keyed_share, duplicate_share=duplicate_share, to_file=to_file,
            end_time_ms=parse_time_ms(end_time) if end_time is not None else None,
            compression=compression,
        )  # fmt: skip
        run_simulate(options, settings, echo=click.echo)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except KafkaError as exc:
        raise click.ClickException(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command("replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rate", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Records per second; 0 sends as fast as possible.")  # fmt: skip
@click.option("--topic-map", multiple=True, metavar="SRC=DST",
              help="Send the file's SRC records to topic DST (repeatable).")  # fmt: skip
@click.option("--compression", type=click.Choice(_CODECS), default="none", show_default=True)
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Skip the first N lines (resume where a stopped replay says).")  # fmt: skip
@click.option("--retry-for", type=click.FloatRange(min=0), default=120.0, show_default=True,
              metavar="SECONDS", help="How long to wait out a broker outage.")  # fmt: skip
@click.pass_obj
def replay(
    settings: Settings,
    file: Path,
    rate: float,
    topic_map: tuple[str, ...],
    compression: str,
    skip: int,
    retry_for: float,
) -> None:
    """Send a JSON-lines file (as `simulate --to-file` writes) to Kafka; exit 1 on bad lines.

    A broker outage is waited out for --retry-for seconds; past it the command exits 75
    and says which --skip resumes it.
    """
    _say_where(settings, kafka=True)
    from aiokafka.errors import KafkaError

    from streams.devtools.replay import ReplayGaveUp, parse_topic_map, run_replay

    setup_tool_logging()
    try:
        mapping = parse_topic_map(topic_map)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--topic-map") from exc
    try:
        report = run_replay(
            file, settings, rate=rate, topic_map=mapping, compression=compression,
            echo=click.echo, echo_err=lambda line: click.echo(line, err=True),
            skip=skip, retry_for_s=retry_for,
        )  # fmt: skip
    except ReplayGaveUp as exc:
        click.echo(
            f"Error: Kafka at {settings.kafka_bootstrap_servers} unavailable for over "
            f"{retry_for:.0f}s; rerun with --skip {exc.report.confirmed_lines} to resume",
            err=True,
        )
        sys.exit(EXIT_REPLAY_GAVE_UP)
    except KafkaError as exc:
        raise click.ClickException(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
    if report.bad:
        sys.exit(1)


@main.command("top")
@click.option("--score", type=click.Choice(BOARD_SCORES), default="overall", show_default=True)
@click.option("--region", default=GLOBAL_REGION, show_default=True, help="ALL or a region code.")
@click.option("--theme", default=None, help="Per-theme board (overall and influence only).")
@click.option("--content-type", default=None, help="Per-content-type board (video, live, ...).")
@click.option("-n", "count", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def top(
    settings: Settings,
    score: str,
    region: str,
    theme: str | None,
    content_type: str | None,
    count: int,
    as_json: bool,
) -> None:
    """A leaderboard read from Redis: rank, creator, score, region, provisional flag.

    A region without creators is an error (exit 2) that lists the regions with some.
    """
    if not as_json:
        _say_where(settings, redis=True)
    import redis as redis_lib
    from rich.console import Console

    from scoring.names import UNKNOWN_REGION
    from streams.keys import Keys
    from streams.readers import (
        ReaderError,
        board_ref,
        connect,
        read_top,
        regions_with_boards,
        top_json,
        top_table,
    )

    keys = Keys(settings.redis_prefix)
    try:
        ref = board_ref(
            score=score, region=region, theme=theme, content_type=content_type,
            taxonomy=load_scoring_params(settings),
        )  # fmt: skip
    except ReaderError as exc:
        raise click.UsageError(str(exc)) from exc
    board = ref.key(keys)
    client = connect(settings.redis_url)
    regions: list[str] = []
    try:
        entries = read_top(client, keys, board, count)
        if not entries and ref.region != GLOBAL_REGION:
            regions = regions_with_boards(client, keys)
    except (redis_lib.RedisError, OSError) as exc:
        raise _redis_failed(settings, exc, "read") from exc
    finally:
        client.close()
    if regions and ref.region not in regions:
        # A region no creator is in (a typo, or one the producers do not send): say which
        # regions there are. With no boards at all, the board is merely empty so far.
        listed = ", ".join(
            f"{r} (region not known yet)" if r == UNKNOWN_REGION else r for r in regions
        )
        raise click.UsageError(f"no creators in region {ref.region}; regions with creators: "
                               f"{listed}")  # fmt: skip
    if as_json:
        click.echo(top_json(entries, board))
    elif not entries:
        click.echo(f"no creators on {board} yet")
    else:
        Console().print(top_table(entries, board))


@main.command("show")
@click.argument("creator_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_obj
def show(settings: Settings, creator_id: str, as_json: bool) -> None:
    """One creator's scores from Redis, with the explanation of each. Exit 1 if unknown."""
    if not as_json:
        _say_where(settings, redis=True)
    import redis as redis_lib
    from rich.console import Console

    from streams.keys import Keys
    from streams.readers import connect, creator_json, creator_renderable, read_creator

    keys = Keys(settings.redis_prefix)
    client = connect(settings.redis_url)
    try:
        view = read_creator(client, keys, creator_id, load_scoring_params(settings))
    except (redis_lib.RedisError, OSError) as exc:
        raise _redis_failed(settings, exc, "read") from exc
    finally:
        client.close()
    if view is None:
        click.echo(
            f"no scores for creator {creator_id!r} ({keys.creator(creator_id)} is not in Redis)",
            err=True,
        )
        sys.exit(1)
    if as_json:
        click.echo(creator_json(view))
    else:
        Console().print(creator_renderable(view))


@main.command("republish")
@click.pass_obj
def republish(settings: Settings) -> None:
    """Make every worker write its creators to Redis again in full, from its state.

    Deletes the partition markers under the prefix; each worker republishes what it holds
    at its next check (CREATOR_SCORES_REDIS_REPAIR_INTERVAL_S).
    """
    _say_where(settings, redis=True)
    import asyncio

    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from streams.keys import Keys
    from streams.repair import delete_markers

    async def run() -> int:
        client = Redis.from_url(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=3.0)
        try:
            return await delete_markers(client, Keys(settings.redis_prefix))
        finally:
            await client.aclose()

    try:
        deleted = asyncio.run(run())
    except (RedisError, OSError) as exc:
        raise _redis_failed(settings, exc, "reach") from exc
    interval = settings.redis_repair_interval_s
    click.echo(
        f"deleted {deleted} partition markers under {settings.redis_prefix!r}; "
        + (
            f"workers republish within {interval:g}s"
            if interval
            else "workers will not republish: CREATOR_SCORES_REDIS_REPAIR_INTERVAL_S is 0"
        )
    )


@main.command("rescore")
@click.option("--no-wait", is_flag=True, help="Ask, and exit without following the progress.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop following after this many seconds [default: until done].")  # fmt: skip
@click.pass_obj
def rescore(settings: Settings, no_wait: bool, timeout: float | None) -> None:
    """Re-score every creator the workers hold, now, and follow the progress.

    Each worker runs a full pass over its creators in slices between batches (as the
    day-boundary sweep does, docs/scoring.md "Stream time"); cards that moved are
    published with the cause "rescore". Ends when every partition is done; Ctrl-C stops
    following, not the re-score.
    """
    import asyncio

    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from streams.keys import Keys
    from streams.sweep import RescoreRequests

    if not settings.sweep_interval_s:
        raise click.ClickException(
            "workers do not sweep: CREATOR_SCORES_SWEEP_INTERVAL_S is 0; set it and restart them"
        )
    partitions = settings.topic_partitions
    _say_where(settings, redis=True)

    async def run() -> None:
        client = Redis.from_url(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=3.0)
        requests = RescoreRequests(client, Keys(settings.redis_prefix))
        try:
            request = await requests.request(int(time.time() * 1000))
            click.echo(f"asked every worker for a full re-score (request {request}); they "
                       f"start within {settings.sweep_interval_s:g}s")  # fmt: skip
            if not no_wait:
                await _follow_rescore(requests, request, partitions, timeout)
        finally:
            await client.aclose()

    try:
        asyncio.run(run())
    except (RedisError, OSError) as exc:
        raise _redis_failed(settings, exc, "reach") from exc
    except KeyboardInterrupt:
        click.echo("stopped following; the workers finish the re-score on their own")


async def _follow_rescore(
    requests: RescoreRequests, request: str, partitions: int, timeout: float | None
) -> None:
    """A progress bar (plain lines off a terminal) until every partition is done."""
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console()
    deadline = None if timeout is None else time.monotonic() + timeout
    last_line = 0.0
    parts_text = "creators, {task.fields[parts]}/{task.fields[of]} partitions"
    columns = (TextColumn("re-scoring"), BarColumn(), MofNCompleteColumn(), TextColumn(parts_text))
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("rescore", total=None, parts=0, of=partitions)
        while True:
            done, total, parts = await requests.progress(request)
            bar.update(task, completed=min(done, total), total=total or None, parts=len(parts))
            finished = len(parts) >= partitions
            if not console.is_terminal and (finished or time.monotonic() - last_line >= 2.0):
                click.echo(f"re-scoring: {min(done, total):,}/{total:,} creators, "
                           f"{len(parts)}/{partitions} partitions")  # fmt: skip
                last_line = time.monotonic()
            if finished:
                break
            if deadline is not None and time.monotonic() > deadline:
                click.echo(f"still running after {timeout:g}s; the workers finish it on their "
                           "own (run rescore again to ask for another pass)")  # fmt: skip
                return
            await asyncio.sleep(0.5)
    click.echo(f"done: {min(done, total):,} creators looked at in {partitions} partitions")


@main.command("dashboard")
@click.option("--once", is_flag=True, help="Print one frame and exit.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many seconds [default: until Ctrl-C].")  # fmt: skip
@click.option("--refresh", type=click.FloatRange(min=0.1), default=1.0, show_default=True)
@click.option("--metrics-url", default=None,
              help="Worker metrics [default: http://127.0.0.1:METRICS_PORT/metrics].")  # fmt: skip
@click.option("--widget-url", default=None,
              help="Show this widget address above the boards (the demo does).")  # fmt: skip
@click.pass_obj
def dashboard(
    settings: Settings,
    once: bool,
    seconds: float | None,
    refresh: float,
    metrics_url: str | None,
    widget_url: str | None,
) -> None:
    """Live leaderboard: top creators overall and per region, events scored per second."""
    _say_where(settings, redis=True)
    from streams.devtools.dashboard import run_dashboard

    run_dashboard(settings, once=once, seconds=seconds, refresh_s=refresh,
                  metrics_url=metrics_url, widget_url=widget_url)  # fmt: skip


@main.command("demo")
@click.option("--creators", type=click.IntRange(min=1), default=3000, show_default=True)
@click.option("--rate", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Simulated events per second.")  # fmt: skip
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many seconds [default: until Ctrl-C].")  # fmt: skip
@click.pass_obj
def demo(settings: Settings, creators: int, rate: int, seconds: float | None) -> None:
    """Worker, simulator and read API in the background, the live leaderboard in front, and
    the address of the live ranking widget (needs the stack)."""
    _say_where(settings, kafka=True, redis=True)
    from streams.devtools.demo import run_demo

    sys.exit(run_demo(settings, creators=creators, rate=rate, seconds=seconds))


# The read API's `serve` and `keys` (docs/api.md).
for _command in API_COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":
    main()
