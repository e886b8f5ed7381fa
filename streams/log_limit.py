"""Keeps a dependency that is down from flooding the log with the same line.

While a broker is unreachable, aiokafka logs an error for every reconnect
attempt of every connection ("Unable connect to node ...", thousands a
second); after the first few they say nothing new and cost CPU and disk.
`RepeatLimiter` passes the first `burst` records of each logger, level and
message template per `interval_s` and drops the rest; the first record it
passes in a later interval says how many like it were dropped. The worker and
the command-line tools that talk to Kafka install it on their log handlers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_INTERVAL_S = 10.0
DEFAULT_BURST = 3
#: Distinct templates tracked at once; past this the oldest is forgotten.
MAX_KEYS = 1024

_Key = tuple[str, int, str]


@dataclass
class _Window:
    start: float
    passed: int = 0
    suppressed: int = 0


class RepeatLimiter(logging.Filter):
    """A handler filter: at most `burst` records per (logger, level, template) per interval.

    Records below `min_level` always pass, so a debugging session sees everything.
    The key is the unformatted message (`record.msg`), so "Unable connect to node
    with id %s" counts as one line whatever the node.
    """

    def __init__(
        self,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        burst: int = DEFAULT_BURST,
        min_level: int = logging.INFO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.interval_s = interval_s
        self.burst = burst
        self.min_level = min_level
        self._clock = clock
        self._windows: dict[_Key, _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        # Another limiter (on another handler) may have annotated the message already.
        template = str(getattr(record, "repeat_template", record.msg))
        key = (record.name, record.levelno, template)
        now = self._clock()
        window = self._windows.get(key)
        if window is not None and now - window.start < self.interval_s:
            if window.passed < self.burst:
                window.passed += 1
                return True
            window.suppressed += 1
            return False
        if window is not None and window.suppressed:
            record.repeat_template = template
            text = (
                f"{record.getMessage()} [{window.suppressed} more like this suppressed "
                f"in the last {now - window.start:.0f}s]"
            )
            # As a template of its own: handlers and formatters that look at `args` (or set
            # them) then format the same text; the text itself may hold a `%`.
            record.msg, record.args = "%s", (text,)
        self._windows.pop(key, None)
        if len(self._windows) >= MAX_KEYS:
            del self._windows[next(iter(self._windows))]
        self._windows[key] = _Window(start=now, passed=1)
        return True


def install_repeat_limiter(
    logger: logging.Logger | None = None,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    burst: int = DEFAULT_BURST,
    min_level: int = logging.INFO,
) -> list[RepeatLimiter]:
    """Add a `RepeatLimiter` to every handler of `logger` (default: root) that has none.

    On the handlers, not the logger: a logger's filters see only records logged to
    that very logger, while every record of every library passes a root handler.
    Returns the limiters added (none when each handler already has one).
    """
    target = logger or logging.getLogger()
    added: list[RepeatLimiter] = []
    for handler in target.handlers:
        if any(isinstance(f, RepeatLimiter) for f in handler.filters):
            continue
        limiter = RepeatLimiter(interval_s=interval_s, burst=burst, min_level=min_level)
        handler.addFilter(limiter)
        added.append(limiter)
    return added


def setup_tool_logging(level: int = logging.WARNING) -> None:
    """Logging for a command-line tool: warnings and errors to stderr, repeats limited."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)
    install_repeat_limiter(root)
