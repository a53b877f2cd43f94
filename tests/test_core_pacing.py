"""When the spans wait for the logs (`Core.spans_outrun_logs`): the trace-context table past half its
bound while the spans are read past the logs, both with a backlog. Pure: the core, no Kafka."""

from __future__ import annotations

from datetime import timedelta

from telemetry_pipeline.config import load_config
from telemetry_pipeline.core import Core, InputRecord
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.enrichment.config import EnrichmentConfig
from telemetry_pipeline.generate import GeneratorConfig, iter_messages
from telemetry_pipeline.otlp import Signal

GENERATOR = GeneratorConfig(
    seed=5, services=3, duration=timedelta(minutes=5), rate=4.0, spans_per_message=20, logs_per_message=2
)
SPANS, LOGS = "otlp_spans[0]", "otlp_logs[0]"


def _core(max_traces: int) -> tuple[Core, list[InputRecord], list[InputRecord]]:
    config = load_config(environ={"TP_ENRICHMENT__MAX_TRACES": str(max_traces)})
    core = Core(config, trace_store={}, users=UserDirectory(), services={}, wall_clock=False)
    spans: list[InputRecord] = []
    logs: list[InputRecord] = []
    for message in iter_messages(GENERATOR):
        if message.signal is Signal.TRACES:
            spans.append(InputRecord(Signal.TRACES, message.key, message.payload, SPANS, len(spans)))
        elif message.signal is Signal.LOGS:
            logs.append(InputRecord(Signal.LOGS, message.key, message.payload, LOGS, len(logs)))
    return core, spans, logs


def test_the_spans_wait_while_read_past_the_logs_with_the_table_past_half_full() -> None:
    core, spans, logs = _core(max_traces=400)
    core.set_sources({SPANS: False}, {LOGS: False})
    core.process(spans[:1], 0)
    assert 0 < len(core.enricher.traces) < 200
    assert not core.spans_outrun_logs()  # room in the table
    taken = 1
    while len(core.enricher.traces) < 200:
        core.process(spans[taken:taken + 1], 0)
        taken += 1
    assert core.spans_outrun_logs()  # past half full, and no log read yet
    # The spans may lead by the hold's grace: a log goes out once the spans are that far past it.
    wait_until = core.read_to[SPANS] - EnrichmentConfig().grace_period_ms
    read = 0
    while core.read_to.get(LOGS, 0) < wait_until:
        assert core.spans_outrun_logs()
        core.process(logs[read:read + 1], 0)
        read += 1
    assert read > 1
    assert not core.spans_outrun_logs()  # the logs caught up with the spans


def test_the_spans_never_wait_for_logs_read_to_their_end_or_without_a_spans_backlog() -> None:
    core, spans, _logs = _core(max_traces=40)
    core.set_sources({SPANS: False}, {LOGS: False})
    core.process(spans[:20], 0)
    assert core.spans_outrun_logs()
    core.set_sources({SPANS: False}, {LOGS: True})  # nothing more to read from the logs
    assert not core.spans_outrun_logs()
    core.set_sources({SPANS: True}, {LOGS: False})  # live spans: nothing to pace
    assert not core.spans_outrun_logs()
    core.set_sources({SPANS: False}, {})  # no logs input
    assert not core.spans_outrun_logs()


def test_the_spans_never_wait_while_both_inputs_are_live() -> None:
    """Live input always has the message that has just come unread: that is no backlog, and a wait
    for the logs' next message would only be latency."""
    core, spans, _logs = _core(max_traces=40)
    core.set_sources({SPANS: False}, {LOGS: False})
    core.process(spans[:20], 0)
    assert core.spans_outrun_logs()
    core.set_sources({SPANS: False}, {LOGS: False}, live=True)
    assert not core.spans_outrun_logs()
