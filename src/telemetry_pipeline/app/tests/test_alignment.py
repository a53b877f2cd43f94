"""Input partitions paused for being read ahead: metrics partitions in step by event time
(app/alignment.py), spans while they outrun the logs. Pure, no Faust worker."""

from __future__ import annotations

from types import SimpleNamespace

from faust.types import TP

from telemetry_pipeline.app.alignment import metrics_ahead
from telemetry_pipeline.app.worker import _Shell
from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.otlp import Signal

MINUTE = 60_000
LEAD = 30 * MINUTE


def _ahead(caught_up: dict[str, bool], **read: int) -> set[str]:
    read_to = {f"otlp_metrics[{name[1:]}]": minute * MINUTE for name, minute in read.items()}
    return metrics_ahead("otlp_metrics", LEAD, caught_up, read_to)


def test_a_partition_read_more_than_the_lead_ahead_of_the_slowest_is_paused() -> None:
    behind = {"otlp_metrics[0]": False, "otlp_metrics[1]": False, "otlp_metrics[2]": False}
    assert _ahead(behind, p0=100, p1=60, p2=95) == {"otlp_metrics[0]", "otlp_metrics[2]"}  # 40, 35 min ahead
    assert _ahead(behind, p0=100, p1=65, p2=95) == {"otlp_metrics[0]"}  # the slowest closed up on p2


def test_a_partition_read_to_its_end_holds_nothing_back() -> None:
    assert _ahead({"otlp_metrics[0]": False, "otlp_metrics[1]": True}, p0=100, p1=10) == set()


def test_one_not_read_at_all_yet_holds_every_partition_read_and_other_topics_are_left_alone() -> None:
    caught_up = {"otlp_metrics[0]": False, "otlp_metrics[1]": False, "otlp_spans[0]": False}
    read_to = {"otlp_metrics[0]": 5 * MINUTE, "otlp_spans[0]": 500 * MINUTE}
    assert metrics_ahead("otlp_metrics", LEAD, caught_up, read_to) == {"otlp_metrics[0]"}


class _Consumer:
    """Faust's consumer as `_Shell.pace_inputs` uses it: the assignment, and pause/resume."""

    def __init__(self, assigned: list[TP]) -> None:
        self._assigned = set(assigned)
        self.paused: set[TP] = set()

    def assignment(self) -> set[TP]:
        return self._assigned

    def pause_partitions(self, tps: set[TP]) -> None:
        self.paused |= tps

    def resume_partitions(self, tps: set[TP]) -> None:
        self.paused -= tps


def test_the_worker_pauses_every_spans_partition_while_the_spans_outrun_the_logs() -> None:
    tps = [TP(topic, n) for topic in ("otlp_spans", "otlp_logs", "otlp_metrics") for n in (0, 1)]
    consumer = _Consumer(tps)
    read_to = {"otlp_metrics[0]": 100 * MINUTE, "otlp_metrics[1]": 10 * MINUTE}
    core = SimpleNamespace(read_to=read_to, outrun=True)
    core.spans_outrun_logs = lambda: core.outrun
    shell = SimpleNamespace(
        _app=SimpleNamespace(consumer=consumer), config=PipelineConfig(), core_ready=lambda: True,
        core=lambda: core, paused={Signal.METRICS: set(), Signal.TRACES: set()},
    )
    caught_up = {f"{tp.topic}[{tp.partition}]": False for tp in tps}
    _Shell.pace_inputs(shell, caught_up)
    assert consumer.paused == {TP("otlp_spans", 0), TP("otlp_spans", 1), TP("otlp_metrics", 0)}
    assert shell.paused[Signal.TRACES] == {TP("otlp_spans", 0), TP("otlp_spans", 1)}
    core.outrun = False  # the logs caught up
    _Shell.pace_inputs(shell, caught_up)
    assert consumer.paused == {TP("otlp_metrics", 0)}
    assert shell.paused == {Signal.METRICS: {TP("otlp_metrics", 0)}, Signal.TRACES: set()}
