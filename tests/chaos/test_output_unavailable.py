"""The broker refuses writes to an output topic: the worker keeps the inputs unacknowledged, commits
nothing past them and retries, then delivers every item once writes are accepted again.

The refusal: a compacted topic rejects records without a key (INVALID_RECORD, not retriable by the
client), and .clean log records carry the input's key, none here. (min.insync.replicas above the
replication factor does not refuse acks=all writes on the local KRaft broker: tried, accepted.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from telemetry_pipeline.otlp import Signal
from tests.chaos.conftest import ChaosTable
from tests.integration.harness import (
    OutputItems,
    TopicReader,
    await_worker_ready,
    committed_offsets,
    count_items,
    deploy,
    generated_load,
    produce_load,
    running_worker,
    set_topic_config,
)

pytestmark = [pytest.mark.kafka, pytest.mark.chaos]


def test_refused_output_writes_hold_the_commits_until_delivered(
    kafka_bootstrap: str, tmp_path: Path, chaos_table: ChaosTable
) -> None:
    d = deploy(kafka_bootstrap, tmp_path)
    logs, logs_clean = d.topic("otlp_logs"), d.topic("otlp_logs.clean")
    load = [
        (signal, None, payload) for signal, _key, payload in generated_load(20_000) if signal is Signal.LOGS
    ]
    expected = count_items((signal, payload) for signal, _key, payload in load)
    reader = TopicReader(kafka_bootstrap, [logs_clean])
    outputs = OutputItems(d)
    try:
        with running_worker(d) as worker:
            await_worker_ready(d)
            time.sleep(2)  # the probes' offsets committed (commit interval 1 s)
            before = committed_offsets(d, logs)
            set_topic_config(kafka_bootstrap, logs_clean, {"cleanup.policy": "compact"})
            produce_load(d, load)
            time.sleep(10)
            during = committed_offsets(d, logs)
            settled = time.monotonic() + 3
            reader.read_until(lambda msgs: time.monotonic() > settled, timeout_s=10)
            refused_out = len(outputs.update(reader.messages))
            assert worker.poll() is None, "the worker died while writes were refused"
            set_topic_config(kafka_bootstrap, logs_clean, {"cleanup.policy": "delete"})
            allowed = time.monotonic()
            reader.read_until(lambda msgs: len(outputs.update(msgs)) > 0, timeout_s=120, what="first output")
            recovery_s = time.monotonic() - allowed
            reader.read_until(
                lambda msgs: outputs.update(msgs).keys() >= expected.keys(),
                timeout_s=120,
                what="every log record on .clean once writes are accepted",
            )
    finally:
        reader.close()
    assert refused_out == 0
    assert during == before, f"input committed while its outputs were refused: {before} -> {during}"
    chaos_table.add(
        "output topic refuses writes for 10 s (keyless records to a compacted topic)",
        expected,
        outputs.items,
        recovery=f"{recovery_s:.1f} s after writes were accepted",
    )
