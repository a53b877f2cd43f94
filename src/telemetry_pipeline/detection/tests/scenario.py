"""The incident scenarios (generator configs with their faults, and the incident each fault should
raise), shared by the scenario tests and `benchmarks/incidents.py`, and two ways to run them:
`run_scenario` (generated workload -> Core -> Analysis, in process, no Kafka) and
`replayed` (the real `replay` command's `run_replay` over a JSON Lines file).

`run_scenario` feeds the analysis core (`Analysis`) as the shells do, in process, from protobuf:
cheaper than replay's OTLP/JSON, so the long runs (a day) stay short.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from telemetry_pipeline.analysis import Analysis, AnalysisStep
from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.core import Core, InputRecord
from telemetry_pipeline.detection import IncidentEvent
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.generate import GeneratedMessage, GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.generate.sinks import write_jsonl
from telemetry_pipeline.otlp import Encoding
from telemetry_pipeline.replay import ReplaySummary, run_replay

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
BATCH = 32

# frontend, checkout and payment (tier-1: an SLO in the catalog), cart (no SLO) and gateway
# (metrics only), every resource complete and no PII but the faults'.
QUIET = {"services": 4, "incomplete_resource_share": 0.0, "base_error_rate": 0.0002, "pii_share": 0.0}
# Each fault of the faults run with the incident type (and subject, where the type has several) it
# should raise on its service.
FAULT_INCIDENTS: list[tuple[dict[str, Any], str, str | None]] = [
    ({"kind": "leak", "service": "checkout", "leak": "card", "share": 0.3, "at": "30m", "for": "5m"},
     "pii_leak", None),
    ({"kind": "error_spike", "service": "cart", "rate": 0.3, "at": "40m", "for": "5m"},
     "error_rate_spike", None),
    ({"kind": "latency_regression", "service": "payment", "factor": 4, "at": "50m", "for": "20m"},
     "latency_regression", None),
    ({"kind": "signal_stop", "service": "checkout", "signal": "logs", "at": "60m", "for": "40m"},
     "completeness_drop", "logs"),
    ({"kind": "deploy", "service": "cart", "at": "80m", "span_name_ids": True},
     "cardinality_explosion", "span_names"),
    ({"kind": "silent", "service": "payment", "at": "90m", "for": "15m"},
     "telemetry_gap", None),
]  # fmt: skip
FAULTS = [fault for fault, _type, _subject in FAULT_INCIDENTS]
FAULTS_RUN = {**QUIET, "duration": "2h", "rate": 3, "faults": FAULTS}
# A small error rate for hours on cart, given an SLO of 99.9%: a ticket, never a page.
SLOW_BURN_RUN = {
    **QUIET,
    "duration": "4h",
    "rate": 3,
    "faults": [{"kind": "error_spike", "service": "cart", "rate": 0.003, "at": "30m", "for": "3h30m"}],
}
SLOW_BURN_PIPELINE = {"slos": [{"service": "cart", "availability": 99.9}]}
# A day with a daily traffic cycle, a consumer-only service and a low-traffic one with a few isolated
# errors: no page.
STEADY_RUN = {
    **QUIET,
    "base_error_rate": 0.0001,
    "duration": "24h",
    "rate": 0.5,
    "daily_cycle": 0.6,
    "consumer_services": ["cart"],
    "faults": [{"kind": "isolated_errors", "service": "payment", "count": 6, "at": "1h", "for": "22h"}],
}


@dataclass
class Run:
    events: list[IncidentEvent] = field(default_factory=list)
    steps: int = 0

    def of(self, type_: str | None = None, service: str | None = None, action: str | None = None) -> list:
        return [
            e
            for e in self.events
            if (type_ is None or e.type == type_)
            and (service is None or e.service == service)
            and (action is None or e.action == action)
        ]

    def pages(self) -> list[IncidentEvent]:
        return [e for e in self.events if e.action == "trigger" and e.routing == "page"]


def minutes_after_start(text: str) -> float:
    return (dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z") - START).total_seconds() / 60


def first_trigger(
    events: Iterable[dict], type_: str, service: str, subject: str | None = None
) -> dict | None:
    """The first trigger of `type_` on `service` (and `subject`, if given) among incident events (JSON)."""
    return next(
        (
            e
            for e in events
            if e["action"] == "trigger"
            and e["type"] == type_
            and e["service"] == service
            and (subject is None or e["dedup_key"].endswith("/" + subject))
        ),
        None,
    )


def replayed(
    messages: Iterable[GeneratedMessage], catalog: dict[str, dict], pipeline: dict[str, Any], workdir: Path
) -> tuple[list[dict], ReplaySummary]:
    """`replay` of `messages` (one file, in the generator's order) with the pipeline config `pipeline`
    and the service catalog from a file: its incident events and its summary."""
    catalog_file, input_file = workdir / "catalog.jsonl", workdir / "input.jsonl"
    catalog_file.write_bytes(
        b"".join(orjson.dumps({"key": k, "value": v}) + b"\n" for k, v in catalog.items())
    )
    write_jsonl(messages, input_file)
    config = PipelineConfig.model_validate(
        {**pipeline, "context": {"service_catalog_file": str(catalog_file)}}
    )
    summary = run_replay(config, [input_file], workdir / "out")
    lines = (workdir / "out" / "incidents.jsonl").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines], summary


def run_scenario(
    generator: dict[str, Any], pipeline: dict[str, Any] | None = None, *, restart_at_step: int | None = None
) -> Run:
    """Generate with `generator` (GeneratorConfig fields) and run it through the pure pipeline: the
    ingest core and the analysis core, as both shells do. With `restart_at_step`, the analysis state
    goes through JSON into a new `Analysis` once that step is out, as a worker restart recovers it."""
    gen = GeneratorConfig.model_validate({"start_time": START, **generator})
    config = PipelineConfig.model_validate(pipeline or {})
    users, catalog = context_records(gen)
    directory = UserDirectory()
    directory.load(users)
    core = Core(config, trace_store={}, users=directory, services=catalog, wall_clock=False)
    store: dict[str, bytes] = {}
    analysis = Analysis(config, services=catalog, store=store)
    run = Run()

    def take(step: AnalysisStep) -> None:
        nonlocal analysis, store
        steps_before = run.steps
        run.events.extend(step.incidents)
        run.steps += len({snapshot.window_end for snapshot in step.snapshots})
        if restart_at_step is not None and steps_before < restart_at_step <= run.steps:
            store = dict(store)  # what a new worker recovers from the changelog
            analysis = Analysis(config, services=catalog, store=store)

    messages = iter_messages(gen)
    position = itertools.count()
    while batch := list(itertools.islice(messages, BATCH)):
        records = [
            InputRecord(m.signal, m.key, m.encoded(Encoding.PROTO), f"in-{m.signal}", next(position))
            for m in batch
        ]
        analysis.add(core.process(records, 0, final=True).partials)
        take(analysis.advance())
    take(analysis.flush())
    return run
