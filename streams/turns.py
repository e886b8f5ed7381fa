"""Taking turns on one worker's state: live batches, sweep slices and Redis repairs.

Each of them reads creators' states and writes the sinks and the table, so they run one
at a time (`Exclusive`, a lock). A sweep slice may leave its writes finishing after it
lets go (`defer`): its next slice is then computed while Redis and Kafka take the
previous one, instead of the CPU waiting on them. Whoever takes the next turn waits for
that write first, so no one ever reads a state whose write is still on
its way (`turn()`). Two holders know better and take their turn without waiting
(`turn(settle=False)`): the sweep, whose slices never share a creator, and a live batch,
which waits only if it holds a creator of that write (`settle_for`, once it knows its
creators), so live events do not queue behind a slice they have nothing to do with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any

log = logging.getLogger(__name__)


class Exclusive:
    """A lock whose holder may leave one write finishing after it lets go (see the module)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._pending: asyncio.Task[Any] | None = None
        self._pending_keys: frozenset[bytes] = frozenset()

    @contextlib.asynccontextmanager
    async def turn(self, *, settle: bool = True) -> AsyncIterator[Exclusive]:
        """A turn; with `settle` false the write left by the last turn may still be on its
        way (the holder awaits `settle` itself before it defers another)."""
        await self._lock.acquire()
        try:
            if settle:
                await self.settle()
            yield self
        finally:
            self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def defer(self, write: Coroutine[Any, Any, Any], keys: Iterable[bytes] = ()) -> None:
        """Leave `write` running past this turn; the next turn waits for it. Only the
        holder may defer, and only once the previous deferred write is settled. `keys`:
        the creators it writes (for `settle_for`; none given, every holder waits)."""
        if not self._lock.locked():
            write.close()
            raise RuntimeError("defer outside a turn")
        if self._pending is not None and not self._pending.done():
            write.close()
            raise RuntimeError("defer before the previous deferred write settled")
        self._pending = asyncio.ensure_future(write)
        self._pending_keys = frozenset(keys)

    async def settle_for(self, keys: Iterable[bytes]) -> None:
        """`settle`, if the deferred write holds one of `keys` (or did not say which)."""
        pending = self._pending
        if pending is None:
            return
        held = self._pending_keys
        if not held or not held.isdisjoint(keys):
            await self.settle()

    async def settle(self) -> Any:
        """Wait for the deferred write, if any; returns its result (None if there was none).

        A write that failed is logged, not raised: it was a sweep slice's, whose creators
        are then still due and taken up by the next pass (the next holder is not to blame).
        """
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            if pending.cancelled():
                log.warning("a deferred write was cancelled; its creators are left as they were")
                return None
            if not pending.done():
                self._pending = pending  # this waiter was cancelled, not the write
            raise
        except Exception:
            log.exception("a deferred write failed; its creators are left as they were")
            return None
