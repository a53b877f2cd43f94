"""A worker started on a backlog: its peak RSS must not grow with the backlog's size (the fetch and
stream buffers bound what is in memory; the rest waits in Kafka as lag)."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil
import pytest

from tests.chaos.conftest import ChaosTable
from tests.integration.harness import (
    OutputItems,
    TopicReader,
    clean_topics,
    count_items,
    deploy,
    generated_load,
    produce_load,
    running_worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.chaos]

BACKLOGS = (20_000, 40_000, 100_000)  # spans; sized for the suite (issue 16 measured 100k/200k/500k)
MIB = 1024 * 1024
STREAM_BUFFER = 4096


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


def test_peak_rss_is_flat_across_backlog_sizes(
    kafka_bootstrap: str, tmp_path: Path, chaos_table: ChaosTable
) -> None:
    peaks: dict[int, int] = {}
    for spans in BACKLOGS:
        workdir = tmp_path / str(spans)
        workdir.mkdir()
        d = deploy(
            kafka_bootstrap,
            tmp_path / str(spans),
            extra={"worker": {"stream_buffer_messages": STREAM_BUFFER}},
        )
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
        chaos_table.add(
            f"backlog of {spans:,} spans, one worker",
            expected,
            outputs.items,
            peak_rss=f"{peaks[spans] / MIB:.0f} MiB",
        )
    smallest, largest = peaks[BACKLOGS[0]], peaks[BACKLOGS[-1]]
    assert largest < smallest * 1.25, {spans: f"{peak / MIB:.0f} MiB" for spans, peak in peaks.items()}
