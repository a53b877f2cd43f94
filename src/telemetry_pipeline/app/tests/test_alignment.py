"""Metrics partitions read in step by event time (app/alignment.py): pure, no Faust."""

from __future__ import annotations

from telemetry_pipeline.app.alignment import MetricsAlignment
from telemetry_pipeline.sli import SliPartial

MINUTE = 60_000
LEAD = 30 * MINUTE


def _partial(source: str, minute: int, buckets: bool = True) -> SliPartial:
    return SliPartial("gateway", minute * MINUTE, [[minute * MINUTE]] if buckets else [], source, 0)


def _alignment(**read: int) -> MetricsAlignment:
    alignment = MetricsAlignment("otlp_metrics", LEAD)
    alignment.observe([_partial(f"otlp_metrics[{name[1:]}]", minute) for name, minute in read.items()])
    return alignment


def test_a_partition_read_more_than_the_lead_ahead_of_the_slowest_is_paused() -> None:
    alignment = _alignment(p0=100, p1=60, p2=95)
    behind = {"otlp_metrics[0]": False, "otlp_metrics[1]": False, "otlp_metrics[2]": False}
    assert alignment.ahead(behind) == {"otlp_metrics[0]", "otlp_metrics[2]"}  # 40 and 35 minutes ahead
    alignment.observe([_partial("otlp_metrics[1]", 65)])
    assert alignment.ahead(behind) == {"otlp_metrics[0]"}  # the slowest closed up on p2


def test_a_partition_read_to_its_end_holds_nothing_back() -> None:
    alignment = _alignment(p0=100, p1=10)
    assert alignment.ahead({"otlp_metrics[0]": False, "otlp_metrics[1]": True}) == set()


def test_one_not_read_at_all_yet_holds_every_partition_read_and_other_topics_are_left_alone() -> None:
    alignment = _alignment(p0=5)
    alignment.observe([_partial("otlp_spans[0]", 500), _partial("otlp_metrics[3]", 900, buckets=False)])
    caught_up = {"otlp_metrics[0]": False, "otlp_metrics[1]": False, "otlp_spans[0]": False}
    assert alignment.ahead(caught_up) == {"otlp_metrics[0]"}
    # A redaction note (no buckets) says nothing of how far its partition is read.
    assert alignment.ahead({"otlp_metrics[3]": False, "otlp_metrics[0]": False}) == {"otlp_metrics[0]"}
