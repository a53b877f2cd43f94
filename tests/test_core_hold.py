"""A message held for its trace's root waits as its record's bytes, not decoded, and goes out the same.
Pure: the core, no Kafka."""

from __future__ import annotations

from telemetry_pipeline.config import load_config
from telemetry_pipeline.core import Core, InputRecord
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.enrichment.tests.builders import S, attr, logs, traces
from telemetry_pipeline.otlp import Signal, decode


def test_a_held_message_waits_undecoded_and_goes_out_with_its_context() -> None:
    core = Core(load_config(environ={}), trace_store={}, users=UserDirectory(), services={}, wall_clock=False)
    log_message = logs([(1, 2, {"message": "charged"})], service="payment")
    waiting = InputRecord(Signal.LOGS, None, log_message.SerializeToString(), "otlp_logs[0]", 0)
    assert core.process([waiting], 1_000).clean == []
    [held] = core.held._held
    assert held.item._message is None  # only the record's bytes are kept
    assert held.missing

    root = traces([S(1, 1, service="frontend"), S(1, 2, parent=1, service="payment")])
    spans = InputRecord(Signal.TRACES, None, root.SerializeToString(), "otlp_spans[0]", 0)
    result = core.process([spans], 2_000)
    [out] = [clean for clean in result.clean if clean.signal is Signal.LOGS]
    [resource] = decode(Signal.LOGS, out.value).resource_logs
    [record] = resource.scope_logs[0].log_records
    assert attr(record, "trace.root.service") == "frontend"
    assert len(core.held) == 0
