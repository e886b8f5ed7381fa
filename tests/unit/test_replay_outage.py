"""Replay through a broker outage, against a hand-written fake broker: nothing lost, and a
replay that gives up names the `--skip` that resumes it without a gap."""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, TopicAuthorizationFailedError

from streams.devtools.replay import ReplayGaveUp, ReplayReport, is_outage, replay
from streams.settings import Settings
from streams.sinks.base import Backoff

Record = tuple[str, bytes | None, bytes]


class FakeBroker:
    """Delivers what a sender flushes while up. `fail_at_flush` takes it down on that flush
    (after delivering half of what was sent, as a broker dying mid-request), for
    `down_for` start or flush attempts."""

    def __init__(self, *, fail_at_flush: int | None = None, down_for: int = 0) -> None:
        self.delivered: list[Record] = []
        self.fail_at_flush = fail_at_flush
        self.down_for = down_for
        self.down = False
        self.flushes = 0
        self.senders = 0

    def check(self, what: str) -> None:
        if not self.down:
            return
        self.down_for -= 1
        if self.down_for <= 0:
            self.down = False
        if what == "start":
            raise KafkaConnectionError("Unable to bootstrap from [('localhost', 1)]")
        raise KafkaTimeoutError("Batch expired")


class FakeSender:
    max_batch_size = 1_048_576

    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.pending: list[Record] = []
        broker.senders += 1

    async def start(self) -> None:
        self.broker.check("start")

    async def stop(self) -> None:
        self.pending.clear()

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.pending.append((topic, key, value))

    async def tick(self) -> None:
        return None

    async def flush(self) -> None:
        broker = self.broker
        broker.flushes += 1
        if broker.fail_at_flush == broker.flushes:
            broker.down = True
        if broker.down:
            half = len(self.pending) // 2
            broker.delivered.extend(self.pending[:half])
            self.pending = self.pending[half:]
            broker.check("flush")
        broker.delivered.extend(self.pending)
        self.pending.clear()


def lines(n: int) -> bytes:
    out = [b'{"topic": "posts", "key": "cr-%d", "value": "v%d"}' % (i, i) for i in range(1, n + 1)]
    out.insert(10, b"{broken")  # line 11 is bad: counted once, never sent
    return b"\n".join(out) + b"\n"


def expected(n: int, after_line: int = 0) -> Counter[Record]:
    # Line numbers shift by one after the bad line 11.
    return Counter(
        ("posts", b"cr-%d" % i, b"v%d" % i)
        for i in range(1, n + 1)
        if (i if i <= 10 else i + 1) > after_line
    )


async def run(
    broker: FakeBroker, data: bytes, *, skip: int = 0, retry_for_s: float = 5.0
) -> ReplayReport:
    return await replay(
        io.BytesIO(data),
        Settings(),
        skip=skip,
        retry_for_s=retry_for_s,
        confirm_every=25,
        sender_factory=lambda: FakeSender(broker),
        retry_backoff=Backoff(initial_s=0.001, max_s=0.004),
    )


async def test_an_outage_mid_replay_is_waited_out_and_nothing_is_lost() -> None:
    # The second confirmation meets a dead broker, which stays down for four attempts.
    broker = FakeBroker(fail_at_flush=2, down_for=4)
    report = await run(broker, lines(100))
    got = Counter(broker.delivered)
    assert set(got) == set(expected(100))  # every record arrived
    assert all(n >= 1 for n in got.values())
    assert sum(got.values()) > 100  # some were resent: at least once, not exactly once
    assert (report.sent, report.bad, report.lines, report.confirmed_lines) == (100, 1, 101, 101)
    assert report.retries == 1 and report.gave_up is None
    assert broker.senders > 1  # a fresh producer after the outage


async def test_a_replay_that_gives_up_resumes_with_skip_without_a_gap() -> None:
    broker = FakeBroker(fail_at_flush=3, down_for=10_000)  # down for good, for this run
    with pytest.raises(ReplayGaveUp) as caught:
        await run(broker, lines(100), retry_for_s=0.05)
    report = caught.value.report
    assert report.confirmed_lines == 51  # two confirmations of 25 records (line 11 is bad)
    assert report.sent == 50
    assert (report.gave_up or "").startswith("KafkaConnectionError: Unable to bootstrap")
    summary = "\n".join(report.summary_lines("Kafka"))
    assert "resume with --skip 51" in summary
    first_run = Counter(broker.delivered)

    healthy = FakeBroker()
    resumed = await run(healthy, lines(100), skip=report.confirmed_lines)
    assert resumed.skipped == 51 and resumed.sent == 50 and resumed.bad == 0
    assert Counter(healthy.delivered) == expected(100, after_line=51)
    assert set(first_run) | set(healthy.delivered) == set(expected(100))


async def test_a_broker_down_at_start_is_waited_for() -> None:
    broker = FakeBroker(down_for=3)  # the first start and two retries fail
    broker.down = True
    attempts: list[str] = []

    report = await replay(
        io.BytesIO(lines(30)),
        Settings(),
        sender_factory=lambda: FakeSender(broker),
        retry_backoff=Backoff(initial_s=0.001, max_s=0.004),
        on_retry=attempts.append,
    )
    assert (report.sent, report.retries, len(attempts)) == (30, 1, 3)
    assert "KafkaConnectionError" in attempts[0]
    assert Counter(broker.delivered) == expected(30)


async def test_skip_past_the_end_sends_nothing() -> None:
    broker = FakeBroker()
    report = await run(broker, lines(5), skip=50)
    assert (report.sent, report.bad, broker.delivered) == (0, 0, [])


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (KafkaConnectionError("refused"), True),
        (KafkaTimeoutError("expired"), True),
        (ConnectionResetError("reset"), True),
        (TopicAuthorizationFailedError(), False),
        (ValueError("bug"), False),
    ],
)
def test_is_outage_retries_only_what_a_restart_causes(exc: BaseException, outage: bool) -> None:
    assert is_outage(exc) is outage


async def test_a_stop_during_an_outage_ends_the_wait_at_once() -> None:
    broker = FakeBroker(fail_at_flush=1, down_for=10_000)
    stop = asyncio.Event()

    def on_retry(message: str) -> None:
        stop.set()  # Ctrl-C while the broker is away

    began = time.monotonic()
    with pytest.raises(ReplayGaveUp) as caught:
        await replay(
            io.BytesIO(lines(40)),
            Settings(),
            confirm_every=25,
            sender_factory=lambda: FakeSender(broker),
            retry_backoff=Backoff(initial_s=5.0, max_s=5.0),
            on_retry=on_retry,
            stop=stop,
        )
    assert time.monotonic() - began < 2.0
    report = caught.value.report
    assert report.interrupted and report.confirmed_lines == 0
    assert "resume with --skip 0" in "\n".join(report.summary_lines("Kafka"))
