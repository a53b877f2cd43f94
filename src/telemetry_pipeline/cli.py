"""The `telemetry-pipeline` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from telemetry_pipeline import __version__
from telemetry_pipeline.config import ConfigError, PipelineConfig, load_config


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"telemetry-pipeline: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    from telemetry_pipeline.generate.commands import register as register_generate
    from telemetry_pipeline.kafka.commands import register as register_kafka

    parser = argparse.ArgumentParser(prog="telemetry-pipeline", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    worker = sub.add_parser("worker", help="run the Faust worker (ingest, enrichment, redaction, SLIs)")
    _config_option(worker)
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(run=_worker)

    replay = sub.add_parser("replay", help="run the pipeline offline over OTLP/JSON Lines files")
    _config_option(replay)
    replay.add_argument("--out", type=Path, required=True, help="output directory")
    replay.add_argument("inputs", type=Path, nargs="+", metavar="INPUT")
    replay.set_defaults(run=_replay)

    check = sub.add_parser("check-config", help="validate a configuration file and the environment")
    _config_option(check)
    check.set_defaults(run=_check_config)

    demo = sub.add_parser("demo", help="broker, topics, worker and load generator on this machine")
    _config_option(demo)
    demo.add_argument("--duration", type=float, default=90.0, help="seconds of load (default 90)")
    demo.add_argument("--port", type=int, default=9092, help="local broker port")
    demo.set_defaults(run=_demo)

    register_kafka(sub)
    register_generate(sub)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="YAML configuration file")


def _load(args: argparse.Namespace) -> PipelineConfig:
    return load_config(args.config)


def _worker(args: argparse.Namespace) -> int:
    from telemetry_pipeline.app import run_worker
    from telemetry_pipeline.app.startup import BrokerUnreachable, await_broker

    config = _load(args)
    try:
        await_broker(config.kafka, config.worker.startup_timeout_s)
    except BrokerUnreachable as exc:
        print(f"telemetry-pipeline: {exc}", file=sys.stderr)
        return 1
    run_worker(config, loglevel=args.loglevel)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from telemetry_pipeline.replay import run_replay

    summary = run_replay(_load(args), args.inputs, args.out)
    written = ", ".join(f"{name}: {count}" for name, count in sorted(summary.written.items()))
    print(f"{summary.lines} lines in; {written}; sli snapshots: {summary.snapshots}; dlq: {summary.rejected}")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    print(f"configuration valid ({config.environment}); {len(config.slos)} SLOs")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from telemetry_pipeline.demo import run_demo

    return run_demo(_load(args), args.config, duration_s=args.duration, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
