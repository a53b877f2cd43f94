"""A small driver for scenario tests: generated workload -> Core -> SliEngine -> Detection, no Kafka.

Stands in for the analysis object (not merged yet): partials the engine applies, and every redaction
note, go to `Detection.note`; the snapshots of each evaluation step go to `Detection.observe`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import orjson

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.core import Core, InputRecord
from telemetry_pipeline.detection import Detection, IncidentEvent
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.generate import GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.otlp import Encoding
from telemetry_pipeline.sli import SliEngine, SliSnapshot

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
BATCH = 32


@dataclass
class Run:
    events: list[IncidentEvent] = field(default_factory=list)
    detection: Detection | None = None
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


def run_scenario(
    generator: dict[str, Any], pipeline: dict[str, Any] | None = None, *, restart_at_step: int | None = None
) -> Run:
    """Generate with `generator` (GeneratorConfig fields) and run it through the pure pipeline. With
    `restart_at_step`, detection's state goes through JSON into a new `Detection` after that step, as
    a worker restart recovers it."""
    gen = GeneratorConfig.model_validate({"start_time": START, **generator})
    config = PipelineConfig.model_validate(pipeline or {})
    users, catalog = context_records(gen)
    directory = UserDirectory()
    directory.load(users)
    core = Core(config, trace_store={}, users=directory, services=catalog, wall_clock=False)
    engine = SliEngine(config.sli, core.slos, store={})
    detection = Detection(config.detection, core.slos, catalog, config.maintenance)
    run = Run(detection=detection)

    def observe(snapshots: list[SliSnapshot]) -> None:
        nonlocal detection
        for _, step in itertools.groupby(snapshots, key=lambda s: s.window_end):
            run.events.extend(detection.observe(list(step)))
            run.steps += 1
            if run.steps == restart_at_step:
                saved = orjson.loads(orjson.dumps(detection.state()))
                detection = Detection(config.detection, core.slos, catalog, config.maintenance)
                detection.restore(saved)

    messages = iter_messages(gen)
    position = itertools.count()
    while batch := list(itertools.islice(messages, BATCH)):
        records = [
            InputRecord(m.signal, m.key, m.encoded(Encoding.PROTO), f"in-{m.signal}", next(position))
            for m in batch
        ]
        result = core.process(records, 0, final=True)
        applied = [p for p in result.partials if not p.is_redaction_note]
        engine.add(applied)
        detection.note(result.partials)
        observe(engine.advance())
    observe(engine.flush())
    run.detection = detection
    return run
