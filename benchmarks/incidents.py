"""Incidents through `replay`: detection delay per fault type, triggers per incident, pages on a
steady day. The detection scenarios' workloads (`detection/tests/scenario.py`) are written as
OTLP/JSON Lines with their service catalog and replayed with the real `run_replay`, the analysis core
both shells use.

Figures, never asserted (the scenario tests assert the bounds): a fault's delay is the first trigger
of the expected incident type on the faulty service, in minutes of event time after the fault began.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from _workload import host_info, run_stamp, write_json

from telemetry_pipeline.detection.tests.scenario import (
    FAULT_INCIDENTS,
    FAULTS_RUN,
    SLOW_BURN_PIPELINE,
    SLOW_BURN_RUN,
    START,
    STEADY_RUN,
    first_trigger,
    minutes_after_start,
    replayed,
)
from telemetry_pipeline.generate import GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.sli.config import duration_ms

# Small messages, as a Collector's batches are: a message spanning many minutes of event time (500 logs
# of a quiet service) would land behind replay's watermark (one file is one source) and count as late.
SMALL_MESSAGES = {"spans_per_message": 50, "logs_per_message": 50}


def replay(generator: dict[str, Any], pipeline: dict[str, Any], workdir: Path) -> tuple[list[dict], dict]:
    """The workload's incident events from `run_replay`, and the replay's CPU seconds and late drops."""
    gen = GeneratorConfig.model_validate({"start_time": START, **generator, **SMALL_MESSAGES})
    _users, catalog = context_records(gen)
    started = time.process_time()
    events, summary = replayed(iter_messages(gen), catalog, pipeline, workdir)
    figures = {
        "replay_cpu_s": round(time.process_time() - started, 1),
        "sli_buckets_late": sum(summary.late_dropped.values()),
    }
    return events, figures


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
            "faults": (FAULTS_RUN, {}),
            "slow_burn": (SLOW_BURN_RUN, SLOW_BURN_PIPELINE),
            "steady_24h": (STEADY_RUN, {}),
        }
        for name, (generator, pipeline) in runs.items():
            if args.only not in (None, name):
                continue
            workdir = Path(tmp) / name
            workdir.mkdir()
            events, figures = replay(generator, pipeline, workdir)
            run: dict[str, Any] = {**figures, "events": len(events), **_triggers(events)}
            if name == "faults":
                run["delay_minutes"] = {}
                for fault, type_, subject in FAULT_INCIDENTS:
                    trigger = first_trigger(events, type_, fault["service"], subject)
                    delay = (
                        None
                        if trigger is None
                        else minutes_after_start(trigger["observed_at"]) - duration_ms(fault["at"]) / 60_000
                    )
                    run["delay_minutes"][f"{fault['kind']} -> {type_} on {fault['service']}"] = delay
            if name == "slow_burn":
                trigger = first_trigger(events, "slo_burn_rate", "cart", "availability:ticket")
                run["delay_minutes"] = {
                    "slow burn -> slo_burn_rate ticket on cart": None
                    if trigger is None
                    else minutes_after_start(trigger["observed_at"]) - 30
                }
            result["runs"][name] = run
            print(name, orjson.dumps(run).decode())
    path = args.out / f"{stamp}-incidents.json"
    write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
