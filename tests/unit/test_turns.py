"""Turns on a worker's state: a deferred write is always finished before the next turn."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streams.turns import Exclusive


async def _write(log: list[str], name: str, gate: asyncio.Event | None = None) -> str:
    log.append(f"{name} started")
    if gate is not None:
        await gate.wait()
    else:
        await asyncio.sleep(0.01)
    log.append(f"{name} done")
    return name


async def test_the_next_turn_waits_for_the_deferred_write() -> None:
    turns = Exclusive()
    log: list[str] = []
    gate = asyncio.Event()
    async with turns.turn(settle=False) as turn:
        turn.defer(_write(log, "slice 1", gate))

    async def batch() -> None:
        async with turns.turn():
            log.append("batch")

    waiting = asyncio.ensure_future(batch())
    await asyncio.sleep(0.02)
    assert log == ["slice 1 started"]  # the batch holds back while the write is on its way
    gate.set()
    await waiting
    assert log == ["slice 1 started", "slice 1 done", "batch"]


async def test_a_turn_without_settling_overlaps_its_work_with_the_write() -> None:
    turns = Exclusive()
    log: list[str] = []
    gate = asyncio.Event()
    async with turns.turn(settle=False) as turn:
        turn.defer(_write(log, "slice 1", gate))
    async with turns.turn(settle=False) as turn:
        await asyncio.sleep(0)
        log.append("slice 2 computed")  # while slice 1 is still being written
        gate.set()
        assert await turn.settle() == "slice 1"
        turn.defer(_write(log, "slice 2"))
    async with turns.turn(settle=False) as turn:
        assert await turn.settle() == "slice 2"
        assert await turn.settle() is None  # nothing left
    assert log == ["slice 1 started", "slice 2 computed", "slice 1 done", "slice 2 started",
                   "slice 2 done"]  # fmt: skip


async def test_defer_needs_a_turn_and_a_settled_write() -> None:
    turns = Exclusive()
    log: list[str] = []
    with pytest.raises(RuntimeError, match="outside a turn"):
        turns.defer(_write(log, "x"))
    gate = asyncio.Event()
    async with turns.turn(settle=False) as turn:
        turn.defer(_write(log, "a", gate))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="previous deferred write"):
            turn.defer(_write(log, "b"))
        gate.set()
        await turn.settle()
    assert log == ["a started", "a done"]  # "b" never ran


async def test_a_failed_write_is_logged_not_raised_at_the_next_holder(
    caplog: pytest.LogCaptureFixture,
) -> None:
    turns = Exclusive()

    async def broken() -> None:
        raise RuntimeError("broker refused for good")

    async with turns.turn(settle=False) as turn:
        turn.defer(broken())
    with caplog.at_level(logging.ERROR, logger="streams.turns"):
        async with turns.turn():
            pass
    assert "a deferred write failed" in caplog.text
    assert not turns.locked()


async def test_a_cancelled_waiter_leaves_the_write_for_the_next_one() -> None:
    turns = Exclusive()
    log: list[str] = []
    gate = asyncio.Event()
    async with turns.turn(settle=False) as turn:
        turn.defer(_write(log, "slice", gate))

    async def holder() -> None:
        async with turns.turn():
            log.append("first holder")

    first = asyncio.ensure_future(holder())
    await asyncio.sleep(0.01)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not turns.locked()
    gate.set()
    async with turns.turn(settle=False) as turn:
        assert await turn.settle() == "slice"  # still there, and finished, for the next one
    assert log == ["slice started", "slice done"]


async def test_a_batch_waits_only_for_a_write_that_holds_one_of_its_creators() -> None:
    turns = Exclusive()
    log: list[str] = []
    gate = asyncio.Event()
    async with turns.turn(settle=False) as turn:
        turn.defer(_write(log, "slice", gate), [b"cr-1", b"cr-2"])

    async def batch(name: str, creators: list[bytes]) -> None:
        async with turns.turn(settle=False) as turn:
            await turn.settle_for(creators)
            log.append(name)

    await asyncio.wait_for(batch("other creators", [b"cr-3"]), timeout=1)
    assert log == ["slice started", "other creators"]  # did not wait for the slice
    waiting = asyncio.ensure_future(batch("shares cr-2", [b"cr-9", b"cr-2"]))
    await asyncio.sleep(0.02)
    assert log == ["slice started", "other creators"]  # waits for the slice's write
    gate.set()
    await waiting
    assert log == ["slice started", "other creators", "slice done", "shares cr-2"]


async def test_a_write_that_named_no_creators_holds_every_batch_back() -> None:
    turns = Exclusive()
    log: list[str] = []
    async with turns.turn(settle=False) as turn:
        turn.defer(_write(log, "slice"))
    async with turns.turn(settle=False) as turn:
        await turn.settle_for([b"cr-3"])
        log.append("batch")
    assert log == ["slice started", "slice done", "batch"]
