"""`run_every`: a failing background step is said once when it starts failing and once
when it works again, never at every step."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from streams.periodic import run_every


async def test_an_outage_and_a_bug_are_each_said_once(caplog: pytest.LogCaptureFixture) -> None:
    outcomes: list[BaseException | None] = [
        RedisConnectionError("down"), RedisConnectionError("down"), OSError("refused"), None,
        ValueError("a bug"), ValueError("a bug"), None, None,
    ]  # fmt: skip
    calls = 0
    finished = asyncio.Event()

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls >= len(outcomes):
            finished.set()
            return
        outcome = outcomes[calls - 1]
        if outcome is not None:
            raise outcome

    log = logging.getLogger("test.periodic")
    with caplog.at_level(logging.INFO, logger="test.periodic"):
        task = asyncio.ensure_future(run_every(0.001, step, "the check", log))
        await asyncio.wait_for(finished.wait(), 5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    said = [(r.levelname, r.getMessage().split(";")[0]) for r in caplog.records]
    assert said == [
        ("WARNING", "the check failed (ConnectionError: down)"),
        ("INFO", "the check works again"),
        ("ERROR", "the check failed"),
        ("INFO", "the check works again"),
    ]
    assert caplog.records[2].exc_info is not None  # a bug comes with its traceback
