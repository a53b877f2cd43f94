"""The analysis core: snapshots are a function of the partials, not of the order their sources are read."""

from __future__ import annotations

import random
from collections.abc import Callable

from telemetry_pipeline.analysis import Analysis
from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.sli import PartialAggregator, SliPartial, SloResolver
from telemetry_pipeline.sli.tests.builders import MINUTE_NS, MS, T0_NS, logs, traces

ERROR = 2
CONFIG = PipelineConfig()
SOURCES = ["otlp_spans[0]", "otlp_spans[1]", "otlp_logs[0]"]
Batches = dict[str, list[list[SliPartial]]]  # per source, one batch of partials per minute


def _workload(minutes: int = 120) -> Batches:
    """Three services on two spans partitions and a logs partition; `search` starts after an hour."""
    aggregator = PartialAggregator(CONFIG.sli, SloResolver(CONFIG.slos, CONFIG.slo_defaults))
    rng = random.Random(11)
    batches: Batches = {source: [] for source in SOURCES}
    offsets = dict.fromkeys(SOURCES, 0)

    def tagged(source: str, signal: Signal, message: object) -> list[SliPartial]:
        aggregator.add(signal, message)
        partials = aggregator.drain()
        for partial in partials:
            partial.source, partial.offset = source, offsets[source]
        offsets[source] += 1
        return partials

    for minute in range(minutes):
        at = T0_NS + minute * MINUTE_NS
        spans: dict[str, list[SliPartial]] = {source: [] for source in SOURCES[:2]}
        for service in ("checkout", "cart", "search"):
            if service == "search" and minute < 60:
                continue
            requests = [
                {
                    "end_ns": at + rng.randrange(0, 60_000) * MS,
                    "latency_ms": rng.lognormvariate(4, 1),
                    **({"status": ERROR} if rng.random() < 0.05 else {}),
                }
                for _ in range(rng.randrange(1, 12))
            ]
            source = SOURCES[rng.randrange(2)]
            spans[source] += tagged(source, Signal.TRACES, traces(service, requests))
        for source, partials in spans.items():
            batches[source].append(partials)
        records = [(at + rng.randrange(0, 60_000) * MS, rng.random() < 0.7) for _ in range(5)]
        batches[SOURCES[2]].append(tagged(SOURCES[2], Signal.LOGS, logs("cart", records)))
    return batches


Feed = Callable[[Analysis, Batches], list[bytes]]


def _source_by_source(order: list[str]) -> Feed:
    """As `replay a b c`: each source read to its end before the next, every source declared first."""

    def feed(analysis: Analysis, batches: Batches) -> list[bytes]:
        caught_up = dict.fromkeys(SOURCES, False)
        analysis.set_sources(caught_up)
        out = []
        for source in order:
            for batch in batches[source]:
                analysis.add(batch)
                out += analysis.advance().snapshots
            caught_up[source] = True
            analysis.set_sources(caught_up)
        return [s.to_json_bytes() for s in out + analysis.flush().snapshots]

    return feed


def _interleaved(analysis: Analysis, batches: Batches) -> list[bytes]:
    """As live traffic or a merged file: every source's minute, minute by minute."""
    out = []
    for minute in range(len(batches[SOURCES[0]])):
        analysis.add([p for source in SOURCES for p in batches[source][minute]])
        out += analysis.advance().snapshots
    return [s.to_json_bytes() for s in out + analysis.flush().snapshots]


def _run(feed: Feed, batches: Batches) -> tuple[set[bytes], Analysis]:
    analysis = Analysis(CONFIG, services={}, store={})
    snapshots = feed(analysis, batches)
    assert len(snapshots) == len(set(snapshots))
    return set(snapshots), analysis


def test_the_order_sources_are_read_in_does_not_change_a_snapshot() -> None:
    batches = _workload()
    expected, analysis = _run(_interleaved, batches)
    assert analysis.late_dropped_by_source() == {}
    assert len(expected) > 3 * 100 * 6  # every service, step and window
    for order in (SOURCES, SOURCES[::-1], [SOURCES[2], SOURCES[0], SOURCES[1]]):
        snapshots, analysis = _run(_source_by_source(order), batches)
        assert analysis.late_dropped_by_source() == {}, order
        assert snapshots == expected, f"{order}: {len(snapshots ^ expected)} snapshots differ"


def test_undeclared_sources_read_one_after_another_lose_data_as_late() -> None:
    """What declaring the sources prevents: read one by one without it, the first source alone
    moves the watermark to its end and the others' buckets are late."""

    def undeclared(analysis: Analysis, batches: Batches) -> list[bytes]:
        out = []
        for source in SOURCES:
            for batch in batches[source]:
                analysis.add(batch)
                out += analysis.advance().snapshots
        return [s.to_json_bytes() for s in out + analysis.flush().snapshots]

    _, analysis = _run(undeclared, _workload(minutes=30))
    late = analysis.late_dropped_by_source()
    assert set(late) == set(SOURCES[1:]) and min(late.values()) > 0


def test_add_returns_only_partials_applied_and_the_state_persists_at_steps() -> None:
    batches = _workload(minutes=5)
    analysis = Analysis(CONFIG, services={}, store=(store := {}))
    first = batches[SOURCES[2]][0]
    assert analysis.add(first) == first
    assert analysis.add(first) == []  # redelivered: skipped, not passed on to detection
    step = analysis.advance()
    assert step.snapshots == [] and not step.persisted and store == {}
    for batch in batches[SOURCES[2]][1:]:
        analysis.add(batch)
    step = analysis.advance()
    assert step.snapshots and step.persisted and set(store) == {"cart"}
