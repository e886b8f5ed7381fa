"""`python -m bench.api` runs end to end on a small population: every read is timed through
the API and straight from Redis, without errors, and the ratios are computed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_the_api_bench_times_every_read(tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.api", "--creators", "400", "--scored", "100",
         "--seconds", "0.3", "--clients", "4", "--out", str(out)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["creators"] == 400
    for group, kinds in (("api", ("top10", "creator", "search")),
                         ("api_paced", ("top10", "creator", "search")),
                         ("redis", ("top10", "top10_script", "creator", "creator_script",
                                    "search_script"))):  # fmt: skip
        for kind in kinds:
            figures = report[group][kind]
            assert figures["requests"] > 0 and figures["errors"] == 0, (group, kind, figures)
            assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert set(report["ratios"]) == {"top10", "creator", "search"}
