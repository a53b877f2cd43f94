"""A worker SIGKILLed mid-stream and restarted with the same app id (and static membership): every
item comes out, the restart takes the partitions back without waiting out the session timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.chaos.conftest import ChaosTable
from tests.integration.harness import (
    OutputItems,
    TopicReader,
    await_worker_ready,
    clean_topics,
    count_items,
    deploy,
    generated_load,
    produce_load,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.chaos]


def test_sigkill_mid_stream_then_restart_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path, chaos_table: ChaosTable
) -> None:
    d = deploy(kafka_bootstrap, tmp_path, extra={"worker": {"group_instance_id": "worker-1"}})
    load = generated_load(40_000)
    expected = count_items((signal, payload) for signal, _key, payload in load)
    half = len(load) // 2
    reader = TopicReader(kafka_bootstrap, clean_topics(d))
    outputs = OutputItems(d)
    try:
        with running_worker(d, name="first") as first:
            await_worker_ready(d)
            produce_load(d, load[:half])
            reader.read_until(lambda msgs: len(outputs.update(msgs)) > 0, timeout_s=60, what="first outputs")
            produce_load(d, load[half:])
            time.sleep(0.5)  # mid-way through the second half
            first.kill()
            first.wait()
            killed_ms = time.time() * 1000
        with running_worker(d, name="second"):
            reader.read_until(
                lambda msgs: outputs.update(msgs).keys() >= expected.keys(),
                timeout_s=120,
                what="every item of the run on the .clean topics after the restart",
            )
        after_kill = [m.timestamp()[1] for m in reader.messages if m.timestamp()[1] > killed_ms]
    finally:
        reader.close()
    recovery_s = (min(after_kill) - killed_ms) / 1000
    second_log = (tmp_path / "second.log").read_text(errors="replace")
    chaos_table.add(
        "worker SIGKILL mid-stream, restart with the same app id (static membership)",
        expected,
        outputs.items,
        recovery=f"{recovery_s:.1f} s to output again",
    )
    assert "context topics not loaded" not in second_log
    # Static membership: back well before the 45 s session timeout.
    assert recovery_s < 30, recovery_s
