"""Issue 15's table: how much the SLIs and enrichment depend on the order and pace of arrival.

One generated workload (default: 4 h of event time, 6 traced services and the metrics-only gateway,
all three signals, an error spike) runs through `replay` of one file merged by event time (the
reference), `replay` of the per-signal files in the README's order and reversed, the worker fed
paced (`--pace` wall seconds per event minute) and the worker fed a backlog (everything published
before it starts, logs first, 4 partitions, keyed by trace id with murmur2 as the Collector does).
Each run is compared with the reference on every field of every snapshot; late drops are the
worker's persisted counters (the `sli-state` changelog) or replay's summary; log coverage is the
share of log records of a trace with a root that carry the root's context.

    .venv/bin/python benchmarks/event_time.py [--hours 4] [--pace 0.5] [--no-paced] [--no-file-orders]

Writes `results/<stamp>-event-time.json`. Runs against the code importable as `telemetry_pipeline`:
to measure another commit, put its `src` first on PYTHONPATH (the worker subprocesses inherit it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import telemetry_pipeline  # noqa: E402
from telemetry_pipeline.config import PipelineConfig  # noqa: E402
from telemetry_pipeline.generate import GeneratedMessage, GeneratorConfig, iter_messages  # noqa: E402
from telemetry_pipeline.generate.config import ErrorSpike  # noqa: E402
from telemetry_pipeline.generate.sinks import write_jsonl  # noqa: E402
from telemetry_pipeline.kafka import broker  # noqa: E402
from telemetry_pipeline.otlp import Signal, decode  # noqa: E402
from telemetry_pipeline.replay import run_replay  # noqa: E402
from tests.integration.harness import (  # noqa: E402
    await_worker_ready,
    deploy,
    produce,
    read_all,
    running_worker,
)
from tests.integration.test_event_time import (  # noqa: E402
    Snapshots,
    _by_key,
    _log_coverage,
    _minutes,
    _rooted_traces,
    late_dropped,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TOPICS = {Signal.TRACES: "otlp_spans", Signal.METRICS: "otlp_metrics", Signal.LOGS: "otlp_logs"}
README_ORDER = [Signal.TRACES, Signal.LOGS, Signal.METRICS]


def _compare(reference: Snapshots, got: Snapshots) -> dict[str, int]:
    """Up to the reference's last step (an idle worker goes on with the wall clock)."""
    last_step = max(key[2] for key in reference)
    within = {key: values for key, values in got.items() if key[2] <= last_step}
    shared = reference.keys() & within.keys()
    return {
        "reference_snapshots": len(reference),
        "snapshots": len(within),
        "shared": len(shared),
        "differing": sum(1 for key in shared if any(v != reference[key][0] for v in within[key])),
        "missing": len(reference.keys() - within.keys()),
        "extra": len(within.keys() - reference.keys()),
    }


def _coverage(log_messages: list[Any], rooted: set[bytes]) -> dict[str, int]:
    total, enriched = _log_coverage(log_messages, rooted)
    return {"rooted_logs": total, "rooted_logs_without_context": total - enriched}


def _replay(config: PipelineConfig, work: Path, name: str, inputs: list[Path], rooted: set[bytes]) -> dict:
    out = work / name
    started = time.monotonic()
    summary = run_replay(config, inputs, out)
    logs = [decode(Signal.LOGS, line) for line in (out / "logs.jsonl").read_bytes().splitlines()]
    late = getattr(summary, "late_dropped", None)  # not reported before issue 15
    with (out / "sli.jsonl").open("rb") as handle:
        snapshots = _by_key(iter(handle))
    return {
        "snapshots_by_key": snapshots,
        "late_dropped": None if late is None else sum(late.values()),
        **_coverage(logs, rooted),
        "seconds": round(time.monotonic() - started, 1),
    }


def _worker_run(
    bootstrap: str,
    work: Path,
    name: str,
    messages: list[GeneratedMessage],
    rooted: set[bytes],
    pace_s: float | None,
    expected: int,
) -> dict:
    """Paced (`pace_s` per event minute, signals in the README's order) or as a backlog (logs first)."""
    (work / name).mkdir()
    deployment = deploy(bootstrap, work / name, partitions=4)

    def publish(batch: list[GeneratedMessage], signals: list[Signal]) -> None:
        for signal in signals:
            records = [(m.key, m.payload) for m in batch if m.signal is signal]
            produce(bootstrap, deployment.topic(TOPICS[signal]), records)

    if pace_s is None:
        # A restart with lag: a worker ran (its tables exist), then the input came while none was up.
        with running_worker(deployment, name="worker-0"):
            await_worker_ready(deployment)
        publish(messages, [Signal.LOGS, Signal.TRACES, Signal.METRICS])
    started = time.monotonic()
    with running_worker(deployment, name="worker"):
        if pace_s is not None:
            await_worker_ready(deployment)
            for minute in _minutes(messages):
                begun = time.monotonic()
                publish(minute, README_ORDER)
                time.sleep(max(0.0, pace_s - (time.monotonic() - begun)))
        # Until `expected` snapshots came, or none for 75 s once they started (past the worker's 30 s
        # idleness and a few ticks); a backlog's first snapshot may take longer than that.
        sli = deployment.topic("sli")
        count, quiet_since = 0, time.monotonic()
        while count < expected and (count == 0 or time.monotonic() - quiet_since < 75):
            if time.monotonic() - started > 900:
                break
            time.sleep(5)
            now = len(read_all(bootstrap, [sli]))
            if now != count:
                count, quiet_since = now, time.monotonic()
    snapshots = _by_key(m.value() for m in read_all(bootstrap, [sli]))
    clean = read_all(bootstrap, [deployment.topic("otlp_logs.clean")])
    return {
        "snapshots_by_key": snapshots,
        "late_dropped": late_dropped(deployment),
        **_coverage([decode(Signal.LOGS, m.value()) for m in clean], rooted),
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=4)
    parser.add_argument("--services", type=int, default=6)
    parser.add_argument("--rate", type=float, default=0.6, help="requests per second of event time")
    parser.add_argument("--pace", type=float, default=0.5, help="wall seconds per event minute, paced run")
    parser.add_argument("--label", default="", help="added to the results file name (e.g. before)")
    parser.add_argument("--no-paced", action="store_true", help="leave out the paced worker run")
    parser.add_argument(
        "--no-file-orders", action="store_true", help="leave out the replays of per-signal files"
    )
    args = parser.parse_args(argv)
    workload = GeneratorConfig(
        services=args.services,
        duration=timedelta(hours=args.hours),
        rate=args.rate,
        key="trace_id",
        logs_per_message=20,
        faults=[
            ErrorSpike(service="checkout", at=timedelta(hours=args.hours / 3), duration=timedelta(minutes=15))
        ],
    )
    messages = list(iter_messages(workload))
    rooted = _rooted_traces(messages)
    config = PipelineConfig()
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="tp-event-time-") as tmp:
        work = Path(tmp)
        files = {signal: work / f"{signal}.jsonl" for signal in Signal}
        for signal, path in files.items():
            write_jsonl((m for m in messages if m.signal is signal), path)
        merged = work / "merged.jsonl"
        write_jsonl(sorted(messages, key=lambda m: m.event_time_ns), merged)
        runs["replay merged"] = _replay(config, work, "merged", [merged], rooted)
        orders = {"traces logs metrics": README_ORDER, "metrics logs traces": README_ORDER[::-1]}
        if args.no_file_orders:
            orders = {}
        for name, order in orders.items():
            runs[f"replay {name}"] = _replay(config, work, name, [files[s] for s in order], rooted)
        expected = len(runs["replay merged"]["snapshots_by_key"])
        with broker.running(data_dir=work / "broker") as running:
            if not args.no_paced:
                runs[f"worker paced ({args.pace} s per event minute)"] = _worker_run(
                    running.bootstrap, work, "paced", messages, rooted, args.pace, expected
                )
            runs["worker backlog (logs published first)"] = _worker_run(
                running.bootstrap, work, "backlog", messages, rooted, None, expected
            )
    reference = runs["replay merged"]["snapshots_by_key"]
    table = {
        name: {**_compare(reference, run.pop("snapshots_by_key")), **run} for name, run in runs.items()
    }
    counts: dict[str, int] = {}
    for message in messages:
        counts[str(message.signal)] = counts.get(str(message.signal), 0) + message.records
    result = {
        "code": str(Path(telemetry_pipeline.__file__).resolve().parent),
        "workload": {"hours": args.hours, "services": args.services, "rate": args.rate, "records": counts},
        "runs": table,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = RESULTS_DIR / f"{stamp}-event-time{'-' + args.label if args.label else ''}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    for name, row in table.items():
        print(f"{name}: {row}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
