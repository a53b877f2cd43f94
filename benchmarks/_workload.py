"""What the benchmarks share: the workload flags, the generated workload, reading output topics, the
results files.

The workload is made by `telemetry_pipeline.generate` and held in memory as encoded protobuf
payloads, so generating it is never part of a measurement.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from confluent_kafka import Consumer, TopicPartition

from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.generate import GeneratedMessage, GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.otlp import Signal

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# What the records of each signal are called in the reports.
ITEM_NAMES = {Signal.TRACES: "spans", Signal.METRICS: "points", Signal.LOGS: "logs"}
# Messages per Core.process call, as the worker takes them (worker.batch_max_messages).
DEFAULT_BATCH_MESSAGES = 64

T = TypeVar("T")


def add_workload_flags(parser: argparse.ArgumentParser, *, default_spans: int) -> None:
    group = parser.add_argument_group("workload (made by telemetry_pipeline.generate)")
    group.add_argument(
        "--spans",
        type=int,
        default=default_spans,
        help=f"spans in the workload; logs and metrics come alongside (default {default_spans:,})",
    )
    group.add_argument(
        "--spans-per-message", type=int, default=500, help="spans (and log records) per message"
    )
    group.add_argument("--attrs-min", type=int, default=10, help="fewest attributes per span (default 10)")
    group.add_argument("--attrs-max", type=int, default=20, help="most attributes per span (default 20)")
    group.add_argument("--pii-share", type=float, default=0.05, help="share of spans and logs with PII")
    group.add_argument("--services", type=int, default=8, help="traced services (default 8)")
    group.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")


def generator_config(args: argparse.Namespace) -> GeneratorConfig:
    return GeneratorConfig(
        seed=args.seed,
        services=args.services,
        # Long enough never to end before --spans; the iterator is lazy and stops there.
        duration=timedelta(days=30),
        spans_per_message=args.spans_per_message,
        logs_per_message=args.spans_per_message,
        attributes_per_span=(args.attrs_min, args.attrs_max),
        pii_share=args.pii_share,
    )


@dataclass
class Workload:
    config: GeneratorConfig
    messages: list[GeneratedMessage]
    users: dict[str, dict[str, Any]]
    services: dict[str, dict[str, Any]]

    def items(self) -> Counter[Signal]:
        """Spans, log records and data points per signal."""
        counts: Counter[Signal] = Counter()
        for message in self.messages:
            counts[message.signal] += message.records
        return counts

    def describe(self) -> dict[str, Any]:
        counts: Counter[Signal] = Counter(message.signal for message in self.messages)
        return {
            "generator": self.config.model_dump(mode="json", exclude={"duration", "faults"}),
            "messages": {str(signal): counts[signal] for signal in Signal},
            "items": {ITEM_NAMES[signal]: count for signal, count in self.items().items()},
            "payload_bytes": sum(len(message.payload) for message in self.messages),
        }

    def user_directory(self) -> UserDirectory:
        directory = UserDirectory()
        directory.load(self.users)
        return directory


def build_workload(args: argparse.Namespace) -> Workload:
    config = generator_config(args)
    messages: list[GeneratedMessage] = []
    spans = 0
    for message in iter_messages(config):
        messages.append(message)
        if message.signal is Signal.TRACES:
            spans += message.records
            if spans >= args.spans:
                break
    users, services = context_records(config)
    return Workload(config, messages, users, services)


class TopicReader(threading.Thread):
    """Reads partitions from offset 0 in a thread of its own and hands each message, with its arrival
    time (ns), to `on_message`; what stopped it early is kept in `error`."""

    def __init__(self, name: str, bootstrap: str, group_id: str, partitions: list[TopicPartition]) -> None:
        super().__init__(name=name, daemon=True)
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group_id,  # required by librdkafka; never joined (assign)
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,  # arrival time should be the broker's, not a fetch's wait
                "fetch.min.bytes": 1,
            }
        )
        self._consumer.assign(partitions)
        self._stop_event = threading.Event()
        self.error: BaseException | None = None

    def on_message(self, message: Any, arrived_ns: int) -> None:
        raise NotImplementedError

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                for message in self._consumer.consume(1000, 0.1):
                    if message.error():
                        continue
                    self.on_message(message, time.time_ns())
        except BaseException as exc:
            self.error = exc
        finally:
            self._consumer.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def save_figure(figure: Figure, path: Path, dpi: int = 100) -> None:
    """Lay the plot out, write it, and close it (pyplot keeps every open figure alive)."""
    import matplotlib.pyplot as plt  # here: the benchmarks without plots need no matplotlib

    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def host_info() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0
