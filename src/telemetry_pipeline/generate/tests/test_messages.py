from __future__ import annotations

import gzip
from collections import defaultdict

import orjson
import pytest

from telemetry_pipeline.generate import (
    GeneratorConfig,
    OutputTopics,
    context_records,
    iter_messages,
    produce_context,
    produce_kafka,
    write_context_files,
    write_jsonl,
)
from telemetry_pipeline.generate.tests.support import spans
from telemetry_pipeline.otlp import DecodeError, Encoding, Signal, decode, message_from_json


def test_trace_id_key_mode_sends_each_trace_alone_keyed_by_its_hex_id() -> None:
    traces = [
        m for m in iter_messages(GeneratorConfig(duration="20s", key="trace_id")) if m.signal is Signal.TRACES
    ]
    assert len(traces) == 20 * 50
    for message in traces:
        trace_ids = {r.span.trace_id for r in spans([message])}
        assert len(trace_ids) == 1
        assert message.key == trace_ids.pop().hex().encode() and len(message.key) == 32


def test_none_key_mode_packs_whole_traces_up_to_the_span_limit() -> None:
    messages = [
        m
        for m in iter_messages(GeneratorConfig(duration="30s", spans_per_message=200))
        if m.signal is Signal.TRACES
    ]
    where = defaultdict(set)
    for message in messages:
        assert message.key is None and message.records <= 200
        assert message.records == sum(1 for _ in spans([message]))
    for record in spans(messages):
        where[record.span.trace_id].add(record.message_index)
    assert all(len(indexes) == 1 for indexes in where.values())
    assert sum(m.records for m in messages[:-1]) / (len(messages) - 1) > 180  # messages are nearly full


@pytest.mark.parametrize("key", ["none", "trace_id"])
def test_split_traces_send_the_root_after_the_rest_of_its_trace(key: str) -> None:
    config = GeneratorConfig(duration="30s", spans_per_message=200, key=key, split_traces=0.5)
    messages = list(iter_messages(config))
    placement = defaultdict(lambda: {"root": set(), "children": set()})
    for record in spans(messages):
        part = "children" if record.span.parent_span_id else "root"
        placement[record.span.trace_id][part].add(record.message_index)
    split = [p for p in placement.values() if p["root"].isdisjoint(p["children"])]
    assert 0.4 < len(split) / len(placement) < 0.6
    for p in split:
        assert min(p["root"]) > max(p["children"])


def test_jsonl_round_trips_through_message_from_json(tmp_path) -> None:
    config = GeneratorConfig(duration="70s", rate=10, faults=[{"kind": "garbage", "share": 0.3}])
    messages = list(iter_messages(config))
    path = tmp_path / "otlp.jsonl.gz"
    counts = write_jsonl(messages, path)
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert len(lines) == len(messages) == sum(counts.values())
    assert counts["garbage"] == sum(m.is_garbage for m in messages) > 0
    for message, line in zip(messages, lines, strict=True):
        if message.is_garbage:
            with pytest.raises((DecodeError, orjson.JSONDecodeError)):
                message_from_json(orjson.loads(line))
            continue
        signal, parsed = message_from_json(orjson.loads(line))
        assert signal is message.signal and parsed == message.message
    assert {Signal.TRACES, Signal.LOGS, Signal.METRICS} <= {m.signal for m in messages}


def test_encoded_matches_the_codec_in_both_encodings() -> None:
    for message in iter_messages(GeneratorConfig(duration="60s", rate=5)):
        assert message.encoded(Encoding.PROTO) == message.payload
        assert decode(message.signal, message.encoded(Encoding.JSON)) == message.message
        message.message.Clear()  # once the parsed message changes, encoded() follows it
        assert message.encoded(Encoding.PROTO) == b""


def test_context_records_and_files_in_replays_format(tmp_path) -> None:
    config = GeneratorConfig(users=50, services=4)
    users, services = context_records(config)
    assert len(users) == 50
    assert all(set(v) == {"tenant", "plan", "region"} for v in users.values())
    assert list(services) == ["frontend", "checkout", "payment", "cart", "gateway"]
    assert services["payment"]["slo"]["availability"] == 99.9 and "slo" not in services["cart"]
    users_path, catalog_path = write_context_files(users, services, tmp_path / "ctx")
    lines = [orjson.loads(line) for line in users_path.read_bytes().splitlines()]
    assert {line["key"]: line["value"] for line in lines} == users
    assert [orjson.loads(line)["key"] for line in catalog_path.read_bytes().splitlines()] == list(services)


class FakeProducer:
    """Stands in for confluent_kafka.Producer: queues up to `room` messages, reports on poll/flush."""

    def __init__(self, room: int = 3, fail_topic: str | None = None) -> None:
        self.room, self.fail_topic = room, fail_topic
        self.queued: list[tuple] = []
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def produce(self, topic, value, key=None, on_delivery=None) -> None:
        if len(self.queued) >= self.room:
            raise BufferError("queue full")
        self.queued.append((topic, key, value, on_delivery))

    def poll(self, timeout: float) -> int:
        served = len(self.queued)
        for topic, key, value, on_delivery in self.queued:
            self.sent.append((topic, key, value))
            on_delivery("broker down" if topic == self.fail_topic else None, None)
        self.queued.clear()
        return served

    def flush(self, timeout: float) -> int:
        self.poll(timeout)
        return 0


def test_produce_kafka_routes_by_signal_and_waits_for_deliveries() -> None:
    messages = list(iter_messages(GeneratorConfig(duration="2m", rate=5, key="trace_id")))
    producer = FakeProducer(room=2)
    topics = OutputTopics(traces="t", logs="l", metrics="m")
    counts = produce_kafka(messages, "unused:9092", topics, Encoding.PROTO, producer=producer)
    assert counts == {"t": 600, "l": sum(m.signal is Signal.LOGS for m in messages), "m": 2}
    assert [(m.key, m.payload) for m in messages] == [(key, value) for _, key, value in producer.sent]


def test_produce_kafka_raises_when_a_delivery_fails() -> None:
    messages = iter_messages(GeneratorConfig(duration="70s", rate=5))
    with pytest.raises(RuntimeError, match="broker down"):
        produce_kafka(messages, "unused:9092", producer=FakeProducer(fail_topic="otlp_metrics"))


def test_produce_context_writes_json_values_keyed_by_id() -> None:
    users, services = context_records(GeneratorConfig(users=3))
    producer = FakeProducer()
    counts = produce_context(users, services, "unused:9092", producer=producer)
    assert counts == {"user-context": 3, "service-catalog": 9}
    assert {k.decode(): orjson.loads(v) for t, k, v in producer.sent if t == "user-context"} == users
