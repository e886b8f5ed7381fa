"""The repeat limiter: a flood of one log line becomes a few lines and a count, on a fake clock."""

from __future__ import annotations

import io
import logging

import pytest

from streams.log_limit import RepeatLimiter, install_repeat_limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def captured(clock: FakeClock) -> ListHandler:
    handler = ListHandler()
    handler.addFilter(RepeatLimiter(interval_s=10.0, burst=2, clock=clock))
    return handler


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def test_a_flood_passes_a_burst_per_interval_then_says_how_many_it_dropped(
    clock: FakeClock, captured: ListHandler
) -> None:
    log = _logger("test.limit.flood", captured)
    for node in range(2000):  # one second of a broker outage
        log.error("Unable connect to node with id %s: %s", node % 3, "refused")
        clock.now += 0.0004
    assert captured.lines == [
        "Unable connect to node with id 0: refused",
        "Unable connect to node with id 1: refused",
    ]
    clock.now += 8.0  # still in the first interval: dropped
    log.error("Unable connect to node with id %s: %s", 7, "refused")
    assert len(captured.lines) == 2
    clock.now += 1.5  # a new interval: the first record carries the count
    log.error("Unable connect to node with id %s: %s", 2, "refused")
    assert captured.lines[2] == (
        "Unable connect to node with id 2: refused [1999 more like this suppressed in the last 10s]"
    )
    log.error("Unable connect to node with id %s: %s", 3, "refused")
    assert captured.lines[3] == "Unable connect to node with id 3: refused"
    log.error("Unable connect to node with id %s: %s", 4, "refused")
    assert len(captured.lines) == 4
    clock.now += 30.0  # after a quiet spell the count covers the whole gap
    log.error("Unable connect to node with id %s: %s", 5, "refused")
    assert captured.lines[4].endswith("[1 more like this suppressed in the last 30s]")
    clock.now += 30.0  # nothing was dropped since: no note
    log.error("Unable connect to node with id %s: %s", 6, "refused")
    assert captured.lines[5] == "Unable connect to node with id 6: refused"


def test_templates_loggers_and_levels_are_limited_separately(
    clock: FakeClock, captured: ListHandler
) -> None:
    a = _logger("test.limit.a", captured)
    b = _logger("test.limit.b", captured)
    for _ in range(5):
        a.error("first %s", 1)
        a.error("second %s", 2)
        a.warning("first %s", 1)
        b.error("first %s", 1)
    assert len(captured.lines) == 4 * 2


def test_records_below_the_minimum_level_always_pass(clock: FakeClock) -> None:
    handler = ListHandler()
    handler.addFilter(RepeatLimiter(burst=1, min_level=logging.WARNING, clock=clock))
    log = _logger("test.limit.debug", handler)
    for i in range(50):
        log.debug("poll %s", i)
        log.warning("retrying %s", i)
    assert len([line for line in handler.lines if line.startswith("poll")]) == 50
    assert [line for line in handler.lines if line.startswith("retrying")] == ["retrying 0"]


def test_install_adds_one_limiter_per_handler_and_is_idempotent() -> None:
    logger = logging.getLogger("test.limit.install")
    logger.handlers = [ListHandler(), ListHandler()]
    added = install_repeat_limiter(logger, burst=1)
    assert len(added) == 2
    assert install_repeat_limiter(logger) == []
    assert [len(h.filters) for h in logger.handlers] == [1, 1]
    logger.propagate = False
    for _ in range(10):
        logger.error("same line")
    assert [cast_lines(h) for h in logger.handlers] == [["same line"], ["same line"]]


def cast_lines(handler: logging.Handler) -> list[str]:
    assert isinstance(handler, ListHandler)
    return handler.lines


@pytest.mark.parametrize(("interval_s", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bad_arguments_are_refused(interval_s: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RepeatLimiter(interval_s=interval_s, burst=burst)


def test_the_note_on_dropped_lines_formats_under_modes_formatter(clock: FakeClock) -> None:
    """Faust's worker formats records with mode's formatter, which turns `args` None into
    (None,): the annotated record must still format (it once raised TypeError)."""
    from mode.utils.logging import ExtensionFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ExtensionFormatter(stream=stream, fmt="%(message)s"))
    handler.addFilter(RepeatLimiter(interval_s=10.0, burst=1, clock=clock))
    logger = _logger("test.limit.mode", handler)
    for _ in range(3):
        logger.info("Updating subscribed topics to: %s", frozenset({"posts"}))
    clock.now += 11
    logger.info("Updating subscribed topics to: %s", frozenset({"posts"}))
    lines = stream.getvalue().splitlines()
    assert lines[-1] == (
        "Updating subscribed topics to: frozenset({'posts'}) "
        "[2 more like this suppressed in the last 11s]"
    )
