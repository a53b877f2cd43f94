"""After a worker restart the SLIs continue exactly where they were (issue 5), on the real broker.

One deterministic workload runs through two deployments: A with one worker, B with a worker stopped
(SIGTERM) after the first half and a new one started for the second. Both must emit the same
snapshots. Input is fed in chunks of event time, each chunk once the previous one is through ingest
(all its .clean records out), as live traffic arrives: the three ingest agents then never run
minutes of event time apart, which would let one signal's watermark drop another's partials as late
and make even two uninterrupted runs differ.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Message

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.generate import GeneratedMessage, GeneratorConfig, iter_messages
from telemetry_pipeline.generate.config import ErrorSpike
from telemetry_pipeline.otlp import Signal, decode
from telemetry_pipeline.sli import PartialAggregator, SloResolver
from telemetry_pipeline.sli.config import duration_ms
from tests.integration.harness import (
    Deployment,
    TopicReader,
    await_worker_ready,
    deploy,
    produce,
    read_all,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

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
# Wider than the default 2m so a chunk's partials are never late however the sli agent interleaves
# the sli-partials partitions; idle_after_s keeps wall time from moving the watermark.
CONFIG = {
    "worker": {"idle_after_s": 3600, "batch_within_s": 0.05},
    "sli": {"allowed_lateness": "5m"},
}
SIGNAL_TOPICS = {Signal.TRACES: "otlp_spans", Signal.METRICS: "otlp_metrics", Signal.LOGS: "otlp_logs"}
CLEAN_TOPICS = ["otlp_spans.clean", "otlp_metrics.clean", "otlp_logs.clean"]

SnapshotKey = tuple[str, str, str]  # service, window, window_end


def _chunks(messages: list[GeneratedMessage]) -> list[list[GeneratedMessage]]:
    start_ns, chunk_ns = WORKLOAD.start_ns(), _ms(CHUNK) * 1_000_000
    chunks: dict[int, list[GeneratedMessage]] = {}
    for message in messages:
        chunks.setdefault((message.event_time_ns - start_ns) // chunk_ns, []).append(message)
    return [chunks[index] for index in sorted(chunks)]


def _last_step(messages: list[GeneratedMessage], pipeline: PipelineConfig) -> tuple[set[str], str]:
    """The services in `messages` and the last evaluation step the worker reaches on them: the
    step the newest event time minus the allowed lateness has passed (computed by the pure core)."""
    sli = pipeline.sli
    aggregator = PartialAggregator(sli, SloResolver(pipeline.slos, pipeline.slo_defaults))
    for message in messages:
        aggregator.add(message.signal, decode(message.signal, message.payload))
    partials = aggregator.drain()
    watermark = max(p.max_time_ms for p in partials) - duration_ms(sli.allowed_lateness)
    step_ms = duration_ms(sli.evaluation_step)
    return {p.service for p in partials}, _rfc3339(watermark - watermark % step_ms)


def _ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Run:
    """Feeds one deployment chunk by chunk and reads back its .clean records and snapshots."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.fed = 0
        topics = [deployment.topic(name) for name in [*CLEAN_TOPICS, "sli"]]
        self.reader = TopicReader(deployment.bootstrap, topics)
        self._sli_topic = deployment.topic("sli")
        self._read = self._clean = 0
        self._snapshots: dict[SnapshotKey, list[dict[str, Any]]] = {}

    def feed(self, chunks: list[list[GeneratedMessage]]) -> None:
        for chunk in chunks:
            for signal, topic in SIGNAL_TOPICS.items():
                records = [(m.key, m.payload) for m in chunk if m.signal is signal]
                produce(self.deployment.bootstrap, self.deployment.topic(topic), records)
            self.fed += len(chunk)
            # Restart duplicates may only add records, so at least as many as fed means all through.
            self.reader.read_until(self._all_clean, what=f"{self.fed} .clean records")

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


def _run(kafka_bootstrap: str, workdir: Path, stops: list[Callable[[_Run], None]]) -> _Run:
    """One deployment; a worker per entry of `stops`, each fed its chunks and then stopped."""
    workdir.mkdir()
    run = _Run(deploy(kafka_bootstrap, workdir, CONFIG))
    try:
        for number, stop in enumerate(stops, start=1):
            with running_worker(run.deployment, name=f"worker-{number}"):
                await_worker_ready(run.deployment)
                stop(run)
    finally:
        run.reader.close()
    return run


@pytest.mark.xfail(
    strict=False,
    reason="about 1 run in 3 a worker counts some input twice before the restart too (e.g. 540 requests "
    "where the pure core gives 453): at-least-once redelivery after a start-up rebalance duplicates SLI "
    "partials; needs per-message partials with source offsets deduplicated by the engine (issue 5 note)",
)
def test_slis_continue_exactly_across_a_worker_restart(kafka_bootstrap: str, tmp_path: Path) -> None:
    messages = list(iter_messages(WORKLOAD))
    chunks = _chunks(messages)
    first, second = chunks[:FIRST_HALF_CHUNKS], chunks[FIRST_HALF_CHUNKS:]
    first_messages = [m for chunk in first for m in chunk]
    pipeline = PipelineConfig.model_validate(CONFIG)
    services, last_step = _last_step(messages, pipeline)
    first_services, first_last_step = _last_step(first_messages, pipeline)
    assert services == first_services == {"frontend", "checkout", "payment", "gateway"}
    windows = [*pipeline.sli.windows, pipeline.slo_defaults.period]

    def everything(run: _Run) -> None:
        run.feed(chunks)
        run.wait_for_step(services, windows, last_step)

    def first_half(run: _Run) -> None:
        run.feed(first)
        run.wait_for_step(services, windows, first_last_step)

    def second_half(run: _Run) -> None:
        run.feed(second)
        run.wait_for_step(services, windows, last_step)

    straight = _run(kafka_bootstrap, tmp_path / "straight", [everything]).snapshots()
    restarted_run = _run(kafka_bootstrap, tmp_path / "restarted", [first_half, second_half])
    restarted = restarted_run.snapshots()

    # A service's first step depends on when its first partial met the watermark; from the end of
    # the first chunk on, every service is evaluated at every step in both runs.
    start_ms = WORKLOAD.start_ns() // 1_000_000
    settled = _rfc3339(start_ms + _ms(CHUNK))
    assert {k for k in straight if k[2] >= settled} == {k for k in restarted if k[2] >= settled}
    differing = {
        key: (straight[key][0], values)
        for key, values in restarted.items()
        if key in straight and any(value != straight[key][0] for value in values)
    }
    assert not differing, f"{len(differing)} snapshots differ, e.g. {next(iter(differing.items()))}"
    assert all(len(values) == 1 for values in straight.values())
    # A service's partials arrive on the partition of its state's changelog (both murmur2), so with
    # several workers the one that restores a service's state is the one that gets its partials.
    deployment = restarted_run.deployment
    partials_at = _partitions_by_key(deployment, deployment.topic("sli-partials"))
    assert partials_at.keys() == {service.encode() for service in services}
    assert partials_at == _partitions_by_key(deployment, deployment.topic("app-sli-state-changelog"))
    # What was compared: steps on both sides of the restart, and the error spike (running across the
    # restart) moving the numbers.
    assert max(k[2] for k in straight) == last_step > first_last_step >= settled
    spike = WORKLOAD.faults[0]
    payment_5m = {k[2]: v[0]["error_rate"] for k, v in straight.items() if k[:2] == ("payment", "5m")}
    before, during = (_rfc3339(start_ms + _ms(offset)) for offset in (spike.at, spike.at + spike.duration))
    assert payment_5m[before] < spike.rate / 3 < payment_5m[during]
