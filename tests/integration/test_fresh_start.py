"""Issue 13's crash on a fresh app id came from Faust's producer writing a table's changelog before it
knew the topic's partitions; the tables' changelog records now go through the outputs' producer
(app/tables.py). They land where Faust's recovery looks (the key's murmur2 partition, Faust's value
encoding), the wait for the changelog topics never makes the broker create them with its default
partition count (the SLI rebalance regression), and a changelog with a wrong count stops the worker
at start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from telemetry_pipeline.app.delivery import Delivery
from telemetry_pipeline.app.tables import await_changelog_topics
from telemetry_pipeline.app.worker import create_app, key_partition
from telemetry_pipeline.config import load_config
from tests.integration.harness import await_worker_ready, deploy, read_all, running_worker

pytestmark = pytest.mark.kafka


def test_table_writes_reach_the_changelog_partition_faust_recovers_from(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    d = deploy(kafka_bootstrap, tmp_path, partitions=2)
    config = load_config(d.config_path)
    app = create_app(config)
    table = app.tables["trace-context"]
    topic = table.changelog_topic.get_topic_name()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
    keys = [f"{trace:032x}" for trace in range(1, 9)]
    for number, key in enumerate(keys):
        table[key] = (2, number, "frontend")
    del table[keys[0]]

    async def deliver() -> None:
        await app.producer.start()
        try:
            await asyncio.wait_for(await_changelog_topics(app, [table]), 30)
        finally:
            # aiokafka's producer alone: Faust's producer service takes ~90 s to stop outside a worker.
            await app.producer._ensure_producer().stop()
        delivery = Delivery(config.kafka.producer_config(), config.worker.delivery_timeout_s)
        await delivery.send(table.take_changes())

    asyncio.run(deliver())
    assert table.take_changes() == []  # taken once
    written = {m.key().decode(): m for m in read_all(kafka_bootstrap, [topic])}
    assert sorted(written) == sorted(keys)
    for key, message in written.items():
        assert message.partition() == key_partition(key, 2)
    assert written[keys[0]].value() is None  # deleted: a tombstone
    assert orjson.loads(written[keys[3]].value()) == [2, 3, "frontend"]
    # Faust's own codec for the changelog topic, as recovery decodes it.
    codec = table.changelog_topic.value_serializer
    assert app.serializers.loads_value(None, written[keys[3]].value(), serializer=codec) == [2, 3, "frontend"]


def test_a_new_deployment_gets_changelogs_with_the_table_partitions(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # The test broker auto-creates a topic named in a metadata request, as Kafka does by default, with
    # one partition: had the worker asked for a changelog before its table declared it, it would have one.
    d = deploy(kafka_bootstrap, tmp_path, partitions=2)
    with running_worker(d):
        await_worker_ready(d)
    changelogs = [d.topic("app-sli-state-changelog"), d.topic("app-trace-context-changelog")]
    existing = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=30).topics
    partitions = {topic: len(existing[topic].partitions) for topic in changelogs if topic in existing}
    assert partitions == dict.fromkeys(changelogs, 2)


def test_a_changelog_with_another_partition_count_stops_the_worker_at_start(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    d = deploy(kafka_bootstrap, tmp_path, partitions=2)
    changelog = d.topic("app-sli-state-changelog")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(changelog, 1, 1)])[changelog].result(timeout=30)
    with running_worker(d) as process:
        code = process.wait(timeout=60)
    output = (tmp_path / "worker.log").read_text(errors="replace")
    assert code == 1, output[-2000:]
    assert f"{changelog} has 1" in output and "worker.table_partitions (2)" in output, output[-2000:]
