"""The `creator-scores` command line: one entry point for operators and developers.

Each command reads the settings once and hands them to the module that does
the work; heavy imports (Faust, Redis) happen inside the commands so that
`creator-scores --help` and `stack` stay quick.
"""

from __future__ import annotations

import sys
import time

import click

from streams.settings import Settings, load_settings


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Real-time creator scores: Kafka in, Faust state, Redis out."""
    ctx.obj = load_settings()


@main.group()
def stack() -> None:
    """The local Apache Kafka + Redis stack (background processes under .stack/)."""


@stack.command("up")
@click.pass_obj
def stack_up(settings: Settings) -> None:
    """Start Kafka (KRaft, from the official jars) and Redis; reuse what already runs."""
    from streams.stack import LocalStack, StackError

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
    from streams.stack import LocalStack

    stopped = LocalStack(settings).down()
    click.echo("stopped " + ", ".join(stopped) if stopped else "nothing to stop")


@stack.command("status")
@click.pass_obj
def stack_status(settings: Settings) -> None:
    """Say what runs, where, and whether it answers. Exit 1 if anything is down."""
    from streams.stack import LocalStack

    statuses = LocalStack(settings).status()
    for status in statuses:
        click.echo(status.line())
    if not all(s.reachable for s in statuses):
        sys.exit(1)


if __name__ == "__main__":
    main()
