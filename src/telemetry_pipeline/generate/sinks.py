"""Where generated messages go: OTLP/JSON Lines files or Kafka topics (plus the context tables)."""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from telemetry_pipeline.config import KafkaConfig
from telemetry_pipeline.generate.config import OutputTopics
from telemetry_pipeline.generate.model import GeneratedMessage
from telemetry_pipeline.kafka.connection import librdkafka_settings
from telemetry_pipeline.otlp import Encoding, message_to_json

USERS_FILE = "users.jsonl"
CATALOG_FILE = "catalog.jsonl"
GARBAGE = "garbage"


class Producer(Protocol):
    """The part of confluent_kafka.Producer used here (a fake stands in for it in tests)."""

    def produce(
        self, topic: str, value: bytes, key: bytes | None = None, on_delivery: Any = None
    ) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "wb", compresslevel=5)  # type: ignore[return-value]
    return path.open("wb")


def write_jsonl(messages: Iterable[GeneratedMessage], path: str | Path) -> dict[str, int]:
    """OTLP/JSON Lines as the Collector's file exporter writes them (gzip if the name ends in .gz).

    Garbage payloads are written as their own (undecodable) lines. Returns lines per signal.
    """
    counts: Counter[str] = Counter()
    with _open(Path(path)) as out:
        for message in messages:
            if message.is_garbage:
                out.write(message.payload + b"\n")
                counts[GARBAGE] += 1
            else:
                out.write(orjson.dumps(message_to_json(message.message)) + b"\n")  # type: ignore[arg-type]
                counts[str(message.signal)] += 1
    return dict(counts)


def context_lines(records: Mapping[str, dict[str, Any]]) -> Iterator[bytes]:
    """Context-table lines in replay's format: {"key": ..., "value": {...}}."""
    for key, value in records.items():
        yield orjson.dumps({"key": key, "value": value}) + b"\n"


def write_context_files(
    users: Mapping[str, dict[str, Any]], services: Mapping[str, dict[str, Any]], directory: str | Path
) -> tuple[Path, Path]:
    """users.jsonl and catalog.jsonl in `directory` (created if missing)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / USERS_FILE, directory / CATALOG_FILE
    for path, records in zip(paths, (users, services), strict=True):
        path.write_bytes(b"".join(context_lines(records)))
    return paths


def _producer(
    kafka: KafkaConfig | str,
    linger_ms: int,
    batch_size: int,
    compression: str,
    extra: Mapping[str, Any] | None,
) -> Producer:
    from confluent_kafka import Producer as KafkaProducer

    settings: dict[str, Any] = {
        **librdkafka_settings(kafka),  # TLS and SASL as the worker speaks them
        "linger.ms": linger_ms,
        "batch.size": batch_size,
        "compression.type": compression,
        "acks": "all",
        "enable.idempotence": True,
        "queue.buffering.max.kbytes": 512 * 1024,
        "message.max.bytes": 8 * 1024 * 1024,
    }
    settings.update(extra or {})
    return KafkaProducer(settings)


class _Deliveries:
    """Counts delivery reports; the first failure is kept for the error message."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.first_error: str | None = None

    def __call__(self, error: Any, _message: Any) -> None:
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = str(error)


def _send(producer: Producer, topic: str, value: bytes, key: bytes | None, deliveries: _Deliveries) -> None:
    while True:
        try:
            producer.produce(topic, value, key=key, on_delivery=deliveries)
            break
        except BufferError:  # the local queue is full: serve delivery reports until there is room
            producer.poll(0.1)
    producer.poll(0)


def _finish(producer: Producer, deliveries: _Deliveries, sent: int, flush_timeout_s: float) -> None:
    remaining = producer.flush(flush_timeout_s)
    if deliveries.failed or remaining:
        raise RuntimeError(
            f"{deliveries.failed} of {sent} messages failed and {remaining} were still queued after "
            f"{flush_timeout_s}s; first error: {deliveries.first_error}"
        )


def produce_kafka(
    messages: Iterable[GeneratedMessage],
    kafka: KafkaConfig | str,
    topics: OutputTopics | None = None,
    encoding: Encoding = Encoding.PROTO,
    *,
    linger_ms: int = 20,
    batch_size: int = 1_000_000,
    compression: str = "none",
    producer_config: Mapping[str, Any] | None = None,
    flush_timeout_s: float = 60.0,
    producer: Producer | None = None,
) -> dict[str, int]:
    """Send each message to its signal's topic; wait for every delivery report.

    Returns messages delivered per topic. Raises RuntimeError when any delivery failed.
    `compression` is librdkafka's compression.type (none, lz4, zstd, gzip, snappy).
    """
    topics = topics or OutputTopics()
    producer = producer or _producer(kafka, linger_ms, batch_size, compression, producer_config)
    deliveries = _Deliveries()
    counts: Counter[str] = Counter()
    for message in messages:
        topic = topics.for_signal(message.signal)
        _send(producer, topic, message.encoded(encoding), message.key, deliveries)
        counts[topic] += 1
    _finish(producer, deliveries, sum(counts.values()), flush_timeout_s)
    return dict(counts)


def produce_context(
    users: Mapping[str, dict[str, Any]],
    services: Mapping[str, dict[str, Any]],
    kafka: KafkaConfig | str,
    topics: OutputTopics | None = None,
    *,
    producer_config: Mapping[str, Any] | None = None,
    flush_timeout_s: float = 60.0,
    producer: Producer | None = None,
) -> dict[str, int]:
    """Publish the context tables to their compacted topics: key = id, value = JSON object."""
    topics = topics or OutputTopics()
    producer = producer or _producer(kafka, 5, 1_000_000, "none", producer_config)
    deliveries = _Deliveries()
    counts: Counter[str] = Counter()
    for topic, records in ((topics.user_context, users), (topics.service_catalog, services)):
        for key, value in records.items():
            _send(producer, topic, orjson.dumps(value), key.encode(), deliveries)
            counts[topic] += 1
    _finish(producer, deliveries, sum(counts.values()), flush_timeout_s)
    return dict(counts)
