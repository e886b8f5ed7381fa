"""Every command that talks to Kafka or Redis names the addresses it uses, passwords hidden.

A newcomer whose commands read another project's Redis could not tell (issue 15): now
each command says where it goes, on stderr (stdout stays clean for a pipe), and a
command that cannot reach Redis says where it looked, again without the password, as
an error rather than a traceback. The commands run against the real dev stack under a
prefix of their own; a password is only ever given on a path that does not log in (a
closed port, or a request refused before connecting), since the dev Redis has none and
refuses AUTH with one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result

from streams.cli import main
from streams.devtools.stack import free_port
from streams.keys import Keys
from streams.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "hunter2-secret"


def _run(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> Result:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(main, list(args))


def _no_password(result: Result) -> None:
    assert PASSWORD not in result.stdout + result.stderr


def _says_using_redis(result: Result, url: str, prefix: str) -> None:
    assert f"using Redis {url} (prefix '{prefix}')\n" in result.stderr, result.stderr


# --------------------------------------------------------------------------- the real stack


def test_top_names_the_redis_it_reads(
    stack_settings: Settings, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(monkeypatch, {"CREATOR_SCORES_REDIS_PREFIX": redis_prefix}, "top")
    assert result.exit_code == 0, result.output
    _says_using_redis(result, stack_settings.redis_url, redis_prefix)
    assert "using" not in result.stdout  # stdout is the board alone
    # The password is hidden even where the command stops before connecting.
    secret = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    refused = _run(monkeypatch, {"REDIS_URL": secret}, "top", "--region", "U1")
    assert refused.exit_code == 2, refused.output
    _says_using_redis(refused, secret.replace(PASSWORD, "***"), redis_prefix)
    _no_password(refused)


def test_republish_names_the_redis_it_writes(
    stack_settings: Settings,
    redis_prefix: str,
    client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client.set(Keys(redis_prefix).partition_marker(3), "1")
    result = _run(monkeypatch, {"CREATOR_SCORES_REDIS_PREFIX": redis_prefix}, "republish")
    assert result.exit_code == 0, result.output
    _says_using_redis(result, stack_settings.redis_url, redis_prefix)
    assert f"deleted 1 partition markers under '{redis_prefix}'" in result.stdout
    assert client.exists(Keys(redis_prefix).partition_marker(3)) == 0


def test_rescore_no_wait_names_the_redis_it_asks_through(
    stack_settings: Settings,
    redis_prefix: str,
    client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"CREATOR_SCORES_REDIS_PREFIX": redis_prefix, "CREATOR_SCORES_SWEEP_INTERVAL_S": "2"}
    result = _run(monkeypatch, env, "rescore", "--no-wait")
    assert result.exit_code == 0, result.output
    _says_using_redis(result, stack_settings.redis_url, redis_prefix)
    assert "asked every worker for a full re-score" in result.stdout
    assert client.exists(Keys(redis_prefix).rescore()) == 1


def test_stack_status_names_the_clients_addresses_and_a_mismatch(
    stack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka_port = stack_settings.kafka_port
    redis_port = stack_settings.redis_port
    agreed = _run(monkeypatch, {}, "stack", "status")
    assert agreed.exit_code == 0, agreed.output
    assert (
        f"clients use Kafka at {stack_settings.kafka_bootstrap_servers}, "
        f"Redis at {stack_settings.redis_url}\n"
    ) in agreed.stdout
    assert "warning" not in agreed.stdout
    # Clients pointed elsewhere: both addresses named, the password hidden.
    elsewhere, other = free_port(), free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{elsewhere}",
        "REDIS_URL": f"redis://:{PASSWORD}@localhost:{other}/0",
    }
    warned = _run(monkeypatch, env, "stack", "status")
    assert warned.exit_code == 0, warned.output  # the stack itself is up
    hidden = f"redis://:***@localhost:{other}/0"
    assert f"clients use Kafka at localhost:{elsewhere}, Redis at {hidden}\n" in warned.stdout
    assert (
        f"warning: KAFKA_BOOTSTRAP_SERVERS=localhost:{elsewhere} but the stack's Kafka "
        f"listens on 127.0.0.1:{kafka_port} (CREATOR_SCORES_KAFKA_PORT)"
    ) in warned.stdout
    assert (
        f"warning: REDIS_URL={hidden} but the stack's Redis listens on "
        f"127.0.0.1:{redis_port} (CREATOR_SCORES_REDIS_PORT)"
    ) in warned.stdout
    _no_password(warned)


# --------------------------------------------------------------------------- Redis away


@pytest.mark.parametrize(
    ("args", "verb"),
    [
        (["top"], "read"),
        (["top", "--region", "GB", "--json"], "read"),
        (["show", "cr-000001"], "read"),
        (["republish"], "reach"),
        (["rescore", "--no-wait"], "reach"),
    ],
    ids=["top", "top-json", "show", "republish", "rescore"],
)
def test_a_redis_that_cannot_be_reached_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch, args: list[str], verb: str
) -> None:
    port = free_port()  # nothing listens there
    secret = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    env = {"REDIS_URL": secret, "CREATOR_SCORES_SWEEP_INTERVAL_S": "2"}
    result = _run(monkeypatch, env, *args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # an error message, not a traceback
    assert f"Error: cannot {verb} Redis at redis://:***@127.0.0.1:{port}/0: " in result.stderr
    _no_password(result)


def test_the_dashboard_names_its_redis_and_says_it_is_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    secret = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    result = _run(
        monkeypatch, {"REDIS_URL": secret}, "dashboard", "--once",
        "--metrics-url", "http://127.0.0.1:9/metrics",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"using Redis redis://:***@127.0.0.1:{port}/0 " in result.stderr
    assert "Redis unavailable" in result.stdout
    _no_password(result)


def test_in_a_real_process_the_error_has_no_traceback() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "REDIS_URL": f"redis://user:{PASSWORD}@127.0.0.1:{port}/0"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli", "top"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"Error: cannot read Redis at redis://user:***@127.0.0.1:{port}/0: " in proc.stderr
    assert "Traceback" not in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
