"""Entry point of the benchmarks: `python -m bench.run [--smoke] [--only NAME ...]`.

Order of a run: preload one dataset per creator count; throughput of the full
pipeline and of every baseline over each dataset (the pipeline's output for the
largest dataset is kept for the read, recovery and state-size scenarios);
reads; recovery; freshness at half the pipeline's measured maximum; last, the
scale profile (the pipeline alone over a dataset of its own, in which each of
1,000,000 creators posts: `bench.workload.ScaleWorkload`). Everything is
written to one JSON file, then `docs/benchmarks.md` and `docs/benchmarks.png`
are regenerated from it. Every topic, group and Redis key of the run carries
its run id and is deleted at the end, whatever happened.

A scenario that fails is recorded under `errors` and the run goes on; the
exit status is 1 when anything failed, so the smoke test notices.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    BenchError,
    Ctx,
    delete_groups,
    delete_redis_prefix,
    delete_topics,
    machine,
    new_run_id,
    topics_of_run,
)
from bench.consumers import BASELINES, ConsumerSpec, Running, measure, worker_spec
from bench.workload import Dataset, preload, preload_apart, scale_profile_events

SCENARIOS = ("throughput", "freshness", "reads", "recovery", "state_size", "scale", "sweep",
             "api")  # fmt: skip
CONSUMERS = ("pipeline", *BASELINES)
#: Dataset label (and so topic, group and Redis prefix part) of the scale profile.
SCALE_LABEL = "scale"


@dataclass
class Plan:
    """Sizes and switches of one run (the smoke plan is the same shape, tiny)."""

    mode: str
    events: int
    creators: list[int]
    baseline_seconds: float
    freshness_seconds: float
    freshness_warmup_s: float
    freshness_rate: float | None
    freshness_creators: int
    reads: int
    install_tools: bool
    scenarios: list[str]
    consumers: list[str]
    #: longest a worker run over one of the `creators` datasets may take, s
    deadline_s: float
    #: the scale profile: one dataset of its own, the pipeline alone over it
    scale_creators: int
    scale_events: int
    scale_deadline_s: float
    #: the day-boundary sweep (`bench.sweep`): creators held in each pass measured
    sweep_creators: list[int] = field(default_factory=list)
    #: the read API (`bench.api`): its arguments (sizes, clients, seconds)
    api_args: list[str] = field(default_factory=list)
    #: the widget's event -> SSE delay (`bench.widget_delay`): its arguments
    widget_args: list[str] = field(default_factory=list)
    variants: dict[str, dict[str, str]] = field(default_factory=dict)
    #: environment every worker process gets (main pipeline, freshness, recovery, variants)
    worker_env: dict[str, str] = field(default_factory=dict)
    #: recovery: worker B joins as a new member instead of taking A's group instance id
    recovery_new_member: bool = False
    #: smoke only: baselines run side by side (their figures then mean nothing, but the
    #: harness is exercised in a third of the time)
    parallel_baselines: bool = False


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """`NAME:ENV=VALUE[,ENV=VALUE...]` -> (name, env)."""
    name, sep, rest = text.partition(":")
    if not sep or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise argparse.ArgumentTypeError(f"variant must be NAME:ENV=VALUE[,...], got {text!r}")
    env: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise argparse.ArgumentTypeError(f"bad ENV=VALUE in variant {text!r}: {item!r}")
        env[key] = value
    return name, env


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness works")
    p.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="NAME",
        help=f"scenarios ({', '.join(SCENARIOS)}) and/or consumers ({', '.join(CONSUMERS)})",
    )
    p.add_argument("--events", type=int, help="events per dataset (default 1,000,000)")
    p.add_argument(
        "--creators", help="comma-separated creator counts, one dataset each (10000,100000)"
    )
    p.add_argument(
        "--baseline-seconds",
        type=float,
        help="stop a baseline after this long and take its rate from committed offsets",
    )
    p.add_argument(
        "--scale-creators", type=int, help="creators of the scale profile (default 1,000,000)"
    )
    p.add_argument(
        "--scale-events",
        type=int,
        help="events of the scale profile, at least one per creator (default three per "
        "creator: 3,000,000)",
    )
    p.add_argument("--freshness-seconds", type=float)
    p.add_argument("--freshness-rate", type=float, help="events/s (default: half the measured max)")
    p.add_argument("--reads", type=int, help="timed reads of each kind")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        type=parse_variant,
        metavar="NAME:ENV=VALUE,...",
        help="also run the worker with these environment overrides (e.g. another mode)",
    )
    p.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="ENV=VALUE",
        help="environment for every worker run, e.g. CREATOR_SCORES_BATCH_SIZE=5000",
    )
    p.add_argument(
        "--recovery-new-member",
        action="store_true",
        help="recovery: B joins as a new group member (waits out A's session timeout) "
        "instead of restarting A under its group instance id",
    )
    p.add_argument("--out", type=Path, help="result JSON (default bench/results/<run id>.json)")
    p.add_argument("--no-docs", action="store_true", help="do not write benchmarks.md/.png")
    p.add_argument(
        "--docs-dir",
        type=Path,
        help="where benchmarks.md/.png go (default docs/; with --smoke a scratch folder)",
    )
    p.add_argument("--no-install", action="store_true", help="never apt-get install redis-tools")
    p.add_argument("--commit-interval", type=float, default=1.0)
    p.add_argument(
        "--deadline",
        type=float,
        help="longest a worker run may take, s (default: events / 400, at least 1200, the "
        "scale profile's from its own events; smoke 180)",
    )
    p.add_argument(
        "--keep-logs", action="store_true", help="keep the scratch folder with consumer logs"
    )
    p.add_argument("--kafka", default=None, help="bootstrap servers (default: settings)")
    p.add_argument("--redis", default=None, help="Redis URL (default: settings)")
    return p


def make_plan(args: argparse.Namespace) -> Plan:
    unknown = [n for n in args.only if n not in SCENARIOS and n not in CONSUMERS]
    if unknown:
        raise SystemExit(f"--only: unknown names {unknown}; know {SCENARIOS + CONSUMERS}")
    named_scenarios = [n for n in args.only if n in SCENARIOS]
    named_consumers = [n for n in args.only if n in CONSUMERS]
    scenarios = named_scenarios or (["throughput"] if named_consumers else list(SCENARIOS))
    consumers = named_consumers or (list(CONSUMERS) if "throughput" in scenarios else [])
    if set(scenarios) - {"throughput", "scale", "sweep"} and "pipeline" not in consumers:
        consumers.insert(0, "pipeline")  # the other scenarios build on the pipeline's run
    smoke = args.smoke
    creators = (
        [int(c) for c in args.creators.split(",")]
        if args.creators
        else ([200] if smoke else [10_000, 100_000])
    )
    if any(c < 1 for c in creators):
        raise SystemExit("--creators: counts must be positive")
    events = args.events or (5_000 if smoke else 1_000_000)
    scale_creators = args.scale_creators or (2_000 if smoke else 1_000_000)
    scale_events = args.scale_events or (2 if smoke else 3) * scale_creators
    if scale_creators < 1 or scale_events < 1:
        raise SystemExit("--scale-creators, --scale-events: must be positive")
    if scale_events < scale_creators:
        raise SystemExit("--scale-events: every creator posts once, so at least --scale-creators")
    worker_env: dict[str, str] = {}
    for item in args.worker_env:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SystemExit(f"--worker-env: expected ENV=VALUE, got {item!r}")
        worker_env[key] = value
    variants = dict(args.variant)
    return Plan(
        mode="smoke" if smoke else "full",
        events=events,
        creators=creators,
        baseline_seconds=args.baseline_seconds or (60.0 if smoke else 90.0),
        freshness_seconds=args.freshness_seconds or (4.0 if smoke else 45.0),
        freshness_warmup_s=1.0 if smoke else 5.0,
        freshness_rate=args.freshness_rate,
        freshness_creators=min(200, creators[0]) if smoke else 10_000,
        reads=args.reads or (300 if smoke else 20_000),
        install_tools=not (smoke or args.no_install),
        scenarios=scenarios,
        consumers=consumers,
        variants=variants,
        worker_env=worker_env,
        parallel_baselines=smoke,
        recovery_new_member=args.recovery_new_member,
        deadline_s=deadline(args, events),
        scale_creators=scale_creators,
        scale_events=scale_events,
        scale_deadline_s=deadline(args, scale_events),
        sweep_creators=[2_000] if smoke else [100_000, 1_000_000],
        api_args=["--creators", "3000", "--scored", "300", "--clients", "10", "--seconds", "1.5"]
        if smoke
        else [],
        widget_args=["--probes", "20", "--load-rate", "200", "--warmup", "2"] if smoke else [],
    )


def deadline(args: argparse.Namespace, events: int) -> float:
    """Longest a worker run over `events` may take: --deadline, or a floor rate's time.

    A worker does ~800 events/s at 100,000 creators here: 1,000,000 events need ~21
    minutes, and 1,200 s cut the default run's largest dataset short (run
    20261126t115505); scale with the events, never under 20 minutes. The scale
    profile's dataset has its own event count, so its own deadline.
    """
    if args.deadline:
        return float(args.deadline)
    return 180.0 if args.smoke else max(1200.0, events / 400)


class Runner:
    def __init__(self, ctx: Ctx, plan: Plan) -> None:
        self.ctx = ctx
        self.plan = plan
        self.results: dict[str, Any] = {
            "run_id": ctx.run_id,
            "mode": plan.mode,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "config": {
                "events": plan.events,
                "creators": plan.creators,
                "partitions": ctx.partitions,
                "commit_interval_s": ctx.commit_interval_s,
                "baseline_seconds": plan.baseline_seconds,
                "scenarios": plan.scenarios,
                "consumers": plan.consumers,
                "variants": plan.variants,
                "worker_env": plan.worker_env,
                "deadline_s": plan.deadline_s,
            },
            "datasets": [],
            "throughput": [],
            "errors": [],
        }
        if "scale" in plan.scenarios:
            self.results["config"]["scale"] = {
                "creators": plan.scale_creators,
                "events": plan.scale_events,
                "deadline_s": plan.scale_deadline_s,
            }
        self.datasets: list[Dataset] = []
        self.kept_prefixes: list[str] = []
        self.pipeline_by_dataset: dict[str, dict[str, Any]] = {}

    async def guarded(self, scenario: str, work: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await work()
        except Exception as exc:
            self.ctx.say(f"{scenario} FAILED: {exc}")
            self.results["errors"].append(
                {"scenario": scenario, "error": str(exc), "trace": traceback.format_exc()[-3000:]}
            )
            return None

    def specs(self) -> list[ConsumerSpec]:
        out: list[ConsumerSpec] = []
        for name in self.plan.consumers:
            if name == "pipeline":
                base = self.plan.worker_env
                out.append(worker_spec(env=base))
                out.extend(worker_spec(v, {**base, **env}) for v, env in self.plan.variants.items())
            else:
                out.append(BASELINES[name])
        return out

    async def run(self) -> dict[str, Any]:
        if set(self.plan.scenarios) - {"scale", "sweep", "api"}:
            await self.run_datasets()
        if "scale" in self.plan.scenarios:
            await self.guarded("scale", self.scale)
        if "sweep" in self.plan.scenarios:
            self.results["sweep"] = []
            for held in self.plan.sweep_creators:
                await self.guarded(f"sweep {held}", functools.partial(self.sweep, held))
        if "api" in self.plan.scenarios:
            await self.guarded("api", self.api)
        return self.results

    async def _module(self, module: str, args: Sequence[str]) -> dict[str, Any]:
        """Run `python -m module *args --out FILE` against the run's stack; its JSON figures."""
        out = self.ctx.workdir / f"{module.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:8]}.json"
        command = [sys.executable, "-m", module, *args, "--out", str(out)]
        self.ctx.say(" ".join(command[1:]))
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={
                **os.environ,
                "REDIS_URL": self.ctx.redis_url,
                "KAFKA_BOOTSTRAP_SERVERS": self.ctx.bootstrap,
            },
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise BenchError(f"{module} exited {proc.returncode}: {err.decode()[-2000:]}")
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures

    async def api(self) -> None:
        """The read API under concurrent clients (`bench.api`: its own Redis and API process),
        then the widget's delay, event produced -> SSE message read (`bench.widget_delay`: a
        worker and the API on the run's stack, topics and prefix of its own)."""
        figures = await self._module("bench.api", self.plan.api_args)
        self.results["api"] = figures
        p99 = {kind: row["p99_ms"] for kind, row in figures["api"].items()}
        self.ctx.say(f"api: p99 ms at {figures['clients']} clients {p99}")
        delay = await self._module("bench.widget_delay", self.plan.widget_args)
        self.results["widget_delay"] = delay
        idle, loaded = delay["idle"]["event_to_sse_ms"], delay["loaded"]["event_to_sse_ms"]
        self.ctx.say(f"widget delay p50/p99 ms: idle {idle['p50']}/{idle['p99']}, "
                     f"loaded {loaded['p50']}/{loaded['p99']}")  # fmt: skip

    async def sweep(self, held: int) -> None:
        """One day-boundary sweep over `held` creators (`bench.sweep`, its own process)."""
        smoke = self.plan.mode == "smoke"
        args = ["--creators", str(held), "--live-s", "2" if smoke else "10"]
        figures = await self._module("bench.sweep", args)
        self.results["sweep"].append(figures)
        self.ctx.say(f"sweep: {figures['sweep']['seconds']} s for {figures['held']:,} creators, "
                     f"live p99 x{figures['p99_ratio_during_over_alone']}")  # fmt: skip

    async def run_datasets(self) -> None:
        """Every scenario but the scale profile, over the datasets of `plan.creators`."""
        ctx, plan = self.ctx, self.plan
        for count in plan.creators:
            label = f"c{count}"
            ds = await self.guarded(
                f"preload {label}", functools.partial(preload, ctx, label, count, plan.events)
            )
            if ds is not None:
                self.datasets.append(ds)
                self.results["datasets"].append(ds.summary())
        if not self.datasets:
            return
        largest = max(self.datasets, key=lambda d: d.creators)
        for ds in self.datasets:
            side_by_side: list[Awaitable[Any]] = []
            for spec in self.specs():
                keep = spec.name == "pipeline" and ds is largest
                job = self.guarded(
                    f"throughput {ds.label} {spec.name}",
                    functools.partial(self.throughput_one, spec, ds, keep),
                )
                if self.plan.parallel_baselines and not spec.is_worker:
                    side_by_side.append(job)
                else:
                    await job
            if side_by_side:
                await asyncio.gather(*side_by_side)
        self.results["ratios"] = ratios(self.results["throughput"])
        if "state_size" in plan.scenarios:
            self.results["state_size"] = state_summary(
                self.results["throughput"], [d.label for d in self.datasets]
            )
        big = self.pipeline_by_dataset.get(largest.label) or {}
        prefix = big.get("redis_prefix")
        complete = prefix if big.get("completed") else None
        if "reads" in plan.scenarios:
            self.results["reads"] = await self.guarded("reads", lambda: self.reads(prefix))
            if self.results["reads"] and not big.get("completed"):
                self.results["reads"]["note"] = "the pipeline run it reads from did not finish"
        if "recovery" in plan.scenarios:
            self.results["recovery"] = await self.guarded(
                "recovery", lambda: self.recovery(largest, complete)
            )
        if prefix is not None:
            await delete_redis_prefix(ctx.redis_url, prefix)
        if "freshness" in plan.scenarios:
            self.results["freshness"] = await self.guarded("freshness", self.freshness)

    async def scale(self) -> None:
        """The scale profile: the pipeline alone over one dataset of many creators.

        Its throughput, its state (the changelog's table values) and its memory (peak
        RSS) go to `results["scale"]`; a run that does not finish keeps its figures there
        and is also recorded as an error.
        """
        from bench.state_size import changelog_sizes, memory_figures

        plan = self.plan
        # Every creator posts, so the table the target judges holds the whole population
        # (the simulator's stream reaches only part of it). In a child process: what
        # producing holds per creator would otherwise stay in the harness's memory while
        # the worker runs.
        ds = await preload_apart(
            self.ctx, SCALE_LABEL, plan.scale_creators, plan.scale_events, scale_profile_events
        )

        async def after(run: Running, result: dict[str, Any]) -> None:
            result["state"] = await changelog_sizes(self.ctx, run.app_id)

        result = await measure(
            self.ctx,
            worker_spec(env=plan.worker_env),
            ds,
            after_done=after,
            deadline_s=plan.scale_deadline_s,
        )
        result["memory"] = memory_figures(result)
        self.results["scale"] = {"dataset": ds.summary(), "pipeline": result}
        if not result.get("completed"):
            raise BenchError(f"pipeline did not finish {ds.label}: {result.get('note')}")

    async def throughput_one(self, spec: ConsumerSpec, ds: Dataset, keep: bool) -> None:
        from bench.state_size import changelog_sizes, memory_figures

        missing = missing_dependency(spec)
        if missing:
            self.ctx.say(f"{ds.label}: {spec.name} not available: {missing}")
            self.results["throughput"].append(
                {
                    "consumer": spec.name,
                    "title": spec.title,
                    "dataset": ds.label,
                    "creators": ds.creators,
                    "events": ds.total,
                    "available": False,
                    "completed": False,
                    "note": f"not available: {missing}",
                }
            )
            return

        async def after(run: Running, result: dict[str, Any]) -> None:
            if spec.is_worker and "state_size" in self.plan.scenarios:
                result["state"] = await changelog_sizes(self.ctx, run.app_id)
            result["redis_prefix"] = run.prefix

        is_baseline = not spec.is_worker
        result = await measure(
            self.ctx,
            spec,
            ds,
            max_seconds=self.plan.baseline_seconds if is_baseline else None,
            keep_output=keep,
            after_done=after,
        )
        result["available"] = True
        result["side_by_side"] = self.plan.parallel_baselines and is_baseline
        if spec.is_worker:
            result["memory"] = memory_figures(result)
            if spec.name == "pipeline":
                self.pipeline_by_dataset[ds.label] = result
        self.results["throughput"].append(result)
        if spec.is_worker and not result.get("completed"):
            raise BenchError(f"{spec.name} did not finish {ds.label}: {result.get('note')}")

    async def reads(self, prefix: str | None) -> dict[str, Any]:
        from bench.reads import run_reads

        if prefix is None:
            raise BenchError("no completed pipeline run on the largest dataset to read from")
        return await asyncio.to_thread(
            run_reads, self.ctx, prefix, self.plan.reads, self.plan.install_tools
        )

    async def recovery(self, dataset: Dataset, prefix: str | None) -> dict[str, Any]:
        from bench.recovery import run_recovery

        if prefix is None:
            # Without a finished undisturbed run there is nothing to compare with, and a
            # pipeline that could not finish the dataset would not finish this one either.
            raise BenchError(
                f"skipped: the undisturbed pipeline run on {dataset.label} did not finish "
                f"within {self.ctx.deadline_s:.0f} s (--deadline)"
            )
        return await run_recovery(
            self.ctx,
            dataset,
            prefix,
            env_overrides=self.plan.worker_env,
            static_member=not self.plan.recovery_new_member,
        )

    async def freshness(self) -> dict[str, Any]:
        from bench.freshness import run_freshness

        rate = self.plan.freshness_rate
        basis = "given with --freshness-rate"
        if rate is None:
            first = self.pipeline_by_dataset.get(self.datasets[0].label)
            if not first or not first.get("events_per_s"):
                raise BenchError("no measured pipeline maximum to take half of")
            rate = first["events_per_s"] / 2
            basis = f"half the pipeline's {first['events_per_s']:,.0f} ev/s on {first['dataset']}"
        result = await run_freshness(
            self.ctx,
            rate=rate,
            creators=self.plan.freshness_creators,
            seconds=self.plan.freshness_seconds,
            warmup_s=self.plan.freshness_warmup_s,
            target_measured=4000,
            env_overrides=self.plan.worker_env,
        )
        result["rate_basis"] = basis
        return result


def missing_dependency(spec: ConsumerSpec) -> str | None:
    """Why a baseline cannot run here (an extra not installed), or None."""
    import importlib.util

    if spec.name == "quix" and importlib.util.find_spec("quixstreams") is None:
        return "quixstreams is not installed (pip install -e '.[bench]')"
    return None


def _ratio(a: float, b: float) -> float:
    """a / b to 3 significant digits (a ratio of 0.0019 must not print as 0.00)."""
    return float(f"{a / b:.3g}")


def ratios(throughput: list[dict[str, Any]]) -> dict[str, Any]:
    """Worker figures over each baseline's, per dataset (events/s and events/CPU-s)."""
    out: dict[str, Any] = {}
    by_ds: dict[str, dict[str, dict[str, Any]]] = {}
    for r in throughput:
        by_ds.setdefault(r["dataset"], {})[r["consumer"]] = r
    for label, runs in by_ds.items():
        for name, run in runs.items():
            if name in BASELINES or not run.get("events_per_s"):
                continue
            for base in BASELINES:
                other = runs.get(base)
                if not other or not other.get("events_per_s"):
                    continue
                entry = {"events_per_s": _ratio(run["events_per_s"], other["events_per_s"])}
                if run.get("events_per_cpu_s") and other.get("events_per_cpu_s"):
                    entry["events_per_cpu_s"] = _ratio(
                        run["events_per_cpu_s"], other["events_per_cpu_s"]
                    )
                out.setdefault(label, {})[f"{name}/{base}"] = entry
    return out


def state_summary(throughput: list[dict[str, Any]], labels: list[str]) -> dict[str, Any]:
    from bench.state_size import rss_slope

    runs = {r["dataset"]: r for r in throughput if r["consumer"] == "pipeline"}
    out: dict[str, Any] = {"per_dataset": {}}
    for label in labels:
        run = runs.get(label)
        if run is None:
            continue
        out["per_dataset"][label] = {"changelog": run.get("state"), "memory": run.get("memory")}
    present = [runs[lb]["memory"] for lb in labels if lb in runs and runs[lb].get("memory")]
    if len(present) >= 2:
        out["rss_mb_per_100k_creators_between_datasets"] = rss_slope(present[0], present[-1])
    return out


async def cleanup(ctx: Ctx, runner: Runner | None) -> dict[str, Any]:
    """Delete every topic, group and Redis key this run created."""
    report: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        topics = await topics_of_run(ctx)
        await delete_topics(ctx, topics)
        report["topics_deleted"] = len(topics)
    groups = set()
    if runner is not None:
        groups = {r["app_id"] for r in runner.results["throughput"] if "app_id" in r}
        for label in (d.label for d in runner.datasets):
            groups.add(ctx.name(label, "recovery"))
    groups.add(ctx.name("fresh", "pipeline"))
    groups.add(ctx.name(SCALE_LABEL, "pipeline"))
    with contextlib.suppress(Exception):
        report["groups"] = await asyncio.to_thread(delete_groups, ctx, sorted(groups))
    with contextlib.suppress(Exception):
        report["redis_keys_deleted"] = await delete_redis_prefix(
            ctx.redis_url, f"bench-{ctx.run_id}"
        )
    return report


async def main_async(args: argparse.Namespace) -> int:
    from streams.settings import load_settings

    settings = load_settings()
    plan = make_plan(args)
    workdir = Path(tempfile.mkdtemp(prefix="creator-scores-bench-"))
    ctx = Ctx(
        run_id=new_run_id(),
        bootstrap=args.kafka or settings.kafka_bootstrap_servers,
        redis_url=args.redis or settings.redis_url,
        workdir=workdir,
        partitions=settings.topic_partitions,
        commit_interval_s=args.commit_interval,
        deadline_s=plan.deadline_s,
    )
    ctx.say(f"run {ctx.run_id} ({plan.mode}): {plan.events:,} events x {plan.creators} creators")
    if "scale" in plan.scenarios:
        ctx.say(
            f"scale profile: {plan.scale_events:,} events x {plan.scale_creators:,} creators "
            f"(deadline {plan.scale_deadline_s:,.0f} s)"
        )
    started = time.time()
    runner: Runner | None = None
    try:
        runner = Runner(ctx, plan)
        results = await runner.run()
    finally:
        report = await cleanup(ctx, runner)
        ctx.say(f"cleanup: {report}")
    results["cleanup"] = report
    results["duration_s"] = round(time.time() - started, 1)
    results["targets"] = targets(results)
    results["log"] = ctx.log
    out = args.out or REPO_ROOT / "bench" / "results" / f"{ctx.run_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    ctx.say(f"results written to {out}")
    if not args.no_docs:
        from bench.report import write_docs

        docs = args.docs_dir or (workdir / "docs" if args.smoke else None)
        md, png = write_docs(results, out, docs)
        where = f"{md}" + (f", {png}" if png else " (no plot: matplotlib missing)")
        scratch = docs is not None and docs.is_relative_to(workdir) and not args.keep_logs
        ctx.say(f"docs written: {where}" + (" (scratch copy, removed)" if scratch else ""))
    if args.keep_logs:
        ctx.say(f"consumer logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    for err in results["errors"]:
        print(f"ERROR in {err['scenario']}: {err['error']}", file=sys.stderr)
    return 1 if results["errors"] else 0


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    from bench.report import evaluate_targets

    return evaluate_targets(results)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
