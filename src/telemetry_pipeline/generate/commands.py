"""`telemetry-pipeline generate`: synthetic OTLP load to Kafka or to an OTLP/JSON Lines file."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from pydantic import TypeAdapter, ValidationError

from telemetry_pipeline.generate.config import Fault, GeneratorConfig, OutputTopics, parse_duration
from telemetry_pipeline.generate.model import GeneratedMessage
from telemetry_pipeline.kafka.commands import KafkaUnavailable, kafka_settings, require_reachable
from telemetry_pipeline.otlp import Encoding

_FAULT_HELP = (
    "KIND:key=value,... (repeatable). Kinds: error_spike (service, at, for, rate), latency_regression "
    "(service, at, for, factor), silent (service, at, for), deploy (service, at, version, for, "
    "latency_factor, error_rate), garbage (share, at, for). Example: "
    "'error_spike:service=checkout,at=10m,for=5m,rate=0.3'"
)
_fault_adapter: TypeAdapter[Any] = TypeAdapter(Fault)
# GeneratorConfig fields whose command-line option is not simply --field-name.
_OPTIONS = {"faults": "--fault", "metrics_only_service": "--no-gateway", "start_time": "--start"}
# librdkafka logs every refused connection while a broker is away; failures reach us as delivery
# reports and end in one error message instead.
QUIET_PRODUCER = {"log_level": 2}


def parse_fault(text: str) -> Any:
    """'kind:key=value,key=value' into a fault model."""
    kind, _, options = text.partition(":")
    fields: dict[str, str] = {"kind": kind.strip()}
    for option in filter(None, (part.strip() for part in options.split(","))):
        key, separator, value = option.partition("=")
        if not separator:
            raise argparse.ArgumentTypeError(f"fault option {option!r} is not key=value")
        if not value.strip():
            raise argparse.ArgumentTypeError(f"fault option {key.strip()!r} has no value in {text!r}")
        fields[key.strip()] = value.strip()
    try:
        return _fault_adapter.validate_python(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise argparse.ArgumentTypeError(f"invalid fault {text!r}: {where}: {error['msg']}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="synthetic OTLP traffic of a microservice estate", description=__doc__
    )
    defaults = GeneratorConfig()
    parser.add_argument(
        "--to", choices=("kafka", "file", "null"), default="file", help="null: build and count only (speed)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("otlp.jsonl"),
        help="file for --to file (OTLP/JSON Lines, gzip if it ends in .gz)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML configuration file: its kafka section (address, TLS, SASL) is used for --to kafka",
    )
    parser.add_argument(
        "--bootstrap",
        default=None,
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: the config's kafka.bootstrap_servers, "
        "$TP_KAFKA__BOOTSTRAP_SERVERS or 127.0.0.1:9092)",
    )
    parser.add_argument("--encoding", choices=[e.value for e in Encoding], default=Encoding.PROTO.value)
    parser.add_argument("--compression", default="none", help="Kafka compression.type (none, lz4, zstd ...)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--services", type=int, default=defaults.services)
    parser.add_argument("--no-gateway", action="store_true", help="leave out the metrics-only service")
    parser.add_argument("--duration", default="10m", help="event time covered (e.g. 90s, 10m, 2d)")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="requests per second of event time")
    parser.add_argument(
        "--start", default=None, help="start of event time: RFC 3339, 'now' or 'now-DURATION' (e.g. now-30m)"
    )
    parser.add_argument(
        "--pace",
        default=None,
        metavar="DURATION",
        help="send the whole event span spread over this much wall time (e.g. 90s); default: at once",
    )
    parser.add_argument("--spans-per-message", type=int, default=defaults.spans_per_message)
    parser.add_argument("--key", choices=("trace_id", "none"), default=defaults.key)
    parser.add_argument(
        "--split-traces",
        type=float,
        default=defaults.split_traces,
        help="share of traces whose root span is sent in a later message",
    )
    parser.add_argument("--pii-share", type=float, default=defaults.pii_share)
    parser.add_argument("--metrics-interval", default="60s")
    parser.add_argument("--fault", action="append", type=parse_fault, default=[], help=_FAULT_HELP)
    parser.add_argument(
        "--context-out",
        type=Path,
        default=None,
        help="directory for users.jsonl and catalog.jsonl (replay's context.*_file for enrichment)",
    )
    parser.add_argument(
        "--publish-context",
        action="store_true",
        help="also produce the context tables to their compacted topics",
    )
    for field, name in OutputTopics().model_dump().items():
        parser.add_argument(f"--topic-{field.replace('_', '-')}", dest=f"topic_{field}", default=name)
    parser.set_defaults(run=run)


def _config(args: argparse.Namespace) -> GeneratorConfig:
    values: dict[str, Any] = {
        "seed": args.seed,
        "services": args.services,
        "metrics_only_service": not args.no_gateway,
        "duration": args.duration,
        "rate": args.rate,
        "spans_per_message": args.spans_per_message,
        "key": args.key,
        "split_traces": args.split_traces,
        "pii_share": args.pii_share,
        "metrics_interval": args.metrics_interval,
        "faults": args.fault,
    }
    if args.start is not None:
        values["start_time"] = _start_time(args.start)
    return GeneratorConfig.model_validate(values)


def _start_time(text: str) -> Any:
    """'now-30m' is the wall clock minus a duration; anything else is left to the config to read."""
    if not text.startswith("now-"):
        return text
    ago = parse_duration(text.removeprefix("now-"))
    if not isinstance(ago, timedelta):
        raise OptionError(f"--start {text}: expected now-DURATION such as now-30m")
    return datetime.now(UTC) - ago


def _describe(exc: ValidationError) -> str:
    """One line per problem, naming the command-line option; never pydantic's dump with its URLs."""
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        option = _OPTIONS.get(field, "--" + field.replace("_", "-")) if field else ""
        message = error["msg"].removeprefix("Value error, ")
        if error["type"].startswith("time_delta"):
            message = "expected a duration such as 90s, 10m, 1h30m or 2d"
        problems.append(f"{option}: {message}" if option else message)
    return "; ".join(problems)


def paced(
    messages: Iterable[GeneratedMessage], speed: float, stop: threading.Event | None = None
) -> Iterator[GeneratedMessage]:
    """Hand each message on when it is due, event time running `speed` times faster than wall time.

    Ends early once `stop` is set (the demo stops its load before the broker).
    """
    stop = stop or threading.Event()
    began = time.monotonic()
    first_ns: int | None = None
    for message in messages:
        first_ns = message.event_time_ns if first_ns is None else first_ns
        due = began + (message.event_time_ns - first_ns) / 1e9 / speed
        if stop.wait(max(0.0, due - time.monotonic())):
            return
        yield message


class OptionError(ValueError):
    """An option's value is wrong; the message names the option."""


def run(args: argparse.Namespace) -> int:
    """The command; every error the user can act on is one line on stderr."""
    try:
        return _run(args)
    except (ValidationError, OptionError) as exc:
        text = _describe(exc) if isinstance(exc, ValidationError) else str(exc)
        print(f"telemetry-pipeline generate: {text}", file=sys.stderr)
        return 2
    except (KafkaUnavailable, OSError) as exc:
        text = f"cannot write {exc.filename}: {exc.strerror}" if isinstance(exc, OSError) else str(exc)
        print(f"telemetry-pipeline generate: {text}", file=sys.stderr)
        return 1


@contextmanager
def _delivery_reported() -> Iterator[None]:
    """The sinks raise RuntimeError naming the first failed delivery: the broker's problem, not a bug."""
    try:
        yield
    except (RuntimeError, KafkaException) as exc:
        raise KafkaUnavailable(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    from telemetry_pipeline.generate import context_records, iter_messages
    from telemetry_pipeline.generate.sinks import (
        produce_context,
        produce_kafka,
        write_context_files,
        write_jsonl,
    )

    config = _config(args)
    pace = parse_duration(args.pace) if args.pace is not None else None
    if pace is not None and (not isinstance(pace, timedelta) or pace <= timedelta(0)):
        raise OptionError("--pace: expected a positive duration such as 90s or 10m")
    topics = OutputTopics(**{f: getattr(args, f"topic_{f}") for f in OutputTopics.model_fields})
    kafka = kafka_settings(args.config, args.bootstrap)
    if args.to == "kafka" or args.publish_context:
        require_reachable(kafka)
    if args.context_out is not None or args.publish_context:
        users, services = context_records(config)
        if args.context_out is not None:
            for path in write_context_files(users, services, args.context_out):
                print(f"wrote {path}")
        if args.publish_context:
            with _delivery_reported():
                published = produce_context(
                    users, services, kafka, topics, producer_config=QUIET_PRODUCER
                )
            print(f"context: {published}")
    records: Counter[str] = Counter()

    def counted(messages: Iterable[GeneratedMessage]) -> Iterator[GeneratedMessage]:
        for message in messages:
            records[str(message.signal)] += message.records
            yield message

    messages = counted(iter_messages(config))
    if pace is not None:
        messages = paced(messages, config.duration / pace)
    began = time.perf_counter()
    if args.to == "kafka":
        with _delivery_reported():
            counts = produce_kafka(
                messages,
                kafka,
                topics,
                Encoding(args.encoding),
                compression=args.compression,
                producer_config=QUIET_PRODUCER,
            )
    elif args.to == "file":
        counts = write_jsonl(messages, args.out)
    else:
        counts = dict(Counter(str(m.signal) for m in messages))
    elapsed = time.perf_counter() - began
    print(
        f"messages {counts}, records {dict(records)} in {elapsed:.2f}s: "
        f"{records['traces'] / elapsed:,.0f} spans/s"
    )
    if args.to == "file":
        print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0
