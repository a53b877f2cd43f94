"""The core on a workload, with no Kafka: whole-core throughput, a per-stage breakdown, a profile.

CPU time (`time.process_time`) rather than wall time is the measure: the machine is shared, and a
core's speed per CPU second is what capacity planning multiplies.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _workload import ITEM_NAMES, Workload, chunks, rate
from pyinstrument import Profiler

from telemetry_pipeline import core as core_module
from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.core import Core, CoreResult, InputRecord
from telemetry_pipeline.otlp import Signal, decode
from telemetry_pipeline.redaction.prefilter import Prefilter

PREFILTER_SCAN = "the redaction prefilter's Hyperscan pass over the message bytes"
# In the order the core runs them (aggregation reads each message right after decoding).
STAGES = ("decode", "aggregate", "enrich", "redact", "encode")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_core(workload: Workload, config: PipelineConfig) -> Core:
    return Core(config, trace_store={}, users=workload.user_directory(), services=workload.services)


def input_records(workload: Workload) -> list[InputRecord]:
    """`ref` is the message's index in the workload, to count what comes out."""
    return [
        InputRecord(m.signal, m.key, m.payload, "bench", i, ref=i) for i, m in enumerate(workload.messages)
    ]


def drive(core: Core, workload: Workload, batch_messages: int) -> Iterator[CoreResult]:
    """Feed the core as the worker does: batches, the shell's clock, held messages released at the end."""
    for batch in chunks(input_records(workload), batch_messages):
        yield core.process(batch, _now_ms())
    yield core.release(_now_ms(), everything=True)


def run_core(workload: Workload, config: PipelineConfig, batch_messages: int) -> dict[str, Any]:
    """The whole core (`Core.process`) over the workload: items out per second and per CPU second."""
    core = new_core(workload, config)
    out: Counter[Signal] = Counter()
    clean = dlq = partials = 0
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    for result in drive(core, workload, batch_messages):
        for record in result.clean:
            out[record.signal] += workload.messages[record.origin.ref].records
        clean += len(result.clean)
        dlq += len(result.dlq)
        partials += len(result.partials)
    wall_s, cpu_s = time.perf_counter() - wall_start, time.process_time() - cpu_start
    return {
        "batch_messages": batch_messages,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "clean_messages": clean,
        "dlq_messages": dlq,
        "sli_partials": partials,
        "items_out": {ITEM_NAMES[signal]: count for signal, count in out.items()},
        "per_cpu_s": {ITEM_NAMES[signal]: rate(count, cpu_s) for signal, count in out.items()},
        "per_wall_s": {ITEM_NAMES[signal]: rate(count, wall_s) for signal, count in out.items()},
        "all_items_per_cpu_s": rate(sum(out.values()), cpu_s),
        "enrichment": core.enricher.stats().as_dict(),
    }


def stage_breakdown(workload: Workload, config: PipelineConfig, batch_messages: int) -> dict[str, Any]:
    """CPU seconds per stage while `Core.process` runs over the workload, as in `run_core`.

    The core's own stage calls are wrapped with a CPU clock (its stage objects' methods, and the
    codec functions it calls), so the breakdown follows whatever the core does; what is left of
    the core's CPU time is its bookkeeping (batching, holding, results).
    """
    core = new_core(workload, config)
    cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    start = time.process_time()
    with _timed_stages(core, cpu):
        for _result in drive(core, workload, batch_messages):
            pass
    total = time.process_time() - start
    cpu["core (other)"] = max(0.0, total - sum(cpu.values()))
    spans = workload.items()[Signal.TRACES]
    return {
        "batch_messages": batch_messages,
        "spans": spans,
        "cpu_s": cpu,
        "share": {stage: rate(seconds, total) for stage, seconds in cpu.items()},
        # CPU microseconds per span of the workload (logs and metrics included in the cost).
        "us_per_span": {stage: rate(seconds * 1e6, spans) for stage, seconds in cpu.items()},
        "spans_per_cpu_s_all_stages": rate(spans, total),
    }


@contextmanager
def _timed_stages(core: Core, cpu: dict[str, float]) -> Iterator[None]:
    """Wrap the calls `Core` makes into each stage so that their CPU time adds up in `cpu`."""
    places = [
        (core.enricher, "learn", "enrich"),
        (core.enricher, "enrich", "enrich"),
        (core.redactor, "redact", "redact"),
        (core.aggregator, "add", "aggregate"),
        (core.aggregator, "drain", "aggregate"),
        (core_module, "decode", "decode"),
        (core_module, "decode_json_line", "decode"),
        (core_module, "encode", "encode"),
    ]
    originals = [getattr(owner, name) for owner, name, _ in places]
    for (owner, name, stage), function in zip(places, originals, strict=True):
        setattr(owner, name, _clocked(function, stage, cpu))
    try:
        yield
    finally:
        for (owner, name, _), function in zip(places, originals, strict=True):
            setattr(owner, name, function)


def _clocked(function: Callable[..., Any], stage: str, cpu: dict[str, float]) -> Callable[..., Any]:
    clock = time.process_time

    def clocked(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            cpu[stage] += clock() - start

    return clocked


def profile_core(
    workload: Workload, config: PipelineConfig, batch_messages: int, text_path: Path, top: int = 25
) -> list[dict[str, Any]]:
    """pyinstrument over `Core.process`: the call tree goes to `text_path`; returns the top self times."""
    core = new_core(workload, config)
    profiler = Profiler(interval=0.001)
    profiler.start()
    for _result in drive(core, workload, batch_messages):
        pass
    profiler.stop()
    text_path.parent.mkdir(parents=True, exist_ok=True)
    text_path.write_text(profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
    root = profiler.last_session.root_frame() if profiler.last_session else None
    if root is None:
        return []
    self_times: Counter[str] = Counter()
    stack = [root]
    while stack:
        frame = stack.pop()
        if not frame.is_synthetic:
            self_times[f"{frame.function} ({frame.file_path_short}:{frame.line_no})"] += frame.total_self_time
        stack.extend(frame.children)
    total = root.time
    return [
        {"function": name, "self_s": seconds, "share": rate(seconds, total)}
        for name, seconds in self_times.most_common(top)
    ]


def protobuf_floor(
    workload: Workload, config: PipelineConfig, batch_messages: int, rounds: int = 7
) -> dict[str, Any]:
    """What the core's per-span Python work is made of, measured alone on one batch of the workload's
    span messages, as the core holds them (CPU us per span, best of `rounds`): parsing and serialising
    (upb, C), the Python object made per span when a stage iterates spans, field reads, a pass over
    a span's attributes reading each key, and appending a pre-encoded attribute with MergeFromString
    (what enrichment does per span). A stage that reads k fields of every span costs at least k times
    the field read plus the iteration. Also the redaction prefilter's Hyperscan pass over the bytes
    with `config`'s detectors and regions (C, per byte): with parsing, serialising and the merge, a
    cost no core, Python or native, avoids while it runs those detectors over every byte."""
    batch = [m for m in workload.messages if m.signal is Signal.TRACES][:batch_messages]
    payloads = [m.payload for m in batch]
    spans = sum(m.records for m in batch)
    messages = [decode(Signal.TRACES, payload) for payload in payloads]
    attributes = sum(len(span.attributes) for span in _spans(messages))
    appended = next(_spans(messages)).__class__()
    appended.attributes.add(key="enrichment.key").value.string_value = "a value"
    encoded = appended.SerializeToString()

    def parse() -> None:
        for payload in payloads:
            decode(Signal.TRACES, payload)

    def iterate() -> None:
        for _span in _spans(messages):
            pass

    def read_fields() -> None:  # the reads are what is measured
        for span in _spans(messages):
            span.trace_id  # noqa: B018
            span.name  # noqa: B018
            span.kind  # noqa: B018
            span.end_time_unix_nano  # noqa: B018

    def read_keys() -> None:
        for span in _spans(messages):
            for kv in span.attributes:
                kv.key  # noqa: B018

    def merge() -> None:
        for span in _spans(messages):
            span.MergeFromString(encoded)

    def serialize() -> None:
        for message in messages:
            message.SerializeToString()

    # The compiled database itself (an internal): the pass alone, without the wire walk after it.
    database = Prefilter(config.redaction, lambda _key: False)._database

    def prefilter_scan() -> None:
        for payload in payloads:
            database.scan(payload, match_event_handler=_ignore_match)

    measured = {
        "decode (ParseFromString and the id checks)": parse,
        "iterate spans (a Python object per span)": iterate,
        "iterate spans, read 4 fields (trace id, name, kind, end time)": read_fields,
        "iterate spans, read every attribute key": read_keys,
        "serialize (SerializeToString)": serialize,
        "MergeFromString of one encoded attribute per span": merge,
        PREFILTER_SCAN: prefilter_scan,
    }
    us_per_span = {}
    for name, function in measured.items():
        best = min(_cpu_seconds(function) for _ in range(rounds))
        us_per_span[name] = rate(best * 1e6, spans)
    return {
        "spans": spans,
        "attributes_per_span": rate(attributes, spans),
        "us_per_span": us_per_span,
        "us_per_field_read": (
            us_per_span["iterate spans, read 4 fields (trace id, name, kind, end time)"]
            - us_per_span["iterate spans (a Python object per span)"]
        ) / 4,
        "us_per_attribute_key": rate(
            (us_per_span["iterate spans, read every attribute key"]
             - us_per_span["iterate spans (a Python object per span)"]) * spans,
            attributes,
        ),
    }


def _ignore_match(*_match: Any) -> None:
    pass


def _spans(messages: list[Any]) -> Iterator[Any]:
    for message in messages:
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                yield from scope_spans.spans


def _cpu_seconds(function: Callable[[], None]) -> float:
    start = time.process_time()
    function()
    return time.process_time() - start
