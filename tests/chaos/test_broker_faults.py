"""The broker away under a worker: started after the worker, and stopped and started again mid-stream.
Each test runs its own broker (its own port and data dir), so stopping it disturbs no other test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from telemetry_pipeline.kafka import broker
from tests.chaos.conftest import ChaosTable
from tests.integration.harness import (
    OutputItems,
    TopicReader,
    await_committed,
    clean_topics,
    count_items,
    deploy,
    generated_load,
    load_producer,
    produce_load,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.chaos]

# Repeated client errors are summarised per worker.log_repeat_interval_s (10 s): an outage costs a few
# lines per kind of error and interval, not one per retry.
LOG_LINES_PER_MINUTE = 200


class OwnBroker:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = broker.free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        broker.start(self.port, self.data_dir, stop_with_caller=True)

    def stop(self) -> None:
        broker.stop(self.data_dir)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    own = OwnBroker(tmp_path / "kafka")
    try:
        yield own
    finally:
        own.stop()


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_worker_started_before_the_broker_waits_for_it(
    own_broker: OwnBroker, tmp_path: Path, chaos_table: ChaosTable
) -> None:
    # Topics need a broker: create them, then stop it, so the worker starts against nothing.
    own_broker.start()
    d = deploy(own_broker.bootstrap, tmp_path, extra={"worker": {"startup_timeout_s": 120}})
    own_broker.stop()
    load = generated_load(10_000)
    expected = count_items((signal, payload) for signal, _key, payload in load)
    with running_worker(d) as worker:
        time.sleep(10)
        assert worker.poll() is None, "the worker gave up while the broker was down"
        own_broker.start()
        back = time.monotonic()
        produce_load(d, load)
        reader = TopicReader(own_broker.bootstrap, clean_topics(d))
        outputs = OutputItems(d)
        try:
            reader.read_until(
                lambda msgs: outputs.update(msgs).keys() >= expected.keys(),
                timeout_s=120,
                what="every item on the .clean topics once the broker is up",
            )
        finally:
            reader.close()
        recovered_s = time.monotonic() - back
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "Traceback" not in log
    chaos_table.add(
        "worker started 10 s before the broker",
        expected,
        outputs.items,
        recovery=f"all out {recovered_s:.1f} s after the broker started",
        log_lines=str(log.count("\n")),
    )


@pytest.mark.parametrize(("outage_s", "spans"), [(15, 30_000), (60, 10_000)], ids=["15s", "60s"])
def test_broker_stopped_and_started_under_a_running_worker(
    own_broker: OwnBroker, tmp_path: Path, chaos_table: ChaosTable, outage_s: int, spans: int
) -> None:
    """Longer than the group's session timeout (45 s) and the delivery timeout (30 s) at 60 s: the
    worker keeps its membership, retries its deliveries, and needs no restart."""
    own_broker.start()
    d = deploy(own_broker.bootstrap, tmp_path)
    load = generated_load(spans)
    expected = count_items((signal, payload) for signal, _key, payload in load)
    log_path = tmp_path / "worker.log"
    reader = TopicReader(own_broker.bootstrap, clean_topics(d))
    outputs = OutputItems(d)

    def paced() -> None:  # the load over ~12 s, through the outage (librdkafka queues meanwhile)
        producer = load_producer(d)
        chunk = max(1, len(load) // 24)
        for start in range(0, len(load), chunk):
            produce_load(d, load[start : start + chunk], producer)
            time.sleep(0.5)
        assert producer.flush(outage_s + 120) == 0

    try:
        with running_worker(d):
            reader.read_until(lambda msgs: True, timeout_s=1)
            producer = threading.Thread(target=paced)
            producer.start()
            reader.read_until(lambda msgs: len(outputs.update(msgs)) > 0, timeout_s=90, what="first outputs")
            stopped_lines = _lines(log_path)
            own_broker.stop()
            down = time.monotonic()
            time.sleep(outage_s)
            own_broker.start()
            back = time.monotonic()
            back_ms = time.time() * 1000
            reader.read_until(
                lambda msgs: any(m.timestamp()[1] > back_ms for m in msgs[-50:]),
                timeout_s=120,
                what="outputs after the broker came back",
            )
            recovered_s = time.monotonic() - back
            outage_lines = _lines(log_path) - stopped_lines
            outage_s_measured = time.monotonic() - down
            producer.join(outage_s + 120)
            reader.read_until(
                lambda msgs: outputs.update(msgs).keys() >= expected.keys(),
                timeout_s=180,
                what="every item on the .clean topics after the outage",
            )
            # No stuck partition: the worker goes on to commit every input record.
            await_committed(d, [d.topic(name) for name in ("otlp_spans", "otlp_logs", "otlp_metrics")])
    finally:
        reader.close()
    chaos_table.add(
        f"broker stopped {outage_s} s, started again, worker running",
        expected,
        outputs.items,
        recovery=f"{recovered_s:.1f} s after the broker was back",
        log_lines=f"{outage_lines} in {outage_s_measured:.0f} s",
    )
    assert outage_lines < LOG_LINES_PER_MINUTE * max(1.0, outage_s_measured / 60), (
        f"{outage_lines} log lines during the outage"
    )
