"""Command line of the fault suite: `python -m tests.chaos --help`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from streams.settings import load_settings
from tests.chaos.report import reliability_md, table
from tests.chaos.run import CANONICAL, REPO_ROOT
from tests.chaos.scenarios import BY_NAME, run_reference, run_scenario
from tests.chaos.soak import soak
from tests.chaos.stack import ExternalStack, PrivateStack
from tests.support.events import HOUR_MS, make_events
from tests.support.workers import CLI, worker_env


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    p.add_argument(
        "--scenarios", default="all", help=f"comma-separated, or 'all' ({', '.join(BY_NAME)})"
    )
    p.add_argument("--creators", type=int, default=400)
    p.add_argument("--posts-per-creator", type=int, default=25)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument(
        "--feed-seconds",
        type=float,
        default=40.0,
        help="how long each scenario's events take to go out (the load)",
    )
    p.add_argument("--soak-minutes", type=float, default=0.0, help="0: no soak")
    p.add_argument(
        "--external",
        action="store_true",
        help="use the stack of the environment (KAFKA_BOOTSTRAP_SERVERS, REDIS_URL) "
        "instead of a private one; scenarios that stop Redis or Kafka are not run",
    )
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="work in this folder and keep it (worker logs, the stack's logs)",
    )
    p.add_argument("--json", type=Path, default=Path("docs/reliability.json"))
    p.add_argument("--docs", type=Path, default=None, help="also write this markdown report")
    p.add_argument(
        "--docs-from",
        type=Path,
        default=None,
        help="only write --docs (default docs/reliability.md) from this results JSON",
    )
    return p.parse_args(argv)  # fmt: skip


def say(line: str) -> None:
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {line}", flush=True)


def check_worker_code() -> str:
    """The `streams` package a worker imports: it must be this checkout's."""
    env = worker_env(REPO_ROOT, {})
    python = CLI.with_name("python")
    found = subprocess.run(
        [str(python), "-c", "import streams; print(streams.__file__)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not Path(found).resolve().is_relative_to(REPO_ROOT):
        raise SystemExit(f"workers would run {found}, not this checkout ({REPO_ROOT})")
    return found


async def main_async(args: argparse.Namespace, command: str) -> int:
    names = list(BY_NAME) if args.scenarios == "all" else args.scenarios.split(",")
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(unknown)}")
    say(f"workers run {check_worker_code()}")
    now_ms = (int(time.time() * 1000) // HOUR_MS) * HOUR_MS
    events = make_events(
        CANONICAL, creators=args.creators, posts_per_creator=args.posts_per_creator,
        seed=args.seed, now_ms=now_ms,
    )  # fmt: skip
    say(f"{len(events.records)} events for {len(events.creators)} creators")
    tag = f"{int(time.time()) % 10**6}"
    started_utc = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = _commit()  # the code under test: before the run, which takes a while
    outcomes: list[dict[str, Any]] = []
    soak_result = None
    with contextlib.ExitStack() as cleanup:
        if args.keep is not None:
            workdir = args.keep.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="cs-chaos-")))
        if args.external:
            stack: PrivateStack | ExternalStack = ExternalStack(load_settings())
        else:
            say("starting a private Kafka and Redis ...")
            stack = await asyncio.to_thread(PrivateStack, workdir / "stack")
        say(stack.describe())
        try:
            say("reference: one worker, undisturbed")
            reference = await run_reference(stack, events, workdir, tag)
            say(f"reference: {sum(1 for k in reference.redis if k.startswith('creator:'))} "
                f"creators, {len(reference.redis)} keys, "
                f"{sum(map(len, reference.changes.values()))} score changes")  # fmt: skip
            for name in names:
                scenario = BY_NAME[name]
                say(f"{name}: {scenario.what}")
                outcome = await run_scenario(
                    scenario, stack, events, reference, workdir, tag,
                    feed_seconds=args.feed_seconds,
                )  # fmt: skip
                row = {**outcome.as_json(), "what": scenario.what}
                if any("not run" in n for n in outcome.notes):
                    row["not_run"] = True
                outcomes.append(row)
                say(f"{name}: {'PASS' if outcome.passed else 'FAIL'} "
                    f"(different {outcome.creators_different}, lost {outcome.events_lost}, "
                    f"twice {outcome.counted_twice}, serving {outcome.seconds_to_serving}, "
                    f"{outcome.wall_s}s)")  # fmt: skip
                for note in outcome.notes:
                    say(f"  {note}")
            if args.soak_minutes > 0:
                say(f"soak: {args.soak_minutes} minutes")
                soak_result = (
                    await soak(stack, events, workdir, tag, minutes=args.soak_minutes, say=say)
                ).as_json()
        finally:
            await asyncio.to_thread(stack.close)
    print()
    print(table(outcomes))
    if soak_result is not None:
        s = soak_result
        print(f"\nsoak: {'PASS' if s['passed'] else 'FAIL'} "
              f"RSS {s['rss_early_mb']} -> {s['rss_late_mb']} MB, "
              f"lag max {s['lag_early_max']} -> {s['lag_late_max']}")  # fmt: skip
    result = {
        "command": command,
        "started_utc": started_utc,
        "commit": commit,
        "events": len(events.records),
        "creators": len(events.creators),
        "feed_seconds": args.feed_seconds,
        "json_path": str(args.json),
        "outcomes": outcomes,
        "soak": soak_result,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    say(f"results: {args.json}")
    if args.docs is not None:
        args.docs.write_text(reliability_md(result, str(args.json)))
        say(f"report: {args.docs}")
    failed = [o for o in outcomes if not o["passed"] and not o.get("not_run")]
    soak_failed = soak_result is not None and not soak_result["passed"]
    return 1 if failed or soak_failed else 0


def _commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return out.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.docs_from is not None:
        docs = args.docs or Path("docs/reliability.md")
        docs.write_text(reliability_md(json.loads(args.docs_from.read_text()), str(args.docs_from)))
        print(f"wrote {docs}")
        return 0
    # Producer retries while a new topic's leaders are elected are expected; say less.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    command = "python -m tests.chaos " + shlex.join(argv)
    return asyncio.run(main_async(args, command.strip()))


if __name__ == "__main__":
    sys.exit(main())
