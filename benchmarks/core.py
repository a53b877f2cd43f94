"""The pipeline's core alone (decode, enrich, redact, encode, aggregate), no Kafka.

    .venv/bin/python benchmarks/core.py [--spans N] [--batch-messages N] [...]

Runs the default workload of `throughput.py` through `Core.process` in batches like the worker,
then once more stage by stage, then measures the protobuf floor (what a field read, an attribute
pass, parsing and serialising cost per span, alone), then once under pyinstrument. Writes
`results/<stamp>-core.json`, a bar chart `results/<stamp>-core.png` and the profile's call tree
`results/<stamp>-core-profile.txt`. Compare with `throughput.py` to tell the engine's speed from
Kafka's and Faust's cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from _stages import PREFILTER_SCAN, profile_core, protobuf_floor, run_core, stage_breakdown
from _workload import (
    DEFAULT_BATCH_MESSAGES,
    add_workload_flags,
    build_workload,
    host_info,
    run_stamp,
    save_figure,
    write_json,
)
from rich.console import Console

from telemetry_pipeline.config import load_config

CORE_TARGET_SPANS_PER_CPU_S = 100_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_workload_flags(parser, default_spans=300_000)
    parser.add_argument(
        "--batch-messages",
        type=int,
        default=DEFAULT_BATCH_MESSAGES,
        help=f"messages per Core.process call (default {DEFAULT_BATCH_MESSAGES}, as the worker)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the pyinstrument run")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    stamp = run_stamp()
    started = time.time()

    with console.status("generating the workload"):
        workload = build_workload(args)
    config = load_config()  # defaults plus TP_* environment overrides
    with console.status("Core.process over the workload"):
        whole = run_core(workload, config, args.batch_messages)
    with console.status("stage by stage"):
        stages = stage_breakdown(workload, config, args.batch_messages)
    with console.status("the protobuf floor"):
        floor = protobuf_floor(workload, config, args.batch_messages)
    top: list = []
    profile_path = args.out / f"{stamp}-core-profile.txt"
    if not args.no_profile:
        with console.status("Core.process under pyinstrument"):
            top = profile_core(workload, config, args.batch_messages, profile_path)

    spans_per_cpu_s = whole["per_cpu_s"].get("spans", 0.0)
    result = {
        "kind": "core",
        "stamp": stamp,
        "command": [sys.executable, *sys.argv],
        "host": host_info(),
        "workload": workload.describe(),
        "core": whole,
        "stages": stages,
        "protobuf_floor": floor,
        "profile": {"call_tree": profile_path.name if top else None, "top_self_time": top},
        "targets": {
            "core_spans_per_cpu_s": {
                "target": CORE_TARGET_SPANS_PER_CPU_S,
                "measured": spans_per_cpu_s,
                "met": spans_per_cpu_s >= CORE_TARGET_SPANS_PER_CPU_S,
            },
        },
        "elapsed_s": time.time() - started,
    }
    json_path = args.out / f"{stamp}-core.json"
    write_json(json_path, result)
    _plot(stages, spans_per_cpu_s, args.out / f"{stamp}-core.png")

    console.print(
        f"core: {spans_per_cpu_s:,.0f} spans per CPU second "
        f"(target {CORE_TARGET_SPANS_PER_CPU_S:,}), {whole['all_items_per_cpu_s']:,.0f} items per CPU second"
    )
    console.print(
        "stages, CPU us per span: "
        + ", ".join(
            f"{stage} {us:.2f} ({stages['share'][stage]:.0%})" for stage, us in stages["us_per_span"].items()
        )
    )
    console.print(
        f"protobuf floor: {floor['us_per_field_read']:.3f} us per span field read, "
        f"{floor['us_per_attribute_key']:.3f} us per attribute key read, "
        f"{floor['us_per_span'][PREFILTER_SCAN]:.2f} us per span in the redaction prefilter's Hyperscan pass"
    )
    console.print(f"wrote {json_path}")
    return 0


def _plot(stages: dict, spans_per_cpu_s: float, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(8, 4))
    names, values = list(stages["us_per_span"]), list(stages["us_per_span"].values())
    bars = axis.barh(names, values, color="tab:blue")
    axis.bar_label(
        bars, labels=[f"{v:.2f} us ({stages['share'][s]:.0%})" for s, v in zip(names, values, strict=True)]
    )
    axis.invert_yaxis()
    axis.set_xlabel("CPU microseconds per span (logs and metrics included)")
    axis.set_title(
        f"core: {spans_per_cpu_s:,.0f} spans per CPU second "
        f"(budget for {CORE_TARGET_SPANS_PER_CPU_S:,}/s: {1e6 / CORE_TARGET_SPANS_PER_CPU_S:.0f} us)"
    )
    save_figure(figure, path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
