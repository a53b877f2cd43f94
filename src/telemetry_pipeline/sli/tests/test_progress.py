"""Progress reports: another shell's source holds this engine's watermark before any of its partials
came, as long as it is not read to its end (issue 15, several workers)."""

from collections import Counter

import pytest

from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.sli import (
    PartialsError,
    SliConfig,
    SliEngine,
    SourceProgress,
    decode_record,
    encode_progress,
)
from telemetry_pipeline.sli.tests.builders import MINUTE_NS, T0_NS, traces
from telemetry_pipeline.sli.tests.test_engine import MINUTE, T0_MS, _iso, resolver, tagged

CHANNELS = ["p0", "p1"]
OURS, THEIRS = "otlp_spans[0]", "otlp_spans[1]"


def test_a_source_another_worker_reads_holds_the_watermark_until_reported_caught_up() -> None:
    config, slos = SliConfig(idle_after="30s"), resolver()
    engine = SliEngine(config, slos, {})
    offsets: Counter[str] = Counter()
    wall = 1_000_000

    def add(source: str, minute: int, channel: str, wall_ms: int = wall) -> None:
        message = (Signal.TRACES, traces("checkout", [{"end_ns": T0_NS + minute * MINUTE_NS}]))
        engine.add(tagged(config, slos, offsets, source, message), wall_ms=wall_ms, channel=channel)

    def report(progress: SourceProgress, wall_ms: int = wall) -> None:
        for channel in CHANNELS:  # the owner sends each report to every partition
            engine.add_progress([progress], wall_ms=wall_ms, channel=channel)

    engine.set_sources({OURS: False}, wall_ms=wall, channels=CHANNELS)
    report(SourceProgress(THEIRS, None, False))  # assigned to the other worker, nothing read yet
    add(OURS, 0, "p0")
    add(OURS, 20, "p0")
    report(SourceProgress(OURS, 20 * MINUTE + T0_MS, False))  # our own batches' reports, on every channel
    assert engine.advance() == []  # theirs: not read yet, so not a step
    assert not engine.sources_caught_up()
    add(THEIRS, 4, "p1")  # their first batch: a partial through p1, then its report on every channel
    report(SourceProgress(THEIRS, T0_MS + 5 * MINUTE, False))
    assert max(s.window_end for s in engine.advance()) == _iso(T0_MS + 3 * MINUTE)
    assert engine.stats()["late_dropped"] == 0
    # Read to its end on one channel only: the other may still bring older partials.
    engine.add_progress([SourceProgress(THEIRS, None, True)], wall_ms=wall, channel="p0")
    assert not engine.sources_caught_up()
    engine.add_progress([SourceProgress(THEIRS, None, True)], wall_ms=wall, channel="p1")
    engine.set_sources({OURS: True}, wall_ms=wall, channels=CHANNELS)
    assert engine.sources_caught_up()
    # Caught up, it holds at its newest (minute 5) until quiet for idle_after, as a declared one does.
    assert engine.advance() == []
    add(OURS, 21, "p0", wall + 31_000)  # theirs quiet since: no longer holds it
    assert max(s.window_end for s in engine.advance()) == _iso(T0_MS + 19 * MINUTE)


def test_a_source_this_shell_reads_keeps_its_own_flag() -> None:
    engine = SliEngine(SliConfig(), resolver(), {})
    engine.set_sources({OURS: True}, wall_ms=0, channels=CHANNELS)
    for channel in CHANNELS:  # a report from before a rebalance, when the other worker had it
        engine.add_progress([SourceProgress(OURS, None, False)], wall_ms=0, channel=channel)
    assert engine.sources_caught_up()


def test_progress_records_round_trip_and_bad_ones_are_refused() -> None:
    reports = [SourceProgress(OURS, 12, False), SourceProgress(THEIRS, None, True)]
    assert decode_record(encode_progress(reports)) == ([], reports)
    for value in (b'{"v": 3, "progress": [["s", "12", true]]}', b'{"v": 3, "progress": {"s": 1}}'):
        with pytest.raises(PartialsError, match="progress record"):
            decode_record(value)


def test_an_expected_source_holds_the_watermark_before_any_report_and_after_it_moves_away() -> None:
    config, slos = SliConfig(), resolver()
    engine = SliEngine(config, slos, {})
    offsets: Counter[str] = Counter()
    message = (Signal.TRACES, traces("checkout", [{"end_ns": T0_NS + m * MINUTE_NS} for m in (0, 20)]))
    engine.set_sources({OURS: True}, wall_ms=0, channels=CHANNELS)
    engine.expect_sources([OURS, THEIRS])  # the group's metadata: two partitions, one of them ours
    engine.add(tagged(config, slos, offsets, OURS, message), wall_ms=0, channel="p0")
    assert engine.advance() == []  # theirs: nobody said anything of it yet
    assert not engine.sources_caught_up()
    for channel in CHANNELS:
        engine.add_progress([SourceProgress(THEIRS, None, True)], wall_ms=0, channel=channel)
        engine.add_progress([SourceProgress(OURS, None, True)], wall_ms=0, channel=channel)  # ours, reported
    assert engine.sources_caught_up()
    assert max(s.window_end for s in engine.advance()) == _iso(T0_MS + 18 * MINUTE)
    # Ours moves to another worker: caught up only once that worker says so, whatever we said before.
    engine.set_sources({}, wall_ms=0, channels=CHANNELS)
    assert not engine.sources_caught_up()
