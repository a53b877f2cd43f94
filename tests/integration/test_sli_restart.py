"""After a worker restart the SLIs continue exactly where they were (issue 5), on the real broker.

One deterministic workload runs through three deployments: one with one worker, and two with a
worker stopped after the first half, by SIGTERM or by SIGKILL, and a new one started for the second.
All must emit the same snapshots (a killed worker's last steps may be sent twice, identical).
Input is fed in chunks of event time, each chunk once the previous one is through ingest (all its
.clean records out), as live traffic arrives, round-robin over each topic's partitions, so the test
knows every watermark source (input partition) and the step each run must reach. The restarted
runs read input again (at-least-once); the SLI engine must skip it by source offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from signal import SIGKILL, SIGTERM, Signals
from typing import Any

import orjson
import pytest
from confluent_kafka import Message

from telemetry_pipeline.app.progress import keys_per_partition
from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.generate import GeneratedMessage, GeneratorConfig, iter_messages
from telemetry_pipeline.generate.config import ErrorSpike
from telemetry_pipeline.otlp import Signal, decode
from telemetry_pipeline.sli import PartialAggregator, SloResolver
from telemetry_pipeline.sli.config import duration_ms
from tests.integration.harness import (
    Deployment,
    TopicReader,
    await_group_members,
    await_worker_ready,
    deploy,
    event_time_chunks,
    produce,
    read_all,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

WORKLOAD = GeneratorConfig(
    services=3,  # frontend, checkout, payment, plus the metrics-only gateway
    duration=timedelta(minutes=24),
    rate=20,
    spans_per_message=200,
    # Cumulative series lose their first interval after a restart (sli/README.md); delta does not.
    metrics_temporality="delta",
    faults=[ErrorSpike(service="payment", at=timedelta(minutes=9), duration=timedelta(minutes=6), rate=0.3)],
)
CHUNK = timedelta(minutes=3)
FIRST_HALF_CHUNKS = 4  # the restart comes after 12 minutes of event time, inside the error spike
# Lateness wider than the default 2m so a chunk's partials are never late however the sli agent
# interleaves the sli-partials partitions; idle_after keeps wall time from moving the watermark.
CONFIG = {
    "worker": {"batch_within_s": 0.05, "session_timeout_s": 6},  # a killed worker's partitions move soon
    "sli": {"allowed_lateness": "5m", "idle_after": "1h"},
}
PARTITIONS = 2  # of every topic; each input partition is a source of the SLI watermark
SIGNAL_TOPICS = {Signal.TRACES: "otlp_spans", Signal.METRICS: "otlp_metrics", Signal.LOGS: "otlp_logs"}
CLEAN_TOPICS = ["otlp_spans.clean", "otlp_metrics.clean", "otlp_logs.clean"]

SnapshotKey = tuple[str, str, str]  # service, window, window_end


def _partitions(messages: list[GeneratedMessage]) -> dict[int, int]:
    """Where each message is produced (by id): a signal's messages go round-robin over the partitions,
    so every input partition is a watermark source the test can account for."""
    counts = dict.fromkeys(Signal, 0)
    partition_of = {}
    for message in messages:
        partition_of[id(message)] = counts[message.signal] % PARTITIONS
        counts[message.signal] += 1
    return partition_of


def _last_step(
    messages: list[GeneratedMessage], partition_of: dict[int, int], pipeline: PipelineConfig
) -> tuple[set[str], str]:
    """The services in `messages` and the last evaluation step the worker reaches on them: the step
    that the newest event time of the slowest input partition, minus the allowed lateness, has
    passed (computed by the pure core)."""
    sli = pipeline.sli
    aggregator = PartialAggregator(sli, SloResolver(pipeline.slos, pipeline.slo_defaults))
    services, newest = set(), {}
    for message in messages:
        aggregator.add(message.signal, decode(message.signal, message.payload))
        source = message.signal, partition_of[id(message)]
        for partial in aggregator.drain():
            services.add(partial.service)
            newest[source] = max(newest.get(source, 0), partial.max_time_ms)
    watermark = min(newest.values()) - duration_ms(sli.allowed_lateness)
    step_ms = duration_ms(sli.evaluation_step)
    return services, _rfc3339(watermark - watermark % step_ms)


def _ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Run:
    """Feeds one deployment chunk by chunk and reads back its .clean records and snapshots."""

    def __init__(self, deployment: Deployment, partition_of: dict[int, int]) -> None:
        self.deployment = deployment
        self.partition_of = partition_of
        self.fed = 0
        topics = [deployment.topic(name) for name in [*CLEAN_TOPICS, "sli"]]
        self.reader = TopicReader(deployment.bootstrap, topics)
        self._sli_topic = deployment.topic("sli")
        self._read = self._clean = 0
        self._snapshots: dict[SnapshotKey, list[dict[str, Any]]] = {}

    def feed(self, chunks: list[list[GeneratedMessage]]) -> None:
        for chunk in chunks:
            for signal, topic in SIGNAL_TOPICS.items():
                messages = [m for m in chunk if m.signal is signal]
                records = [(m.key, m.payload) for m in messages]
                partitions = [self.partition_of[id(m)] for m in messages]
                produce(self.deployment.bootstrap, self.deployment.topic(topic), records, partitions)
            self.fed += len(chunk)
            # Restart duplicates may only add records, so at least as many as fed means all through.
            self.reader.read_until(self._all_clean, what=f"{self.fed} .clean records")

    def redelivered(self) -> int:
        """.clean records beyond those fed: input processed twice (at-least-once)."""
        return self._clean - self.fed

    def _all_clean(self, _messages: list[Message]) -> bool:
        self.snapshots()
        return self._clean >= self.fed

    def wait_for_step(self, services: set[str], windows: list[str], window_end: str) -> None:
        """Until every service's snapshot of every window at `window_end` is in."""
        expected = {(service, window, window_end) for service in services for window in windows}

        def done(messages: list[Message]) -> bool:
            return expected <= self.snapshots().keys()

        self.reader.read_until(done, what=f"snapshots of {sorted(services)} at {window_end}")

    def snapshots(self) -> dict[SnapshotKey, list[dict[str, Any]]]:
        """Every snapshot read so far by (service, window, window_end); restart duplicates side by side."""
        messages = self.reader.messages
        for message in messages[self._read :]:
            if message.topic() == self._sli_topic:
                snapshot = orjson.loads(message.value())
                key = snapshot["service"], snapshot["window"], snapshot["window_end"]
                self._snapshots.setdefault(key, []).append(snapshot)
            else:
                self._clean += 1
        self._read = len(messages)
        return self._snapshots


def _partitions_by_key(deployment: Deployment, topic: str) -> dict[bytes, set[int]]:
    partitions: dict[bytes, set[int]] = {}
    for message in read_all(deployment.bootstrap, [topic]):
        partitions.setdefault(message.key(), set()).add(message.partition())
    return partitions


@contextmanager
def _worker(run: _Run, name: str, stop_signal: Signals = SIGTERM, *, ready: bool = True) -> Iterator[None]:
    """A worker of the run's deployment, stopped by `stop_signal` at the end of the block."""
    with running_worker(run.deployment, name=name) as process:
        if ready:
            await_worker_ready(run.deployment)
        yield
        process.send_signal(stop_signal)
        process.wait(timeout=60)


def _run(
    kafka_bootstrap: str, workdir: Path, partition_of: dict[int, int], script: Callable[[_Run], None]
) -> _Run:
    """One deployment, its workers started and stopped by `script`."""
    workdir.mkdir()
    run = _Run(deploy(kafka_bootstrap, workdir, CONFIG, partitions=PARTITIONS), partition_of)
    try:
        script(run)
    finally:
        run.reader.close()
    return run


def test_slis_continue_exactly_across_restarts_and_rebalances(kafka_bootstrap: str, tmp_path: Path) -> None:
    messages = list(iter_messages(WORKLOAD))
    chunks = event_time_chunks(messages, WORKLOAD.start_ns(), CHUNK)
    first, middle, last = chunks[:FIRST_HALF_CHUNKS], chunks[FIRST_HALF_CHUNKS:-2], chunks[-2:]
    first_messages = [m for chunk in first for m in chunk]
    pipeline = PipelineConfig.model_validate(CONFIG)
    partition_of = _partitions(messages)
    services, last_step = _last_step(messages, partition_of, pipeline)
    first_services, first_last_step = _last_step(first_messages, partition_of, pipeline)
    assert services == first_services == {"frontend", "checkout", "payment", "gateway"}
    windows = [*pipeline.sli.windows, pipeline.slo_defaults.period]

    def straight(run: _Run) -> None:
        with _worker(run, "worker-1"):
            run.feed(chunks)
            run.wait_for_step(services, windows, last_step)

    def restarted(stop_signal: Signals) -> Callable[[_Run], None]:
        def script(run: _Run) -> None:
            with _worker(run, "worker-1", stop_signal):
                run.feed(first)
                run.wait_for_step(services, windows, first_last_step)
            with _worker(run, "worker-2"):
                run.feed([*middle, *last])
                run.wait_for_step(services, windows, last_step)

        return script

    def rebalanced(run: _Run) -> None:
        # A second worker joins (services split between two engines), then leaves (back to one).
        with _worker(run, "worker-1"):
            run.feed(first)
            run.wait_for_step(services, windows, first_last_step)
            with _worker(run, "worker-2", ready=False):
                assignments = await_group_members(run.deployment, 2)
                sli_partials = run.deployment.topic("sli-partials")
                assert all(any(tp.topic == sli_partials for tp in tps) for tps in assignments)
                run.feed(middle)
            run.feed(last)
            run.wait_for_step(services, windows, last_step)

    straight_run = _run(kafka_bootstrap, tmp_path / "straight", partition_of, straight)
    expected = straight_run.snapshots()
    assert all(len(values) == 1 for values in expected.values())
    # A service's first step depends on when its first partial met the watermark; from the end of
    # the first chunk on, every service is evaluated at every step in every run.
    start_ms = WORKLOAD.start_ns() // 1_000_000
    settled = _rfc3339(start_ms + _ms(CHUNK))
    scripts = {"SIGTERM": restarted(SIGTERM), "SIGKILL": restarted(SIGKILL), "rebalance": rebalanced}
    for name, script in scripts.items():
        run = _run(kafka_bootstrap, tmp_path / name, partition_of, script)
        snapshots = run.snapshots()
        assert {k for k in expected if k[2] >= settled} == {k for k in snapshots if k[2] >= settled}, name
        differing = {
            key: (expected[key][0], values)
            for key, values in snapshots.items()
            if key in expected and any(value != expected[key][0] for value in values)
        }
        example = next(iter(differing.items()), None)
        assert not differing, f"{name}: {len(differing)} snapshots differ, e.g. {example}"
        resent = sum(len(values) - 1 for values in snapshots.values())
        print(f"{name}: {run.redelivered()} input records redelivered, {resent} snapshots resent")
    # A service's partials arrive on the partition of its state's changelog (both murmur2), so with
    # several workers the one that restores a service's state is the one that gets its partials.
    deployment = run.deployment
    partials_at = _partitions_by_key(deployment, deployment.topic("sli-partials"))
    for key in keys_per_partition(PARTITIONS):  # progress records go to every partition
        partials_at.pop(key, None)
    assert partials_at.keys() == {service.encode() for service in services}
    assert partials_at == _partitions_by_key(deployment, deployment.topic("app-sli-state-changelog"))
    # What was compared: steps on both sides of the restart, and the error spike (running across the
    # restart) moving the numbers.
    assert max(k[2] for k in expected) == last_step > first_last_step >= settled
    spike = WORKLOAD.faults[0]
    payment_5m = {k[2]: v[0]["error_rate"] for k, v in expected.items() if k[:2] == ("payment", "5m")}
    before, during = (_rfc3339(start_ms + _ms(offset)) for offset in (spike.at, spike.at + spike.duration))
    assert payment_5m[before] < spike.rate / 3 < payment_5m[during]
