"""The demo: a worker and the simulator in the background, the live leaderboard in front.

`make demo` ends here once the stack is up. Everything the demo starts is a
child process in its own process group, so Ctrl-C (or a crash of any part)
stops all of it and leaves only the stack running.
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


def _spawn(args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_demo(settings: Settings, creators: int, rate: int, seconds: float | None) -> int:
    """Run worker + simulator + dashboard; return the exit status."""
    logs = settings.stack_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    worker = _spawn(["worker"], logs / "demo-worker.log")
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
        _stop(simulator)
        _stop(worker)
    print("demo stopped; the stack keeps running (creator-scores stack down stops it)")
    return status
