"""`creator-scores serve` as a real process on a free port, for tests that drive the read API
from outside (the widget's browser test): the port is the one the server bound (`--port 0`),
read from its log, so no port is assumed free."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from tests.support.workers import start_cli

_LISTENING = re.compile(rb"Uvicorn running on (http://[\d.]+:\d+)")


def start_api(
    env: Mapping[str, str], workdir: Path, name: str = "api", timeout: float = 20.0
) -> tuple[subprocess.Popen[bytes], str]:
    """The API in its own session, logging to name.log; returns it with its base URL."""
    log_path = workdir / f"{name}.log"
    proc = start_cli(["serve", "--host", "127.0.0.1", "--port", "0"], env, workdir, name)
    deadline = time.monotonic() + timeout
    while True:
        found = _LISTENING.search(log_path.read_bytes())
        if found:
            return proc, found.group(1).decode()
        if proc.poll() is not None:
            raise AssertionError(
                f"creator-scores serve exited with {proc.returncode}:\n"
                + log_path.read_text(errors="replace")[-3000:]
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"creator-scores serve did not start in {timeout:.0f} s")
        time.sleep(0.05)
