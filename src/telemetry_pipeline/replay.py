"""`replay`: the offline shell. OTLP/JSON Lines in, the six contract files out, deterministically.

Two passes over the input: the first only learns trace context, so every record finds its trace's
context wherever it sits in the files (the worker gets the same result when a trace's root arrives
within the grace period); the second runs the core with no holding, and the analysis core on its
partials. Every input file is a watermark source from the start, caught up at its end: the SLI
watermark waits for the files not read yet, so `replay a b c`, `replay c b a` and `replay merged`
give the same snapshots (in another order in the file). The clock is fixed, so two runs over the
same input and config give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from telemetry_pipeline.analysis import Analysis, AnalysisStep
from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.core import Core, CoreResult, InputRecord
from telemetry_pipeline.enrichment import UserDirectory, load_context_file
from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.otlp.files import InputFile, open_input

OUTPUT_FILES = {Signal.TRACES: "traces.jsonl", Signal.METRICS: "metrics.jsonl", Signal.LOGS: "logs.jsonl"}
SLI_FILE, INCIDENTS_FILE, DLQ_FILE = "sli.jsonl", "incidents.jsonl", "dlq.jsonl"
# Replay has no wall clock: context TTLs never expire mid-run; the size bounds still apply.
REPLAY_CLOCK_MS = 0
BATCH_LINES = 64


@dataclass
class ReplaySummary:
    lines: int = 0
    written: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    snapshots: int = 0
    incidents: int = 0  # incident events written
    late_dropped: dict[str, int] = field(default_factory=dict)  # SLI buckets dropped as late, per file


def run_replay(config: PipelineConfig, inputs: list[Path], out_dir: Path) -> ReplaySummary:
    context = config.context
    users = UserDirectory()
    if context.user_context_file:
        users.load(load_context_file(context.user_context_file))
    services = load_context_file(context.service_catalog_file) if context.service_catalog_file else {}
    core = Core(config, trace_store={}, users=users, services=services, wall_clock=False)
    analysis = Analysis(config, services=services, store={})
    caught_up = {str(path): False for path in inputs}
    analysis.set_sources(caught_up)
    summary = ReplaySummary()

    for _path, batch, _last in _batches(inputs):
        core.learn(batch, REPLAY_CLOCK_MS)

    out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        files = {
            name: stack.enter_context((out_dir / name).open("wb"))
            for name in (*OUTPUT_FILES.values(), SLI_FILE, INCIDENTS_FILE, DLQ_FILE)
        }
        for path, batch, last in _batches(inputs):
            summary.lines += len(batch)
            result = core.process(batch, REPLAY_CLOCK_MS, final=True)
            _write(result, files, summary)
            analysis.add(result.partials)
            if last:
                caught_up[path] = True
                analysis.set_sources(caught_up)
            _write_step(analysis.advance(), files, summary)
        _write_step(analysis.flush(), files, summary)
    summary.late_dropped = analysis.late_dropped_by_source()
    return summary


def _batches(inputs: list[Path]) -> Iterator[tuple[str, list[InputRecord], bool]]:
    """(file, batch of its lines, whether the file ends with it), file by file."""
    for path in inputs:
        batch: list[InputRecord] = []
        with _open(path) as handle:
            for number, line in enumerate(handle, start=1):
                line = line.strip()
                if not line:
                    continue
                batch.append(InputRecord(None, None, line, str(path), number))
                if len(batch) == BATCH_LINES:
                    yield str(path), batch, False
                    batch = []
        yield str(path), batch, True


def _open(path: Path) -> InputFile:
    return open_input(path)


def _write(result: CoreResult, files: dict[str, IO[bytes]], summary: ReplaySummary) -> None:
    for clean in result.clean:
        name = OUTPUT_FILES[clean.signal]
        files[name].write(clean.value + b"\n")
        summary.written[name] = summary.written.get(name, 0) + 1
    for rejected in result.dlq:
        line = {
            "source": rejected.origin.location,
            "reason": rejected.reason,
            "record": rejected.origin.value.decode("utf-8", "replace"),
        }
        files[DLQ_FILE].write(orjson.dumps(line) + b"\n")
        summary.rejected += 1


def _write_step(step: AnalysisStep, files: dict[str, IO[bytes]], summary: ReplaySummary) -> None:
    for snapshot in step.snapshots:
        files[SLI_FILE].write(snapshot.to_json_bytes() + b"\n")
    for event in step.incidents:
        files[INCIDENTS_FILE].write(event.to_json_bytes() + b"\n")
    summary.snapshots += len(step.snapshots)
    summary.incidents += len(step.incidents)
