"""Detection inside the analysis core: incident events come out of `_step` with the snapshots, and
detection state rides in each service's value of the store, so a restart, a redelivery or a service
moving to another worker emits exactly the events of one uninterrupted run."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import orjson

from telemetry_pipeline.analysis import DETECTION_KEY, Analysis
from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.core import Core, InputRecord
from telemetry_pipeline.detection import DetectionStateError
from telemetry_pipeline.detection.tests.scenario import START
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.generate import GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.otlp import Encoding
from telemetry_pipeline.sli import SliPartial

GENERATOR = {
    "services": 4,
    "incomplete_resource_share": 0.0,
    "base_error_rate": 0.0002,
    "pii_share": 0.0,
    "duration": "80m",
    "rate": 3,
    "faults": [
        {"kind": "leak", "service": "checkout", "leak": "card", "share": 0.3, "at": "20m", "for": "5m"},
        {"kind": "error_spike", "service": "cart", "rate": 0.3, "at": "30m", "for": "5m"},
    ],
}
CONFIG = PipelineConfig()


@functools.cache
def _workload() -> tuple[list[list[SliPartial]], dict[str, dict]]:
    """The generated workload's partials, one list per batch of 32 input messages, tagged with their
    input (source, offset) as the worker's are; and the service catalog."""
    gen = GeneratorConfig.model_validate({"start_time": START, **GENERATOR})
    users, catalog = context_records(gen)
    directory = UserDirectory()
    directory.load(users)
    core = Core(CONFIG, trace_store={}, users=directory, services=catalog, wall_clock=False)
    messages, position, batches = iter_messages(gen), itertools.count(), []
    while batch := list(itertools.islice(messages, 32)):
        records = [
            InputRecord(m.signal, m.key, m.encoded(Encoding.PROTO), f"in-{m.signal}", next(position))
            for m in batch
        ]
        batches.append(core.process(records, 0, final=True).partials)
    return batches, catalog


def _copy(partials: list[SliPartial]) -> list[SliPartial]:
    """As decoded from the topic again: a redelivery is new objects with the same content."""
    return [SliPartial.from_json(orjson.loads(orjson.dumps(p.to_json()))) for p in partials]


def _run(
    batches: list[list[SliPartial]], catalog: dict, between: Callable[[int, list], None] | None = None
) -> list[bytes]:
    """One analysis over a store as the worker's table holds it (values as JSON bytes)."""
    store: dict[str, bytes] = {}
    analysis = Analysis(CONFIG, services=catalog, store=store)
    events: list[bytes] = []
    for index, batch in enumerate(batches):
        analysis.add(_copy(batch))
        events += [e.to_json_bytes() for e in analysis.advance().incidents]
        if between is not None:
            replaced = [analysis]
            between(index, replaced)
            analysis = replaced[0]
    events += [e.to_json_bytes() for e in analysis.flush().incidents]
    return events


@functools.cache
def _uninterrupted() -> tuple[bytes, ...]:
    batches, catalog = _workload()
    return tuple(_run(batches, catalog))


def test_incidents_come_out_of_the_steps_that_cause_them() -> None:
    events = [orjson.loads(e) for e in _uninterrupted()]
    triggers = {(e["type"], e["service"]) for e in events if e["action"] == "trigger"}
    assert ("pii_leak", "checkout") in triggers
    assert ("error_rate_spike", "cart") in triggers
    assert any(e["action"] == "resolve" and e["service"] == "cart" for e in events)
    steps = [e["observed_at"] for e in events]
    assert steps == sorted(steps), "events come in step order"


def test_a_restart_and_a_redelivery_emit_exactly_the_events_of_an_uninterrupted_run() -> None:
    batches, catalog = _workload()
    table: dict[str, bytes] = {}
    analysis = Analysis(CONFIG, services=catalog, store=table)
    events: list[bytes] = []
    restart_at = len(batches) * 3 // 8  # inside the leak, before the spike resolves
    acked = 0  # batches whose partials the persisted state holds: what the worker acknowledged
    restarted_with_open = False
    for index, batch in enumerate(batches):
        analysis.add(_copy(batch))
        step = analysis.advance()
        events += [e.to_json_bytes() for e in step.incidents]
        if step.persisted:
            acked = index + 1
        if index == restart_at:
            # What a new worker reads from the changelog.
            recovered = dict(table)
            assert any(orjson.loads(value).get(DETECTION_KEY) for value in recovered.values())
            analysis = Analysis(CONFIG, services=catalog, store=recovered)
            restarted_with_open = bool(analysis.detection.incidents.open)
            for again in batches[max(acked - 3, 0) : index + 1]:  # unacknowledged input, and some acked
                analysis.add(_copy(again))
                events += [e.to_json_bytes() for e in analysis.advance().incidents]
    events += [e.to_json_bytes() for e in analysis.flush().incidents]
    assert restarted_with_open, "the restart should come while an incident is open"
    assert events == list(_uninterrupted())


def test_a_service_moving_to_another_worker_takes_its_open_incidents_along() -> None:
    """Two analyses share the store (the changelog); `cart` moves from the first to the second in the
    middle of its error spike. Together they emit the uninterrupted run's events, none twice."""
    batches, catalog = _workload()
    store: dict[str, bytes] = {}
    mover, move_at = "cart", len(batches) * 3 // 8
    moved = False

    def owned_by(worker: int) -> Callable[[str], bool]:
        return lambda service: (1 if service == mover and moved else 0) == worker

    workers = [Analysis(CONFIG, services=catalog, store=store) for _ in range(2)]
    for worker, analysis in enumerate(workers):
        analysis.adopt(owned_by(worker))
    events: list[bytes] = []
    acked = 0  # batches the first worker's persisted state holds: what it acknowledged
    for index, batch in enumerate(batches):
        for worker, analysis in enumerate(workers):
            analysis.add(_copy([p for p in batch if owned_by(worker)(p.service)]))
            step = analysis.advance()
            events += [e.to_json_bytes() for e in step.incidents]
            if worker == 0 and step.persisted:
                acked = index + 1
        if index == move_at:
            assert any(e["service"] == mover for e in workers[0].detection.incidents.open.values())
            moved = True
            for worker, analysis in enumerate(workers):
                analysis.adopt(owned_by(worker))
            assert any(e["service"] == mover for e in workers[1].detection.incidents.open.values())
            assert not any(e["service"] == mover for e in workers[0].detection.incidents.open.values())
            for again in batches[acked : index + 1]:  # what the first worker had not acknowledged
                workers[1].add(_copy([p for p in again if p.service == mover]))
                events += [e.to_json_bytes() for e in workers[1].advance().incidents]
    for analysis in workers:
        events += [e.to_json_bytes() for e in analysis.flush().incidents]
    assert sorted(events) == sorted(_uninterrupted())
    assert len(set(events)) == len(events)


def test_a_detection_state_of_an_unknown_version_fails_recovery_by_name() -> None:
    batches, catalog = _workload()
    store: dict[str, bytes] = {}
    analysis = Analysis(CONFIG, services=catalog, store=store)
    for batch in batches[:20]:
        analysis.add(_copy(batch))
    analysis.flush()
    service = next(s for s, value in store.items() if orjson.loads(value).get(DETECTION_KEY))
    store[service] = orjson.dumps({**orjson.loads(store[service]), DETECTION_KEY: {"v": 99, "parts": {}}})
    try:
        Analysis(CONFIG, services=catalog, store=store)
    except DetectionStateError as exc:
        assert "version 99" in str(exc)
    else:
        raise AssertionError("a detection state of version 99 was read")
