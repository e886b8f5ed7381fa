"""The fault suite's own Kafka and Redis, on ports free at run time, in a temp folder.

The machine is shared: the suite never assumes a fixed port is free and never
touches a service it did not start. `PrivateStack` runs the project's local stack
(`streams.devtools.stack.LocalStack`) with its own ports and state folder, and
knows the pids it started, so it can freeze, kill and restart exactly those.
`ExternalStack` wraps a stack someone else started (pytest's), on which only
worker faults are allowed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from streams.devtools.stack import LocalStack, port_open
from streams.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StackFaultError(RuntimeError):
    """A fault was asked of a stack the suite does not own."""


class ExternalStack:
    """A running stack the suite did not start: usable, never disturbed."""

    owned = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"external stack: {self.settings.kafka_bootstrap_servers}, {self.settings.redis_url}"


class PrivateStack:
    """Kafka + Redis of our own, started on free ports under `directory`.

    `LocalStack` runs its own event loops (`asyncio.run`): from async code, construct,
    start, stop and close this in a thread (`asyncio.to_thread`).
    """

    owned = True

    def __init__(self, directory: Path, log: object = print) -> None:
        kafka, controller, redis = free_port(), free_port(), free_port()
        self.settings = Settings(
            stack_dir=directory,
            kafka_port=kafka,
            kafka_controller_port=controller,
            redis_port=redis,
            kafka_bootstrap_servers=f"127.0.0.1:{kafka}",
            redis_url=f"redis://127.0.0.1:{redis}/0",
            kafka_heap="512m",
        )
        self._local = LocalStack(self.settings, log=lambda line: None)
        try:
            self._local.up()
        except BaseException:
            self.close()
            raise

    def describe(self) -> str:
        return (
            f"private stack in {self.settings.stack_dir}: "
            f"Kafka 127.0.0.1:{self.settings.kafka_port}, "
            f"Redis 127.0.0.1:{self.settings.redis_port}"
        )

    def _pid(self, name: str) -> int:
        return int((self.settings.stack_dir / f"{name}.pid").read_text().strip())

    # -- Redis ---------------------------------------------------------------
    def freeze_redis(self) -> None:
        os.kill(self._pid("redis"), signal.SIGSTOP)

    def thaw_redis(self) -> None:
        os.kill(self._pid("redis"), signal.SIGCONT)

    def kill_redis(self) -> None:
        pid = self._pid("redis")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 10.0)

    def start_redis_empty(self) -> None:
        """A new Redis on the same port, without the old one's data (even if it persisted)."""
        shutil.rmtree(self.settings.stack_dir / "redis", ignore_errors=True)
        self._local.start_redis()

    # -- Kafka ---------------------------------------------------------------
    def stop_kafka(self) -> None:
        """SIGTERM the broker's JVM, as an operator's restart would, and wait for it to exit."""
        pid = self._pid("kafka")
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, 60.0):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
        deadline = time.monotonic() + 10
        while port_open("127.0.0.1", self.settings.kafka_port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def start_kafka(self) -> None:
        self._local.start_kafka()

    def close(self) -> None:
        """Stop what we started (only that) and remove the folder."""
        with contextlib.suppress(OSError, ValueError):
            self.thaw_redis()
        self._local.down()
        shutil.rmtree(self.settings.stack_dir, ignore_errors=True)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # Our own child is a zombie until reaped; LocalStack started it detached.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return True
        time.sleep(0.1)
    return False
