"""The local broker: start, reuse, status, stop of exactly the recorded pid, and clear failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from confluent_kafka.admin import AdminClient

from telemetry_pipeline.kafka import broker


@pytest.mark.kafka
def test_start_reuse_restart_and_stop(tmp_path: Path) -> None:
    port = broker.free_port()
    first = broker.start(port, tmp_path)
    try:
        assert first.started and first.bootstrap == f"127.0.0.1:{port}"
        assert (tmp_path / broker.PID_FILE).read_text().strip() == str(first.pid)
        metadata = AdminClient({"bootstrap.servers": first.bootstrap}).list_topics(timeout=10)
        assert broker.NODE_ID in metadata.brokers

        again = broker.start(port, tmp_path)
        assert (again.pid, again.started) == (first.pid, False)
        assert broker.status(tmp_path) == again
    finally:
        assert broker.stop(tmp_path)
    assert not psutil.pid_exists(first.pid) or psutil.Process(first.pid).status() == psutil.STATUS_ZOMBIE
    assert broker.status(tmp_path) is None
    assert not broker.stop(tmp_path)

    cluster = (tmp_path / "kraft-logs" / "meta.properties").read_text()
    restarted = broker.start(port, tmp_path)  # same storage, not formatted again
    try:
        assert restarted.started and restarted.pid != first.pid
        assert (tmp_path / "kraft-logs" / "meta.properties").read_text() == cluster
    finally:
        assert broker.stop(tmp_path)


@pytest.mark.kafka
def test_a_test_session_broker_stops_when_its_process_is_killed(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from telemetry_pipeline.kafka import broker\n"
        f"with broker.running(data_dir=Path({str(tmp_path)!r})) as b:\n"
        "    print(b.pid, flush=True); sys.stdin.read()\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        broker_pid = int(owner.stdout.readline())
        assert broker.status(tmp_path) is not None
        owner.kill()  # SIGKILL: no teardown runs in the owner
        owner.wait()
        psutil.Process(broker_pid).wait(30)  # the kernel's parent-death signal stops the broker
    finally:
        broker.stop(tmp_path)
    assert broker.status(tmp_path) is None


def test_stop_leaves_a_pid_that_is_not_the_broker_alone(tmp_path: Path) -> None:
    # A stale pid file whose pid now belongs to another process (here: this test process).
    (tmp_path / broker.PID_FILE).write_text(f"{os.getpid()}\n")
    (tmp_path / "server.properties").write_text("advertised.listeners=PLAINTEXT://127.0.0.1:9\n")
    assert broker.status(tmp_path) is None
    assert not broker.stop(tmp_path)
    assert not (tmp_path / broker.PID_FILE).exists()


@pytest.mark.kafka
def test_start_refuses_a_port_in_use(kafka_bootstrap: str, tmp_path: Path) -> None:
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    with pytest.raises(broker.BrokerError, match=f"port {port} is already in use"):
        broker.start(port, tmp_path)


@pytest.mark.kafka
def test_a_broker_that_dies_at_start_reports_its_log(tmp_path: Path) -> None:
    port = broker.free_port()
    with broker.running(port, tmp_path):
        pass
    # Storage that belongs to another node: Kafka refuses to start on it.
    meta = tmp_path / "kraft-logs" / "meta.properties"
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=7"))
    with pytest.raises(broker.BrokerError, match="exited with code") as failure:
        broker.start(port, tmp_path, timeout=60)
    assert "Stored node id 7" in str(failure.value)  # the log tail says why
    assert broker.status(tmp_path) is None


def test_pom_pins_the_kafka_version() -> None:
    kafka = f"<artifactId>kafka_{broker.SCALA_VERSION}</artifactId><version>{broker.KAFKA_VERSION}</version>"
    assert kafka in broker._pom()
