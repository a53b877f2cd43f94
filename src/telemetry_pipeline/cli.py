"""The `telemetry-pipeline` command."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from telemetry_pipeline import __version__
from telemetry_pipeline.config import ConfigError, PipelineConfig, load_config
from telemetry_pipeline.enrichment import ContextFileError
from telemetry_pipeline.otlp.files import InputFileError, open_input


class CommandError(Exception):
    """A mistake on the command line that the user can fix, said in one line."""


# Where an operator changes what the worker waits for at start.
WORKER_BROKER_SETTINGS = (
    "the address is kafka.bootstrap_servers (environment: TP_KAFKA__BOOTSTRAP_SERVERS), the wait "
    "worker.startup_timeout_s"
)

# What the user can fix: one line on stderr and exit 2, never a traceback.
USER_ERRORS = (CommandError, ConfigError, InputFileError, ContextFileError)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (argparse prints the whole usage first), pointing to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as exc:
        print(f"telemetry-pipeline: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("telemetry-pipeline: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from telemetry_pipeline.generate.commands import register as register_generate
    from telemetry_pipeline.kafka.commands import register as register_kafka

    parser = _Parser(prog="telemetry-pipeline", description=__doc__)
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
    from telemetry_pipeline.app.startup import ChangelogPartitionsMismatch, limit_malloc_arenas
    from telemetry_pipeline.kafka.connection import KafkaUnavailable, await_broker

    config = _load(args)
    limit_malloc_arenas(config.worker.malloc_arenas)  # before the first client starts its threads
    try:
        await_broker(config.kafka, config.worker.startup_timeout_s, settings_hint=WORKER_BROKER_SETTINGS)
        run_worker(config, loglevel=args.loglevel)
    except (KafkaUnavailable, ChangelogPartitionsMismatch) as exc:
        print(f"telemetry-pipeline: {exc}", file=sys.stderr)
        return 1
    return 0


def _replay(args: argparse.Namespace) -> int:
    from telemetry_pipeline.replay import run_replay

    # Checked before the config and the first pass, so a wrong path fails at once.
    for path in args.inputs:
        open_input(path).close()
    _writable_folder(args.out)
    summary = run_replay(_load(args), args.inputs, args.out)
    written = ", ".join(f"{name}: {count}" for name, count in sorted(summary.written.items()))
    late = sum(summary.late_dropped.values())
    print(
        f"{summary.lines} lines in; {written}; sli snapshots: {summary.snapshots}; "
        f"incident events: {summary.incidents}; dlq: {summary.rejected}; sli buckets dropped as late: {late}"
    )
    return 0


def _writable_folder(path: Path) -> None:
    """Create `path` if needed and prove a file can be written in it."""
    if path.exists() and not path.is_dir():
        raise CommandError(f"--out {path} is an existing file; give a folder (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise CommandError(f"--out {path}: cannot write there ({exc.strerror})") from None


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    config.redaction.load_key(production=config.environment == "production")  # says if the dev key stands in
    print(f"configuration valid ({config.environment}); {len(config.slos)} SLOs")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from telemetry_pipeline.demo import run_demo
    from telemetry_pipeline.kafka import broker, topics

    try:
        return run_demo(_load(args), args.config, duration_s=args.duration, port=args.port)
    except (broker.BrokerError, topics.TopicError) as exc:
        # A broker that cannot start says why with its log's tail: more than one line, on purpose.
        print(f"telemetry-pipeline demo: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
