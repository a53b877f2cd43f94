"""TLS and SASL reach every client of the worker: with only the broker's SASL_SSL (SCRAM) listener in
its configuration, Faust's consumers (ingest, sli) and changelog producer, the confluent-kafka output
producer and the aiokafka context followers all work, and the password shows in nothing it wrote.
`topics apply` takes the same settings from the same file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest
import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from telemetry_pipeline.config import KafkaConfig
from telemetry_pipeline.enrichment.tests.builders import S, all_spans, attr, traces
from telemetry_pipeline.kafka.broker import Broker, free_port
from telemetry_pipeline.otlp import Signal, decode
from tests.integration.harness import (
    PROBE_KEY,
    await_worker_ready,
    consume_until,
    deploy,
    produce,
    read_all,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

SERVICE = "tls-checkout"
HMAC_KEY = "worker-hmac-key-5ecret-0123456789"
OWNER = "team-tls"


def _secure_kafka(broker: Broker, password_file: Path) -> dict:
    secure = broker.secure
    assert secure is not None, "the kafka_secure fixture gave a broker without secure listeners"
    password_file.write_text(secure.password)
    return {
        "bootstrap_servers": secure.sasl_ssl_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": secure.mechanism,
        "sasl_username": secure.username,
        "sasl_password_file": str(password_file),
        "ssl_cafile": str(secure.cafile),
        "producer_linger_ms": 5,
    }


def test_every_client_connects_over_tls_and_scram(kafka_secure: Broker) -> None:
    secure = kafka_secure.secure
    assert secure is not None
    scram = {"sasl_mechanism": secure.mechanism, "sasl_username": secure.username,
             "sasl_password": secure.password}
    for protocol, bootstrap, sasl in (
        ("SSL", secure.ssl_bootstrap, {}),
        ("SASL_SSL", secure.sasl_ssl_bootstrap, scram),
    ):
        config = KafkaConfig(bootstrap_servers=bootstrap, security_protocol=protocol,
                             ssl_cafile=secure.cafile, **sasl)
        metadata = AdminClient(config.client_config()).list_topics(timeout=20)
        # The broker advertises the listener it was reached on.
        assert [f"{b.host}:{b.port}" for b in metadata.brokers.values()] == [bootstrap]
    # A wrong password is refused: the listener really authenticates.
    wrong = KafkaConfig(bootstrap_servers=secure.sasl_ssl_bootstrap, security_protocol="SASL_SSL",
                        ssl_cafile=secure.cafile, sasl_mechanism=secure.mechanism,
                        sasl_username=secure.username, sasl_password="not-the-password")
    with pytest.raises(KafkaException):
        AdminClient({**wrong.client_config(), "log_level": 0}).list_topics(timeout=5)


def test_worker_round_trip_over_sasl_ssl(kafka_secure: Broker, tmp_path: Path) -> None:
    secure = kafka_secure.secure
    assert secure is not None
    (tmp_path / "hmac-key").write_text(HMAC_KEY)
    metrics_port = free_port()
    d = deploy(kafka_secure.bootstrap, tmp_path, {
        "kafka": _secure_kafka(kafka_secure, tmp_path / "sasl-password"),
        "worker": {"batch_within_s": 0.01, "tick_interval_s": 0.1, "metrics_port": metrics_port},
        # The one span's step is evaluated once the idle input lets wall time pass it by the lateness.
        "sli": {"allowed_lateness": "5s", "idle_after": "5s"},
        "redaction": {"hmac_key_file": str(tmp_path / "hmac-key")},
    })
    # Set-up and checks go through the PLAINTEXT listener; the worker knows only SASL_SSL.
    produce(d.bootstrap, d.topic("service-catalog"), [(SERVICE.encode(), orjson.dumps({"owner": OWNER}))])
    message = traces([S(1, 1, service=SERVICE, kind=Span.SPAN_KIND_SERVER)])
    now = time.time_ns()
    for span in all_spans(message):
        span.start_time_unix_nano, span.end_time_unix_nano = now - 5_000_000, now
    key = all_spans(message)[0].trace_id.hex().encode()
    with running_worker(d):
        await_worker_ready(d)  # ingest (Faust consumer) -> DLQ (confluent-kafka producer)
        produce(d.bootstrap, d.topic("otlp_spans"), [(key, message.SerializeToString())])
        out = consume_until(
            d.bootstrap,
            [d.topic("otlp_spans.clean"), d.topic("sli")],
            lambda msgs: {m.topic() for m in msgs if m.key() != PROBE_KEY}
            >= {d.topic("otlp_spans.clean"), d.topic("sli")},
            timeout_s=150,
        )
        time.sleep(1)  # a tick of the metrics
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
    clean = [m for m in out if m.topic() == d.topic("otlp_spans.clean")]
    assert clean, "no span reached .clean over SASL_SSL"
    [resource_spans] = decode(Signal.TRACES, clean[0].value()).resource_spans  # type: ignore[union-attr]
    # The service catalog came through the aiokafka follower.
    assert attr(resource_spans.resource, "service.owner") == OWNER
    # sli-partials (confluent-kafka) were read by the sli agent (Faust) and a snapshot went out.
    assert any(m.topic() == d.topic("sli") for m in out), "no SLI snapshot over SASL_SSL"
    # Faust's own producer wrote the trace-context table's changelog.
    changelog = next(t for t in d.topics_on_broker() if "trace-context" in t)
    assert read_all(d.bootstrap, [changelog]), "nothing in the trace-context changelog"
    # Neither the password nor the HMAC key shows in the worker's log or its metrics.
    assert "tp_clean_records_total" in metrics
    for written in ((tmp_path / "worker.log").read_text(errors="replace"), metrics):
        assert secure.password not in written and HMAC_KEY not in written


def test_topics_apply_and_generate_over_sasl_ssl_with_the_workers_config(
    kafka_secure: Broker, tmp_path: Path
) -> None:
    secure = kafka_secure.secure
    assert secure is not None
    name = f"t{uuid.uuid4().hex[:8]}-sasl-applied"
    topic_dir = tmp_path / "topics"
    topic_dir.mkdir()
    (topic_dir / "one.yaml").write_text(yaml.safe_dump({"name": name, "partitions": 3}))
    kafka = _secure_kafka(kafka_secure, tmp_path / "sasl-password")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TP_")}

    def cli(kafka_section: dict, *command: str) -> subprocess.CompletedProcess[str]:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"kafka": kafka_section}))
        return subprocess.run(
            [sys.executable, "-m", "telemetry_pipeline.cli", *command, "--config", str(config)],
            capture_output=True, text=True, timeout=120, env=env, check=False,
        )

    def topics_apply(kafka_section: dict) -> subprocess.CompletedProcess[str]:
        return cli(kafka_section, "topics", "apply", "--dir", str(topic_dir))

    applied = topics_apply(kafka)
    assert applied.returncode == 0, applied.stderr
    assert "created 1" in applied.stdout
    # Seen through the PLAINTEXT listener: the topic is there as its file says.
    listed = AdminClient({"bootstrap.servers": kafka_secure.bootstrap}).list_topics(timeout=20).topics
    assert len(listed[name].partitions) == 3
    # The load generator speaks SASL_SSL from the same section, into the applied topic.
    generated = cli(kafka, "generate", "--to", "kafka", "--duration", "5s", "--rate", "2", "--no-gateway",
                    "--topic-traces", name, "--topic-logs", name, "--topic-metrics", name)
    assert generated.returncode == 0, generated.stderr
    written = read_all(kafka_secure.bootstrap, [name])
    assert written and all(m.topic() == name for m in written), "generate wrote nothing over SASL_SSL"
    # Over SASL_SSL for real: a wrong password is refused, in one line that shows neither password
    # (after the config's own warnings, e.g. that it names no HMAC key).
    (tmp_path / "wrong-password").write_text("not-the-password")
    refused = topics_apply({**kafka, "sasl_password_file": str(tmp_path / "wrong-password")})
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith(
        f"telemetry-pipeline: cannot reach Kafka at {secure.sasl_ssl_bootstrap}"
    ), refused.stderr
    for output in (applied.stdout + applied.stderr, generated.stdout + generated.stderr,
                   refused.stdout + refused.stderr):
        assert secure.password not in output and "not-the-password" not in output
