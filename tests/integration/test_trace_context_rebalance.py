"""The trace-context table after a rebalance, on the real broker: traces a second worker wrote, which
the first recovers when the second leaves, are evicted by their TTL like the first worker's own
(before the fix nothing indexed recovered traces, so they stayed in memory for good).

On the way it checks that no input partition is stuck across the rebalances: the partition the first
worker keeps when the second joins has no committed offset yet, and records fetched during that
rebalance used to be skipped there until the next one (app/ordering.py); they were then processed at
the takeover with a fresh time, within the TTL of the check (16 traces held against at most 10)."""

from __future__ import annotations

import dataclasses
import re
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from telemetry_pipeline.app.worker import key_partition
from telemetry_pipeline.enrichment.tests.builders import S, all_spans, traces
from telemetry_pipeline.enrichment.tests.builders import trace_id as trace_id_of
from telemetry_pipeline.kafka.broker import free_port
from tests.integration.harness import (
    Deployment,
    await_committed,
    await_group_members,
    await_worker_ready,
    consume_until,
    deploy,
    produce,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(400)]

TTL_MS = 4_000
PARTITIONS = 2


def _produce_traces(d: Deployment, numbers: range) -> None:
    records = []
    for n in numbers:
        message, now = traces([S(n, 1, service="rebalance")]), time.time_ns()
        for span in all_spans(message):
            span.start_time_unix_nano, span.end_time_unix_nano = now - 1_000_000, now
        records.append((trace_id_of(n).hex().encode(), message.SerializeToString()))
    produce(d.bootstrap, d.topic("otlp_spans"), records)


def _await_out(d: Deployment, numbers: range) -> None:
    wanted = {trace_id_of(n).hex().encode() for n in numbers}
    out = consume_until(d.bootstrap, [d.topic("otlp_spans.clean")],
                        lambda msgs: wanted <= {m.key() for m in msgs}, timeout_s=120)
    missing = wanted - {m.key() for m in out}
    partitions = sorted({key_partition(key.decode(), PARTITIONS) for key in missing})
    assert not missing, f"{len(missing)} of {len(wanted)} traces not out in 120 s (partitions {partitions})"


def _await_table_size(port: int, at_most: int, timeout_s: float = 60) -> float:
    """The table size once it is `at_most` or the timeout passed: the metric is set at the end of each
    tick, which takes seconds on loaded cores (it reads the end offsets of every input partition)."""
    deadline = time.monotonic() + timeout_s
    while (size := _table_size(port)) > at_most and time.monotonic() < deadline:
        time.sleep(0.5)
    return size


def _table_size(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.search(r'^tp_enrichment\{name="traces"\} (\S+)$', text, re.M)
    assert found, "no trace-context table size in the worker's metrics"
    return float(found.group(1))


def _with_metrics_port(d: Deployment, name: str, port: int) -> Deployment:
    config = yaml.safe_load(d.config_path.read_text())
    config["worker"]["metrics_port"] = port
    path = d.workdir / f"config-{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return dataclasses.replace(d, config_path=path)


def test_recovered_traces_are_evicted_after_a_rebalance(kafka_bootstrap: str, tmp_path: Path) -> None:
    d = deploy(kafka_bootstrap, tmp_path, {
        "worker": {"batch_within_s": 0.01, "tick_interval_s": 0.1},
        "enrichment": {"trace_ttl_ms": TTL_MS},
    }, partitions=PARTITIONS)
    port_a = free_port()
    first, second = _with_metrics_port(d, "a", port_a), _with_metrics_port(d, "b", free_port())
    written = range(1, 41)
    # Traces on both partitions: half of them the second worker's while it is there.
    assert {key_partition(trace_id_of(n).hex(), PARTITIONS) for n in written} == {0, 1}
    with running_worker(first, "worker-a"):
        await_worker_ready(first)
        with running_worker(second, "worker-b"):
            await_group_members(d, 2)
            _produce_traces(d, written)
            _await_out(d, written)
        # The second worker left: the first gets its partition and recovers its traces (and processes
        # again what the second had not committed, with a fresh time: wait for that, then the TTL).
        await_group_members(d, 1)
        await_committed(d, [d.topic("otlp_spans")])
        time.sleep(TTL_MS / 1000 + 1)
        # Processing evicts: new traces on both partitions, the only ones within the TTL.
        fresh = range(1_000, 1_010)
        assert {key_partition(trace_id_of(n).hex(), PARTITIONS) for n in fresh} == {0, 1}
        _produce_traces(d, fresh)
        _await_out(d, fresh)
        size = _await_table_size(port_a, at_most=len(fresh))
    assert size <= len(fresh), f"{size:.0f} traces held after the TTL: recovered traces were not evicted"
