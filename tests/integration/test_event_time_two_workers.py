"""Two workers in one group finish a backlog with the SLI snapshots of `replay` (issue 15): the
second joins when a fifth of the snapshots are out.

Each worker's SLI engine sees the partials of its services from every input partition, but reads only
some input partitions itself: the others' progress reaches it as progress reports on its `sli-partials`
partitions (app/progress.py), so a partition the other worker has not read to its end holds its
watermark back. The metrics are cumulative and unkeyed, so a series' points also arrive out of order
through several partitions and both workers (sli/cumulative.py).
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest

from telemetry_pipeline.generate import GeneratorConfig, iter_messages
from telemetry_pipeline.generate.config import ErrorSpike
from telemetry_pipeline.generate.sinks import write_jsonl
from telemetry_pipeline.otlp import Signal
from tests.integration.harness import rooted_traces, running_worker
from tests.integration.test_event_time import Snapshots, _compare, _replay, _worker_run

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

WORKLOAD = GeneratorConfig(
    services=3,
    duration=timedelta(hours=1),
    rate=0.5,
    key="trace_id",
    logs_per_message=20,
    metrics_temporality="cumulative",
    faults=[
        ErrorSpike(service="checkout", at=timedelta(minutes=20), duration=timedelta(minutes=10), rate=0.3)
    ],
)


def _progress(expected: Snapshots, got: Snapshots) -> str:
    """Per service, the newest step emitted against the newest expected, and how many are missing."""
    newest = {}
    for service in sorted({key[0] for key in expected}):
        mine = [key[2] for key in got if key[0] == service]
        newest[service] = f"{max(mine, default='none')} of {max(k[2] for k in expected if k[0] == service)}"
    return f"{len(expected.keys() - got.keys())} missing; newest steps {newest}"


def test_two_workers_finish_a_backlog_with_replays_snapshots(kafka_bootstrap: str, tmp_path: Path) -> None:
    messages = list(iter_messages(WORKLOAD))
    merged = tmp_path / "merged.jsonl"
    write_jsonl(sorted(messages, key=lambda m: m.event_time_ns), merged)
    rooted = rooted_traces(m.message for m in messages if m.signal is Signal.TRACES)
    expected, _coverage = _replay(tmp_path, "merged", [merged], rooted)
    assert {key[0] for key in expected} == {"frontend", "checkout", "payment", "gateway"}
    assert any(s[0]["requests"] for key, s in expected.items() if key[0] == "gateway"), "no metric requests"

    with _worker_run(kafka_bootstrap, tmp_path / "two") as run:
        run.backlog(messages)
        with ExitStack() as stack:
            first = stack.enter_context(running_worker(run.deployment, name="worker-1"))
            # The second worker joins in the middle: half of the partitions, some of them half read by
            # the first, move to it while the first goes on with the rest.
            run.wait_for(set(expected), timeout_s=120, share=0.2)
            left = len(set(expected) - run.snapshots().keys())
            assert left, "the backlog was through before the second worker joined"
            second = stack.enter_context(running_worker(run.deployment, name="worker-2"))
            try:
                run.wait_for(set(expected), timeout_s=240)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; {_progress(expected, run.snapshots())}") from None
            assert first.poll() is None and second.poll() is None, "a worker stopped"
        print(f"two workers: {left} of {len(expected)} snapshots left when the second joined")
        late = run.late_dropped()
        _compare("two workers, backlog", expected, run.snapshots(), late)
        assert late == 0, f"two workers: {late} buckets dropped as late"
