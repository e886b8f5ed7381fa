"""`creator-scores keys create|list|revoke` and `creator-scores serve`, as an operator runs them,
against the real Redis."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import redis
from click.testing import CliRunner

from streams.cli import main
from streams.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def env(stack_settings: Settings, redis_prefix: str) -> Iterator[dict[str, str]]:
    yield {"REDIS_URL": stack_settings.redis_url, "CREATOR_SCORES_REDIS_PREFIX": redis_prefix}
    client = redis.Redis.from_url(stack_settings.redis_url)
    try:
        stale = list(client.scan_iter(match=f"{redis_prefix}*", count=1000))
        if stale:
            client.delete(*stale)
    finally:
        client.close()


def test_keys_are_created_listed_and_revoked_and_only_their_hash_is_kept(
    env: dict[str, str], stack_settings: Settings, redis_prefix: str
) -> None:
    runner = CliRunner()
    made = runner.invoke(main, ["keys", "create", "--partner", "Acme Brands",
                                "--regions", "id,uk", "--rate", "120"], env=env)  # fmt: skip
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("csk_") and len(token) > 50 and "\n" not in token
    assert "shown only now" in made.stderr and "regions GB,ID" in made.stderr

    listed = runner.invoke(main, ["keys", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    (key,) = orjson.loads(listed.stdout)
    assert key["partner"] == "Acme Brands" and key["regions"] == ["GB", "ID"]
    assert key["rate"] == 120 and token.startswith(f"csk_{key['key_id']}_")
    assert token not in listed.output

    client = redis.Redis.from_url(stack_settings.redis_url)
    try:
        stored = b"".join(
            b"".join(k + v for k, v in client.hgetall(name).items())
            for name in client.scan_iter(match=f"{redis_prefix}*")
            if client.type(name) == b"hash"
        )
    finally:
        client.close()
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored
    assert token.split("_", 2)[2].encode() not in stored  # the secret is nowhere

    assert runner.invoke(main, ["keys", "revoke", key["key_id"]], env=env).exit_code == 0
    again = runner.invoke(main, ["keys", "revoke", key["key_id"]], env=env)
    assert again.exit_code == 1 and "no key" in again.stderr
    assert orjson.loads(runner.invoke(main, ["keys", "list", "--json"], env=env).stdout) == []


@pytest.mark.parametrize("regions", [["ALL", "ID"], ["Indonesia"], [" "]])
def test_a_key_with_regions_that_mean_nothing_is_refused(
    env: dict[str, str], regions: list[str]
) -> None:
    args = ["keys", "create", "--partner", "x"]
    for region in regions:
        args += ["--regions", region]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2 and "--regions" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_runs_the_api_until_sigterm(env: dict[str, str]) -> None:
    made = CliRunner().invoke(main, ["keys", "create", "--partner", "p", "--regions", "*"], env=env)
    token = made.stdout.strip()
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "serve", "--port", str(port)],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        url = f"http://127.0.0.1:{port}"
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not answer within 30 s"
            time.sleep(0.1)
        board = httpx.get(f"{url}/v1/leaderboards/overall", headers={"X-API-Key": token})
        assert board.status_code == 200 and board.json()["entries"] == []
        assert httpx.get(f"{url}/v1/leaderboards/overall").status_code == 401
        assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "creator-scores read API"
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down cleanly, then exits by the signal it caught, as it came.
        assert process.wait(15) in (0, -signal.SIGTERM)
    assert process.stdout is not None
    with process.stdout:
        log = process.stdout.read().decode()
    assert "Application shutdown complete" in log and "Traceback" not in log, log
