"""The demo: a worker, the simulator and the read API in the background, the live
leaderboard in front, and the address of the live ranking widget beside it.

`make demo` ends here once the stack is up. Everything the demo starts is a
child process in its own process group, so Ctrl-C (or a crash of any part)
stops all of it within a few seconds, saying what it stopped, and leaves only the
stack running. The widget's page needs a partner key: the demo creates one for every
region, puts it in the address it prints, and revokes it when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from streams.devtools.stack import port_open
from streams.settings import Settings

#: The demo's worker gives up a batch in flight this fast when stopped (Redis or Kafka
#: gone): a person pressing Ctrl-C waits seconds, not the production grace period.
_WORKER_STOP_WAIT_S = "3"


def _spawn(
    args: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(name: str, proc: subprocess.Popen[bytes], timeout: float = 8.0) -> None:
    if proc.poll() is not None:
        return
    print(f"stopping the {name} (pid {proc.pid})...", flush=True)
    started = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"the {name} did not stop within {timeout:.0f}s; killed it", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return
    print(f"the {name} stopped in {time.monotonic() - started:.1f}s", flush=True)


def _api_address(proc: subprocess.Popen[bytes], log: Path, start: int, timeout: float) -> str:
    """The address `creator-scores serve` says it listens on (its log past `start` bytes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with log.open("rb") as f:
            f.seek(start)
            found = _LISTENING.search(f.read())
        if found:
            return found.group(1).decode()
        time.sleep(0.1)
    raise RuntimeError(f"the read API did not start (see {log})")


_LISTENING = re.compile(rb"Uvicorn running on (http://\S+:\d+)")


def _demo_key(settings: Settings, token_to_revoke: str | None = None) -> str | None:
    """A key for every region for the demo's widget (None: Redis refused), or revoke one."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from streams.api.auth import Keyring
    from streams.keys import Keys

    async def run() -> str | None:
        client = Redis.from_url(settings.redis_url, socket_timeout=5.0)
        try:
            ring = Keyring(client, Keys(settings.redis_prefix), settings.api_rate_window_s)
            if token_to_revoke is not None:
                await ring.revoke(token_to_revoke)
                return None
            _, token = await ring.create("make demo", None, 100_000)
            return token
        finally:
            await client.aclose()

    try:
        return asyncio.run(run())
    except (RedisError, OSError) as exc:
        print(f"no widget: Redis refused the demo's key ({exc})", file=sys.stderr)
        return None


def _start_widget(settings: Settings, logs: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """The read API (on its configured port if free, else one the kernel picks) and the
    widget's address with a demo key."""
    log = logs / "demo-api.log"
    start = log.stat().st_size if log.exists() else 0
    port = 0 if port_open(settings.api_host, settings.api_port) else settings.api_port
    api = _spawn(["serve", "--port", str(port)], log)
    print(f"read API pid {api.pid} (log {log})")
    try:
        address = _api_address(api, log, start, timeout=30.0)
    except RuntimeError:
        _stop("read API", api)
        raise
    token = _demo_key(settings)
    if token is None:
        _stop("read API", api)
        raise RuntimeError("no key for the widget")
    return api, address, token


def run_demo(settings: Settings, creators: int, rate: int, seconds: float | None) -> int:
    """Run worker + simulator + read API + dashboard; return the exit status."""
    logs = settings.stack_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    worker = _spawn(
        ["worker"],
        logs / "demo-worker.log",
        {"CREATOR_SCORES_STOP_BATCH_WAIT_S": _WORKER_STOP_WAIT_S},
    )
    sim_args = ["simulate", "--creators", str(creators), "--rate", str(rate), "--duration", "0"]
    simulator = _spawn(sim_args, logs / "demo-simulator.log")
    print(f"worker pid {worker.pid} (log {logs / 'demo-worker.log'})")
    print(f"simulator pid {simulator.pid} (log {logs / 'demo-simulator.log'})")
    children = [("worker", worker), ("simulator", simulator)]
    token: str | None = None
    dash_cmd = [sys.executable, "-m", "streams.cli", "dashboard"]
    try:
        api, address, token = _start_widget(settings, logs)
    except RuntimeError as exc:
        # The terminal leaderboard is the demo; the widget is a view more.
        print(f"no live widget this time: {exc}", file=sys.stderr)
    else:
        children.append(("read API", api))
        widget = f"{address}/widget?key={token}"
        print(f"live ranking widget: {widget}")
        print(f"  one region, one theme: {widget}&board=influence:ID:beauty")
        dash_cmd += ["--widget-url", widget]
    if seconds is not None:
        dash_cmd += ["--seconds", str(seconds)]
    status = 0
    try:
        dashboard = subprocess.Popen(dash_cmd)
        while dashboard.poll() is None:
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; see {logs}", file=sys.stderr)
                    dashboard.terminate()
                    status = 1
            time.sleep(0.5)
        if dashboard.returncode not in (0, None, -signal.SIGINT):
            status = dashboard.returncode or 1
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C while stopping must not leave the children running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name, proc in reversed(children):
            _stop(name, proc)
        if token is not None:
            _demo_key(settings, token_to_revoke=token)
    print("demo stopped; the stack keeps running (creator-scores stack down stops it)")
    return status
