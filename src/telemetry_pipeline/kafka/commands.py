"""`telemetry-pipeline broker start|stop|status` and `telemetry-pipeline topics apply`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import KafkaException

from telemetry_pipeline.config import KafkaConfig, load_config
from telemetry_pipeline.kafka import broker, topics
from telemetry_pipeline.kafka.connection import KafkaUnavailable, await_broker

__all__ = ["KafkaUnavailable", "register", "require_reachable"]

BOOTSTRAP_ENV = "TP_KAFKA__BOOTSTRAP_SERVERS"
DEFAULT_PORT = 9092
# How long a command waits for a broker to answer before it says there is none.
REACH_TIMEOUT_S = 10.0


def require_reachable(kafka: KafkaConfig | str, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """Fail within `timeout_s` when no broker answers: a producer would retry for minutes, with
    librdkafka logging every refused connection, before it gave up. Quiet until then (a command's
    error is one line)."""
    await_broker(kafka, timeout_s, settings_hint="the address is --bootstrap", log_attempts=False)


def register(subparsers: argparse._SubParsersAction) -> None:
    broker_parser = subparsers.add_parser("broker", help="a local single-node Apache Kafka broker (KRaft)")
    actions = broker_parser.add_subparsers(required=True, metavar="ACTION")
    for name, run, help_text in (
        ("start", _broker_start, "start the broker in the background (or reuse the running one)"),
        ("stop", _broker_stop, "stop the broker recorded in the data directory"),
        ("status", _broker_status, "say whether the broker runs (exit 1 if not)"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--port", type=int, default=DEFAULT_PORT,
                            help=f"listener port (default {DEFAULT_PORT})")
        action.add_argument("--data-dir", type=Path, default=None,
                            help="configuration, storage and log (default: broker-PORT in the user's cache)")
        action.set_defaults(run=_reporting_errors(run))

    topics_parser = subparsers.add_parser("topics", help="topics as code")
    topic_actions = topics_parser.add_subparsers(required=True, metavar="ACTION")
    apply = topic_actions.add_parser("apply", help="create or update the topics declared in the topic files")
    apply.add_argument("--config", type=Path, default=None,
                       help="YAML configuration file: its kafka section (address, TLS, SASL) is used")
    apply.add_argument("--bootstrap", metavar="HOST:PORT", default=None,
                       help=f"Kafka bootstrap servers (default: the config's kafka.bootstrap_servers, "
                            f"${BOOTSTRAP_ENV} or 127.0.0.1:9092)")
    apply.add_argument("--dir", type=Path, default=None,
                       help="directory of topic files (default: the project's topics/)")
    apply.add_argument("--partitions", type=int, default=None, help="partition count for every topic")
    apply.set_defaults(run=_reporting_errors(_topics_apply))


def _reporting_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Broker and topic failures are the operator's to fix: one clear message, no traceback."""
    def reported(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (broker.BrokerError, topics.TopicError, KafkaException) as exc:
            print(f"telemetry-pipeline: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, topics.TopicFileError) else 1

    return reported


def _data_dir(args: argparse.Namespace) -> Path:
    return args.data_dir or broker.default_data_dir(args.port)


def _broker_start(args: argparse.Namespace) -> int:
    local = broker.start(args.port, _data_dir(args))
    verb = "started" if local.started else "already running"
    print(f"broker {verb} at {local.bootstrap} (pid {local.pid}, data {local.data_dir})")
    return 0


def _broker_stop(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    print("broker stopped" if broker.stop(data_dir) else f"no broker running for {data_dir}")
    return 0


def _broker_status(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    local = broker.status(data_dir)
    if local is None:
        print(f"no broker running for {data_dir}")
        return 1
    print(f"broker running at {local.bootstrap} (pid {local.pid}, data {local.data_dir})")
    return 0


def kafka_settings(config: Path | None, bootstrap: str | None) -> KafkaConfig:
    """The worker's connection settings (file, then TP_KAFKA__* environment), so a command's clients
    speak the same protocol and credentials as the worker; `bootstrap` names another address."""
    kafka = load_config(config).kafka
    return kafka.model_copy(update={"bootstrap_servers": bootstrap}) if bootstrap else kafka


def _topics_apply(args: argparse.Namespace) -> int:
    kafka = kafka_settings(args.config, args.bootstrap)
    specs = topics.load_specs(args.dir or topics.default_topics_dir())
    print(topics.apply(kafka, specs, partitions=args.partitions))
    return 0
