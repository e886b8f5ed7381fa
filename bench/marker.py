"""A one-line file a baseline writes when it sees its first record.

The harness times each consumer from process start and, separately, from its
first consumed record, so that group-join time can be told apart from
processing time. The worker exposes the first record through its metrics; the
baselines, which have no metrics endpoint, write the wall time of their first
record to the file named by `BENCH_MARKER_FILE` instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class FirstRecord:
    """Call `seen()` on every record; only the first call touches the disk."""

    def __init__(self) -> None:
        path = os.environ.get("BENCH_MARKER_FILE")
        self._path = Path(path) if path else None
        self.done = self._path is None

    def seen(self) -> None:
        if self.done:
            return
        self.done = True
        assert self._path is not None
        tmp = self._path.with_suffix(".tmp")
        # Wall time and the process's own CPU clock (all threads) at the first record, so
        # per-core figures can leave start-up out exactly.
        tmp.write_text(f"{time.time()!r} {time.process_time()!r}")
        tmp.replace(self._path)


def read_marker(path: Path) -> tuple[float, float] | None:
    """(wall time, process CPU seconds) at the first record, or None before it."""
    try:
        wall, cpu = path.read_text().split()
        return float(wall), float(cpu)
    except (OSError, ValueError):
        return None
