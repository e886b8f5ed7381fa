"""`creator-scores worker` as a real process: start, SIGTERM, kill -9, RSS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

#: The console script of the venv running the tests. Whose code it runs is decided by
#: PYTHONPATH in the worker's environment (see `worker_env`), not by the script.
CLI = Path(sys.executable).with_name("creator-scores")


def start_cli(
    args: Sequence[str], env: Mapping[str, str], workdir: Path, name: str
) -> subprocess.Popen[bytes]:
    """`creator-scores *args` in its own session (so kill -9 takes its whole group),
    logging to name.log in `workdir`."""
    with (workdir / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            [str(CLI), *args],
            env=dict(env),
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def start_worker(
    env: Mapping[str, str], workdir: Path, name: str = "worker"
) -> subprocess.Popen[bytes]:
    """A worker (`start_cli`), logging to name.log."""
    return start_cli(["worker", "-l", "info"], env, workdir, name)


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM and wait; returns the exit status (SIGKILL if it would not stop)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    return proc.returncode


def kill9(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process from /proc, None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def worker_env(repo_root: Path, values: Mapping[str, str]) -> dict[str, str]:
    """The environment of a worker: ours without CREATOR_SCORES_*, `values`, this code first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREATOR_SCORES_")}
    env.update(values)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(repo_root) + (os.pathsep + path if path else "")
    return env
