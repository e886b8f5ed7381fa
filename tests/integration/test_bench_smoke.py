"""The benchmark harness still works: `python -m bench.run --smoke` end to end.

The smoke variant runs every scenario and every baseline on a tiny dataset
(5,000 events, 200 creators), and the scale profile on one of its own (4,000
events, 2,000 creators), on the real stack. Its figures mean nothing; what
this test checks is that every scenario produced numbers that are internally
consistent (percentiles ordered, rates positive, every sampled creator
reflected, the recovery comparison coherent), that every target is listed and
measured where a smoke run can measure it, that the run cleaned up after
itself, and that the report renders. Whether the pipeline meets its targets is
what the numbers say, not what this test asserts.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from aiokafka.admin import AIOKafkaAdminClient

from streams.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONSUMERS = ("pipeline", "naive_faust", "noop_faust", "raw_aiokafka", "quix")
#: The issue's targets for the pipeline, by how their text starts: each listed once.
PIPELINE_TARGETS = (
    "pipeline events/s per CPU-second >= 2x Quix Streams",
    "pipeline events/s >= 10x naive Faust",
    "freshness p99",
    "state: mean table value < 1.5 KB",
    "state: mean table value < 600 B",
    "worker peak RSS < 450 MB",
    "scale: the worker holds 1,000,000 creators",
    "recovery < 5 s",
    "scores after recovery identical",
    "leaderboard top-10 read p99 < 2 ms",
    "a sweep over 1,000,000 creators held in < 60 s",
    "live freshness p99 during a sweep < 2x without",
    "API top-10 p99 < 5 ms",
    "API a creator with its explanation and percentiles p99 < 10 ms",
    "API a partner search with three filters p99 < 50 ms",
)
#: Each variant of the worker is held to the pipeline's two ratio targets.
VARIANT_TARGETS = PIPELINE_TARGETS[:2]
#: Targets a smoke run cannot measure by nature: they name 10,000, 100,000 or 1,000,000
#: creators, and a smoke run holds 200 (2,000 in its scale profile). The figures they
#: are judged on are asserted instead (state and scale tests below).
NOT_MEASURABLE_IN_SMOKE = (
    *PIPELINE_TARGETS[3:7],
    PIPELINE_TARGETS[10],
    *PIPELINE_TARGETS[12:],  # the read API's: 100,000 creators and 50 clients
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("bench-smoke")
    out = folder / "smoke.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "bench.run", "--smoke",
            "--out", str(out), "--docs-dir", str(folder / "docs"),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert out.exists(), f"no results written:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    results = json.loads(out.read_text())
    assert proc.returncode == 0, (
        f"smoke run failed: {results.get('errors')}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return results, folder


def test_every_consumer_ran_to_the_end(smoke: tuple[dict[str, Any], Path]) -> None:
    results, _ = smoke
    assert results["errors"] == []
    runs = {r["consumer"]: r for r in results["throughput"]}
    # Every baseline and the worker (variants are only run when asked for).
    assert set(runs) == set(CONSUMERS) | set(results["config"]["variants"])
    total = results["datasets"][0]["events"]
    assert total >= 5_000  # a few re-deliveries ride on top of the asked-for count
    for name, run in runs.items():
        if name == "quix" and importlib.util.find_spec("quixstreams") is None:
            # `make test` installs the bench extra: in CI the peer must really run.
            assert not os.environ.get("CI"), "CI runs the peer: install the bench extra"
            assert run["available"] is False and "not available" in run["note"]
            continue
        assert run["completed"], (name, run.get("note"))
        assert run["committed_events"] == total
        assert run["events_per_s"] > 0 and run["events_per_cpu_s_with_startup"] > 0
        if "events_per_cpu_s" in run:  # absent when processing took too little CPU to time
            assert run["events_per_cpu_s"] >= run["events_per_cpu_s_with_startup"]
        assert run["wall_s_from_start"] >= run["wall_s_from_first_record"] > 0
        assert run["peak_rss_mb"] > 10
    for name in ("pipeline", *results["config"]["variants"]):
        worker = runs[name]
        assert worker["events_per_cpu_s"] > 0
        sampled, _, expected = worker["redis_sample_ok"].partition("/")
        assert int(expected) > 0 and sampled == expected
        metrics = worker["worker_metrics"]
        assert metrics["creator_scores_events_consumed_total"] >= total
        assert 0 < metrics["creator_scores_creators_in_state"] <= 200
    ratios = results["ratios"]["c200"]
    assert ratios["pipeline/raw_aiokafka"]["events_per_s"] > 0


def test_freshness_reads_recovery_and_state_have_sane_numbers(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    fresh = results["freshness"]
    assert fresh["measured_events"] > 50 and fresh["unresolved_events"] == 0
    assert 0 < fresh["p50_ms"] <= fresh["p95_ms"] <= fresh["p99_ms"] <= fresh["max_ms"]

    reads = results["reads"]
    assert reads["board_members"] > 0
    for kind in ("leaderboard_top10", "creator_hash"):
        stats = reads["redis_py"][kind]
        assert 0 < stats["p50_us"] <= stats["p99_us"] <= stats["max_us"]
    c_client = reads["c_client"]
    if c_client["available"]:
        board = c_client["leaderboard_top10"]
        assert 0 < board["p50_us"] <= board["p99_us"]
    else:
        assert c_client["reason"].startswith("not available")

    recovery = results["recovery"]
    assert recovery["a_creators_held_at_kill"] > 0
    assert 0 < recovery["serving_again_from_b_start_s"] <= recovery["serving_again_from_kill_s"]
    assert recovery["creators_compared"] > 0
    # Whether the pipeline recovers exactly is what this scenario measures (and reports as a
    # target); here only the measurement itself must hold together.
    differing = recovery["creators_differing"]
    assert 0 <= differing <= recovery["creators_compared"]
    assert len(recovery["differing_fields"]) == min(differing, 5)
    assert recovery["identical_to_undisturbed"] == (
        differing == 0 and not recovery["boards_differing"]
    )

    state = results["state_size"]["per_dataset"]["c200"]
    changelog = state["changelog"]
    assert changelog["available"] and changelog["creators"] > 0
    # The table value is the changelog record's value: the model's state plus the
    # envelope's header, and less than key plus value.
    assert (
        0
        < changelog["model_state_bytes_mean"]
        < changelog["table_value_bytes_mean"]
        < changelog["bytes_per_creator_mean"]
    )
    assert changelog["table_value_bytes_total"] == pytest.approx(
        changelog["table_value_bytes_mean"] * changelog["creators"], rel=0.01
    )
    assert state["memory"]["end_rss_mb"] > 0


def test_scale_profile_ran_alone_to_the_end_and_measured_what_it_holds(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    scale = results["scale"]
    dataset, run = scale["dataset"], scale["pipeline"]
    assert dataset["creators"] == results["config"]["scale"]["creators"] == 2_000
    assert dataset["events"] >= 4_000
    assert dataset["label"] not in {d["label"] for d in results["datasets"]}
    assert run["consumer"] == "pipeline" and run["completed"], run.get("note")
    assert run["committed_events"] == dataset["events"]
    assert run["events_per_s"] > 0 and run["events_per_cpu_s"] > 0
    sampled, _, expected = run["redis_sample_ok"].partition("/")
    assert int(expected) > 0 and sampled == expected
    state = run["state"]
    assert state["available"]
    # Every creator of the scale profile posts, so the worker holds the whole
    # population, and the table the changelog rebuilds is the one the worker counted.
    assert dataset["source"] == "scale_profile_events"
    assert dataset["distinct_keys"] == dataset["creators"]
    held = state["creators"]
    assert held == dataset["creators"]
    assert held == run["worker_metrics"]["creator_scores_creators_in_state"]
    assert state["table_value_bytes_total"] > 0
    assert 0 < state["model_state_bytes_mean"] < state["table_value_bytes_mean"]
    assert run["memory"]["peak_rss_mb"] == run["peak_rss_mb"] > 10


def test_every_target_is_listed_and_measured_where_a_smoke_run_can(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    targets = results["targets"]
    variants = sorted(results["config"]["variants"])
    for prefix in PIPELINE_TARGETS:
        listed = [t for t in targets if t["target"].startswith(prefix)]
        assert len([t for t in listed if not t["target"].endswith("]")]) == 1, prefix
    for variant in variants:
        for prefix in VARIANT_TARGETS:
            listed = [
                t
                for t in targets
                if t["target"].startswith(prefix) and t["target"].endswith(f" [{variant}]")
            ]
            assert len(listed) == 1, (prefix, variant)
    assert len(targets) == len(PIPELINE_TARGETS) + len(VARIANT_TARGETS) * len(variants)
    assert not any("do-nothing" in t["target"] for t in targets)
    quix_missing = importlib.util.find_spec("quixstreams") is None and not os.environ.get("CI")
    for t in targets:
        if t["target"].startswith(NOT_MEASURABLE_IN_SMOKE):
            # Listed, not judged, and saying why (no such dataset, too few creators held).
            assert t["pass"] is None and t["measured"], t
        elif quix_missing and "Quix Streams" in t["target"]:
            assert t["pass"] is None, t  # the peer did not run (see the first test)
        else:
            assert t["pass"] in (True, False), t
    scale = next(t for t in targets if t["target"].startswith("scale:"))
    assert "2,000 of 2,000 creators held" in scale["measured"]


def test_report_renders_and_the_run_left_nothing_behind(
    smoke: tuple[dict[str, Any], Path], stack_settings: Settings
) -> None:
    results, folder = smoke
    text = (folder / "docs" / "benchmarks.md").read_text()
    assert "## Targets" in text and "pipeline / naive_faust = " in text
    assert "## 6. Scale profile" in text and "| sum of table values MB |" in text
    assert "## 7. Day-boundary sweep" in text and "| 2,000 |" in text
    (sweep,) = results["sweep"]
    assert sweep["held"] == 2_000 and sweep["sweep"]["rescored"] == 2_000
    assert "## 8. Read API" in text and "| top-10 |" in text
    api = results["api"]
    assert api["creators"] == 3_000 and all(api["api"][k]["errors"] == 0 for k in api["api"])
    assert all(api["api"][k]["requests"] > 0 for k in ("top10", "creator", "search"))
    delay = results["widget_delay"]
    assert delay["idle"]["received"] == delay["idle"]["probes"] == 20
    assert delay["loaded"]["event_to_sse_ms"]["p50"] > 0
    assert "| idle |" in text
    assert results["machine"]["cpu_model"] in text
    if importlib.util.find_spec("matplotlib") is not None:
        assert (folder / "docs" / "benchmarks.png").stat().st_size > 10_000

    run_id = results["run_id"]
    client = redis.Redis.from_url(stack_settings.redis_url)
    try:
        assert list(client.scan_iter(match=f"bench-{run_id}*", count=1000)) == []
    finally:
        client.close()

    async def leftover_topics() -> list[str]:
        # Deletion is asynchronous on the broker: give metadata a moment to catch up.
        admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            for _ in range(30):
                left = [t for t in await admin.list_topics() if run_id in t]
                if not left:
                    return []
                await asyncio.sleep(0.5)
            return left
        finally:
            await admin.close()

    assert asyncio.run(leftover_topics()) == []

    if importlib.util.find_spec("confluent_kafka") is not None:  # groups need its admin
        assert "failed" not in results["cleanup"]["groups"], results["cleanup"]

        async def leftover_groups() -> list[str]:
            admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap_servers)
            await admin.start()
            try:
                groups = await admin.list_consumer_groups()
            finally:
                await admin.close()
            return [str(g[0]) for g in groups if run_id in str(g[0])]

        assert asyncio.run(leftover_groups()) == []
