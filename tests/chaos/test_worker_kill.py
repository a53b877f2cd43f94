"""A worker SIGKILLed mid-stream and restarted with the same app id (and static membership): every
item comes out, the restart takes the partitions back without waiting out the session timeout. And
a kill with state in every table: messages held for their trace context, an open incident, SLI
windows and trace context that only the changelogs keep."""

from __future__ import annotations

import re
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Message
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from telemetry_pipeline.enrichment.tests.builders import S, all_log_records, all_spans, attr, logs, traces
from telemetry_pipeline.enrichment.tests.builders import trace_id as trace_id_of
from telemetry_pipeline.generate import GeneratedMessage, GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.kafka.broker import free_port
from telemetry_pipeline.otlp import Signal
from tests.chaos.conftest import ChaosTable
from tests.integration.harness import (
    Deployment,
    OutputItems,
    RoundRobin,
    TopicReader,
    await_worker_ready,
    clean_topics,
    count_items,
    deploy,
    event_time_chunks,
    generated_load,
    produce,
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


START = datetime(2026, 1, 1, tzinfo=UTC)
# frontend fails from minute 5 to 15: a fast burn, paged at the 00:07 step, which the worker evaluates
# once the input is 5 minutes (the lateness) further; the burn goes on in the 5m window until ~00:19, so
# the restarted worker evaluates burning steps however far the first one got before the kill.
WORKLOAD = GeneratorConfig(
    start_time=START,
    services=2,
    metrics_only_service=False,
    duration=timedelta(minutes=32),
    rate=3,
    spans_per_message=100,
    logs_per_message=50,
    pii_share=0.0,
    incomplete_resource_share=0.0,
    metrics_temporality="delta",
    key="trace_id",
    faults=[{"kind": "error_spike", "service": "frontend", "rate": 0.5, "at": "5m", "for": "10m"}],
)
CHUNK = timedelta(minutes=2)
PAGE = "slo_burn_rate/frontend/availability:page"
BURN_GOES_ON_UNTIL = "2026-01-01T00:19:00Z"  # the last step whose 5m window still burns (1 min of errors)
PAST_THE_BURN = "2026-01-01T00:21:00Z"
HELD_TRACE, KNOWN_TRACE = 9_000_001, 9_000_002
PARTITIONS = 2
SIGNAL_TOPICS = {Signal.TRACES: "otlp_spans", Signal.METRICS: "otlp_metrics", Signal.LOGS: "otlp_logs"}


class _Run:
    """Produces keyed input (as the Collector does), keeps the item ids of everything produced, and
    reads the outputs, the snapshots and the incident events."""

    def __init__(self, d: Deployment, metrics_port: int) -> None:
        self.d = d
        self.keyless = RoundRobin(PARTITIONS)
        self.metrics_port = metrics_port
        self.expected: Counter[tuple] = Counter()
        self.outputs = OutputItems(d)
        self.reader = TopicReader(d.bootstrap, [*clean_topics(d), d.topic("sli"), d.topic("incidents")])
        self.event_time_ns = 0  # the newest event time fed

    def produce(self, signal: Signal, records: list[tuple[bytes | None, bytes]]) -> None:
        self.expected.update(count_items((signal, payload) for _key, payload in records))
        # Keyless records (the workload's metrics and logs) round-robin: with `idle_after` an hour, a
        # partition none of the last chunks reached would hold the watermark before 00:21 (CI saw it).
        keyless = all(key is None for key, _value in records)
        targets = self.keyless.next(signal, len(records)) if keyless else None
        produce(self.d.bootstrap, self.d.topic(SIGNAL_TOPICS[signal]), records, targets)

    def feed(self, chunk: list[GeneratedMessage]) -> None:
        for signal in Signal:
            self.produce(signal, [(m.key, m.payload) for m in chunk if m.signal is signal])
        self.event_time_ns = max(m.event_time_ns for m in chunk)
        self.await_out("the chunk's items on the .clean topics")

    def hand_made(self, message: TracesData | LogsData, trace: int) -> None:
        """At the newest event time fed: held for the grace, not released by the spans' progress."""
        at_ns = self.event_time_ns
        if isinstance(message, TracesData):
            signal = Signal.TRACES
            for span in all_spans(message):
                span.start_time_unix_nano, span.end_time_unix_nano = at_ns - 1_000_000, at_ns
        else:
            signal = Signal.LOGS
            for record in all_log_records(message):
                record.time_unix_nano = at_ns
        self.produce(signal, [(trace_id_of(trace).hex().encode(), message.SerializeToString())])

    def await_out(self, what: str, timeout_s: float = 120) -> None:
        self.reader.read_until(
            lambda msgs: self.outputs.update(msgs).keys() >= self.expected.keys(), timeout_s, what
        )

    def wait(self, done: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
        self.reader.read_until(lambda _msgs: done(), timeout_s, what)

    def of_topic(self, name: str) -> list[Message]:
        return [m for m in self.reader.messages if m.topic() == self.d.topic(name)]

    def page_triggers(self) -> list[dict]:
        events = (orjson.loads(m.value()) for m in self.of_topic("incidents"))
        return [e for e in events if e["dedup_key"] == PAGE and e["action"] == "trigger"]

    def frontend_steps(self, window: str) -> dict[str, set[int]]:
        """Request counts of the frontend's snapshots per window end (a step sent twice: two copies)."""
        steps: dict[str, set[int]] = {}
        for snapshot in (orjson.loads(m.value()) for m in self.of_topic("sli")):
            if snapshot["service"] == "frontend" and snapshot["window"] == window:
                steps.setdefault(snapshot["window_end"], set()).add(snapshot["requests"])
        return steps

    def held(self) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            found = re.search(r"^tp_held_messages (\S+)$", response.read().decode(), re.M)
        return float(found.group(1)) if found else 0.0

    def logs_of(self, trace: int) -> list:
        out = (LogsData.FromString(m.value()) for m in self.of_topic("otlp_logs.clean"))
        return [r for message in out for r in all_log_records(message) if r.trace_id == trace_id_of(trace)]


def test_sigkill_with_held_messages_and_an_open_incident_restores_every_table(
    kafka_bootstrap: str, tmp_path: Path, chaos_table: ChaosTable
) -> None:
    metrics_port = free_port()
    d = deploy(kafka_bootstrap, tmp_path, partitions=PARTITIONS, extra={
        "worker": {"group_instance_id": "worker-1", "batch_within_s": 0.05, "metrics_port": metrics_port},
        # Wide lateness and no idle watermark (wall time is far past the workload's event time);
        # a grace long enough to see the held messages in the metric before the kill.
        "sli": {"allowed_lateness": "5m", "idle_after": "1h"},
        "enrichment": {"grace_period_ms": 30_000},
    })
    _users, catalog = context_records(WORKLOAD)
    catalog_records = [(key.encode(), orjson.dumps(value)) for key, value in catalog.items()]
    produce(kafka_bootstrap, d.topic("service-catalog"), catalog_records)
    messages = (m for m in iter_messages(WORKLOAD) if not m.is_garbage)
    chunks = event_time_chunks(messages, WORKLOAD.start_ns(), CHUNK)
    run = _Run(d, metrics_port)
    try:
        with running_worker(d, name="first") as first:
            await_worker_ready(d)
            while not run.page_triggers():  # killed while the burn goes on: a lost page would fire again
                assert chunks, "the frontend page never triggered"
                run.feed(chunks.pop(0))
            # A trace whose root span went through this worker: only the changelog will know it.
            run.hand_made(traces([S(KNOWN_TRACE, 1, service="frontend")]), KNOWN_TRACE)
            run.await_out("the known trace's root")
            # A child span and a log of a trace whose root has not come yet: held, unacknowledged.
            run.hand_made(traces([S(HELD_TRACE, 2, parent=1, service="checkout")]), HELD_TRACE)
            run.hand_made(logs([(HELD_TRACE, 2, {})], service="checkout"), HELD_TRACE)
            deadline = time.monotonic() + 20
            while run.held() < 2:
                assert time.monotonic() < deadline, "the worker did not hold the orphan span and log"
                time.sleep(0.2)
            first.kill()
            first.wait()
            killed_ms = time.time() * 1000
        with running_worker(d, name="second"):
            # The known trace's context comes back from the changelog: its log is enriched at once.
            run.hand_made(logs([(KNOWN_TRACE, 0, {})]), KNOWN_TRACE)
            run.wait(lambda: bool(run.logs_of(KNOWN_TRACE)), "the known trace's log")
            # The held messages were not committed: read again, held again, released by their root.
            run.hand_made(traces([S(HELD_TRACE, 1, service="frontend")]), HELD_TRACE)
            run.await_out("the held span and log, once their root came")
            for chunk in chunks:
                run.feed(chunk)
            past_the_burn = lambda: max(run.frontend_steps("5m"), default="") >= PAST_THE_BURN  # noqa: E731
            run.wait(past_the_burn, f"frontend steps past {PAST_THE_BURN}", timeout_s=180)
        after_kill = [m.timestamp()[1] for m in run.reader.messages if m.timestamp()[1] > killed_ms]
    finally:
        run.reader.close()
    recovery_s = (min(after_kill) - killed_ms) / 1000
    chaos_table.add(
        "worker SIGKILL holding messages, with an open page, SLI windows and trace context in tables",
        run.expected,
        run.outputs.items,
        recovery=f"{recovery_s:.1f} s to output again",
    )
    # Every copy (at-least-once may send one twice) enriched.
    assert {attr(r, "trace.root.service") for r in run.logs_of(KNOWN_TRACE)} == {"frontend"}, (
        "trace context not recovered from the changelog"
    )
    assert {attr(r, "trace.root.service") for r in run.logs_of(HELD_TRACE)} == {"frontend"}
    # The open page came back: not triggered again while the burn went on after the restart (a copy
    # re-sent after the kill carries the same event id).
    triggers = run.page_triggers()
    assert len({e["id"] for e in triggers}) == 1, triggers
    after_restart = [m for m in run.of_topic("sli") if m.timestamp()[1] > killed_ms]
    first_step = min(orjson.loads(m.value())["window_end"] for m in after_restart)
    assert first_step <= BURN_GOES_ON_UNTIL, f"no step of the burn evaluated after the restart: {first_step}"
    # The SLI windows came back: the 1h window of the 26 minutes only grows from step to step.
    steps = [copies for _end, copies in sorted(run.frontend_steps("1h").items())]
    assert all(len(copies) == 1 for copies in steps), "a step sent twice with different counts"
    counts = [copies.pop() for copies in steps]
    assert counts == sorted(counts) and counts[-1] > 0, f"the 1h window lost requests: {counts}"
