"""Peak RSS of one worker started on a pre-loaded backlog, per backlog size: flat, or growing with it?

    .venv/bin/python benchmarks/backlog_memory.py [--backlogs 100000,200000,500000] [--bootstrap HOST:PORT]

For each backlog size (spans, with the logs and metrics the generator makes alongside; a prefix of
one workload, so the smaller backlogs are the start of the larger), creates fresh topics, pre-loads
the backlog, starts one `telemetry-pipeline worker`, samples its RSS every 0.1 s (psutil) until every
input message has come out on the `.clean` topics, stops it and deletes the topics. Writes
`results/<stamp>-backlog-memory.json`: per backlog the peak RSS and the highest RSS in each tenth of
the run (a level reached early and held is a bound; a rise to the end is growth), the seconds from
the worker's start to the last output, spans per second over that time, and the worker's CPU
seconds; the ratio of the largest backlog's peak to the smallest's; and the worker settings
overridden through `TP_*` variables (set them in this command's environment to compare settings).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from _workload import Workload, add_workload_flags, build_workload, host_info, rate, run_stamp, write_json
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from throughput import (
    CleanReader,
    RunTopics,
    Workers,
    _create_topics,
    _delete_run_topics,
    _prefix,
    local_broker,
    preload,
    terminate_on_sigterm,
)

from telemetry_pipeline.config import load_config
from telemetry_pipeline.generate import OutputTopics, produce_context
from telemetry_pipeline.otlp import Signal

MB = 1_000_000
# The worker's enrichment counters read at the end of each run: a bound that keeps memory flat by
# forgetting traces their logs still needed would show here as logs without their trace's context.
ENRICHMENT_FIGURES = (
    "logs_with_trace_id",
    "logs_with_trace_context",
    "logs_with_span",
    "spans_with_trace_context",
    "released_without_context",
    "traces",
    "traces_evicted_size",
    "traces_evicted_ttl",
)
RSS_INTERVAL_S = 0.1
CEILING_MB = 250  # the speed issue's target for one worker on the pre-loaded run


class RssSamples(threading.Thread):
    """A process's RSS every RSS_INTERVAL_S until it ends or `stop`."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-samples", daemon=True)
        self._process = psutil.Process(pid)
        self._stop_event = threading.Event()
        self.samples: list[int] = []
        self.start()

    def run(self) -> None:
        while not self._stop_event.wait(RSS_INTERVAL_S):
            try:
                self.samples.append(self._process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> list[int]:
        self._stop_event.set()
        self.join()
        return self.samples


def _highest_per_tenth(samples: list[int]) -> list[float]:
    """The highest RSS (MB) in each tenth of the samples, in order."""
    tenths = [samples[len(samples) * i // 10:len(samples) * (i + 1) // 10] for i in range(10)]
    return [round(max(tenth) / MB, 1) for tenth in tenths if tenth]


def measure(
    args: argparse.Namespace, console: Console, bootstrap: str, spans: int, workload: Workload
) -> dict[str, Any]:
    """One backlog: fresh topics, pre-load, one worker until every message is out."""
    config = load_config()
    stamp = run_stamp().lower()
    run = RunTopics.of(f"mem-{stamp}-{spans}-", args.partitions, config)
    work_dir = Path(tempfile.mkdtemp(prefix="tp-backlog-"))
    workers = Workers()
    reader = None
    try:
        _create_topics(bootstrap, run)
        context_topics = OutputTopics(user_context=run.user_context, service_catalog=run.service_catalog)
        produce_context(workload.users, workload.services, bootstrap, context_topics)
        with console.status(f"pre-loading {len(workload.messages):,} messages ({spans:,} spans)"):
            preload(bootstrap, run, workload, "none")
        reader = CleanReader(bootstrap, run, workload)
        reader.start()
        metrics_port = _free_port()
        workers.start(1, run, bootstrap, work_dir, "warning", {"TP_WORKER__METRICS_PORT": str(metrics_port)})
        started = time.time()
        rss = RssSamples(workers.processes[0].pid)
        with console.status(f"backlog of {spans:,} spans: waiting for the worker"):
            while len(reader.seen) < len(workload.messages):
                if time.time() - started > args.timeout:
                    raise RuntimeError(f"{len(reader.seen)} of {len(workload.messages)} messages out "
                                       f"after {args.timeout} s")
                if reader.error is not None:
                    raise RuntimeError("the .clean reader failed") from reader.error
                workers.check_alive()
                time.sleep(0.2)
        cpu_s = workers.sample()[0].cpu_s
        samples = rss.stop()
        enrichment = _enrichment_figures(metrics_port)
        last_out = max(arrived for arrived, *_ in reader.arrivals) / 1e9
        return {
            "spans": workload.items()[Signal.TRACES],
            "messages": len(workload.messages),
            "payload_bytes": sum(len(message.payload) for message in workload.messages),
            "peak_rss_mb": round(max(samples) / MB, 1),
            "rss_mb_highest_per_tenth": _highest_per_tenth(samples),
            "seconds_to_last_output": round(last_out - started, 2),
            "spans_per_s": round(rate(workload.items()[Signal.TRACES], last_out - started), 1),
            "worker_cpu_s": round(cpu_s, 2),
            "duplicates": reader.duplicates,
            "enrichment": enrichment,
        }
    finally:
        workers.stop()
        if reader is not None:
            reader.stop()
        _delete_run_topics(bootstrap, run, [run.app_id, run.prefix + "bench-reader"])
        shutil.rmtree(work_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _enrichment_figures(port: int) -> dict[str, float]:
    """The worker's `tp_enrichment` gauges (and the trace table's fill) once they count every output:
    the tick sets them every `worker.tick_interval_s`, so read until two reads a tick apart agree."""
    previous: dict[str, float] = {}
    for _ in range(40):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        figures: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = sample.labels.get("name")
                if sample.name == "tp_enrichment" and name in ENRICHMENT_FIGURES:
                    figures[name] = sample.value
                elif sample.name == "tp_enrichment_trace_table_fill":
                    figures["trace_table_fill"] = round(sample.value, 3)
        if figures and figures == previous:
            return figures
        previous = figures
        time.sleep(0.5)
    return previous


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    backlogs = sorted(int(size) for size in args.backlogs.split(","))
    console = Console(stderr=True)
    stamp = run_stamp()
    args.spans = backlogs[-1]
    with console.status("generating the workload"):
        workload = build_workload(args)
    runs = []
    with terminate_on_sigterm(), local_broker(args, console) as bootstrap:
        for spans in backlogs:
            prefix = dataclasses.replace(workload, messages=_prefix(workload, spans))
            result = measure(args, console, bootstrap, spans, prefix)
            enriched = result["enrichment"]
            console.print(f"backlog {result['spans']:,} spans: peak RSS {result['peak_rss_mb']:.0f} MB, "
                          f"{result['spans_per_s']:,.0f} spans/s; logs with their trace's context "
                          f"{enriched.get('logs_with_trace_context', 0):,.0f} of "
                          f"{enriched.get('logs_with_trace_id', 0):,.0f}; highest RSS per tenth of the run "
                          f"{' '.join(f'{mb:.0f}' for mb in result['rss_mb_highest_per_tenth'])} MB")
            runs.append(result)
    peaks = [run["peak_rss_mb"] for run in runs]
    summary = {
        "kind": "backlog_memory",
        "stamp": stamp,
        "command": [sys.executable, *sys.argv],
        "host": host_info(),
        "partitions": args.partitions,
        "worker_overrides": {name: value for name, value in os.environ.items() if name.startswith("TP_")},
        "workload": workload.describe(),
        "backlogs": runs,
        "largest_over_smallest_peak": round(peaks[-1] / peaks[0], 3),
        "ceiling_mb": CEILING_MB,
        "under_ceiling": max(peaks) <= CEILING_MB,
    }
    path = args.out / f"{stamp}-backlog-memory.json"
    write_json(path, summary)
    ratio = summary["largest_over_smallest_peak"]
    console.print(f"peak RSS, largest over smallest backlog: {ratio:.2f}; wrote {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_workload_flags(parser, default_spans=0)  # --spans is set from the largest backlog
    parser.add_argument(
        "--backlogs", default="100000,200000,500000", help="backlog sizes in spans, comma-separated"
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    parser.add_argument(
        "--timeout", type=float, default=240, help="seconds to wait for one backlog's outputs"
    )
    parser.add_argument("--bootstrap", default=None, help="reuse this broker instead of the local one")
    parser.add_argument("--port", type=int, default=9092, help="port of the local broker (default 9092)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
