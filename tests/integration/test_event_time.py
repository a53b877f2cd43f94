"""The SLIs and enrichment are a function of the input, not of its arrival (issue 15).

One generated workload (2 h of event time, all three signals, an error spike) runs six ways:
`replay` of the per-signal files in two orders, `replay` of one merged file, the worker fed paced (a
minute of event time every 0.5 s, 4 partitions keyed by trace id), the worker fed a backlog (everything
published while no worker ran, logs first), and that backlog with the worker killed (SIGKILL) in the
middle and a new one finishing it. Every run must give the same SLI snapshots on every field, context
on every log whose trace has a root, and no bucket dropped as late.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from signal import SIGKILL
from subprocess import Popen
from typing import Any

import orjson
import pytest
from confluent_kafka import Message

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.generate import GeneratedMessage, GeneratorConfig, iter_messages
from telemetry_pipeline.generate.config import ErrorSpike
from telemetry_pipeline.generate.sinks import write_jsonl
from telemetry_pipeline.otlp import Signal, decode
from telemetry_pipeline.replay import run_replay
from tests.integration.harness import (
    Deployment,
    TopicReader,
    await_worker_ready,
    deploy,
    log_coverage,
    produce,
    read_all,
    rooted_traces,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(1200)]

WORKLOAD = GeneratorConfig(
    services=3,  # frontend, checkout, payment, plus the metrics-only gateway
    duration=timedelta(hours=2),
    rate=0.5,
    key="trace_id",
    logs_per_message=20,  # a logs message spans well under the allowed lateness
    # Cumulative series lose their first interval after a restart (sli/README.md); delta does not.
    metrics_temporality="delta",
    faults=[
        ErrorSpike(service="checkout", at=timedelta(minutes=40), duration=timedelta(minutes=10), rate=0.3)
    ],
)
PARTITIONS = 4
PACE_S = 0.5  # wall seconds per minute of event time in the paced run
# Quicker idleness (the last steps come out once input is caught up and quiet for it; longer than any
# pause of the paced feed on a loaded machine), a killed worker's partitions move soon.
CONFIG: dict[str, dict[str, Any]] = {
    "worker": {"batch_within_s": 0.05, "session_timeout_s": 6},
    "sli": {"idle_after": "10s"},
}
TOPICS = {Signal.TRACES: "otlp_spans", Signal.METRICS: "otlp_metrics", Signal.LOGS: "otlp_logs"}
PIPELINE = PipelineConfig.model_validate(CONFIG)

SnapshotKey = tuple[str, str, str]  # service, window, window_end
Snapshots = dict[SnapshotKey, list[dict[str, Any]]]


def _by_key(lines: Iterator[bytes]) -> Snapshots:
    found: Snapshots = {}
    for line in lines:
        snapshot = orjson.loads(line)
        key = snapshot["service"], snapshot["window"], snapshot["window_end"]
        found.setdefault(key, []).append(snapshot)
    return found


def _replay(workdir: Path, name: str, inputs: list[Path], rooted: set[bytes]) -> tuple[Snapshots, float]:
    out = workdir / name
    summary = run_replay(PIPELINE, inputs, out)
    assert summary.late_dropped == {}, f"replay {name}: buckets dropped as late {summary.late_dropped}"
    logs = [decode(Signal.LOGS, line) for line in (out / "logs.jsonl").read_bytes().splitlines()]
    total, enriched = log_coverage(logs, rooted)
    with (out / "sli.jsonl").open("rb") as handle:
        return _by_key(iter(handle)), enriched / total


def late_dropped(deployment: Deployment) -> int:
    """From the SLI state the worker persisted (its changelog): per service, the highest count it
    wrote. Not the last value: once idle, the wall clock ages every service out and deletes it."""
    highest: dict[bytes, int] = {}
    for message in read_all(deployment.bootstrap, [deployment.topic("app-sli-state-changelog")]):
        if message.value() is not None:
            late = orjson.loads(message.value())["late_dropped"]
            highest[message.key()] = max(highest.get(message.key(), 0), late)
    return sum(highest.values())


class _WorkerRun:
    """One deployment: the input published by `feed`, its workers, its snapshots read back."""

    def __init__(self, kafka_bootstrap: str, workdir: Path) -> None:
        workdir.mkdir()
        self.deployment = deploy(kafka_bootstrap, workdir, CONFIG, partitions=PARTITIONS)
        self.reader = TopicReader(kafka_bootstrap, [self.deployment.topic("sli")])
        self._snapshots: Snapshots = {}
        self._parsed = 0  # of reader.messages, in _snapshots

    def publish(self, messages: list[GeneratedMessage], signals: list[Signal]) -> None:
        """Keyed by trace id with murmur2, as the Collector's kafkaexporter does."""
        for signal in signals:
            records = [(m.key, m.payload) for m in messages if m.signal is signal]
            produce(self.deployment.bootstrap, self.deployment.topic(TOPICS[signal]), records)

    def snapshots(self) -> Snapshots:
        """Each message parsed once: `wait_for` asks after every message it reads, and parsing them
        all each time (19 ms per call at 4,400 snapshots, several times that under load) made reading
        a restarted worker's duplicates quadratic."""
        new = self.reader.messages[self._parsed :]
        self._parsed += len(new)
        for key, values in _by_key(m.value() for m in new).items():
            self._snapshots.setdefault(key, []).extend(values)
        return self._snapshots

    def wait_for(self, expected: set[SnapshotKey], timeout_s: float = 420, share: float = 1.0) -> None:
        """Until `share` of the expected snapshots have come. Generous: under two busy loops a worker
        restarted after a SIGKILL took 113-205 s where a fresh one reads the whole backlog in 40 s."""
        wanted = int(len(expected) * share)

        def done(messages: list[Message]) -> bool:
            return len(messages) >= wanted and len(expected & self.snapshots().keys()) >= wanted

        self.reader.read_until(done, timeout_s=timeout_s, what=f"{wanted} of {len(expected)} snapshots")

    def backlog(self, messages: list[GeneratedMessage]) -> None:
        """A restart with lag: a worker ran (its tables exist), then the input came while none was up."""
        with running_worker(self.deployment, name="worker-0"):
            await_worker_ready(self.deployment)
        self.publish(messages, [Signal.LOGS, Signal.TRACES, Signal.METRICS])

    def late_dropped(self) -> int:
        return late_dropped(self.deployment)

    def log_coverage(self, rooted: set[bytes]) -> float:
        clean = read_all(self.deployment.bootstrap, [self.deployment.topic("otlp_logs.clean")])
        total, enriched = log_coverage([decode(Signal.LOGS, m.value()) for m in clean], rooted)
        return enriched / total

    def close(self) -> None:
        self.reader.close()


@contextmanager
def _worker_run(kafka_bootstrap: str, workdir: Path) -> Iterator[_WorkerRun]:
    run = _WorkerRun(kafka_bootstrap, workdir)
    try:
        yield run
    finally:
        run.close()


def _start_worker(stack: ExitStack, run: _WorkerRun, name: str) -> Popen:
    """A worker stopped (SIGTERM, then SIGKILL) when `stack` closes."""
    return stack.enter_context(running_worker(run.deployment, name=name))


def _minutes(messages: list[GeneratedMessage]) -> list[list[GeneratedMessage]]:
    by_minute: dict[int, list[GeneratedMessage]] = {}
    for message in messages:
        by_minute.setdefault(message.event_time_ns // 60_000_000_000, []).append(message)
    return [by_minute[minute] for minute in sorted(by_minute)]


def _compare(name: str, expected: Snapshots, got: Snapshots, late: int = 0) -> None:
    """Equal snapshots; `late`, the worker's late drops, goes into a failure's message (the likeliest
    cause of a difference)."""
    # The worker goes on past the data when idle (wall clock): compare up to the input's last step.
    last_step = max(key[2] for key in expected)
    within = {key: values for key, values in got.items() if key[2] <= last_step}
    missing, unexpected = expected.keys() - within.keys(), within.keys() - expected.keys()
    assert not missing and not unexpected, (
        f"{name}: {len(missing)} snapshots missing, {len(unexpected)} unexpected, "
        f"e.g. {sorted(missing)[:2]} {sorted(unexpected)[:2]}; {late} buckets dropped as late"
    )
    differing = [key for key, values in within.items() if any(v != expected[key][0] for v in values)]
    example = ""
    if differing:
        want = expected[differing[0]][0]
        got_fields = [{f: (want[f], v[f]) for f in want if v[f] != want[f]} for v in within[differing[0]]]
        example = f"{differing[0]}, (replay, worker) per copy sent: {got_fields}"
    assert not differing, (
        f"{name}: {len(differing)} of {len(expected)} snapshots differ, e.g. {example}; "
        f"{late} buckets dropped as late"
    )


def test_slis_and_enrichment_do_not_depend_on_arrival(kafka_bootstrap: str, tmp_path: Path) -> None:
    messages = list(iter_messages(WORKLOAD))
    rooted = rooted_traces(m.message for m in messages if m.signal is Signal.TRACES)
    files = {signal: tmp_path / f"{signal}.jsonl" for signal in Signal}
    for signal, path in files.items():
        write_jsonl((m for m in messages if m.signal is signal), path)
    merged = tmp_path / "merged.jsonl"
    write_jsonl(sorted(messages, key=lambda m: m.event_time_ns), merged)

    expected, coverage = _replay(tmp_path, "merged", [merged], rooted)
    assert coverage == 1.0, f"replay merged: log coverage {coverage}"
    order = [Signal.TRACES, Signal.LOGS, Signal.METRICS]
    for name, inputs in {"tlm": order, "mlt": order[::-1]}.items():
        snapshots, coverage = _replay(tmp_path, name, [files[s] for s in inputs], rooted)
        _compare(f"replay {name}", expected, snapshots)
        assert coverage == 1.0, f"replay {name}: log coverage {coverage}"
    # What is compared covers the whole run, every signal, and the spike moving the numbers.
    services = {key[0] for key in expected}
    assert services == {"frontend", "checkout", "payment", "gateway"}
    assert len({key[2] for key in expected}) >= 120
    checkout_5m = {key[2]: v[0] for key, v in expected.items() if key[:2] == ("checkout", "5m")}
    assert max(s["error_rate"] or 0 for s in checkout_5m.values()) > 0.1
    assert all(s["completeness"]["logs"] and s["completeness"]["traces"] for s in checkout_5m.values())
    keys = set(expected)

    def check(name: str, run: _WorkerRun) -> None:
        # Beside replay's out dirs, to diff when it fails (pytest --basetemp keeps them).
        lines = b"".join(message.value() + b"\n" for message in run.reader.messages)
        (run.deployment.workdir / "sli.jsonl").write_bytes(lines)
        late, coverage = run.late_dropped(), run.log_coverage(rooted)
        print(f"{name}: {late} buckets dropped as late, log coverage {coverage:.4f}")
        _compare(name, expected, run.snapshots(), late)
        assert late == 0, f"{name}: {late} buckets dropped as late"
        assert coverage == 1.0, f"{name}: log coverage {coverage}"

    with ExitStack() as stack:
        paced = stack.enter_context(_worker_run(kafka_bootstrap, tmp_path / "paced"))
        _start_worker(stack, paced, "worker-1")
        await_worker_ready(paced.deployment)
        for minute in _minutes(messages):
            started = time.monotonic()
            paced.publish(minute, order)
            time.sleep(max(0.0, PACE_S - (time.monotonic() - started)))
        paced.wait_for(keys)
    check("worker paced", paced)

    with _worker_run(kafka_bootstrap, tmp_path / "backlog") as backlog:
        backlog.backlog(messages)
        with running_worker(backlog.deployment, name="worker-1"):
            backlog.wait_for(keys)
        check("worker backlog", backlog)

    with _worker_run(kafka_bootstrap, tmp_path / "killed") as killed:
        killed.backlog(messages)
        with running_worker(killed.deployment, name="worker-1") as process:
            killed.wait_for(keys, share=0.2)
            process.send_signal(SIGKILL)
            process.wait(timeout=30)
        left = len(keys - killed.snapshots().keys())
        assert left, "the backlog was through before the SIGKILL: nothing left for the restarted worker"
        with running_worker(killed.deployment, name="worker-2"):
            killed.wait_for(keys)
        print(f"worker backlog killed: {left} of {len(keys)} snapshots left to the restarted worker")
        check("worker backlog, SIGKILL in the middle", killed)

