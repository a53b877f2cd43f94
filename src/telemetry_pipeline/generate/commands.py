"""`telemetry-pipeline generate`: synthetic OTLP load to Kafka or to an OTLP/JSON Lines file."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from telemetry_pipeline.generate.config import Fault, GeneratorConfig, OutputTopics
from telemetry_pipeline.generate.model import GeneratedMessage
from telemetry_pipeline.otlp import Encoding

_FAULT_HELP = (
    "KIND:key=value,... (repeatable). Kinds: error_spike (service, at, for, rate), latency_regression "
    "(service, at, for, factor), silent (service, at, for), deploy (service, at, version, for, "
    "latency_factor, error_rate), garbage (share, at, for). Example: "
    "'error_spike:service=checkout,at=10m,for=5m,rate=0.3'"
)
_fault_adapter: TypeAdapter[Any] = TypeAdapter(Fault)


def parse_fault(text: str) -> Any:
    """'kind:key=value,key=value' into a fault model."""
    kind, _, options = text.partition(":")
    fields: dict[str, str] = {"kind": kind.strip()}
    for option in filter(None, (part.strip() for part in options.split(","))):
        key, separator, value = option.partition("=")
        if not separator:
            raise argparse.ArgumentTypeError(f"fault option {option!r} is not key=value")
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
    parser.add_argument("--bootstrap", default="localhost:9092", metavar="HOST:PORT")
    parser.add_argument("--encoding", choices=[e.value for e in Encoding], default=Encoding.PROTO.value)
    parser.add_argument("--compression", default="none", help="Kafka compression.type (none, lz4, zstd ...)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--services", type=int, default=defaults.services)
    parser.add_argument("--no-gateway", action="store_true", help="leave out the metrics-only service")
    parser.add_argument("--duration", default="10m", help="event time covered (e.g. 90s, 10m, 2d)")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="requests per second of event time")
    parser.add_argument("--start", default=None, help="RFC 3339 start of event time, or 'now'")
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
        "--context-out", type=Path, default=None, help="directory for users.jsonl and catalog.jsonl"
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
        values["start_time"] = args.start
    return GeneratorConfig.model_validate(values)


def run(args: argparse.Namespace) -> int:
    from telemetry_pipeline.generate import context_records, iter_messages
    from telemetry_pipeline.generate.sinks import (
        produce_context,
        produce_kafka,
        write_context_files,
        write_jsonl,
    )

    try:
        config = _config(args)
    except ValidationError as exc:
        print(f"telemetry-pipeline generate: {exc}", file=sys.stderr)
        return 2
    topics = OutputTopics(**{f: getattr(args, f"topic_{f}") for f in OutputTopics.model_fields})
    if args.context_out is not None or args.publish_context:
        users, services = context_records(config)
        if args.context_out is not None:
            for path in write_context_files(users, services, args.context_out):
                print(f"wrote {path}")
        if args.publish_context:
            print(f"context: {produce_context(users, services, args.bootstrap, topics)}")
    records: Counter[str] = Counter()

    def counted(messages: Iterable[GeneratedMessage]) -> Iterator[GeneratedMessage]:
        for message in messages:
            records[str(message.signal)] += message.records
            yield message

    messages = counted(iter_messages(config))
    began = time.perf_counter()
    if args.to == "kafka":
        counts = produce_kafka(
            messages, args.bootstrap, topics, Encoding(args.encoding), compression=args.compression
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
    return 0
