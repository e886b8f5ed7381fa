"""The part of the fault suite that fits in `make test`: hostile records and kill -9.

Runs against the stack `make test` started (a missing service fails, never
skips), with fewer events and a shorter feed than `make chaos`; the scenarios
that stop Redis or the broker need the suite's private stack and run only there.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.chaos.compare import Outcome
from tests.chaos.report import table
from tests.chaos.run import CANONICAL
from tests.chaos.scenarios import BY_NAME, run_reference, run_scenario
from tests.chaos.stack import ExternalStack
from tests.support.events import HOUR_MS, make_events

pytestmark = pytest.mark.e2e


async def _run(name: str, settings: Settings, unique: str, tmp_path: Path) -> Outcome:
    stack = ExternalStack(settings)
    now_ms = (int(time.time() * 1000) // HOUR_MS) * HOUR_MS
    events = make_events(CANONICAL, creators=48, posts_per_creator=8, seed=5, now_ms=now_ms)
    reference = await run_reference(stack, events, tmp_path, unique)
    outcome = await run_scenario(
        BY_NAME[name], stack, events, reference, tmp_path, unique, feed_seconds=12,
        settle_timeout=60,
    )  # fmt: skip
    report = table([{**outcome.as_json(), "what": ""}])
    notes = "\n".join(outcome.notes)
    assert outcome.passed, f"\n{report}\n{notes}\n{outcome.details}"
    return outcome


async def test_hostile_records_are_dead_lettered_and_the_rest_matches(
    stack_settings: Settings, unique: str, tmp_path: Path
) -> None:
    outcome = await _run("hostile-records", stack_settings, unique, tmp_path)
    assert outcome.dead_letters_expected >= 20, outcome.notes


# This scenario found the takeover defects (docs/reliability.md, "Findings"): records taken
# during a rebalance dropped or scored against a state still recovering (fixed by
# `streams.batching.when_ready`), records a kept partition dropped as stale before any
# commit (`BatchConsumer.perform_seek`), and changelog records a rebalance dropped in the
# middle of a recovery (`BatchConsumer._mend_recovery`).
async def test_kill9_of_one_of_three_workers_matches_undisturbed_run(
    stack_settings: Settings, unique: str, tmp_path: Path
) -> None:
    await _run("kill9", stack_settings, unique, tmp_path)
