"""Records through the real broker: confluent-kafka produces with every codec the Collector's
kafkaexporter may use, aiokafka (the worker's client) and confluent-kafka both read them back."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, Producer

from telemetry_pipeline.kafka.tests.fixtures import FreshTopics

pytestmark = pytest.mark.kafka

CODECS = ("lz4", "zstd", "snappy", "gzip")
RECORDS_PER_CODEC = 50


def _produce(bootstrap: str, topic: str) -> set[tuple[bytes, bytes, bytes]]:
    sent = set()
    for codec in CODECS:
        # linger so that each codec's records travel as one compressed batch per partition
        producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 50})
        for i in range(RECORDS_PER_CODEC):
            key, value = f"{codec}-{i}".encode(), (f"{codec} payload {i} " * 40).encode()
            producer.produce(topic, value, key, headers=[("codec", codec.encode())])
            sent.add((key, value, codec.encode()))
        assert producer.flush(30) == 0
    return sent


async def _read_with_aiokafka(bootstrap: str, topic: str, count: int) -> set[tuple[bytes, bytes, bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    received: set[tuple[bytes, bytes, bytes]] = set()
    try:
        async with asyncio.timeout(60):
            while len(received) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    received.update((r.key, r.value, dict(r.headers)["codec"]) for r in records)
    finally:
        await consumer.stop()
    return received


def _read_with_confluent(bootstrap: str, topic: str, count: int) -> set[tuple[bytes, bytes, bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    received: set[tuple[bytes, bytes, bytes]] = set()
    deadline = time.monotonic() + 60
    try:
        while len(received) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                received.add((message.key(), message.value(), dict(message.headers())["codec"]))
    finally:
        consumer.close()
    return received


def test_compressed_batches_reach_aiokafka_and_confluent_consumers(
    kafka_bootstrap: str, fresh_topics: FreshTopics,
) -> None:
    topic = fresh_topics(["compressed"], 2)["compressed"]
    sent = _produce(kafka_bootstrap, topic)
    assert len(sent) == len(CODECS) * RECORDS_PER_CODEC
    assert asyncio.run(_read_with_aiokafka(kafka_bootstrap, topic, len(sent))) == sent
    assert _read_with_confluent(kafka_bootstrap, topic, len(sent)) == sent
