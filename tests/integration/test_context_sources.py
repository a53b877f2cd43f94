"""The context-topic followers against the real broker: load, live updates, tombstones, bad records."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from telemetry_pipeline.app.context_sources import CompactedTopicFollower
from telemetry_pipeline.config import KafkaConfig
from telemetry_pipeline.enrichment import UserDirectory

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


def create_compacted_topic(bootstrap: str, partitions: int = 2, name: str | None = None) -> str:
    name = name or f"t{uuid.uuid4().hex[:8]}-user-context"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config={"cleanup.policy": "compact"})])
    futures[name].result(timeout=30)
    return name


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def profile(**fields: str) -> bytes:
    return orjson.dumps(fields)


async def eventually(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def test_follower_loads_the_topic_then_applies_live_updates(kafka_bootstrap: str) -> None:
    topic = create_compacted_topic(kafka_bootstrap)
    produce(
        kafka_bootstrap,
        topic,
        [
            (b"u1", profile(tenant="acme", plan="free")),
            (b"u2", profile(tenant="globex", plan="gold")),
            (b"u3", b"[not, an, object"),  # skipped, not fatal
            (b"u1", profile(tenant="acme", plan="gold")),
            (b"u2", None),  # tombstone
        ],
    )
    users = UserDirectory()

    async def scenario() -> None:
        follower = CompactedTopicFollower(
            KafkaConfig(bootstrap_servers=kafka_bootstrap), topic, users.update, poll_timeout_ms=100
        )
        await follower.start()
        try:
            await asyncio.wait_for(follower.ready.wait(), 30)
            assert users.get("u1") == {"tenant": "acme", "plan": "gold"}
            assert users.get("u2") is None
            assert users.get("u3") is None
            assert (follower.applied, follower.skipped) == (4, 1)

            produce(kafka_bootstrap, topic, [(b"u4", profile(tenant="initech", plan="free")), (b"u1", None)])
            await eventually(lambda: users.get("u4") is not None and users.get("u1") is None)
            assert list(users) == ["u4"]
        finally:
            await follower.stop()

    asyncio.run(scenario())


def test_missing_topic_is_ready_empty_and_picked_up_once_created(kafka_bootstrap: str) -> None:
    applied: list[str] = []
    topic = f"t{uuid.uuid4().hex[:8]}-service-catalog"

    async def scenario() -> None:
        follower = CompactedTopicFollower(
            KafkaConfig(bootstrap_servers=kafka_bootstrap),
            topic,
            lambda key, _: applied.append(key),
            topic_retry_s=0.2,
        )
        await follower.start()
        try:
            await asyncio.wait_for(follower.ready.wait(), 30)
            assert applied == []
            await asyncio.to_thread(create_compacted_topic, kafka_bootstrap, 1, topic)
            await asyncio.to_thread(produce, kafka_bootstrap, topic, [(b"checkout", profile(owner="team-a"))])
            await eventually(lambda: applied == ["checkout"])
        finally:
            await follower.stop()

    asyncio.run(scenario())
