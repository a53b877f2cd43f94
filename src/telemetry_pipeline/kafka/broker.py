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
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from telemetry_pipeline.cache import cache_dir

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
SECURE_FILE = "secure.json"  # the TLS and SASL listeners' ports, CA file and test user, when enabled
SCRAM_MECHANISM = "SCRAM-SHA-256"

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker could not be set up, started or stopped; the message carries the log's tail."""


@dataclass(frozen=True)
class SecureListeners:
    """A TLS listener and a SASL_SSL listener with one SCRAM user, for tests of secured clients.
    The CA and the broker's keystore are throwaway ones made with the JDK's keytool."""

    ssl_bootstrap: str
    sasl_ssl_bootstrap: str
    cafile: Path  # PEM: the CA that signed the broker's certificate (for 127.0.0.1 and localhost)
    username: str
    password: str = field(repr=False)
    mechanism: str = SCRAM_MECHANISM


@dataclass(frozen=True)
class Broker:
    bootstrap: str  # PLAINTEXT, always there
    pid: int
    data_dir: Path
    port: int
    # False when `start` found this broker already running: the caller should not stop it.
    started: bool = True
    secure: SecureListeners | None = None


def default_data_dir(port: int) -> Path:
    return cache_dir() / f"broker-{port}"


def start(
    port: int = 9092,
    data_dir: Path | None = None,
    *,
    timeout: float = 60,
    stop_with_caller: bool = False,
    secure: bool = False,
) -> Broker:
    """Start a broker on 127.0.0.1:`port` (or reuse the live one recorded in `data_dir`).

    `stop_with_caller` (Linux; for test sessions) has the kernel send the broker SIGTERM when the
    calling process dies, even by SIGKILL; otherwise the broker outlives it until `stop`.
    `secure` adds a TLS and a SASL_SSL (SCRAM) listener on free ports, set up when the data
    directory is first formatted.
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
        return Broker(bootstrap, running.pid, data_dir, port, started=False, secure=_secure(data_dir, secure))
    if _port_in_use(port):
        raise BrokerError(f"port {port} is already in use on 127.0.0.1")

    java = _java()
    classpath = f"{ensure_jars()}/*"
    formatted = (data_dir / "kraft-logs" / "meta.properties").exists()
    if secure and not formatted:
        _make_secure_listeners(data_dir)
    listeners = _secure(data_dir, secure)
    properties = _write_config(data_dir, port, listeners)
    if not formatted:
        scram = ["--add-scram", f"{SCRAM_MECHANISM}=[name={listeners.username},password={listeners.password}]"
                 ] if listeners else []
        _run([java, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", _random_cluster_id(),
              "-c", str(properties), *scram], "formatting the broker storage")

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
    return Broker(bootstrap, process.pid, data_dir, port, secure=listeners)


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
    return Broker(f"127.0.0.1:{running.port}", running.pid, data_dir, running.port, started=False,
                  secure=_secure(data_dir, False))


@contextmanager
def running(
    port: int | None = None, data_dir: Path | None = None, *, timeout: float = 60, secure: bool = False,
) -> Iterator[Broker]:
    """A broker for the block's duration (on a free port by default), stopped afterwards if we started it.

    It also stops if this process dies without leaving the block (see `start`'s `stop_with_caller`).
    """
    broker = start(port or free_port(), data_dir, timeout=timeout, stop_with_caller=True, secure=secure)
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


def _make_secure_listeners(data_dir: Path) -> None:
    """A throwaway CA, the broker's PKCS12 keystore signed by it, free ports and a SCRAM user,
    recorded in SECURE_FILE (the user is added when the storage is formatted)."""
    keytool = shutil.which("keytool", path=str(Path(_java()).parent)) or shutil.which("keytool")
    if keytool is None:
        raise BrokerError("the JDK's keytool is needed for the TLS listener")
    tls = data_dir / "tls"
    tls.mkdir(exist_ok=True)
    store_password = secrets.token_hex(16)
    common = ["-storepass", store_password, "-keypass", store_password, "-storetype", "PKCS12"]
    new_key = ["-genkeypair", "-keyalg", "RSA", "-keysize", "2048", "-validity", "30"]
    ca, keystore = str(tls / "ca.p12"), str(tls / "broker.p12")
    steps = [
        [*new_key, "-alias", "ca", "-dname", "CN=telemetry-pipeline test CA", "-ext", "bc:c",
         "-keystore", ca],
        ["-exportcert", "-rfc", "-alias", "ca", "-keystore", ca, "-file", str(tls / "ca.pem")],
        [*new_key, "-alias", "broker", "-dname", "CN=localhost", "-keystore", keystore],
        ["-certreq", "-alias", "broker", "-keystore", keystore, "-file", str(tls / "broker.csr")],
        ["-gencert", "-rfc", "-alias", "ca", "-keystore", ca, "-infile", str(tls / "broker.csr"),
         "-outfile", str(tls / "broker.pem"), "-validity", "30", "-ext", "san=ip:127.0.0.1,dns:localhost",
         "-ext", "eku=serverAuth"],
        ["-importcert", "-noprompt", "-alias", "ca", "-file", str(tls / "ca.pem"), "-keystore", keystore],
        ["-importcert", "-noprompt", "-alias", "broker", "-file", str(tls / "broker.pem"),
         "-keystore", keystore],
    ]
    for step in steps:
        _run([keytool, *step, *common], f"keytool {step[0]}")
    record = {
        "ssl_port": free_port(), "sasl_ssl_port": free_port(), "store_password": store_password,
        "username": "tp-test", "password": secrets.token_hex(16),
    }
    (data_dir / SECURE_FILE).write_text(json.dumps(record))


def _secure(data_dir: Path, required: bool) -> SecureListeners | None:
    try:
        record = json.loads((data_dir / SECURE_FILE).read_text())
    except FileNotFoundError:
        if required:
            raise BrokerError(f"{data_dir} was formatted without the TLS and SASL listeners; "
                              "use a new data directory") from None
        return None
    return SecureListeners(f"127.0.0.1:{record['ssl_port']}", f"127.0.0.1:{record['sasl_ssl_port']}",
                           data_dir / "tls" / "ca.pem", record["username"], record["password"])


def _write_config(data_dir: Path, port: int, secure: SecureListeners | None) -> Path:
    controller_port = free_port()
    listeners = {"PLAINTEXT": f"127.0.0.1:{port}"}
    if secure is not None:
        listeners |= {"SSL": secure.ssl_bootstrap, "SASL_SSL": secure.sasl_ssl_bootstrap}
    advertised = ",".join(f"{name}://{address}" for name, address in listeners.items())
    settings = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"{advertised},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join([*(f"{name}:{name}" for name in listeners),
                                                    "CONTROLLER:PLAINTEXT"]),
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
    if secure is not None:
        store_password = json.loads((data_dir / SECURE_FILE).read_text())["store_password"]
        settings |= {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": data_dir / "tls" / "broker.p12",
            "ssl.keystore.password": store_password,
            "ssl.key.password": store_password,
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
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
    """The PLAINTEXT listener's port."""
    for line in (data_dir / "server.properties").read_text().splitlines():
        if line.startswith("advertised.listeners="):
            entries = line.split("=", 1)[1].split(",")
            plaintext = next(entry for entry in entries if entry.startswith("PLAINTEXT:"))
            return int(plaintext.rsplit(":", 1)[1])
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
