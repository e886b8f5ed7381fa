"""The read API's commands: `creator-scores serve` and `creator-scores keys create|list|revoke`.

`streams.cli` adds `COMMANDS` to the main group; FastAPI, uvicorn and Redis are imported
inside the commands so that the rest of the command line stays quick to start.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from streams.settings import Settings, redacted

if TYPE_CHECKING:
    from streams.api.auth import Keyring

T = TypeVar("T")


@click.command("serve")
@click.option(
    "--host", default=None, help="Address to listen on [default: CREATOR_SCORES_API_HOST]."
)
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port [default: CREATOR_SCORES_API_PORT].")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes serving the API (uvicorn workers).")  # fmt: skip
@click.option("--access-log", is_flag=True, help="Log every request (off: /metrics counts them).")
@click.pass_obj
def serve(
    settings: Settings, host: str | None, port: int | None, workers: int, access_log: bool
) -> None:
    """Serve the read API (docs/api.md) from Redis until SIGTERM/SIGINT."""
    import uvicorn

    host = host or settings.api_host
    port = settings.api_port if port is None else port
    click.echo(
        f"read API on http://{host}:{port} (OpenAPI at /docs), Redis "
        f"{redacted(settings.redis_url)} (prefix {settings.redis_prefix!r})",
        err=True,
    )
    if workers > 1:
        # Each worker process builds its app from the environment, as this one read it.
        uvicorn.run("streams.api.app:from_environment", factory=True, workers=workers,
                    host=host, port=port, access_log=access_log, server_header=False)  # fmt: skip
    else:
        from streams.api.app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, access_log=access_log,
                    server_header=False)  # fmt: skip


@click.group("keys")
def keys() -> None:
    """Partner API keys for the read API: create (the token is shown once), list, revoke."""


@keys.command("create")
@click.option("--partner", required=True, help="Who the key is for.")
@click.option("--regions", required=True, multiple=True,
              help="Region codes it may read (repeat, or comma-separated); * for all.")  # fmt: skip
@click.option("--rate", type=click.IntRange(min=1), default=None,
              help="Requests per window [default: CREATOR_SCORES_API_DEFAULT_RATE].")  # fmt: skip
@click.pass_obj
def keys_create(
    settings: Settings, partner: str, regions: tuple[str, ...], rate: int | None
) -> None:
    """Create a key and print its token, once: only its hash is kept."""
    from streams.api.auth import parse_regions
    from streams.readers import ReaderError

    try:
        allowed = parse_regions(regions)
    except ReaderError as exc:
        raise click.BadParameter(str(exc), param_hint="--regions") from exc
    limit = rate or settings.api_default_rate
    key, token = _run(settings, lambda ring: ring.create(partner, allowed, limit))
    click.echo(
        f"created key {key.key_id} for {key.partner!r}: regions {key.regions_text()}, "
        f"{key.rate} requests per {settings.api_rate_window_s} s. The token (shown only now):",
        err=True,
    )
    click.echo(token)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def keys_list(settings: Settings, as_json: bool) -> None:
    """The keys: id, partner, regions, rate, creation time (never the tokens)."""
    import orjson

    found = _run(settings, lambda ring: ring.list())
    if as_json:
        click.echo(orjson.dumps([k.to_dict() for k in found], option=orjson.OPT_INDENT_2))
        return
    if not found:
        click.echo("no keys", err=True)
        return
    import datetime as dt

    for k in found:
        created = dt.datetime.fromtimestamp(k.created_at_ms / 1000, tz=dt.UTC)
        click.echo(f"{k.key_id}  {k.partner}  regions {k.regions_text()}  rate {k.rate}  "
                   f"created {created.isoformat(timespec='seconds')}")  # fmt: skip


@keys.command("revoke")
@click.argument("key_id")
@click.pass_obj
def keys_revoke(settings: Settings, key_id: str) -> None:
    """Revoke a key (by id or token) at once. Exit 1 if there is no such key."""
    if not _run(settings, lambda ring: ring.revoke(key_id)):
        click.echo(f"no key {key_id!r}", err=True)
        sys.exit(1)
    click.echo(f"revoked {key_id}")


def _run(settings: Settings, action: Callable[[Keyring], Awaitable[T]]) -> T:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from streams.api.auth import Keyring
    from streams.keys import Keys

    async def run() -> T:
        client = Redis.from_url(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=3.0)
        try:
            ring = Keyring(client, Keys(settings.redis_prefix), settings.api_rate_window_s)
            return await action(ring)
        finally:
            await client.aclose()

    try:
        return asyncio.run(run())
    except (RedisError, OSError) as exc:
        raise click.ClickException(
            f"cannot reach Redis at {redacted(settings.redis_url)}: {exc}"
        ) from exc


#: What `streams.cli` adds to `creator-scores`.
COMMANDS = (serve, keys)
