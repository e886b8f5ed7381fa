"""Replays a file of recorded records into Kafka, so a run can be repeated exactly.

The file is JSON lines, one record per line, as `creator-scores simulate
--to-file` writes it:

    {"topic": "posts", "key": "cr-000001", "value": "{\\"post_id\\": ...}"}

- `topic` (string, required): the topic to send to, after `--topic-map`.
- `key` (string or null, optional): the record key as UTF-8 text; null or
  absent sends the record unkeyed.
- `value` (string): the record value, sent as its UTF-8 bytes, exactly as
  written (so broken JSON stays broken). A JSON object or array is accepted
  too and sent re-serialized compactly, which suits hand-written files.
- `value_b64` (string), instead of `value`: the value as base64, for bytes
  that are not UTF-8.

Blank lines are ignored. Any other line is bad: it is reported with its line
number and reason, skipped, counted, and makes the command exit non-zero, so
a damaged file never passes unnoticed. Records go out through the same
batching producer as the simulator, paced with `--rate` if asked.

A broker that goes away (a restart) is waited out: records not yet confirmed
are sent again once it is back, for up to `--retry-for` seconds. Past that the
command stops and says how many lines are safely on the broker; `--skip N`
resumes after them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, Protocol

import orjson

from streams.devtools.simulate import (
    BatchProducer,
    Pacer,
    SimEvent,
    UnknownTopicError,
    stop_on_signals,
)
from streams.settings import Settings
from streams.sinks.base import Backoff

#: Bad lines printed one by one; past this only the summary counts them.
MAX_REPORTED: Final = 50
# Room for the record framing next to key and value inside one batch.
_RECORD_OVERHEAD: Final = 64
#: Records sent between two waits for the broker's acknowledgements; a retry resends
#: at most this many.
CONFIRM_EVERY: Final = 20_000
#: How long a broker outage is waited out before the replay stops (`--retry-for`).
DEFAULT_RETRY_FOR_S: Final = 120.0
#: How long a producer whose broker is gone may take to close before it is dropped.
_STOP_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class BadLine:
    line_no: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"


@dataclass
class ReplayReport:
    lines: int = 0
    sent: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)
    bad: int = 0
    bad_reasons: Counter[str] = field(default_factory=Counter)
    first_bad: list[BadLine] = field(default_factory=list)
    elapsed_s: float = 0.0
    interrupted: bool = False
    skipped: int = 0  # lines skipped at the start (--skip)
    confirmed_lines: int = 0  # every line up to this one is on the broker (or bad)
    retries: int = 0  # Kafka outages waited out
    gave_up: str | None = None  # why the replay stopped before the end of the file

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add_bad(self, bad: BadLine, category: str) -> None:
        self.bad += 1
        self.bad_reasons[category] += 1
        if len(self.first_bad) < MAX_REPORTED:
            self.first_bad.append(bad)

    def summary_lines(self, destination: str) -> list[str]:
        lines = [
            f"replayed {self.sent:,} of {self.lines:,} lines to {destination} in "
            f"{self.elapsed_s:.2f}s ({self.rate:,.0f} records/s)"
            + (" - stopped early" if self.interrupted or self.gave_up else "")
        ]
        if self.gave_up:
            lines.append(f"  gave up: Kafka unavailable ({self.gave_up})")
        if self.interrupted or self.gave_up:
            lines.append(
                f"  the first {self.confirmed_lines:,} lines are done (on the broker, or "
                f"bad); resume with --skip {self.confirmed_lines}"
            )
        if self.skipped:
            lines.append(f"  first {self.skipped:,} lines skipped (--skip)")
        if self.retries:
            lines.append(
                f"  {self.retries} Kafka outage(s) waited out; records resent at least once"
            )
        lines.extend(f"  {topic:<24} {n:>12,}" for topic, n in sorted(self.by_topic.items()))
        if self.bad:
            reasons = ", ".join(f"{k} {n}" for k, n in sorted(self.bad_reasons.items()))
            lines.append(f"  {self.bad:,} bad lines skipped ({reasons})")
        return lines


class LineError(ValueError):
    """A line that is not a replayable record; `category` is a short stable label."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


def parse_line(raw: bytes, topic_map: Mapping[str, str] | None = None) -> SimEvent | None:
    """One line as a record; None for a blank line; LineError says why a line is bad."""
    if not raw.strip():
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise LineError("not_json", f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise LineError("not_an_object", f"expected a JSON object, got {type(doc).__name__}")
    topic = doc.get("topic")
    if not isinstance(topic, str) or not topic.strip():
        raise LineError("bad_topic", "'topic' must be a non-empty string")
    if topic_map:
        topic = topic_map.get(topic, topic)
    key = doc.get("key")
    if key is not None and not isinstance(key, str):
        raise LineError("bad_key", f"'key' must be a string or null, got {type(key).__name__}")
    has_value, has_b64 = "value" in doc, "value_b64" in doc
    if has_value == has_b64:
        raise LineError("bad_value", "exactly one of 'value' and 'value_b64' is required")
    if has_b64:
        b64 = doc["value_b64"]
        if not isinstance(b64, str):
            raise LineError("bad_value", "'value_b64' must be a base64 string")
        try:
            value = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise LineError("bad_value", "'value_b64' is not valid base64") from None
    else:
        raw_value = doc["value"]
        if isinstance(raw_value, str):
            value = raw_value.encode()
        elif isinstance(raw_value, dict | list):
            value = orjson.dumps(raw_value)
        else:
            got = "null" if raw_value is None else type(raw_value).__name__
            raise LineError("bad_value", f"'value' must be a string, object or array, got {got}")
    return SimEvent(topic, key.encode() if key is not None else None, value)


class Sender(Protocol):
    """What `replay` needs of a producer (`BatchProducer`); tests pass a fake."""

    max_batch_size: int

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(self, topic: str, key: bytes | None, value: bytes) -> None: ...
    async def tick(self) -> None: ...
    async def flush(self) -> None: ...


class ReplayGaveUp(RuntimeError):
    """Kafka stayed unreachable past the retry deadline; the report says where to resume."""

    def __init__(self, report: ReplayReport, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.report = report
        report.gave_up = str(self)


def describe(exc: BaseException) -> str:
    """`Type: message`, once (aiokafka's errors already start with their type)."""
    text = str(exc)
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


def is_outage(exc: BaseException) -> bool:
    """True for errors a broker restart or a network blip causes, worth retrying."""
    from aiokafka import errors

    permanent = (
        errors.MessageSizeTooLargeError,
        errors.RecordListTooLargeError,
        errors.InvalidTopicError,
        errors.TopicAuthorizationFailedError,
        errors.ClusterAuthorizationFailedError,
        errors.SaslAuthenticationFailed,
        errors.UnsupportedVersionError,
    )
    if isinstance(exc, errors.KafkaError):
        return not isinstance(exc, permanent)
    return isinstance(exc, ConnectionError | TimeoutError)


class _Delivery:
    """The open producer and the records sent since the last confirmed line.

    Every `confirm_every` lines the producer is flushed: every line up to there is
    then on the broker (`report.confirmed_lines`). When Kafka fails, the producer is
    replaced and the unconfirmed records are sent again, with backoff, until
    `retry_for_s` has passed without success; some of them may then be on the
    topic twice (at least once, as any Kafka producer retry), never missing.
    """

    def __init__(
        self,
        factory: Callable[[], Sender],
        report: ReplayReport,
        retry_for_s: float,
        on_retry: Callable[[str], None] | None,
        backoff: Backoff | None = None,
        stop: asyncio.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory = factory
        self.stopping = stop
        self.backoff = backoff or Backoff(initial_s=0.5, max_s=5.0)
        self.report = report
        self.retry_for_s = retry_for_s
        self.on_retry = on_retry
        self.clock = clock
        self.sender = factory()
        self.unconfirmed: list[SimEvent] = []
        self.known_topics: set[str] = set()

    async def start(self) -> None:
        try:
            await self.sender.start()
        except Exception as exc:
            if not is_outage(exc):
                raise
            await self.recover(exc)

    async def stop(self) -> None:
        # A producer whose broker is gone waits for batches that will never leave.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sender.stop(), _STOP_TIMEOUT_S)

    async def send(self, event: SimEvent) -> None:
        """Send one record; UnknownTopicError for a topic the broker never had."""
        try:
            await self.sender.send(event.topic, event.key, event.value)
        except UnknownTopicError:
            if event.topic not in self.known_topics:
                raise
            # A topic that was there a moment ago: the broker is still coming back.
            self.unconfirmed.append(event)
            await self.recover(LookupError(f"topic {event.topic!r} not in metadata yet"))
            return
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.unconfirmed.append(event)
            await self.recover(exc)
            return
        self.unconfirmed.append(event)
        self.known_topics.add(event.topic)

    async def tick(self) -> None:
        try:
            await self.sender.tick()
        except Exception as exc:
            if not is_outage(exc):
                raise
            await self.recover(exc)

    async def confirm(self, line_no: int) -> None:
        """Wait until every record so far is on the broker; lines up to `line_no` are done."""
        try:
            await self.sender.flush()
        except Exception as exc:
            if not is_outage(exc):
                raise
            await self.recover(exc)
        for event in self.unconfirmed:
            self.report.sent += 1
            self.report.by_topic[event.topic] += 1
        self.unconfirmed.clear()
        self.report.confirmed_lines = line_no

    async def _stopped_within(self, delay_s: float) -> bool:
        """Sleep `delay_s`; True at once if a stop (Ctrl-C, SIGTERM) is asked for."""
        if self.stopping is None:
            await asyncio.sleep(delay_s)
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), delay_s)
        return self.stopping.is_set()

    async def recover(self, exc: BaseException) -> None:
        """Replace the producer and resend the unconfirmed records, or raise ReplayGaveUp."""
        deadline = self.clock() + self.retry_for_s
        backoff = self.backoff
        backoff.reset()
        self.report.retries += 1
        while True:
            if self.on_retry is not None:
                self.on_retry(
                    f"Kafka unavailable ({describe(exc)}); "
                    f"{len(self.unconfirmed):,} records to resend, "
                    f"retrying for up to {max(0.0, deadline - self.clock()):.0f}s more"
                )
            delay = backoff.next_delay()
            if self.clock() + delay > deadline:
                raise ReplayGaveUp(self.report, exc) from exc
            if await self._stopped_within(delay):
                self.report.interrupted = True
                raise ReplayGaveUp(self.report, exc) from exc
            await self.stop()
            self.sender = self.factory()
            try:
                await self.sender.start()
                for event in self.unconfirmed:
                    await self.sender.send(event.topic, event.key, event.value)
                await self.sender.flush()
                return
            except UnknownTopicError as again:
                exc = again
            except Exception as again:
                if not is_outage(again):
                    raise
                exc = again


async def replay(
    stream: BinaryIO,
    settings: Settings,
    *,
    rate: float = 0.0,
    topic_map: Mapping[str, str] | None = None,
    compression: str = "none",
    on_bad: Callable[[BadLine], None] | None = None,
    stop: asyncio.Event | None = None,
    skip: int = 0,
    retry_for_s: float = DEFAULT_RETRY_FOR_S,
    on_retry: Callable[[str], None] | None = None,
    confirm_every: int = CONFIRM_EVERY,
    sender_factory: Callable[[], Sender] | None = None,
    retry_backoff: Backoff | None = None,
) -> ReplayReport:
    """Send every good line of `stream` after the first `skip`; bad ones go to `on_bad`.

    A broker outage is waited out for `retry_for_s` (see `_Delivery`); past it,
    `ReplayGaveUp` carries the report, whose `confirmed_lines` is the `skip` that
    resumes the replay without losing a record.
    """
    if skip < 0:
        raise ValueError(f"skip must be >= 0, got {skip}")
    if confirm_every < 1:
        raise ValueError(f"confirm_every must be >= 1, got {confirm_every}")
    report = ReplayReport(skipped=skip, confirmed_lines=skip)
    factory = sender_factory or (lambda: BatchProducer(settings, compression=compression))
    delivery = _Delivery(factory, report, retry_for_s, on_retry, retry_backoff, stop)
    max_record = delivery.sender.max_batch_size - _RECORD_OVERHEAD
    pacer = Pacer(rate=rate, stop=stop)
    try:
        await delivery.start()
        every = pacer.every
        line_no = 0
        for line_no, raw in enumerate(stream, start=1):
            report.lines = line_no
            if line_no <= skip:
                continue
            if line_no % every == 0:
                await delivery.tick()
                if not await pacer.checkpoint(report.sent + len(delivery.unconfirmed)):
                    line_no -= 1  # this line was read, not sent
                    break
            try:
                event = parse_line(raw, topic_map)
                if event is None:
                    continue
                size = len(event.value) + len(event.key or b"")
                if size > max_record:
                    raise LineError(
                        "too_large",
                        f"record of {size:,} bytes exceeds the batch size {max_record:,}",
                    )
                await delivery.send(event)
            except (LineError, UnknownTopicError) as exc:
                category = exc.category if isinstance(exc, LineError) else "unknown_topic"
                bad = BadLine(line_no, str(exc))
                report.add_bad(bad, category)
                if on_bad is not None:
                    on_bad(bad)
            if len(delivery.unconfirmed) >= confirm_every:
                await delivery.confirm(line_no)
        await delivery.confirm(max(line_no, skip))
        report.interrupted = pacer.interrupted
    finally:
        report.elapsed_s = pacer.elapsed_s
        await delivery.stop()
    return report


def parse_topic_map(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`SRC=DST` pairs as a mapping; ValueError names the first malformed pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"topic map entry {pair!r} is not SRC=DST")
        out[src.strip()] = dst.strip()
    return out


def run_replay(
    path: Path,
    settings: Settings,
    *,
    rate: float = 0.0,
    topic_map: Mapping[str, str] | None = None,
    compression: str = "none",
    echo: Callable[[str], None] = print,
    echo_err: Callable[[str], None] = print,
    skip: int = 0,
    retry_for_s: float = DEFAULT_RETRY_FOR_S,
) -> ReplayReport:
    """`creator-scores replay`: send the file, report bad lines as they come, then a summary.

    Raises `ReplayGaveUp` (after printing the summary and where to resume) when Kafka
    stayed away longer than `retry_for_s`.
    """
    shown = 0

    def on_bad(bad: BadLine) -> None:
        nonlocal shown
        shown += 1
        if shown <= MAX_REPORTED:
            echo_err(f"{path}:{bad}")
        elif shown == MAX_REPORTED + 1:
            echo_err(f"{path}: more bad lines; only counted from here on")

    async def main() -> ReplayReport:
        stop = asyncio.Event()
        with path.open("rb") as stream, stop_on_signals(stop):
            return await replay(
                stream,
                settings,
                rate=rate,
                topic_map=topic_map,
                compression=compression,
                on_bad=on_bad,
                stop=stop,
                skip=skip,
                retry_for_s=retry_for_s,
                on_retry=echo_err,
            )

    destination = f"Kafka at {settings.kafka_bootstrap_servers}"
    try:
        report = asyncio.run(main())
    except ReplayGaveUp as exc:
        for line in exc.report.summary_lines(destination):
            echo(line)
        raise
    for line in report.summary_lines(destination):
        echo(line)
    return report
