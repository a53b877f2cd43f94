"""Input partitions paused for being read ahead: metrics partitions in step by event time
(app/alignment.py), spans while they outrun the logs. Pure, no Faust worker."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from faust.types import TP

from telemetry_pipeline.app.alignment import metrics_ahead
from telemetry_pipeline.app.worker import _pause_partitions, _Shell, create_app
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
    """Faust's consumer as `_Shell.pace_inputs` uses it: the assignment, its active and paused partitions."""

    def __init__(self, assigned: list[TP]) -> None:
        self._assigned = set(assigned)
        self._active_partitions = set(assigned)
        self._paused_partitions: set[TP] = set()

    @property
    def paused(self) -> set[TP]:
        assert not self._paused_partitions & self._active_partitions
        return self._paused_partitions

    def assignment(self) -> set[TP]:
        return self._assigned

    def _get_active_partitions(self) -> set[TP]:
        return self._active_partitions

    def resume_partitions(self, tps: set[TP]) -> None:
        self._active_partitions |= tps
        self._paused_partitions -= tps


def test_a_pause_leaves_the_records_of_the_fetch_in_progress(tmp_path: Path) -> None:
    # Faust's getmany hands out a fetch's records of the partitions in the active set it took at the
    # start; its own pause_partitions empties that very set, and the records left are dropped.
    config = PipelineConfig.model_validate({"worker": {"data_dir": str(tmp_path), "metrics_port": None}})
    consumer = create_app(config).consumer
    tps = {TP("otlp_metrics", 0), TP("otlp_metrics", 1)}
    in_progress = consumer._set_active_tps(tps)
    _pause_partitions(consumer, {TP("otlp_metrics", 1)})
    assert in_progress == tps
    assert consumer._get_active_partitions() == {TP("otlp_metrics", 0)}
    assert consumer._paused_partitions == {TP("otlp_metrics", 1)}
    held_by_a_fetch = consumer._get_active_partitions()
    consumer.pause_partitions({TP("otlp_metrics", 0)})  # Faust's own, for contrast
    assert TP("otlp_metrics", 0) not in held_by_a_fetch  # its records left in that fetch: dropped


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
