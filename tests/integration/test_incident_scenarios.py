"""Incident scenarios on the real broker (issue 10): the worker raises the incident each injected fault
should raise, on the faulty service, and the same incidents as `replay` of the same input.

One worker run over one 80-minute workload with every fault the replay scenario tests inject but the
error spike, maintenance and restart (test_incidents_e2e has those): a slow burn on frontend from
minute 10, card numbers leaked by checkout at 30, a latency regression of payment and checkout's
logs stopping at 35, a deploy that puts ids into cart's span names at 40, payment silent at 60 (each
fault as the replay scenario tests define it, earlier).
Input goes in chunks of event time, each once the previous one is through ingest (`PacedFeed`), and
`replay` of the same messages runs meanwhile in a thread. The incidents compared are the triggers
(dedup key, routing) both emit up to minute 72; the worker stops 5 minutes (the lateness) short of
the end, where replay flushes.

`pytest -s` prints the worker's detection delay per fault, in minutes of event time.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from telemetry_pipeline.detection.tests import scenario
from telemetry_pipeline.detection.tests.scenario import (
    QUIET,
    START,
    first_trigger,
    minutes_after_start,
    replayed,
)
from telemetry_pipeline.generate import GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.sli.config import duration_ms
from tests.integration.harness import (
    PacedFeed,
    await_worker_ready,
    deploy,
    event_time_chunks,
    produce,
    read_all,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

# The faults of the replay scenario tests' faults run but its error spike (test_incidents_e2e has one),
# each starting at these minutes to fit 80 minutes, with the incident each should raise on its service;
# and a slow burn: frontend spends its 99.9% budget at about 3x (its own errors and those of its
# callees), so the 3d/6h ticket row (1x) fires once the long window holds 10 bad requests and the page
# rows (14.4x, 6x) never do.
STARTS = {"leak": "30m", "latency_regression": "35m", "signal_stop": "35m", "deploy": "40m", "silent": "60m"}
FAULT_INCIDENTS: list[tuple[dict[str, Any], str, str | None]] = [
    (
        {"kind": "error_spike", "service": "frontend", "rate": 0.003, "at": "10m", "for": "70m"},
        "slo_burn_rate",
        "availability:ticket",
    ),
    *(
        ({**fault, "at": STARTS[fault["kind"]]}, type_, subject)
        for fault, type_, subject in scenario.FAULT_INCIDENTS
        if fault["kind"] in STARTS
    ),
]
WORKLOAD = GeneratorConfig.model_validate(
    {
        **QUIET,
        "start_time": START,
        "duration": "80m",
        "rate": 2,
        "spans_per_message": 100,
        "logs_per_message": 50,  # small messages: every partition's event time moves steadily
        "attributes_per_span": (2, 4),  # replay parses OTLP/JSON: fewer attributes, less of the run's time
        "metrics_temporality": "delta",
        "faults": [fault for fault, _type, _subject in FAULT_INCIDENTS],
    }
)
# Lateness no less than a chunk (below). idle_after stays at its default: the feed never leaves the
# input quiet that long (wall time, far past the workload's event time, would move the watermark),
# and the silent service's sli-partials channel must stop holding the watermark within the run.
CONFIG: dict[str, Any] = {
    "worker": {"batch_within_s": 0.05},
    "sli": {"allowed_lateness": "5m", "idle_after": "30s"},
}
# A chunk spans no more than the lateness: its logs and metrics may be read after its spans moved the
# watermark. Spans go a minute ahead, so a log near a chunk's end finds its trace's root in its chunk.
CHUNK = timedelta(minutes=5)
SPANS_LEAD = timedelta(minutes=1)
PARTITIONS = 2
# The worker evaluates up to the newest event time less the lateness (75 min); replay flushes to the
# end. Events are compared up to here, once the worker's snapshots are 2 steps past it.
COMPARED_UNTIL = "2026-01-01T01:12:00Z"
SNAPSHOTS_PAST = "2026-01-01T01:14:00Z"
_CARD_LIKE = re.compile(r"\d(?:[ -]?\d){12,18}")


def _triggers(events: list[dict]) -> set[tuple[str, str]]:
    return {
        (e["dedup_key"], e["routing"])
        for e in events
        if e["action"] == "trigger" and e["observed_at"] <= COMPARED_UNTIL
    }


def test_worker_raises_each_faults_incident_on_its_service_as_replay_does(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    messages = [m for m in iter_messages(WORKLOAD) if not m.is_garbage]
    _users, catalog = context_records(WORKLOAD)
    (tmp_path / "replay").mkdir()
    with ThreadPoolExecutor(1) as pool:
        replay = pool.submit(replayed, messages, catalog, CONFIG, tmp_path / "replay")
        deployment = deploy(kafka_bootstrap, tmp_path, CONFIG, partitions=PARTITIONS)
        produce(
            kafka_bootstrap,
            deployment.topic("service-catalog"),
            [(name.encode(), orjson.dumps(entry)) for name, entry in catalog.items()],
        )
        feed = PacedFeed(deployment, PARTITIONS, also=["sli", "incidents"])
        try:
            with running_worker(deployment):
                await_worker_ready(deployment)
                for chunk in event_time_chunks(
                    messages, WORKLOAD.start_ns(), CHUNK, lead={Signal.TRACES: SPANS_LEAD}
                ):
                    feed.send(chunk)
                feed.reader.read_until(
                    lambda _read: feed.latest_step() >= SNAPSHOTS_PAST,
                    timeout_s=120,
                    what=f"snapshots of {SNAPSHOTS_PAST}",
                )
                records = read_all(kafka_bootstrap, [deployment.topic("incidents")])
        finally:
            feed.reader.close()
        replay_events, _summary = replay.result()
    worker_events = [orjson.loads(record.value()) for record in records]

    print()
    for fault, type_, subject in FAULT_INCIDENTS:
        expected = f"{type_} on {fault['service']}" + (f" ({subject})" if subject else "")
        delays = []
        for shell, events in (("worker", worker_events), ("replay", replay_events)):
            trigger = first_trigger(events, type_, fault["service"], subject)
            assert trigger, f"{shell}: no {expected}; triggers: {sorted(_triggers(events))}"
            delays.append(minutes_after_start(trigger["observed_at"]) - duration_ms(fault["at"]) / 60_000)
        by_worker, by_replay = (f"{delay:.0f}" for delay in delays)
        print(f"[detection delay] {fault['kind']} -> {expected}: {by_worker} min (replay {by_replay})")
    assert _triggers(worker_events) == _triggers(replay_events)

    triggers = [e for e in worker_events if e["action"] == "trigger"]
    keys = [e["dedup_key"] for e in triggers]
    assert len(set(keys)) == len(keys), f"an incident triggered twice: {keys}"
    # The slow burn opens a ticket and never pages; the silent service is the one page.
    assert {e["dedup_key"] for e in triggers if e["routing"] == "page"} == {"telemetry_gap/payment/all"}
    # The leak: counted by detector on the leaking service only, never a value.
    leaks = [e for e in worker_events if e["type"] == "pii_leak"]
    assert {e["service"] for e in leaks} == {"checkout"}
    assert all(set(e["evidence"]["counts"]) == {"credit_card"} for e in leaks if e["action"] != "resolve")
    assert not any(_CARD_LIKE.search(orjson.dumps(e).decode()) for e in leaks)
    # The span-name explosion names the deploy before it.
    explosion = first_trigger(worker_events, "cardinality_explosion", "cart", "span_names")
    assert explosion and int(minutes_after_start(explosion["evidence"]["deploy"]["at"])) == 40
