"""Incidents through `replay`: detection delay per fault type, triggers per incident, pages on a
steady day. Generated workloads (h5's detection scenarios) are written as OTLP/JSON Lines with their
service catalog and replayed with the real `run_replay`, the analysis core both shells use.

Figures, never asserted (the scenario tests assert the bounds): a fault's delay is the first trigger
of the expected incident type on the faulty service, in minutes of event time after the fault began.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _workload import host_info, run_stamp, write_json

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.generate import GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.generate.sinks import write_jsonl
from telemetry_pipeline.replay import run_replay
from telemetry_pipeline.sli.config import duration_ms

START = datetime(2026, 1, 1, tzinfo=UTC)
# Small messages, as a Collector's batches are: a message spanning many minutes of event time (500 logs
# of a quiet service) would land behind replay's watermark (one file is one source) and count as late.
QUIET = {
    "services": 4,
    "incomplete_resource_share": 0.0,
    "base_error_rate": 0.0002,
    "pii_share": 0.0,
    "spans_per_message": 50,
    "logs_per_message": 50,
}
# The incident type (and subject, when the type has several) each fault should raise.
EXPECTED = [
    ("pii_leak", None),
    ("error_rate_spike", None),
    ("latency_regression", None),
    ("completeness_drop", "logs"),
    ("cardinality_explosion", "span_names"),
    ("telemetry_gap", None),
]
FAULTS = [
    {"kind": "leak", "service": "checkout", "leak": "card", "share": 0.3, "at": "30m", "for": "5m"},
    {"kind": "error_spike", "service": "cart", "rate": 0.3, "at": "40m", "for": "5m"},
    {"kind": "latency_regression", "service": "payment", "factor": 4, "at": "50m", "for": "20m"},
    {"kind": "signal_stop", "service": "checkout", "signal": "logs", "at": "60m", "for": "40m"},
    {"kind": "deploy", "service": "cart", "at": "80m", "span_name_ids": True},
    {"kind": "silent", "service": "payment", "at": "90m", "for": "15m"},
]  # fmt: skip
SLOW_BURN = {"kind": "error_spike", "service": "cart", "rate": 0.003, "at": "30m", "for": "3h30m"}
STEADY = {
    **QUIET,
    "base_error_rate": 0.0001,
    "duration": "24h",
    "rate": 0.5,
    "daily_cycle": 0.6,
    "consumer_services": ["cart"],
    "faults": [{"kind": "isolated_errors", "service": "payment", "count": 6, "at": "1h", "for": "22h"}],
}


def replay(generator: dict[str, Any], pipeline: dict[str, Any], workdir: Path) -> tuple[list[dict], dict]:
    """The workload's incident events from `run_replay`, and the replay's CPU seconds and late drops."""
    gen = GeneratorConfig.model_validate({"start_time": START, **generator})
    _users, catalog = context_records(gen)
    catalog_file, input_file = workdir / "catalog.jsonl", workdir / "input.jsonl"
    catalog_file.write_bytes(
        b"".join(orjson.dumps({"key": k, "value": v}) + b"\n" for k, v in catalog.items())
    )
    write_jsonl(iter_messages(gen), input_file)
    config = PipelineConfig.model_validate(
        {**pipeline, "context": {"service_catalog_file": str(catalog_file)}}
    )
    started = time.process_time()
    summary = run_replay(config, [input_file], workdir / "out")
    figures = {
        "replay_cpu_s": round(time.process_time() - started, 1),
        "sli_buckets_late": sum(summary.late_dropped.values()),
    }
    events = [orjson.loads(line) for line in (workdir / "out" / "incidents.jsonl").read_bytes().splitlines()]
    return events, figures


def _minutes(text: str) -> float:
    return (datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z") - START).total_seconds() / 60


def _first_trigger(events: list[dict], type_: str, service: str, subject: str | None) -> dict | None:
    return next(
        (
            e
            for e in events
            if e["action"] == "trigger"
            and e["type"] == type_
            and e["service"] == service
            and (subject is None or e["dedup_key"].endswith("/" + subject))
        ),
        None,
    )


def _triggers(events: list[dict]) -> dict[str, Any]:
    per_incident = Counter(e["dedup_key"] for e in events if e["action"] == "trigger")
    triggers = [e for e in events if e["action"] == "trigger"]
    return {
        "triggers": len(triggers),
        "pages": sum(e["routing"] == "page" for e in triggers),
        "max_triggers_per_incident": max(per_incident.values(), default=0),
        "by_type_service_routing": Counter(f"{e['type']}/{e['service']}/{e['routing']}" for e in triggers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--only", choices=["faults", "slow_burn", "steady_24h"], help="one of the runs")
    args = parser.parse_args()
    stamp = run_stamp()
    result: dict[str, Any] = {
        "command": " ".join(["benchmarks/incidents.py", *sys.argv[1:]]),
        "host": host_info(),
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "faults": ({**QUIET, "duration": "2h", "rate": 3, "faults": FAULTS}, {}),
            "slow_burn": (
                {**QUIET, "duration": "4h", "rate": 3, "faults": [SLOW_BURN]},
                {"slos": [{"service": "cart", "availability": 99.9}]},
            ),
        }
        runs["steady_24h"] = (STEADY, {})
        for name, (generator, pipeline) in runs.items():
            if args.only not in (None, name):
                continue
            workdir = Path(tmp) / name
            workdir.mkdir()
            events, figures = replay(generator, pipeline, workdir)
            run: dict[str, Any] = {**figures, "events": len(events), **_triggers(events)}
            if name == "faults":
                run["delay_minutes"] = {}
                for fault, (type_, subject) in zip(FAULTS, EXPECTED, strict=True):
                    trigger = _first_trigger(events, type_, fault["service"], subject)
                    delay = (
                        None
                        if trigger is None
                        else _minutes(trigger["observed_at"]) - duration_ms(fault["at"]) / 60_000
                    )
                    run["delay_minutes"][f"{fault['kind']} -> {type_} on {fault['service']}"] = delay
            if name == "slow_burn":
                trigger = _first_trigger(events, "slo_burn_rate", "cart", "availability:ticket")
                run["delay_minutes"] = {
                    "slow burn -> slo_burn_rate ticket on cart": None
                    if trigger is None
                    else _minutes(trigger["observed_at"]) - 30
                }
            result["runs"][name] = run
            print(name, orjson.dumps(run).decode())
    path = args.out / f"{stamp}-incidents.json"
    write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
