"""A worker whose broker is gone for good still stops when told to, within its bound.

Faust's graceful stop waits for a group coordinator that never comes back when the broker
is gone (seen: a worker still running minutes after SIGTERM). The worker's stop is
bounded (`CREATOR_SCORES_STOP_TIMEOUT_S`, `streams.agents.BoundedWorker`). On a Kafka
of the test's own, stopped for good, as the shared one must never be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streams.agents import BoundedWorker
from streams.devtools.stack import free_port
from tests.support.workers import start_worker, worker_env

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 8.0


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _stack(env: dict[str, str], command: str) -> None:
    done = subprocess.run([sys.executable, "-m", "streams.cli", "stack", command], env=env,
                          capture_output=True, text=True, timeout=180, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_worker_whose_broker_is_gone_for_good_still_stops_when_told(tmp_path: Path) -> None:
    kafka, redis = free_port(), free_port()
    stack_env = worker_env(REPO, {
        "CREATOR_SCORES_STACK_DIR": str(tmp_path / "stack"),
        "CREATOR_SCORES_KAFKA_PORT": str(kafka),
        "CREATOR_SCORES_KAFKA_CONTROLLER_PORT": str(free_port()),
        "CREATOR_SCORES_REDIS_PORT": str(redis),
        "CREATOR_SCORES_KAFKA_HEAP": "256m",
        "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{kafka}",
        "REDIS_URL": f"redis://localhost:{redis}/0",
    })  # fmt: skip
    _stack(stack_env, "up")  # a Kafka and a Redis of the test's own
    try:
        metrics_port = free_port()
        env = worker_env(REPO, {
            "CREATOR_SCORES_STACK_DIR": str(tmp_path / "stack"),
            "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{kafka}",
            "REDIS_URL": f"redis://localhost:{redis}/0",
            "CREATOR_SCORES_METRICS_PORT": str(metrics_port),
            "CREATOR_SCORES_WEB_PORT": str(free_port()),
            "CREATOR_SCORES_STOP_BATCH_WAIT_S": "3",
            "CREATOR_SCORES_STOP_TIMEOUT_S": str(STOP_TIMEOUT_S),
        })  # fmt: skip
        proc = start_worker(env, tmp_path)
        try:
            deadline = time.monotonic() + 90
            while not _ready(metrics_port):
                assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the worker never got ready"
                time.sleep(0.5)
            time.sleep(10)  # settled in its group
            # The broker is killed, and never comes back.
            os.kill(int((tmp_path / "stack" / "kafka.pid").read_text()), signal.SIGKILL)
            time.sleep(5)
            proc.send_signal(signal.SIGTERM)
            told = time.monotonic()
            status = proc.wait(timeout=STOP_TIMEOUT_S + 30)
            took = time.monotonic() - told
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert took < STOP_TIMEOUT_S + 5, f"{took:.1f}s to stop:\n{log[-3000:]}"
        # Either it managed a graceful stop in time, or it said why it cut the stop short.
        if status != 0:
            assert status == BoundedWorker.FORCED_EXIT, log[-3000:]
            assert "still stopping 8s after SIGTERM" in log, log[-3000:]
    finally:
        _stack(stack_env, "down")
