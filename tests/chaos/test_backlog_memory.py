"""A worker started on a backlog: its peak RSS must not grow with the backlog's size (issue 16) and
must stay under the 250 MB ceiling the speed issue sets. What grew before (benchmarks/README.md,
"Memory flat across backlog sizes"): Faust's changelog buffer, unbounded; aiokafka fetch responses of
up to 50 MiB; batches of 64 messages decoded at once; logs held for a spans backlog. Each is now
bounded by a worker setting, reached by the smaller backlog already.

The trace-context table is bounded too, by `enrichment.max_traces` (and a TTL on the wall clock,
which a fast backlog never reaches): at about 1.5 KB per trace it grows until that bound, 50,000
traces by default, which this workload (8 spans per trace) reaches only at 400k spans. The test sets
the bound below what the smaller backlog fills, so that it checks every bound, the table's included,
and that a small table loses no log its trace's context: past half its bound the spans partitions
wait while the logs are behind them (`Core.spans_outrun_logs`)."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil
import pytest

from telemetry_pipeline.otlp import Signal, decode
from tests.chaos.conftest import ChaosTable
from tests.integration.harness import (
    CLEAN_SIGNALS,
    OutputItems,
    TopicReader,
    clean_topics,
    count_items,
    deploy,
    generated_load,
    log_coverage,
    produce_load,
    rooted_traces,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.chaos]

# Spans; sized for the suite (benchmarks/backlog_memory.py measures 100k/200k/500k). The smallest
# already fills the worker's bounded buffers; the largest is 5x it.
BACKLOGS = (20_000, 100_000)
MIB = 1024 * 1024
CEILING = 250 * 1000 * 1000
# The largest backlog's peak at most this times the smallest's: 1.15-1.20x measured when written, 1.22-1.28x
# in the CI runs of 2026-12-06 (137-141 -> 171-176 MiB) and 1.24-1.30x in the next session's runs, with
# the smaller peak the one that moves with the machine; 1.43x before the bounds.
FLAT = 1.35
MAX_TRACES = 2_000  # enrichment.max_traces: the smallest backlog has 2,500 traces


class PeakRss:
    """Samples a process's RSS every 0.1 s in a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def test_peak_rss_is_flat_across_backlog_sizes_and_under_the_ceiling(
    kafka_bootstrap: str, tmp_path: Path, chaos_table: ChaosTable
) -> None:
    peaks: dict[int, int] = {}
    coverage: dict[int, tuple[int, int]] = {}
    for spans in BACKLOGS:
        workdir = tmp_path / str(spans)
        workdir.mkdir()
        d = deploy(kafka_bootstrap, workdir, extra={"enrichment": {"max_traces": MAX_TRACES}})
        load = generated_load(spans)
        expected = count_items((signal, payload) for signal, _key, payload in load)
        produce_load(d, load)  # all of it waits before the worker starts
        reader = TopicReader(kafka_bootstrap, clean_topics(d))
        outputs = OutputItems(d)
        try:
            with running_worker(d) as worker:
                rss = PeakRss(worker.pid)
                reader.read_until(
                    lambda msgs, outputs=outputs, expected=expected: (
                        outputs.update(msgs).keys() >= expected.keys()
                    ),
                    timeout_s=300,
                    what=f"the backlog of {spans} spans on the .clean topics",
                )
                peaks[spans] = rss.stop()
        finally:
            reader.close()
        logs_topic = next(d.topic(name) for name, signal in CLEAN_SIGNALS.items() if signal is Signal.LOGS)
        spans_in = (decode(Signal.TRACES, payload) for sig, _key, payload in load if sig is Signal.TRACES)
        rooted = rooted_traces(spans_in)
        clean_logs = (decode(Signal.LOGS, m.value()) for m in reader.messages if m.topic() == logs_topic)
        coverage[spans] = log_coverage(clean_logs, rooted)
        total, enriched = coverage[spans]
        chaos_table.add(
            f"backlog of {spans:,} spans, one worker; {enriched:,} of {total:,} logs with their trace's"
            " context",
            expected,
            outputs.items,
            peak_rss=f"{peaks[spans] / MIB:.0f} MiB",
        )
    measured = {spans: f"{peak / MIB:.0f} MiB" for spans, peak in peaks.items()}
    assert peaks[BACKLOGS[-1]] <= FLAT * peaks[BACKLOGS[0]], f"peak RSS grows with the backlog: {measured}"
    assert max(peaks.values()) < CEILING, f"peak RSS over the 250 MB ceiling: {measured}"
    # (logs of a rooted trace, those with the root's context) per backlog: a trace pushed out of the
    # table before its logs were read would show as a log without its context.
    assert all(total and enriched == total for total, enriched in coverage.values()), coverage
