"""Ctrl-C on the demo, as a person at a terminal presses it: everything stops within seconds,
the demo says what it stopped, and the last frame of the leaderboard stays on screen.

The demo runs as a process of its own with the test's own topics and Redis prefix, its
output going to a file (off a terminal the dashboard prints plain frames, which is what
`make demo | tee demo.log` sees); Ctrl-C is SIGINT to its whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from streams.devtools.stack import free_port

if TYPE_CHECKING:
    from tests.e2e.conftest import WorkerEnv

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FRAME = "top 10 overall"


def _wait_for_frames(log: Path, proc: subprocess.Popen[bytes], count: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if text.count(FRAME) >= count and "consumed" in text.rsplit(FRAME, 1)[0]:
            return text
        assert proc.poll() is None, f"the demo ended on its own:\n{text[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no {count} frames within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def test_ctrl_c_stops_the_demo_within_seconds_and_says_what_it_stopped(
    worker_env: WorkerEnv, tmp_path: Path
) -> None:
    env = {
        **worker_env.env,
        "CREATOR_SCORES_METRICS_PORT": str(free_port()),
        "CREATOR_SCORES_API_PORT": str(free_port()),
        "PYTHONPATH": str(REPO),
    }
    log = tmp_path / "demo.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "demo", "--creators", "300", "--rate", "300"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=tmp_path,
        )  # fmt: skip
    try:
        before = _wait_for_frames(log, proc, count=2, timeout=120)
        assert "live ranking widget: http://" in before
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        pressed = time.monotonic()
        proc.wait(timeout=30)
        took = time.monotonic() - pressed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text(errors="replace")
    assert took < 15, f"{took:.1f}s to stop:\n{text[-3000:]}"
    for name in ("worker", "simulator", "read API"):
        assert f"stopping the {name} (pid" in text, text[-3000:]
        assert f"the {name} stopped in" in text, text[-3000:]
    assert "did not stop within" not in text and "Traceback" not in text, text[-3000:]
    assert text.rstrip().endswith("demo stopped; the stack keeps running "
                                  "(creator-scores stack down stops it)")  # fmt: skip
    # The last frame is still there, whole, above what the demo said when it stopped.
    last = text.split("stopping the ", 1)[0].rsplit(FRAME, 1)[1]
    assert "leaders by region" in last and "provisional" in last, last
