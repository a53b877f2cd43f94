"""The broker refuses writes to an output topic (acks=all and min.insync.replicas above the replicas):
the worker keeps the inputs unacknowledged and commits nothing past them, then delivers every item
once writes are accepted again."""

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
    spans, spans_clean = d.topic("otlp_spans"), d.topic("otlp_spans.clean")
    load = [m for m in generated_load(10_000) if m[0] is Signal.TRACES]
    expected = count_items((signal, payload) for signal, _key, payload in load)
    reader = TopicReader(kafka_bootstrap, [spans_clean])
    outputs = OutputItems(d)
    try:
        with running_worker(d) as worker:
            await_worker_ready(d)
            time.sleep(2)  # the probes' offsets committed (commit interval 1 s)
            before = committed_offsets(d, spans)
            set_topic_config(kafka_bootstrap, spans_clean, {"min.insync.replicas": "2"})
            produce_load(d, load)
            time.sleep(10)
            during = committed_offsets(d, spans)
            reader.read_until(lambda msgs: True, timeout_s=1)
            refused_out = len(outputs.update(reader.messages))
            assert worker.poll() is None, "the worker died while writes were refused"
            set_topic_config(kafka_bootstrap, spans_clean, {"min.insync.replicas": "1"})
            allowed = time.monotonic()
            reader.read_until(lambda msgs: len(outputs.update(msgs)) > 0, timeout_s=120, what="first output")
            recovery_s = time.monotonic() - allowed
            reader.read_until(
                lambda msgs: outputs.update(msgs).keys() >= expected.keys(),
                timeout_s=120,
                what="every span on .clean once writes are accepted",
            )
    finally:
        reader.close()
    assert refused_out == 0
    assert during == before, f"input committed while its outputs were refused: {before} -> {during}"
    chaos_table.add(
        "output topic refuses writes for 10 s (min.insync.replicas 2 > replicas)",
        expected,
        outputs.items,
        recovery=f"{recovery_s:.1f} s after writes were accepted",
    )
