"""Turns one result JSON into `docs/benchmarks.md` (tables, targets, method) and a plot.

Everything in the document is computed from the JSON of a single run, so the
ratios compare figures taken minutes apart on the same machine. Regenerate the
docs from a stored result with `python -m bench.report bench/results/<run>.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT

#: Hand-written findings (what was tried, what it measured), placed after the tables.
COMMENTARY = REPO_ROOT / "bench" / "commentary.md"

CONSUMER_ORDER = ("pipeline", "naive_faust", "noop_faust", "raw_aiokafka", "quix")
SHORT = {
    "pipeline": "full pipeline",
    "naive_faust": "(a) naive Faust",
    "noop_faust": "(b) do-nothing Faust",
    "raw_aiokafka": "(c) aiokafka + orjson",
    "quix": "(d) Quix Streams",
}


def _fmt(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        text = f"{value:,.{digits}f}"
        return f"{text}{unit}"
    return str(value)


def _ratio(value: float | None) -> str:
    """2 decimals, or 3 significant digits below 0.1 (0.00187x, not 0.00x)."""
    if value is None:
        return "n/a"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.3g}x"


def _pipeline_runs(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["dataset"]: r for r in results.get("throughput", []) if r["consumer"] == "pipeline"}


# The targets (issue 11, "Lean state, vectorised scoring"), in one place so that
# the evaluation, the text and the plot's lines agree.
NAIVE_RATIO = 10.0  # pipeline events/s over the naive Faust baseline's, every dataset
QUIX_CPU_RATIO = 2.0  # pipeline events/CPU-s over Quix Streams', every dataset (aim: 3x)
FRESHNESS_P99_MS = 250.0  # produce -> score in Redis, at half the pipeline's maximum rate
READ_P99_MS = 2.0  # leaderboard top-10 read
RECOVERY_S = 5.0  # from the kill -9 to serving scores again, largest dataset
#: mean table value (the changelog record's value) at this many creators, bytes
STATE_MEAN_BYTES = {10_000: 1536, 100_000: 600}
RSS_CREATORS, RSS_MB = 100_000, 450.0  # the pipeline's peak RSS at this many creators
#: the scale profile: the worker holds this many creators' state in under this much RSS
SCALE_CREATORS, SCALE_RSS_MB = 1_000_000, 3 * 1024.0


def _verdict(value: float, limit: float, completed: bool) -> bool | None:
    """value < limit; a figure from a run that did not finish can fail a target, not pass it."""
    if value >= limit:
        return False
    return True if completed else None


def _run_at(results: dict[str, Any], creators: int) -> dict[str, Any] | None:
    """The pipeline's throughput run over the dataset of exactly `creators` creators."""
    for run in _pipeline_runs(results).values():
        if run.get("creators") == creators:
            return run
    return None


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and pass/fail (None: not measured)."""
    out: list[dict[str, Any]] = []
    ratios = results.get("ratios") or {}
    labels = [d["label"] for d in results.get("datasets", [])] or list(ratios)

    variants = {key.split("/")[0] for r in ratios.values() for key in r}
    variants |= set((results.get("config") or {}).get("variants") or {})
    workers = ["pipeline", *sorted(variants - {"pipeline"})]

    def ratio_target(worker: str, base: str, minimum: float, text: str, key: str) -> None:
        pair = f"{worker}/{base}"
        values = {label: ((ratios.get(label) or {}).get(pair) or {}).get(key) for label in labels}
        measured = [v for v in values.values() if v is not None]
        # At every dataset: one below the bar fails; a dataset without the figure (a peer
        # too quick to time, a run that failed) leaves the target not measured, and a
        # variant's target stays listed then, as the pipeline's does.
        verdict: bool | None = None
        if any(v < minimum for v in measured):
            verdict = False
        elif measured and len(measured) == len(values):
            verdict = True
        out.append(
            {
                "target": text if worker == "pipeline" else f"{text} [{worker}]",
                "measured": ", ".join(
                    f"{lb}: {'not measured' if v is None else _ratio(v)}"
                    for lb, v in values.items()
                )
                or None,
                "pass": verdict,
            }
        )

    for worker in workers:
        ratio_target(
            worker,
            "quix",
            QUIX_CPU_RATIO,
            f"pipeline events/s per CPU-second >= {QUIX_CPU_RATIO:g}x Quix Streams, every "
            "dataset (aim for 3x)",
            "events_per_cpu_s",
        )
        ratio_target(
            worker,
            "naive_faust",
            NAIVE_RATIO,
            f"pipeline events/s >= {NAIVE_RATIO:g}x naive Faust, every dataset",
            "events_per_s",
        )
    out.append(_freshness_target(results))
    out.extend(_state_targets(results))
    out.append(_rss_target(results))
    out.append(_scale_target(results))
    out.extend(_recovery_targets(results))
    out.append(_read_target(results))
    out.extend(_sweep_targets(results))
    out.extend(_api_targets(results))
    return out


def _freshness_target(results: dict[str, Any]) -> dict[str, Any]:
    fresh = results.get("freshness") or {}
    p99 = fresh.get("p99_ms")
    measured = None
    if p99 is not None:
        measured = f"{p99:.0f} ms at {_fmt(fresh.get('rate_achieved'))} events/s"
        if str(fresh.get("rate_basis", "")).startswith("given"):
            measured += " (rate given with --freshness-rate)"
    return {
        "target": f"freshness p99 (produce -> score in Redis) < {FRESHNESS_P99_MS:.0f} ms at "
        "half the pipeline's maximum rate",
        "measured": measured,
        "pass": None if p99 is None else p99 < FRESHNESS_P99_MS,
    }


def _state_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Mean table value at each creator count the issue names (none: not measured)."""
    out: list[dict[str, Any]] = []
    for creators, limit in STATE_MEAN_BYTES.items():
        limit_text = f"{limit / 1024:g} KB ({limit:,} B)" if limit >= 1024 else f"{limit:,} B"
        target = f"state: mean table value < {limit_text} at {creators:,} creators"
        run = _run_at(results, creators)
        state = (run or {}).get("state") or {}
        mean = state.get("table_value_bytes_mean")
        if run is None:
            measured, verdict = f"no {creators:,}-creator dataset in this run", None
        elif not state.get("available"):
            measured, verdict = state.get("reason"), None
        elif mean is None:  # a result stored before the table value was measured on its own
            measured = (
                f"{run['dataset']}: table value not recorded "
                f"(key + value {_fmt(state.get('bytes_per_creator_mean'))} B mean)"
            )
            verdict = None
        else:
            measured = (
                f"{run['dataset']}: {_fmt(mean)} B mean, "
                f"{_fmt(state.get('table_value_bytes_p99'))} B p99 "
                f"({_fmt(state.get('model_state_bytes_mean'))} B of it the model's state)"
            )
            verdict = _verdict(mean, limit, bool(run.get("completed")))
        out.append({"target": target, "measured": measured, "pass": verdict})
    return out


def _rss_target(results: dict[str, Any]) -> dict[str, Any]:
    run = _run_at(results, RSS_CREATORS)
    peak = (run or {}).get("peak_rss_mb")
    if run is None:
        measured, verdict = f"no {RSS_CREATORS:,}-creator dataset in this run", None
    elif peak is None:
        measured, verdict = None, None
    else:
        measured = f"{run['dataset']}: {_fmt(peak)} MB"
        verdict = _verdict(peak, RSS_MB, bool(run.get("completed")))
    return {
        "target": f"worker peak RSS < {RSS_MB:.0f} MB at {RSS_CREATORS:,} creators",
        "measured": measured,
        "pass": verdict,
    }


def _scale_target(results: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS decides; the sum of the table values is shown beside it.

    The target is about what the worker holds, so it counts the creators in its table,
    not the dataset's population: a creator without an event is never held.
    """
    target = (
        f"scale: the worker holds {SCALE_CREATORS:,} creators' state in "
        f"< {SCALE_RSS_MB / 1024:g} GB (peak RSS; sum of table values shown)"
    )
    scale = results.get("scale") or {}
    run = scale.get("pipeline") or {}
    peak = run.get("peak_rss_mb")
    if peak is None:
        return {"target": target, "measured": None, "pass": None}
    state = run.get("state") or {}
    held = state.get("creators") if state.get("available") else None
    if held is None:
        held = (run.get("worker_metrics") or {}).get("creator_scores_creators_in_state")
    total = state.get("table_value_bytes_total")
    population = (scale.get("dataset") or {}).get("creators", run.get("creators"))
    measured = (
        f"{_fmt(held)} of {_fmt(population)} creators held: peak RSS {_fmt(peak)} MB, "
        f"table values {_fmt(None if total is None else total / 2**20, 1)} MB in total"
    )
    if not run.get("completed"):
        measured += " (run did not finish)"
    if peak >= SCALE_RSS_MB:
        verdict: bool | None = False
    elif not held or held < SCALE_CREATORS:
        verdict = None
        measured += f"; fewer than {SCALE_CREATORS:,} held, so not measured"
    else:
        verdict = _verdict(peak, SCALE_RSS_MB, bool(run.get("completed")))
    return {"target": target, "measured": measured, "pass": verdict}


def _recovery_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rec = results.get("recovery") or {}
    secs = rec.get("serving_again_from_kill_s")
    same = rec.get("identical_to_undisturbed")
    return [
        {
            "target": f"recovery < {RECOVERY_S:g} s after kill -9 (largest dataset; 100,000 "
            "creators in a full run)",
            "measured": None
            if secs is None
            else f"{rec.get('dataset')}: {secs:.1f} s from the kill",
            "pass": None if secs is None else secs < RECOVERY_S,
        },
        {
            "target": "scores after recovery identical to an undisturbed run",
            "measured": None
            if same is None
            else (
                f"{rec.get('creators_differing')} of {rec.get('creators_compared')} creators differ"
            ),
            "pass": same,
        },
    ]


def _read_target(results: dict[str, Any]) -> dict[str, Any]:
    reads = results.get("reads") or {}
    board = (reads.get("redis_py") or {}).get("leaderboard_top10") or {}
    c_board = (reads.get("c_client") or {}).get("leaderboard_top10") or {}
    rp99 = board.get("p99_us")
    measured = None
    if rp99 is not None:
        measured = f"{rp99 / 1000:.2f} ms (redis-py)"
        if c_board.get("p99_us") is not None:
            measured += f", {c_board['p99_us'] / 1000:.2f} ms (C client)"
    return {
        "target": f"leaderboard top-10 read p99 < {READ_P99_MS:g} ms",
        "measured": measured,
        "pass": None if rp99 is None else rp99 < READ_P99_MS * 1000,
    }


# --------------------------------------------------------------------------- markdown


def _throughput_table(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    ratios = results.get("ratios") or {}
    by_ds: dict[str, list[dict[str, Any]]] = {}
    for r in results.get("throughput", []):
        by_ds.setdefault(r["dataset"], []).append(r)
    datasets = {d["label"]: d for d in results.get("datasets", [])}
    for label, runs in by_ds.items():
        ds = datasets.get(label, {})
        lines.append(
            f"### {ds.get('events', 0):,} events, {ds.get('creators', 0):,} creators "
            f"({ds.get('distinct_keys', 0):,} distinct keys)"
        )
        lines.append("")
        lines.append(
            "| consumer | events/s | events/CPU-s | pipeline / this (events/s) "
            "| pipeline / this (per CPU-s) | s from start | group join s | peak RSS MB | note |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        runs.sort(
            key=lambda r: (
                CONSUMER_ORDER.index(r["consumer"]) if r["consumer"] in CONSUMER_ORDER else 0.5
            )
        )
        for r in runs:
            name = r["consumer"]
            ratio = (ratios.get(label) or {}).get(f"pipeline/{name}") or {}
            note = "" if r.get("completed") else (r.get("note") or "incomplete")
            lines.append(
                f"| {SHORT.get(name, 'pipeline variant ' + name)} | {_fmt(r.get('events_per_s'))} "
                f"| {_fmt(r.get('events_per_cpu_s'))} "
                f"| {_ratio(ratio.get('events_per_s')) if ratio else '-'} "
                f"| {_ratio(ratio.get('events_per_cpu_s')) if ratio else '-'} "
                f"| {_fmt(r.get('wall_s_from_start'), 1)} | {_fmt(r.get('join_s'), 1)} "
                f"| {_fmt(r.get('peak_rss_mb'))} | {note} |"
            )
        lines.append("")
        for key, value in (ratios.get(label) or {}).items():
            per_cpu = value.get("events_per_cpu_s")
            extra = f" (per CPU-s: {_ratio(per_cpu)})" if per_cpu is not None else ""
            lines.append(f"- {key.replace('/', ' / ')} = {_ratio(value['events_per_s'])}{extra}")
        for r in runs:
            wm = r.get("worker_metrics") or {}
            if wm:
                lines.append(
                    f"- {r['consumer']} did all its work: "
                    f"{wm.get('creator_scores_events_scored_total', 0):,.0f} events scored, "
                    f"{wm.get('creator_scores_dead_letters_total', 0):,.0f} dead letters, "
                    f"{wm.get('creator_scores_events_rerouted_total', 0):,.0f} re-keyed, "
                    f"{wm.get('creator_scores_score_changes_total', 0):,.0f} score changes "
                    f"produced, {wm.get('creator_scores_creators_in_state', 0):,.0f} creators in "
                    f"state, mean batch {_mean_batch(wm)} records; Redis showed the newest "
                    f"event time for {r.get('redis_sample_ok')} sampled creators."
                )
        lines.append("")
    return lines


def _error_line(text: str) -> str:
    """First line of an error, plus its last line when that names the exception."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return "(no message)"
    if len(lines) > 1 and lines[0] != lines[-1]:
        return f"{lines[0]} ... `{lines[-1]}`"
    return lines[0]


def _mean_batch(wm: dict[str, Any]) -> str:
    count = wm.get("creator_scores_batch_size_count") or 0
    return f"{wm.get('creator_scores_batch_size_sum', 0) / count:,.0f}" if count else "n/a"


def _freshness(results: dict[str, Any]) -> list[str]:
    f = results.get("freshness")
    if not f:
        return ["Not measured in this run.", ""]
    return [
        f"Steady load of {_fmt(f.get('rate_achieved'))} events/s ({f.get('rate_basis')}) over "
        f"{_fmt(f.get('creators'))} creators for {_fmt(f.get('seconds'))} s; "
        f"{_fmt(f.get('measured_events'))} events of {_fmt(f.get('sampled_creators'))} sampled "
        f"creators measured after a {f.get('warmup_s')} s warm-up.",
        "",
        "| p50 | p95 | p99 | max | worker's own arrival-to-Redis mean |",
        "|---:|---:|---:|---:|---:|",
        f"| {_fmt(f.get('p50_ms'), 0, ' ms')} | {_fmt(f.get('p95_ms'), 0, ' ms')} "
        f"| {_fmt(f.get('p99_ms'), 0, ' ms')} | {_fmt(f.get('max_ms'), 0, ' ms')} "
        f"| {_fmt(f.get('worker_arrival_to_redis_mean_ms'), 0, ' ms')} |",
        "",
    ]


def _reads(results: dict[str, Any]) -> list[str]:
    r = results.get("reads")
    if not r:
        return ["Not measured in this run.", ""]
    lines = [
        f"`{r['board']}` with {r['board_members']:,} members, one connection, one command at "
        "a time.",
        "",
        "| read | client | p50 | p99 | max |",
        "|---|---|---:|---:|---:|",
    ]
    for kind, text in (
        ("leaderboard_top10", "top-10 leaderboard (ZREVRANGE WITHSCORES)"),
        ("creator_hash", "creator hash (HGETALL)"),
    ):
        py = r["redis_py"][kind]
        lines.append(
            f"| {text} | redis-py | {py['p50_us']:.0f} us | {py['p99_us']:.0f} us "
            f"| {py['max_us']:.0f} us |"
        )
        c = r.get("c_client") or {}
        if c.get("available"):
            cc = c[kind]
            lines.append(
                f"| {text} | {c['tool']} | {cc['p50_us']:.0f} us | {cc['p99_us']:.0f} us "
                f"| {cc['max_us']:.0f} us |"
            )
        else:
            lines.append(f"| {text} | C client | {c.get('reason', 'not available')} | | |")
    lines += ["", f"C client: {r.get('benchmark_tool')}.", ""]
    return lines


def _recovery(results: dict[str, Any]) -> list[str]:
    r = results.get("recovery")
    if not r:
        return ["Not measured in this run.", ""]
    boards = ", ".join(r.get("boards_differing") or []) or "none"
    instance = r.get("group_instance_id")
    takeover = (
        f"A restarted: same group instance id `{instance}` (static membership)"
        if instance
        else "a new group member (waits for A's session timeout)"
    )
    return [
        "| what | value |",
        "|---|---:|",
        f"| worker B is | {takeover} |",
        f"| events consumed by worker A when killed | {_fmt(r.get('a_consumed_at_kill'))} |",
        f"| creators A held when killed | {_fmt(r.get('a_creators_held_at_kill'))} |",
        f"| events A had committed | {_fmt(r.get('a_committed_at_kill'))} |",
        f"| changelog records B had to replay | {_fmt(r.get('changelog_records_to_replay'))} |",
        f"| B ready (/readyz) after its start | {_fmt(r.get('b_ready_from_start_s'), 1, ' s')} |",
        f"| B serves scores again, from the kill | "
        f"{_fmt(r.get('serving_again_from_kill_s'), 1, ' s')} |",
        f"| B serves scores again, from its start | "
        f"{_fmt(r.get('serving_again_from_b_start_s'), 1, ' s')} |",
        f"| duplicates B recognised (replayed events) | {_fmt(r.get('b_duplicates_seen'))} |",
        f"| creators compared with the undisturbed run | {_fmt(r.get('creators_compared'))} |",
        f"| creators whose hash differs | {_fmt(r.get('creators_differing'))} |",
        f"| global leaderboards that differ | {boards} |",
        "",
        *_differences(r),
    ]


def _differences(r: dict[str, Any]) -> list[str]:
    """The first creators whose recovered hash differs, field by field (basis left out)."""
    details = r.get("differing_fields") or {}
    if not details:
        return []
    lines = ["Examples (undisturbed -> after recovery):", ""]
    for cid, fields in details.items():
        parts = [
            f"{name} {pair['undisturbed']} -> {pair['recovered']}"
            for name, pair in fields.items()
            if name not in ("explain", "basis")
        ]
        lines.append(f"- `{cid}`: " + (", ".join(parts) or "explanation basis only"))
    lines.append("")
    return lines


def _state(results: dict[str, Any]) -> list[str]:
    s = results.get("state_size")
    if not s:
        return ["Not measured in this run.", ""]
    lines = [
        "| dataset | creators in state | table value bytes mean | key + value bytes mean | p99 "
        "| max | model state bytes mean | changelog records/creator | RSS at first record MB "
        "| RSS at end MB | RSS MB per 100k creators |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, d in s.get("per_dataset", {}).items():
        c = d.get("changelog") or {}
        m = d.get("memory") or {}
        lines.append(
            f"| {label} | {_fmt(c.get('creators'))} | {_fmt(c.get('table_value_bytes_mean'))} "
            f"| {_fmt(c.get('bytes_per_creator_mean'))} "
            f"| {_fmt(c.get('bytes_per_creator_p99'))} | {_fmt(c.get('bytes_per_creator_max'))} "
            f"| {_fmt(c.get('model_state_bytes_mean'))} "
            f"| {_fmt(c.get('changelog_records_per_creator'), 2)} "
            f"| {_fmt(m.get('rss_at_first_record_mb'))} | {_fmt(m.get('end_rss_mb'))} "
            f"| {_fmt(m.get('rss_mb_per_100k_creators'))} |"
        )
    slope = s.get("rss_mb_per_100k_creators_between_datasets")
    lines.append("")
    if slope is not None:
        lines.append(
            "Between the two datasets (the same events over more creators, so each creator's "
            f"state is thinner) the worker's end RSS changes by {slope:+,.0f} MB per 100 k "
            "creators held."
        )
        lines.append("")
    return lines


def _sweep(results: dict[str, Any]) -> list[str]:
    runs = results.get("sweep") or []
    if not runs:
        return ["Not measured in this run (`--only sweep`).", ""]
    source = results.get("sweep_run")
    lines = [] if not source else [
        f"From run `{source['run_id']}` (`{source['file']}`, started {source['started_at']}), "
        "a sweep-only run on the same machine.",
        "",
    ]  # fmt: skip
    lines += [
        "`bench.sweep`: a pipeline in one process holding N creators whose windows all end on "
        "one day, writing what a worker writes: Redis through the real sink, "
        + (
            "and Kafka: the state's changelog (the worker's `TableStore`), the score-change and "
            "card records (its `KafkaSink`) to scratch topics; "
            if all(r.get("kafka_writes") for r in runs)
            else "but no Kafka (the changelog, score-change and card records are left out); "
        )
        + "then the stream enters the next day and "
        "one pass (`streams.sweep.Sweeper`, slices of 500) re-scores every one of them while "
        "live batches of 200 events arrive every 100 ms and take turns with the slices, as "
        "the agent's batches do. Live latency is a batch's arrival to its Redis write.",
        "",
        "| creators held | pass (s) | re-scored / s | cards published | live p50 / p99 alone "
        "(ms) | during the pass (ms) | p99 ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        sw, alone, during = r["sweep"], r["live_alone"], r["live_during_sweep"]
        lines.append(
            f"| {r['held']:,} | {_fmt(sw['seconds'], 1)} | {_fmt(sw['rescored_per_s'])} | "
            f"{_fmt(sw['published'])} | {_fmt(alone['p50_ms'], 1)} / {_fmt(alone['p99_ms'], 1)} "
            f"| {_fmt(during['p50_ms'], 1)} / {_fmt(during['p99_ms'], 1)} | "
            f"{_ratio(r['p99_ratio_during_over_alone'])} |"
        )
    return [*lines, ""]


def _sweep_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    runs = results.get("sweep") or []
    big = max(runs, key=lambda r: r["held"], default=None)
    if big is None:
        return [
            {"target": "a sweep over 1,000,000 creators held in < 60 s", "measured": None,
             "pass": None},
            {"target": "live freshness p99 during a sweep < 2x without", "measured": None,
             "pass": None},
        ]  # fmt: skip
    seconds = big["sweep"]["seconds"]
    ratio = big["p99_ratio_during_over_alone"]
    full = big["held"] >= 1_000_000
    return [
        {
            "target": "a sweep over 1,000,000 creators held in < 60 s",
            "measured": f"{seconds:,.1f} s over {big['held']:,}"
            + ("" if big.get("kafka_writes") else " (Kafka writes left out)"),
            "pass": (seconds < 60.0) if full else None,
        },
        {
            "target": "live freshness p99 during a sweep < 2x without",
            "measured": f"{ratio}x at {big['held']:,} creators" if ratio is not None else None,
            "pass": None if ratio is None else ratio < 2.0,
        },
    ]


#: The issue's read API targets: p99 ms at 50 concurrent clients, 100,000 creators.
API_TARGETS = (
    ("top10", "top-10", 5.0),
    ("creator", "a creator with its explanation and percentiles", 10.0),
    ("search", "a partner search with three filters", 50.0),
)


def _api(results: dict[str, Any]) -> list[str]:
    api = results.get("api")
    if not api:
        return ["Not measured in this run (`--only api`).", ""]
    source = results.get("api_run")
    lines = [] if not source else [
        f"From `{source['file']}` ({source['when']}), an API-only run on the same machine.", "",
    ]  # fmt: skip
    lines += [
        f"`{api['command']}`: {api['creators']:,} creators in a private Redis "
        f"({api['scored']:,} scored by the pipeline, the rest copies), `creator-scores serve` "
        f"with {api['workers']} process(es), each read for {api['seconds']:g} s by "
        f"{api['clients']} clients sending back to back, then paced at half that throughput "
        "(timed from when each request was due); the same reads straight from Redis in the "
        "same run (a bare `ZREVRANGE` / `HGETALL`, and the API's own Lua scripts).",
        "",
        "| read | back to back: req/s | p50 / p99 (ms) | paced: req/s | p50 / p99 (ms) | "
        "bare Redis p50 / p99 (ms) | API p99 / bare p99 | target p99 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    bare_of = {"top10": "top10", "creator": "creator", "search": "search_script"}
    for kind, label, target in API_TARGETS:
        hot, paced = api["api"][kind], api["api_paced"][kind]
        bare = api["redis"][bare_of[kind]]
        ratio = hot["p99_ms"] / bare["p99_ms"] if bare["p99_ms"] else None
        lines.append(
            f"| {label} | {_fmt(hot['per_s'])} | {_fmt(hot['p50_ms'], 1)} / "
            f"{_fmt(hot['p99_ms'], 1)} | {_fmt(paced['per_s'])} | {_fmt(paced['p50_ms'], 1)} / "
            f"{_fmt(paced['p99_ms'], 1)} | {_fmt(bare['p50_ms'], 1)} / {_fmt(bare['p99_ms'], 1)} "
            f"| {_ratio(round(ratio, 1) if ratio else None)} | {target:g} ms |"
        )
    lines += ["", "The search's bare figure is its Lua script run straight on Redis.", ""]
    delay = results.get("widget_delay")
    if delay:
        lines += [
            f"The live widget's delay (`{delay['command']}`): an event produced to Kafka to the "
            "board feed's SSE message naming it, read by a client as the widget's EventSource "
            "does, through a real worker and `creator-scores serve`; split at the worker's "
            "Redis write (the change stream's id).",
            "",
            "| stream | event -> SSE p50 / p99 (ms) | event -> Redis write | Redis -> SSE |",
            "|---|---|---|---|",
        ]
        for phase, label in (
            ("idle", "idle"),
            ("loaded", f"{delay['load_rate']:,.0f} events/s of other creators"),
        ):
            row = delay[phase]
            cells = [f"{_fmt(row[k]['p50'], 1)} / {_fmt(row[k]['p99'], 1)}" for k in
                     ("event_to_sse_ms", "event_to_redis_ms", "redis_to_sse_ms")]  # fmt: skip
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _api_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    api = results.get("api")
    out = []
    for kind, label, target in API_TARGETS:
        text = f"API {label} p99 < {target:g} ms, 50 clients, 100,000 creators"
        if not api:
            out.append({"target": text, "measured": None, "pass": None})
            continue
        row = api["api"][kind]
        full = api["creators"] >= 100_000 and api["clients"] >= 50
        out.append({
            "target": text,
            "measured": f"{row['p99_ms']:.1f} ms ({api['clients']} clients, "
                        f"{api['creators']:,} creators)",
            "pass": (row["p99_ms"] < target) if full else None,
        })  # fmt: skip
    return out


def _scale(results: dict[str, Any]) -> list[str]:
    """The scale profile: one large dataset, the pipeline alone, its memory and state."""
    scale = results.get("scale")
    if not scale:
        return ["Not measured in this run.", ""]
    ds = scale.get("dataset") or {}
    r = scale.get("pipeline") or {}
    c = r.get("state") or {}
    m = r.get("memory") or {}
    wm = r.get("worker_metrics") or {}
    total = c.get("table_value_bytes_total")
    lines = [
        f"The pipeline alone over {_fmt(ds.get('events'))} events of "
        f"{_fmt(ds.get('creators'))} creators ({_fmt(ds.get('distinct_keys'))} distinct keys): "
        "a creator without an event is not held, so the table holds the creators the events "
        "reached.",
        "",
        "| what | value |",
        "|---|---:|",
        f"| finished | {_fmt(bool(r.get('completed')))} |",
        f"| events/s | {_fmt(r.get('events_per_s'))} |",
        f"| events/CPU-s | {_fmt(r.get('events_per_cpu_s'))} |",
        f"| s from start (group join s) | {_fmt(r.get('wall_s_from_start'), 1)} "
        f"({_fmt(r.get('join_s'), 1)}) |",
        f"| creators in the table (changelog) | {_fmt(c.get('creators'))} |",
        f"| creators in state (worker's gauge) | "
        f"{_fmt(wm.get('creator_scores_creators_in_state'))} |",
        f"| peak RSS MB | {_fmt(r.get('peak_rss_mb'))} |",
        f"| RSS at first record / at end MB | {_fmt(m.get('rss_at_first_record_mb'))} / "
        f"{_fmt(m.get('end_rss_mb'))} |",
        f"| RSS MB per 100k creators | {_fmt(m.get('rss_mb_per_100k_creators'))} |",
        f"| sum of table values MB | {_fmt(None if total is None else total / 2**20, 1)} |",
        f"| table value bytes mean / p99 | {_fmt(c.get('table_value_bytes_mean'))} / "
        f"{_fmt(c.get('table_value_bytes_p99'))} |",
        f"| model state bytes mean | {_fmt(c.get('model_state_bytes_mean'))} |",
        f"| changelog records/creator | {_fmt(c.get('changelog_records_per_creator'), 2)} |",
        f"| dead letters | {_fmt(wm.get('creator_scores_dead_letters_total'))} |",
        "",
    ]
    if not r.get("completed"):
        lines += [f"Incomplete: {r.get('note') or 'the run did not finish'}.", ""]
    if c and not c.get("available"):
        lines += [f"State not read: {c.get('reason')}.", ""]
    return lines


METHOD = """\
## Running

- `make bench` (not part of `make test`): installs the `bench` extra
  (quixstreams, matplotlib), starts the stack if needed, runs
  `python -m bench.run` with the issue's sizes and rewrites this page and its
  plot, the scale profile last. `tests/integration/test_bench_smoke.py` runs
  `python -m bench.run --smoke` (5,000 events, 200 creators, every scenario and
  baseline; baselines side by side; the scale profile on 4,000 events of 2,000
  creators) and checks the JSON.
- Smaller runs while developing: `python -m bench.run --events 200000
  --creators 10000`; one part only: `--only pipeline quix` (consumers) or
  `--only freshness` (scenarios); the scale profile alone: `--only scale`
  (`--scale-creators`, `--scale-events`). `--variant NAME:ENV=VALUE,...` runs the worker
  a second time with those environment overrides (another batching mode, the
  Faust bypass) and reports its ratios beside the default pipeline's.
- `python -m bench.report bench/results/<run>.json` rewrites this page from a
  stored result; hand-written findings live in `bench/commentary.md`.

## Method

- **Input.** One dataset per creator count, produced once by the simulator
  (`streams.devtools.simulate.generate_events`, seed 42: posts with engagement
  re-snapshots, tags, orders with cancellations and refunds, 0.5 % malformed,
  1 % keyed by something other than the creator id, a few exact re-deliveries)
  into three fresh topics with aiokafka's batch API. Every consumer reads the
  same topics with its own consumer group from the earliest offset. The scale
  profile's dataset comes from `bench.workload.ScaleWorkload` instead: the
  simulator's record shapes, every one valid and keyed, and every creator of
  the population posts at least once (the simulator's stream reaches only part
  of a million creators).
- **Consumers** are subprocesses started the same way: the worker
  (`creator-scores worker`), (a) `bench/faust_naive.py`, (b)
  `bench/faust_noop.py`, (c) `bench/raw_aiokafka.py`, (d) `bench/quix_peer.py`.
  The Faust baselines use the worker's own Faust settings
  (`streams.app.faust_config`). Every consumer commits every second (Faust via
  `BROKER_COMMIT_INTERVAL`, Quix via `commit_interval`, the raw loop itself) so
  that "done" has the same grain for all.
- **Done** = the group's committed offsets equal the end offsets of every source
  partition (asked of the broker every 100 ms). For the worker also: its
  repartition topic is caught up and, for 200 sampled creators, the creator
  hash's `event_time` equals the newest valid event time the harness computed
  with `scoring.validate` while producing.
- **Throughput** = events / (done - first record). First record: the
  baselines write a marker file; for the worker it is when
  `creator_scores_events_consumed_total` first moves, minus the first batch's
  processing time and the batch window (so never later than the true first
  record). The time from process start (imports, group join) is shown beside it.
  A baseline still running after the baseline budget is stopped, and its rate is
  its committed events over the time since its first record (noted in the
  table).
- **events/CPU-s** = events / CPU seconds (user + system, all threads, from
  /proc) the consumer process spent between its first record and "done":
  throughput per core while processing, imports and start-up left out (the
  worker's CPU clock is stepped back by the same conservative amount as its
  first-record time). This is what "beat Quix Streams per core" compares, and
  it is steadier than events/s on shared cores, where Kafka, Redis and other
  work compete for the same two CPUs.
- **Freshness**: see the docstring of `bench/freshness.py`; event time = the
  wall clock at produce, strictly increasing per creator, so the creator hash's
  `event_time` shows exactly when an event is reflected; Redis is polled every
  5 ms for sampled creators with outstanding events.
- **Reads**: redis-py, one connection, one command at a time, random creators
  for the hash read; the C client is `redis-benchmark -c 1 --csv` with the same
  commands (one fixed creator for the hash).
- **Recovery**: worker A is killed with SIGKILL at half the large dataset,
  worker B starts at once with the same app id; "serving again" is B's first
  Redis write. B runs to the end and its output is compared with the
  undisturbed throughput run (every creator hash except `updated_at`, and the
  eight global leaderboards).
- **State size**: the newest changelog record per creator after the throughput
  run: its value is the table value (what the state targets judge), shown with
  key + value bytes and the model's packed state without the envelope's header.
  RSS from /proc at the first record and at the end.
- **Scale profile**: a dataset of its own (default 2,000,000 events of
  1,000,000 creators, preloaded by a child process so that the simulator's
  population does not stay in the harness's memory), the pipeline alone over
  it to the end, then its changelog read as above. The target is judged on the
  worker's peak RSS (all its processes, sampled every 0.5 s) and counts the
  creators in its table; the sum of the table values is shown beside it. Its
  deadline is its own events / 400 s (at least 1,200 s).
"""


def render_markdown(results: dict[str, Any], json_path: Path, png_name: str | None) -> str:
    m = results.get("machine", {})
    cfg = results.get("config", {})
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m bench.run` (`make bench`) from "
        f"`{_rel(json_path)}`; run `{results.get('run_id')}` started "
        f"{results.get('started_at')}, took {_fmt(results.get('duration_s'), 0)} s.",
        "",
        f"**Machine:** {m.get('cpu_model')}, {m.get('nproc')} CPUs (nproc), "
        f"{m.get('memory_gib')} GiB RAM, Linux {m.get('kernel')}, Python {m.get('python')}; "
        + ", ".join(f"{k} {v}" for k, v in (m.get("packages") or {}).items())
        + ". Kafka (Apache Kafka 3.9.1, KRaft, one broker) and Redis run on the same machine.",
        "",
        f"**Sizes:** {_fmt(cfg.get('events'))} events per dataset; creator counts "
        f"{', '.join(f'{c:,}' for c in cfg.get('creators', []))}; {cfg.get('partitions')} "
        f"partitions; commit interval {cfg.get('commit_interval_s')} s; baseline budget "
        f"{_fmt(cfg.get('baseline_seconds'))} s.",
        "",
        "The machine has two shared, noisy cores: read absolute figures as orders of "
        "magnitude and the ratios (taken minutes apart in one run) as the result.",
        "",
        f"![throughput and latency]({png_name})" if png_name else "(no plot: no matplotlib)",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    # Re-evaluated from the figures, so a stored result renders with today's target rules.
    for t in evaluate_targets(results):
        met = {True: "yes", False: "**no**", None: "not measured"}[t["pass"]]
        lines.append(f"| {t['target']} | {t['measured'] or 'n/a'} | {met} |")
    lines += ["", "## 1. Throughput", ""]
    lines += _throughput_table(results)
    lines += ["## 2. Freshness", ""]
    lines += _freshness(results)
    lines += ["## 3. Reads", ""]
    lines += _reads(results)
    lines += ["## 4. Recovery", ""]
    lines += _recovery(results)
    lines += ["## 5. State size", ""]
    lines += _state(results)
    lines += ["## 6. Scale profile", ""]
    lines += _scale(results)
    lines += ["## 7. Day-boundary sweep", ""]
    lines += _sweep(results)
    lines += ["## 8. Read API", ""]
    lines += _api(results)
    errors = results.get("errors") or []
    if errors:
        lines += ["## Errors in this run", ""]
        lines += [f"- {e['scenario']}: {_error_line(e['error'])}" for e in errors]
        lines.append("")
    commentary = COMMENTARY.read_text() if COMMENTARY.exists() else ""
    if commentary.strip():
        lines += [commentary.strip(), ""]
    lines.append(METHOD)
    return "\n".join(lines)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- plot


def render_plot(results: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    runs = list(results.get("throughput", []))
    labels = [d["label"] for d in results.get("datasets", [])]
    ticks = {d["label"]: f"{d['creators']:,} creators" for d in results.get("datasets", [])}
    scale = (results.get("scale") or {}).get("pipeline") or {}
    if scale.get("events_per_s"):
        runs.append(scale)
        labels.append(scale["dataset"])
        ticks[scale["dataset"]] = f"{scale['creators']:,} creators\n(scale profile)"
    names = [n for n in CONSUMER_ORDER if any(r["consumer"] == n for r in runs)]
    names += sorted({r["consumer"] for r in runs} - set(names))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        values = []
        for label in labels:
            match = [r for r in runs if r["consumer"] == name and r["dataset"] == label]
            rate = match[0].get("events_per_s") if match else None
            values.append(float(rate) if rate else float("nan"))
        xs = [j + i * width for j in range(len(labels))]
        left.bar(xs, values, width, label=SHORT.get(name, name))
    # The events/s target over each dataset's bars: NAIVE_RATIO times the naive baseline.
    marked = False
    for j, label in enumerate(labels):
        naive = [r for r in runs if r["consumer"] == "naive_faust" and r["dataset"] == label]
        if naive and naive[0].get("events_per_s"):
            left.hlines(
                NAIVE_RATIO * float(naive[0]["events_per_s"]),
                j - width / 2,
                j + width * (len(names) - 0.5),
                colors="tab:red",
                linestyles="--",
                linewidth=0.8,
                label=None if marked else f"target: {NAIVE_RATIO:g}x naive Faust",
            )
            marked = True
    left.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(labels))])
    left.set_xticklabels([ticks.get(lb, lb) for lb in labels])
    left.set_yscale("log")
    left.set_ylabel("events/s (log)")
    left.set_title("Throughput, 1 process each")
    if names:
        left.legend(fontsize=8)

    bars: list[tuple[str, float]] = []
    fresh = results.get("freshness") or {}
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        if fresh.get(key) is not None:
            bars.append((f"freshness {key[:3]}", float(fresh[key])))
    reads = results.get("reads") or {}
    for client, block in (("redis-py", reads.get("redis_py")), ("C", reads.get("c_client"))):
        if not block or block.get("available") is False:
            continue
        for kind, short in (("leaderboard_top10", "top-10"), ("creator_hash", "hash")):
            stats = block.get(kind) or {}
            for pct in ("p50", "p99"):
                if stats.get(f"{pct}_us") is not None:
                    bars.append((f"{short} {pct}\n{client}", stats[f"{pct}_us"] / 1000))
    if bars:
        right.bar(range(len(bars)), [v for _, v in bars], color="tab:orange")
        right.set_xticks(range(len(bars)))
        right.set_xticklabels([b for b, _ in bars], fontsize=7, rotation=45, ha="right")
        right.set_yscale("log")
        right.axhline(
            FRESHNESS_P99_MS,
            color="tab:red",
            linestyle="--",
            linewidth=0.8,
            label=f"target: freshness p99 < {FRESHNESS_P99_MS:.0f} ms",
        )
        right.axhline(
            READ_P99_MS,
            color="tab:red",
            linestyle=":",
            linewidth=0.8,
            label=f"target: top-10 read p99 < {READ_P99_MS:g} ms",
        )
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "not measured in this run", ha="center", transform=right.transAxes)
    right.set_ylabel("ms (log)")
    right.set_title("Latency: produce-to-Redis freshness and reads")
    fig.suptitle(f"creator-scores benchmarks, run {results.get('run_id')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def write_docs(
    results: dict[str, Any], json_path: Path, docs: Path | None = None
) -> tuple[Path, Path | None]:
    folder = docs or REPO_ROOT / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    png: Path | None = folder / "benchmarks.png"
    md = folder / "benchmarks.md"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        png = None
    if png is not None:
        render_plot(results, png)
    md.write_text(render_markdown(results, json_path, png.name if png else None))
    return md, png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report", description="Rewrite benchmarks.md/.png from a result."
    )
    parser.add_argument("results", type=Path, help="a bench/results/<run>.json")
    parser.add_argument("--docs-dir", type=Path, help="default: docs/")
    parser.add_argument(
        "--sweep-from",
        type=Path,
        help="take the sweep section from this run (`python -m bench.run --only sweep`)",
    )
    parser.add_argument(
        "--api-from",
        type=Path,
        help="take the read API section from this `python -m bench.api --out` result",
    )
    parser.add_argument(
        "--widget-from",
        type=Path,
        help="take the widget delay from this `python -m bench.widget_delay --out` result",
    )
    args = parser.parse_args(argv)
    path: Path = args.results
    results = json.loads(path.read_text())
    if args.sweep_from is not None:
        other = json.loads(args.sweep_from.read_text())
        results["sweep"] = other.get("sweep") or []
        results["sweep_run"] = {"run_id": other.get("run_id"), "file": _rel(args.sweep_from),
                                "started_at": other.get("started_at")}  # fmt: skip
    if args.widget_from is not None:
        results["widget_delay"] = json.loads(args.widget_from.read_text())
    if args.api_from is not None:
        results["api"] = json.loads(args.api_from.read_text())
        results["api_run"] = {"file": _rel(args.api_from), "when": results["api"].get("when")}
    md, png = write_docs(results, path, args.docs_dir)
    print(f"wrote {md}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
