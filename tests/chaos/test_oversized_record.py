"""A record too large for the DLQ: it still reaches the DLQ (as a reference), and no other record of
its partition or batch is lost or committed unprocessed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from telemetry_pipeline.otlp import Signal
from tests.chaos.conftest import ChaosTable
from tests.integration.harness import (
    OutputItems,
    TopicReader,
    await_committed,
    await_worker_ready,
    count_items,
    deploy,
    generated_load,
    produce,
    running_worker,
    set_topic_config,
)

pytestmark = [pytest.mark.kafka, pytest.mark.chaos]


@pytest.mark.parametrize(
    ("fault", "size", "dlq_limit"),
    [
        # Refused by the worker's own producer (KafkaException from produce()).
        ("3 MiB record on otlp_spans (over the producer's limit)", 3 * 1024 * 1024, None),
        # Accepted by the producer, refused by the broker: the DLQ topic's max.message.bytes.
        ("100 KiB record, DLQ topic max.message.bytes 20 KB", 100 * 1024, 20_000),
    ],
)
def test_oversized_record_goes_to_the_dlq_as_a_reference_and_nothing_is_lost(
    kafka_bootstrap: str,
    tmp_path: Path,
    chaos_table: ChaosTable,
    fault: str,
    size: int,
    dlq_limit: int | None,
) -> None:
    d = deploy(kafka_bootstrap, tmp_path)
    spans_topic = d.topic("otlp_spans")
    set_topic_config(kafka_bootstrap, spans_topic, {"max.message.bytes": str(4 * 1024 * 1024)})
    if dlq_limit is not None:
        set_topic_config(kafka_bootstrap, d.topic("telemetry.dlq"), {"max.message.bytes": str(dlq_limit)})
    load = [(key, payload) for signal, key, payload in generated_load(4000) if signal is Signal.TRACES]
    half = len(load) // 2
    oversized_key = load[half][0]  # lands on a partition among good records, mid-stream
    # Undecodable (so it goes to the DLQ), and incompressible.
    oversized = b"\xff" + os.urandom(size - 1)
    expected = count_items((Signal.TRACES, payload) for _key, payload in load)
    reader = TopicReader(kafka_bootstrap, [d.topic("otlp_spans.clean"), d.topic("telemetry.dlq")])
    try:
        with running_worker(d):
            await_worker_ready(d)
            produce(kafka_bootstrap, spans_topic, load[:half])
            produce(kafka_bootstrap, spans_topic, [(oversized_key, oversized)], max_bytes=8 * 1024 * 1024)
            produce(kafka_bootstrap, spans_topic, load[half:])

            outputs = OutputItems(d)
            reader.read_until(
                lambda msgs: (
                    outputs.update(msgs).keys() >= expected.keys()
                    and any(m.topic().endswith("dlq") and m.key() == oversized_key for m in msgs)
                ),
                timeout_s=90,
                what="every span on .clean and the oversized record's reference on the DLQ",
            )
            # Nothing stalls: the worker goes on to commit every record, the oversized one included.
            # (Checked while it runs: a stop right after the outputs were written may come before
            # their inputs were acknowledged, and leave those to the next worker, at-least-once.)
            await_committed(d, [spans_topic])
    finally:
        reader.close()
    [reference] = [m for m in reader.messages if m.topic().endswith("dlq") and m.key() == oversized_key]
    headers = dict(reference.headers())
    assert not reference.value()
    assert int(headers["value.omitted.bytes"]) == len(oversized)
    assert headers["source.topic"] == spans_topic.encode()
    assert b"too large" in headers["error"]
    out = outputs.items
    chaos_table.add(fault, expected, out, recovery="no restart needed")
