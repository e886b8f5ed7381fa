"""The demo: a worker and the simulator in the background, the live leaderboard in front.

`make demo` ends here once the stack is up. Everything the demo starts is a
child process in its own process group, so Ctrl-C (or a crash of any part)
stops all of it within a few seconds, saying what it stopped, and leaves only the
stack running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

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


def run_demo(settings: Settings, creators: int, rate: int, seconds: float | None) -> int:
    """Run worker + simulator + dashboard; return the exit status."""
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
    dash_cmd = [sys.executable, "-m", "streams.cli", "dashboard"]
    if seconds is not None:
        dash_cmd += ["--seconds", str(seconds)]
    status = 0
    try:
        dashboard = subprocess.Popen(dash_cmd)
        while dashboard.poll() is None:
            for name, proc in (("worker", worker), ("simulator", simulator)):
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
        _stop("simulator", simulator)
        _stop("worker", worker)
    print("demo stopped; the stack keeps running (creator-scores stack down stops it)")
    return status
