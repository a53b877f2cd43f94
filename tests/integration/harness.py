"""Running the real worker against the real broker: config files, the worker process, consumers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, ConsumerGroupState, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from telemetry_pipeline.demo import stop_worker
from telemetry_pipeline.enrichment.config import EnrichmentConfig
from telemetry_pipeline.generate import GeneratedMessage, GeneratorConfig, OutputTopics, iter_messages
from telemetry_pipeline.kafka.topics import apply, load_specs
from telemetry_pipeline.otlp import Signal, decode

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Deployment:
    """One isolated pipeline deployment: its own topic names, consumer group and data dir."""

    bootstrap: str
    prefix: str
    config_path: Path
    workdir: Path

    def topic(self, name: str) -> str:
        return self.prefix + name

    def generator_topics(self) -> OutputTopics:
        """Where `telemetry_pipeline.generate`'s producers must send to feed this deployment."""
        return OutputTopics(
            traces=self.topic("otlp_spans"),
            metrics=self.topic("otlp_metrics"),
            logs=self.topic("otlp_logs"),
            user_context=self.topic("user-context"),
            service_catalog=self.topic("service-catalog"),
        )

    def topics_on_broker(self) -> list[str]:
        """Every topic of this deployment, including those the worker created (Faust changelogs)."""
        listed = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=30).topics
        return sorted(name for name in listed if name.startswith(self.prefix))


def deploy(
    bootstrap: str, workdir: Path, extra: dict[str, Any] | None = None, partitions: int = 2
) -> Deployment:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    apply(bootstrap, load_specs(REPO / "topics"), partitions=partitions, name_prefix=prefix)
    names = {
        "spans": "otlp_spans",
        "metrics": "otlp_metrics",
        "logs": "otlp_logs",
        "spans_clean": "otlp_spans.clean",
        "metrics_clean": "otlp_metrics.clean",
        "logs_clean": "otlp_logs.clean",
        "dlq": "telemetry.dlq",
        "sli_partials": "sli-partials",
        "sli": "sli",
        "incidents": "incidents",
        "maintenance": "maintenance",
    }
    config: dict[str, Any] = {
        "kafka": {"bootstrap_servers": bootstrap, "producer_linger_ms": 5},
        "topics": {field: prefix + name for field, name in names.items()},
        "worker": {
            "app_id": prefix + "app",
            "data_dir": str(workdir / "worker"),
            "metrics_port": None,
            "table_partitions": partitions,
        },
        "context": {
            "user_context_topic": prefix + "user-context",
            "service_catalog_topic": prefix + "service-catalog",
        },
    }
    for section, values in (extra or {}).items():
        config.setdefault(section, {}).update(values)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return Deployment(bootstrap, prefix, path, workdir)


@contextmanager
def running_worker(deployment: Deployment, name: str = "worker") -> Iterator[subprocess.Popen]:
    log_path = deployment.workdir / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TP_")}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "telemetry_pipeline.cli",
                "worker",
                "--config",
                str(deployment.config_path),
                "--loglevel",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=deployment.workdir,
        )
    try:
        yield process
    finally:
        stop_worker(process)
        if os.environ.get("TP_TEST_SHOW_WORKER_LOG"):
            print(log_path.read_text(errors="replace")[-5000:])


def produce(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes | None, bytes]],
    partitions: list[int] | None = None,
    max_bytes: int = 1_000_000,
) -> None:
    """Records by the Collector's partitioner (murmur2 on the key), or to the given partitions."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "message.max.bytes": max_bytes}
    )
    for index, (key, value) in enumerate(records):
        if partitions is None:
            producer.produce(topic, value, key)
        else:
            producer.produce(topic, value, key, partition=partitions[index])
    assert producer.flush(30) == 0


def consume_until(
    bootstrap: str,
    topics: list[str],
    done: Callable[[list[Message]], bool],
    timeout_s: float = 90,
) -> list[Message]:
    """Read `topics` from the beginning until `done(messages)` or the timeout; returns what was read."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not done(messages):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return messages


def read_all(bootstrap: str, topics: list[str], timeout_s: float = 60) -> list[Message]:
    """Every record of `topics` up to the end offsets they have when called (no consumer group)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(timeout=30).topics
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            for partition in metadata[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
                if high > low:
                    ends[topic, partition] = high
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for topic, partition in ends])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while ends:
            assert time.monotonic() < deadline, f"not read to the end in {timeout_s}s: {ends}"
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            messages.append(message)
            position = message.topic(), message.partition()
            if position in ends and message.offset() + 1 >= ends[position]:
                del ends[position]
    finally:
        consumer.close()
    return messages


class TopicReader:
    """Reads topics from the beginning, incrementally, without a consumer group (assigned partitions,
    so no group join to wait for); `messages` keeps everything read so far, across `read_until` calls."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        metadata = self._consumer.list_topics(timeout=30).topics
        self._consumer.assign(
            [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in metadata[t].partitions]
        )
        self.messages: list[Message] = []

    def read_until(
        self, done: Callable[[list[Message]], bool], timeout_s: float = 60, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not done(self.messages):
            assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what or done}"
            message = self._consumer.poll(0.2)
            if message is not None and message.error() is None:
                self.messages.append(message)

    def close(self) -> None:
        self._consumer.close()


PROBE_KEY = b"readiness-probe"


def await_group_members(
    deployment: Deployment, count: int, timeout_s: float = 120
) -> list[set[TopicPartition]]:
    """Until the workers' consumer group is stable with `count` members, each assigned partitions;
    returns their assignments."""
    admin = AdminClient({"bootstrap.servers": deployment.bootstrap})
    group = deployment.prefix + "app"
    deadline = time.monotonic() + timeout_s
    while True:
        description = admin.describe_consumer_groups([group])[group].result(timeout=10)
        members = description.members
        if (
            description.state == ConsumerGroupState.STABLE
            and len(members) == count
            and all(m.assignment and m.assignment.topic_partitions for m in members)
        ):
            return [set(m.assignment.topic_partitions) for m in members]
        assert time.monotonic() < deadline, f"group {group} not stable with {count} members in {timeout_s}s"
        time.sleep(0.5)


def await_worker_ready(deployment: Deployment, timeout_s: float = 120) -> None:
    """Until a freshly started worker processes input: undecodable probes to the spans topic, until
    one reaches the DLQ (no effect on .clean or the SLIs).

    Records fetched while Faust finishes recovery (between resuming the partitions and seeking them
    to the committed offsets) are dropped when it resumes flow (faust-streaming#596, open in 0.15.3,
    see docs/FAUST-NOTES.md); tests that count records exactly send them only once past that.
    """
    dlq = deployment.topic("telemetry.dlq")
    reader = TopicReader(deployment.bootstrap, [dlq])
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            produce(deployment.bootstrap, deployment.topic("otlp_spans"), [(PROBE_KEY, b"\xffprobe")])
            try:
                reader.read_until(lambda msgs: any(m.key() == PROBE_KEY for m in msgs), timeout_s=2)
                return
            except AssertionError:
                assert time.monotonic() < deadline, f"the worker processed no probe in {timeout_s}s"
    finally:
        reader.close()


def item_ids(signal: Signal, payload: bytes) -> list[tuple]:
    """One id per span, log record or data point of an OTLP message, stable through the pipeline
    (redaction and enrichment change attributes and bodies, never these fields)."""
    message = decode(signal, payload)
    if signal is Signal.TRACES:
        return [
            (s.trace_id, s.span_id)
            for rs in message.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]
    if signal is Signal.LOGS:
        return [
            (r.time_unix_nano, r.trace_id, r.span_id, r.severity_number, index)
            for rl in message.resource_logs
            for sl in rl.scope_logs
            for index, r in enumerate(sl.log_records)
        ]
    ids: list[tuple] = []
    for rm in message.resource_metrics:
        # Pods of a service send the same metrics at the same times: the instance tells them apart.
        resource = tuple(
            a.value.string_value
            for a in rm.resource.attributes
            if a.key in ("service.name", "service.instance.id")
        )
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points = getattr(metric, metric.WhichOneof("data")).data_points
                ids.extend((resource, metric.name, p.time_unix_nano, index) for index, p in enumerate(points))
    return ids


def generated_load(
    spans: int, seed: int = 1, spans_per_message: int = 100
) -> list[tuple[Signal, bytes | None, bytes]]:
    """Generator traffic of about `spans` spans with its logs and metrics: (signal, key, payload)."""
    config = GeneratorConfig(
        seed=seed,
        rate=50,
        duration=timedelta(seconds=max(1, spans // 400)),
        spans_per_message=spans_per_message,
        logs_per_message=spans_per_message,
        key="trace_id",
        metrics_interval=timedelta(seconds=5),
    )
    return [(m.signal, m.key, m.payload) for m in iter_messages(config) if not m.is_garbage]


def count_items(messages: Iterable[tuple[Signal, bytes]]) -> Counter[tuple]:
    """Every item id of (signal, payload) pairs, with how often it occurs."""
    counted: Counter[tuple] = Counter()
    for signal, payload in messages:
        counted.update((signal, *item) for item in item_ids(signal, payload))
    return counted


def set_topic_config(bootstrap: str, topic: str, settings: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
            for name, value in settings.items()
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def committed_offsets(deployment: Deployment, topic: str) -> dict[int, int]:
    """The worker group's committed offset per partition of `topic` (-1001 when none)."""
    consumer = Consumer({"bootstrap.servers": deployment.bootstrap, "group.id": deployment.prefix + "app"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        return {tp.partition: tp.offset for tp in committed}
    finally:
        consumer.close()


def await_committed(deployment: Deployment, topics: list[str], timeout_s: float = 120) -> None:
    """Until the worker group has committed every record of `topics` (empty partitions need no
    commit): nothing is left that a worker would process again, and no partition is stuck."""
    deadline = time.monotonic() + timeout_s
    while True:
        behind = {}
        for topic in topics:
            committed = committed_offsets(deployment, topic)
            behind.update({
                f"{topic}[{partition}]": f"{max(committed[partition], 0)} of {end}"
                for partition, end in end_offsets(deployment.bootstrap, topic).items()
                if end > 0 and committed[partition] != end
            })
        if not behind:
            return
        assert time.monotonic() < deadline, f"input not committed in {timeout_s}s: {behind}"
        time.sleep(0.5)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The high watermark of each partition of `topic`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions
        }
    finally:
        consumer.close()


CLEAN_SIGNALS = {
    "otlp_spans.clean": Signal.TRACES,
    "otlp_logs.clean": Signal.LOGS,
    "otlp_metrics.clean": Signal.METRICS,
}


class OutputItems:
    """Counts the items on a deployment's .clean topics as a TopicReader reads them (incrementally)."""

    def __init__(self, deployment: Deployment) -> None:
        self._signals = {deployment.topic(name): signal for name, signal in CLEAN_SIGNALS.items()}
        self.items: Counter[tuple] = Counter()
        self._seen = 0

    def update(self, messages: list[Message]) -> Counter[tuple]:
        for message in messages[self._seen :]:
            signal = self._signals.get(message.topic())
            if signal is not None:
                self.items.update((signal, *item) for item in item_ids(signal, message.value()))
        self._seen = len(messages)
        return self.items


def clean_topics(deployment: Deployment) -> list[str]:
    return [deployment.topic(name) for name in CLEAN_SIGNALS]


def load_producer(deployment: Deployment) -> Producer:
    return Producer(
        {"bootstrap.servers": deployment.bootstrap, "partitioner": "murmur2_random", "linger.ms": 20}
    )


def produce_load(
    deployment: Deployment,
    load: list[tuple[Signal, bytes | None, bytes]],
    producer: Producer | None = None,
) -> None:
    """`generated_load` messages to the deployment's input topics (traces keyed by trace id). With a
    `producer`, returns once they are queued (the caller flushes); without, once all are delivered."""
    topics = deployment.generator_topics()
    flush = producer is None
    producer = producer or load_producer(deployment)
    for signal, key, payload in load:
        while True:
            try:
                producer.produce(topics.for_signal(signal), payload, key)
                break
            except BufferError:
                producer.poll(0.1)
    if flush:
        assert producer.flush(120) == 0


def event_time_chunks(
    messages: Iterable[GeneratedMessage],
    start_ns: int,
    chunk: timedelta,
    lead: dict[Signal, timedelta] | None = None,
) -> list[list[GeneratedMessage]]:
    """`messages` grouped by the `chunk` of event time (counted from `start_ns`) each falls in, in order;
    a signal given a `lead` goes that much earlier (spans ahead of logs: a log at a chunk's end then
    finds its trace's root span in its own chunk instead of waiting the enrichment hold's grace)."""
    chunk_ns = chunk // timedelta(microseconds=1) * 1000
    lead_ns = {signal: ahead // timedelta(microseconds=1) * 1000 for signal, ahead in (lead or {}).items()}
    chunks: dict[int, list[GeneratedMessage]] = {}
    for message in messages:
        index = (message.event_time_ns - lead_ns.get(message.signal, 0) - start_ns) // chunk_ns
        chunks.setdefault(max(index, 0), []).append(message)
    return [chunks[index] for index in sorted(chunks)]


class RoundRobin:
    """Partitions for successive records of each signal, round-robin over a topic's partitions: every
    input partition's event time moves on. (librdkafka's partitioner sends a short run of keyless
    records mostly to one partition; one left behind holds the SLI watermark for `sli.idle_after`.)"""

    def __init__(self, partitions: int) -> None:
        self._partitions = partitions
        self._next = dict.fromkeys(Signal, 0)

    def next(self, signal: Signal, count: int) -> list[int]:
        first = self._next[signal]
        self._next[signal] += count
        return [(first + i) % self._partitions for i in range(count)]


class PacedFeed:
    """Feeds a deployment's input topics one chunk of generated messages at a time, each spread
    round-robin over a topic's partitions and sent once the previous chunk is through ingest (as many
    records on the .clean topics as messages fed): every input partition's event time then moves
    together and none falls behind the SLI watermark, as with a Collector sending live. `reader` reads
    the .clean topics and the deployment's topics `also` (e.g. sli, incidents) from the beginning."""

    def __init__(self, deployment: Deployment, partitions: int, also: Iterable[str] = ()) -> None:
        self._deployment = deployment
        self._placement = RoundRobin(partitions)
        self._clean = set(clean_topics(deployment))
        self.reader = TopicReader(deployment.bootstrap, [*self._clean, *map(deployment.topic, also)])
        self._sent = 0
        self._values: dict[str, list[Any]] = {}  # topic -> JSON values of the `also` topics
        self._decoded_until = 0

    def send(self, chunk: list[GeneratedMessage]) -> None:
        topics = self._deployment.generator_topics()
        for signal in Signal:
            records = [(m.key, m.payload) for m in chunk if m.signal is signal]
            targets = self._placement.next(signal, len(records))
            produce(self._deployment.bootstrap, topics.for_signal(signal), records, targets)
        self._sent += len(chunk)
        self.reader.read_until(
            lambda read: sum(m.topic() in self._clean for m in read) >= self._sent,
            what=f"{self._sent} records on the .clean topics",
        )

    def values(self, name: str) -> list[Any]:
        """The JSON values read so far from the deployment's topic `name` (each decoded once)."""
        for message in self.reader.messages[self._decoded_until :]:
            if message.topic() not in self._clean:
                self._values.setdefault(message.topic(), []).append(orjson.loads(message.value()))
        self._decoded_until = len(self.reader.messages)
        return self._values.get(self._deployment.topic(name), [])

    def latest_step(self) -> str:
        """The newest `window_end` among the snapshots read (the deployment's `sli` topic in `also`)."""
        return max((snapshot["window_end"] for snapshot in self.values("sli")), default="")


ROOT_SERVICE = EnrichmentConfig().attributes.root_service


def rooted_traces(traces: Iterable[Any]) -> set[bytes]:
    """The trace ids whose root span is among these (decoded) spans messages."""
    rooted = set()
    for message in traces:
        for resource in message.resource_spans:
            for scope in resource.scope_spans:
                rooted.update(span.trace_id for span in scope.spans if not span.parent_span_id)
    return rooted


def log_coverage(log_messages: Iterable[Any], rooted: set[bytes]) -> tuple[int, int]:
    """(log records of a rooted trace, those of them carrying the root's context) in decoded logs messages."""
    total = enriched = 0
    for message in log_messages:
        for resource in message.resource_logs:
            for scope in resource.scope_logs:
                for record in scope.log_records:
                    if record.trace_id in rooted:
                        total += 1
                        enriched += any(a.key == ROOT_SERVICE for a in record.attributes)
    return total, enriched
