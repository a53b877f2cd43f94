"""A worker restarted after a crash sends the steps its predecessor left for idleness (issue 15).

The last steps of the input (those within the allowed lateness of its newest event) are evaluated
once the input has been quiet for `sli.idle_after`. A worker killed after it committed every input
record and partial, but before that, leaves them to the next worker, which gets no partial at all:
it must evaluate them from the state it recovers (before the fix it never did, and the event-time
test's killed case waited 420 s).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from signal import SIGKILL

import orjson
import pytest
import yaml
from confluent_kafka import Message

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.generate import GeneratorConfig, iter_messages
from telemetry_pipeline.generate.sinks import write_jsonl
from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.replay import run_replay
from tests.integration.harness import (
    TopicReader,
    await_committed,
    await_worker_ready,
    deploy,
    produce,
    read_all,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

WORKLOAD = GeneratorConfig(services=1, duration=timedelta(minutes=10), rate=2, metrics_temporality="delta")
TOPICS = {Signal.TRACES: "otlp_spans", Signal.METRICS: "otlp_metrics", Signal.LOGS: "otlp_logs"}
# The killed worker persists its state (and so commits its partials) every second, and would send
# the last steps only after an hour of quiet: they are left to the restarted worker, whose shorter
# idle_after spares the test the wait.
CONFIG = {
    "worker": {"batch_within_s": 0.05, "session_timeout_s": 6, "sli_persist_interval_s": 1},
    "sli": {"idle_after": "1h"},
}
RESTARTED_IDLE_AFTER = "3s"

SnapshotKey = tuple[str, str, str]  # service, window, window_end


def _key(value: bytes) -> SnapshotKey:
    snapshot = orjson.loads(value)
    return snapshot["service"], snapshot["window"], snapshot["window_end"]


def test_restarted_worker_sends_the_steps_left_for_idleness(kafka_bootstrap: str, tmp_path: Path) -> None:
    messages = list(iter_messages(WORKLOAD))
    inputs = tmp_path / "input.jsonl"
    write_jsonl(sorted(messages, key=lambda m: m.event_time_ns), inputs)
    run_replay(PipelineConfig.model_validate(CONFIG), [inputs], tmp_path / "replay")
    expected = {_key(line) for line in (tmp_path / "replay" / "sli.jsonl").read_bytes().splitlines()}

    workdir = tmp_path / "deployment"
    workdir.mkdir()
    deployment = deploy(kafka_bootstrap, workdir, CONFIG)
    with running_worker(deployment, name="worker-0"):  # the tables exist, as after any earlier run
        await_worker_ready(deployment)
    for signal, topic in TOPICS.items():
        records = [(m.key, m.payload) for m in messages if m.signal is signal]
        produce(kafka_bootstrap, deployment.topic(topic), records)
    with running_worker(deployment, name="worker-1") as process:
        await_committed(deployment, [deployment.topic(name) for name in [*TOPICS.values(), "sli-partials"]])
        process.send_signal(SIGKILL)
        process.wait(timeout=30)
    sli_topic = deployment.topic("sli")
    left = expected - {_key(m.value()) for m in read_all(kafka_bootstrap, [sli_topic])}
    assert left, "the killed worker sent every step: nothing left for the restarted one"

    config = yaml.safe_load(deployment.config_path.read_text())
    config["sli"]["idle_after"] = RESTARTED_IDLE_AFTER
    deployment.config_path.write_text(yaml.safe_dump(config))
    missing, read = set(expected), 0

    def all_sent(messages: list[Message]) -> bool:
        nonlocal read
        missing.difference_update(_key(m.value()) for m in messages[read:])
        read = len(messages)
        return not missing

    reader = TopicReader(kafka_bootstrap, [sli_topic])
    try:
        with running_worker(deployment, name="worker-2"):
            what = f"the {len(left)} snapshots the killed worker left"
            reader.read_until(all_sent, timeout_s=120, what=what)
    finally:
        reader.close()
