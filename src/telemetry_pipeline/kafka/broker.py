"""A local single-node Apache Kafka broker (KRaft), started from jars that Maven resolves; no Docker.

The jars come from Maven Central once (``mvn dependency:copy-dependencies``, needs a JDK 17+ and
Maven) and are cached under ``$XDG_CACHE_HOME/telemetry-pipeline/kafka-<version>/libs``. Each
broker lives in a data directory holding its configuration, storage, log (``broker.log``) and pid
file; ``start`` reuses a live broker recorded there, and ``stop`` ends exactly that pid.
"""

from __future__ import annotations

import base64
import ctypes
import fcntl
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
MAVEN_DEPENDENCIES = (
    ("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION),
    ("org.slf4j", "slf4j-api", "2.0.17"),
    ("org.apache.logging.log4j", "log4j-slf4j2-impl", "2.24.3"),
    ("org.apache.logging.log4j", "log4j-core", "2.24.3"),
)
JVM_OPTIONS = ("-Xmx1g", "-Djava.awt.headless=true")
NODE_ID = 1
PID_FILE = "broker.pid"
LOG_FILE = "broker.log"

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker could not be set up, started or stopped; the message carries the log's tail."""


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    pid: int
    data_dir: Path
    port: int
    # False when `start` found this broker already running: the caller should not stop it.
    started: bool = True


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "telemetry-pipeline"


def default_data_dir(port: int) -> Path:
    return cache_dir() / f"broker-{port}"


def start(
    port: int = 9092, data_dir: Path | None = None, *, timeout: float = 60, stop_with_caller: bool = False,
) -> Broker:
    """Start a broker on 127.0.0.1:`port` (or reuse the live one recorded in `data_dir`).

    `stop_with_caller` (Linux; for test sessions) has the kernel send the broker SIGTERM when the
    calling process dies, even by SIGKILL; otherwise the broker outlives it until `stop`.
    """
    data_dir = Path(data_dir or default_data_dir(port)).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    running = _recorded_broker(data_dir)
    if running is not None:
        if running.port != port:
            raise BrokerError(f"a broker (pid {running.pid}) already runs on {data_dir} with port "
                              f"{running.port}; stop it first")
        bootstrap = f"127.0.0.1:{port}"
        # It may still be starting, from another process.
        if not _answers(bootstrap, timeout=timeout):
            raise BrokerError(f"the broker recorded in {data_dir} (pid {running.pid}) does not answer on "
                              f"{bootstrap}:\n{_tail(data_dir / LOG_FILE)}")
        log.info("reusing the broker at %s (pid %d)", bootstrap, running.pid)
        return Broker(bootstrap, running.pid, data_dir, port, started=False)
    if _port_in_use(port):
        raise BrokerError(f"port {port} is already in use on 127.0.0.1")

    java = _java()
    classpath = f"{ensure_jars()}/*"
    properties = _write_config(data_dir, port)
    if not (data_dir / "kraft-logs" / "meta.properties").exists():
        _run([java, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", _random_cluster_id(),
              "-c", str(properties)], "formatting the broker storage")

    log_path = data_dir / LOG_FILE
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
             f"-Dkafka.logs.dir={data_dir}", "-cp", classpath, "kafka.Kafka", str(properties)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            cwd=data_dir, start_new_session=True,  # detached: ignores our terminal's ^C
            preexec_fn=_parent_death_signal(signal.SIGTERM) if stop_with_caller else None,
        )
    (data_dir / PID_FILE).write_text(f"{process.pid}\n")
    bootstrap = f"127.0.0.1:{port}"
    try:
        _wait_until_ready(process, bootstrap, log_path, timeout)
    except BaseException:
        stop(data_dir)
        raise
    return Broker(bootstrap, process.pid, data_dir, port)


def stop(data_dir: Path, *, timeout: float = 30) -> bool:
    """End the broker recorded in `data_dir` (SIGTERM, then SIGKILL after `timeout`); False if none ran."""
    data_dir = Path(data_dir).resolve()
    running = _recorded_broker(data_dir)
    (data_dir / PID_FILE).unlink(missing_ok=True)
    if running is None:
        return False
    process = running.process
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout)
    except psutil.NoSuchProcess:
        pass  # it ended on its own meanwhile
    except psutil.TimeoutExpired:
        log.warning("broker pid %d ignored SIGTERM for %.0f s; killing it", process.pid, timeout)
        process.kill()
        process.wait(10)
    return True


def status(data_dir: Path) -> Broker | None:
    """The live broker recorded in `data_dir`, if any."""
    data_dir = Path(data_dir).resolve()
    running = _recorded_broker(data_dir)
    if running is None:
        return None
    return Broker(f"127.0.0.1:{running.port}", running.pid, data_dir, running.port, started=False)


@contextmanager
def running(
    port: int | None = None, data_dir: Path | None = None, *, timeout: float = 60,
) -> Iterator[Broker]:
    """A broker for the block's duration (on a free port by default), stopped afterwards if we started it.

    It also stops if this process dies without leaving the block (see `start`'s `stop_with_caller`).
    """
    broker = start(port or free_port(), data_dir, timeout=timeout, stop_with_caller=True)
    try:
        yield broker
    finally:
        if broker.started:
            stop(broker.data_dir)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ensure_jars() -> Path:
    """The directory of Kafka's jars, resolved with Maven on first use (under a lock, once)."""
    home = cache_dir() / f"kafka-{KAFKA_VERSION}"
    libs = home / "libs"
    if libs.is_dir():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be resolving the same jars
        if not libs.is_dir():
            mvn = shutil.which("mvn")
            if mvn is None:
                raise BrokerError("Maven (mvn) is needed once to fetch the Kafka jars (and a JDK 17+)")
            (home / "pom.xml").write_text(_pom())
            partial = home / "libs.partial"
            shutil.rmtree(partial, ignore_errors=True)
            log.info("resolving Kafka %s jars with Maven into %s", KAFKA_VERSION, libs)
            _run([mvn, "-q", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
                  f"-DoutputDirectory={partial}"], "resolving Kafka's jars with Maven")
            partial.rename(libs)  # only a complete set of jars is ever visible as libs/
    return libs


def _pom() -> str:
    dependencies = "".join(
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></dependency>"
        for group, artifact, version in MAVEN_DEPENDENCIES
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>local.telemetry-pipeline</groupId><artifactId>kafka-runtime</artifactId>"
        f"<version>{KAFKA_VERSION}</version><packaging>pom</packaging>"
        f"<dependencies>{dependencies}</dependencies></project>\n"
    )


def _write_config(data_dir: Path, port: int) -> Path:
    controller_port = free_port()
    settings = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": data_dir / "kraft-logs",
        # Single node: internal topics cannot have more than one replica.
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        # Fast first consumer group and fast rebalances in tests (defaults: 50 partitions, 3 s delay).
        "offsets.topic.num.partitions": 4,
        "transaction.state.log.num.partitions": 4,
        "group.initial.rebalance.delay.ms": 0,
    }
    properties = data_dir / "server.properties"
    properties.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    (data_dir / "log4j2.properties").write_text(
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.stdout.ref = STDOUT\n"
        "appender.stdout.type = Console\n"
        "appender.stdout.name = STDOUT\n"
        "appender.stdout.layout.type = PatternLayout\n"
        "appender.stdout.layout.pattern = [%d] %p %m (%c)%n\n"
    )
    return properties


def _random_cluster_id() -> str:
    """What `kafka-storage random-uuid` prints (Kafka's Uuid: url-safe base64, no padding or leading '-')."""
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class _Recorded:
    process: psutil.Process
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid


def _recorded_broker(data_dir: Path) -> _Recorded | None:
    """The broker process recorded in `data_dir`'s pid file, if that pid is still this broker."""
    try:
        pid = int((data_dir / PID_FILE).read_text())
        process = psutil.Process(pid)
        command = process.cmdline()
        alive = process.status() != psutil.STATUS_ZOMBIE
    except (OSError, ValueError, psutil.Error):
        return None
    # The pid may have been reused by another process since the broker died.
    if not alive or "kafka.Kafka" not in command or str(data_dir / "server.properties") not in command:
        return None
    return _Recorded(process, _configured_port(data_dir))


def _configured_port(data_dir: Path) -> int:
    for line in (data_dir / "server.properties").read_text().splitlines():
        if line.startswith("advertised.listeners="):
            return int(line.rsplit(":", 1)[1])
    raise BrokerError(f"no advertised.listeners in {data_dir / 'server.properties'}")


def _wait_until_ready(process: subprocess.Popen, bootstrap: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    host, port = bootstrap.rsplit(":", 1)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(f"the broker exited with code {process.returncode}:\n{_tail(log_path)}")
        # A cheap TCP probe first: librdkafka would log every refused connection.
        remaining = deadline - time.monotonic()
        if _port_in_use(int(port), host) and _answers(bootstrap, timeout=min(5.0, remaining)):
            return
        time.sleep(0.1)
    raise BrokerError(f"the broker did not answer on {bootstrap} within {timeout:.0f} s:\n{_tail(log_path)}")


def _answers(bootstrap: str, timeout: float) -> bool:
    """True once a metadata request is answered and lists this broker (it has registered, can host topics)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=max(timeout, 0.1))
    except KafkaException:
        return False
    return NODE_ID in metadata.brokers


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _parent_death_signal(signum: int) -> Callable[[], object]:
    """For the child to call before exec: prctl(PR_SET_PDEATHSIG, signum).

    prctl is looked up here, in the parent: the forked child of a threaded process should not dlopen.
    """
    pr_set_pdeathsig = 1
    return functools.partial(ctypes.CDLL(None, use_errno=True).prctl, pr_set_pdeathsig, signum)


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise BrokerError("a JDK 17+ is needed to run Kafka: no `java` on PATH or in JAVA_HOME")
    return java


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise BrokerError(f"{what} failed (exit {result.returncode}):\n{output}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
