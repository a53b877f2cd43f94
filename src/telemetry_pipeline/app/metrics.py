"""Prometheus metrics of the worker. Labels are signal, stage, service and detector names only:
never a value from a record, so no PII can reach a label."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

if TYPE_CHECKING:
    from telemetry_pipeline.core import CoreResult


class WorkerMetrics:
    def __init__(self, port: int | None, host: str = "127.0.0.1") -> None:
        # One registry per app, not the process-wide default: a second app in one process (tests,
        # an embedding program) would otherwise fail on duplicated series.
        registry = CollectorRegistry()
        self.clean_records = Counter(
            "tp_clean_records_total", "Records written to .clean topics", ["signal"], registry=registry
        )
        self.dlq_records = Counter(
            "tp_dlq_records_total", "Records sent to the DLQ", ["stage"], registry=registry
        )
        self.partials = Counter("tp_sli_partials_total", "SLI partial aggregates emitted", registry=registry)
        self.held = Gauge(
            "tp_held_messages", "Messages held waiting for their trace context", registry=registry
        )
        self.redactions = Gauge(
            "tp_redactions", "Values redacted since start", ["service", "detector"], registry=registry
        )
        self.enrichment = Gauge(
            "tp_enrichment", "Enrichment counters and table sizes", ["name"], registry=registry
        )
        # How full the bound that keeps the table's memory flat is: at 1 traces are evicted by size, least
        # recently seen first, rather than by the TTL (benchmarks/README.md, "Memory flat ...").
        self.trace_table_fill = Gauge(
            "tp_enrichment_trace_table_fill",
            "Traces in the trace-context table over enrichment.max_traces",
            registry=registry,
        )
        self.sli = Gauge("tp_sli_engine", "SLI engine counters", ["name"], registry=registry)
        # How often Faust handed over records past a gap that had to be read again (app/ordering.py).
        self.gaps_sought = Gauge(
            "tp_input_gaps_sought", "Seeks back to records Faust skipped, since start", registry=registry
        )
        self.partitions_paused = Gauge(
            "tp_input_partitions_paused",
            "Input partitions paused for being read too far ahead: metrics of the other metrics partitions"
            " (app/alignment.py), spans of the logs while the trace-context table runs short",
            ["signal"],
            registry=registry,
        )
        # Source: an input partition ("otlp_spans[3]"), a name from the config, never from a record.
        self.late_dropped = Gauge(
            "tp_sli_late_dropped",
            "Partial buckets dropped as late since start, per input source",
            ["source"],
            registry=registry,
        )
        if port is not None:
            start_http_server(port, addr=host, registry=registry)

    def count(self, result: CoreResult) -> None:
        for clean in result.clean:
            self.clean_records.labels(clean.signal).inc()
        for rejected in result.dlq:
            self.dlq_records.labels(rejected.reason.split(":", 1)[0]).inc()
        self.partials.inc(len(result.partials))

    def observe(self, shell) -> None:
        if not shell.core_ready():
            return
        core = shell.core()
        self.held.set(len(core.held))
        for (service, detector), count in core.stats.redactions.items():
            self.redactions.labels(service, detector).set(count)
        for name, value in core.enricher.stats().as_dict().items():
            self.enrichment.labels(name).set(value)
        traces = core.enricher.traces
        self.trace_table_fill.set(len(traces) / traces.max_traces)
        self.gaps_sought.set(shell.order.gaps_sought)
        for signal, paused in shell.paused.items():
            self.partitions_paused.labels(signal).set(len(paused))
        if shell.analysis_ready():
            analysis = shell.analysis()
            for name, value in analysis.stats().items():
                self.sli.labels(name).set(value)
            for source, count in analysis.late_dropped_by_source().items():
                self.late_dropped.labels(source).set(count)
