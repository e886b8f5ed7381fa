"""The part of the fault suite that fits in `make test`: kill -9 and hostile records.

Runs against the stack `make test` started (a missing service fails, never
skips), with fewer events and a shorter feed than `make chaos`; the scenarios
that stop Redis or the broker need the suite's private stack and run only there.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.chaos.report import table
from tests.chaos.run import CANONICAL
from tests.chaos.scenarios import BY_NAME, run_reference, run_scenario
from tests.chaos.stack import ExternalStack
from tests.support.events import HOUR_MS, make_events

pytestmark = pytest.mark.e2e


async def test_kill9_and_hostile_records_match_undisturbed_run(
    stack_settings: Settings, unique: str, tmp_path: Path
) -> None:
    stack = ExternalStack(stack_settings)
    now_ms = (int(time.time() * 1000) // HOUR_MS) * HOUR_MS
    events = make_events(CANONICAL, creators=48, posts_per_creator=8, seed=5, now_ms=now_ms)
    reference = await run_reference(stack, events, tmp_path, unique)
    outcomes = [
        await run_scenario(
            BY_NAME[name], stack, events, reference, tmp_path, unique, feed_seconds=12
        )
        for name in ("kill9", "hostile-records")
    ]
    report = table([{**o.as_json(), "what": ""} for o in outcomes])
    notes = "\n".join(f"{o.scenario}: {n}" for o in outcomes for n in o.notes)
    for outcome in outcomes:
        assert outcome.passed, f"\n{report}\n{notes}"
    hostile = outcomes[1]
    assert hostile.dead_letters_expected >= 20, notes
