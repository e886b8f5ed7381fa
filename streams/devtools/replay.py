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
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

import orjson

from streams.devtools.simulate import (
    BatchProducer,
    Pacer,
    SimEvent,
    UnknownTopicError,
    stop_on_signals,
)
from streams.settings import Settings

#: Bad lines printed one by one; past this only the summary counts them.
MAX_REPORTED: Final = 50
# Room for the record framing next to key and value inside one batch.
_RECORD_OVERHEAD: Final = 64


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
            + (" - stopped early" if self.interrupted else "")
        ]
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


async def replay(
    stream: BinaryIO,
    settings: Settings,
    *,
    rate: float = 0.0,
    topic_map: Mapping[str, str] | None = None,
    compression: str = "none",
    on_bad: Callable[[BadLine], None] | None = None,
    stop: asyncio.Event | None = None,
) -> ReplayReport:
    """Send every good line of `stream`; each bad one goes to `on_bad` and the report."""
    report = ReplayReport()
    sender = BatchProducer(settings, compression=compression)
    max_record = sender.max_batch_size - _RECORD_OVERHEAD
    await sender.start()
    try:
        pacer = Pacer(rate=rate, stop=stop)
        every = pacer.every
        for line_no, raw in enumerate(stream, start=1):
            report.lines = line_no
            if line_no % every == 0:
                await sender.tick()
                if not await pacer.checkpoint(report.sent):
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
                await sender.send(event.topic, event.key, event.value)
            except LineError as exc:
                bad = BadLine(line_no, str(exc))
                report.add_bad(bad, exc.category)
                if on_bad is not None:
                    on_bad(bad)
                continue
            except UnknownTopicError as exc:
                bad = BadLine(line_no, str(exc))
                report.add_bad(bad, "unknown_topic")
                if on_bad is not None:
                    on_bad(bad)
                continue
            report.sent += 1
            report.by_topic[event.topic] += 1
        await sender.flush()
        report.interrupted = pacer.interrupted
        report.elapsed_s = pacer.elapsed_s
    finally:
        await sender.stop()
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
) -> ReplayReport:
    """`creator-scores replay`: send the file, report bad lines as they come, then a summary."""
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
            )

    report = asyncio.run(main())
    for line in report.summary_lines(f"Kafka at {settings.kafka_bootstrap_servers}"):
        echo(line)
    return report
