"""The worker's metrics read from the core: how full the trace-context table's bound is."""

from __future__ import annotations

from telemetry_pipeline.app.metrics import WorkerMetrics
from telemetry_pipeline.app.ordering import InputOrder
from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.core import Core
from telemetry_pipeline.enrichment import UserDirectory


class _Shell:
    def __init__(self, core: Core) -> None:
        self._core = core
        self.order = InputOrder({"otlp_spans"})
        self.paused: dict = {}

    def core_ready(self) -> bool:
        return True

    def core(self) -> Core:
        return self._core

    def analysis_ready(self) -> bool:
        return False


def test_the_trace_table_fill_follows_the_table_up_to_its_bound() -> None:
    config = PipelineConfig.model_validate({"enrichment": {"max_traces": 4}})
    core = Core(config, trace_store={}, users=UserDirectory(), services={})
    metrics = WorkerMetrics(port=None)
    fill = metrics.trace_table_fill.collect()[0]
    traces = core.enricher.traces

    def observed() -> float:
        metrics.observe(_Shell(core))
        return metrics.trace_table_fill.collect()[0].samples[0].value

    assert fill.samples[0].value == 0
    for number in range(3):
        traces.save(f"{number:032x}", {"spans": {}}, now_ms=number)
    assert observed() == 0.75
    for number in range(3, 10):
        traces.save(f"{number:032x}", {"spans": {}}, now_ms=number)
    traces.evict(now_ms=10)
    assert observed() == 1.0
