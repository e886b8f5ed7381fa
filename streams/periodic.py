"""Background checks that run every few seconds and must neither crash nor flood the log.

The Redis repair (`streams.repair`) and the sweep (`streams.sweep`) each run a step every
few seconds for the worker's whole life. A step fails while Redis or Kafka is down, for
as long as the outage lasts: said at every step, that is a log line every few seconds;
not said at all, an operator never learns why nothing moves. `run_every` says it once
when the step starts failing (with the traceback when it is a bug, not an outage) and
once when it works again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

__all__ = ["run_every"]


async def run_every(
    interval_s: float, step: Callable[[], Awaitable[Any]], what: str, log: logging.Logger
) -> None:
    """Await `step()` every `interval_s` seconds until cancelled (`what` names it in the log)."""
    failing = False
    while True:
        try:
            await step()
        except (RedisError, OSError) as exc:
            if not failing:
                log.warning("%s failed (%s: %s); trying again every %gs",
                            what, type(exc).__name__, exc, interval_s)  # fmt: skip
                failing = True
        except Exception:
            # A bug, not an outage: said with its traceback, and the worker goes on.
            if not failing:
                log.exception("%s failed; trying again every %gs", what, interval_s)
                failing = True
        else:
            if failing:
                log.info("%s works again", what)
                failing = False
        await asyncio.sleep(interval_s)
