"""Issue 13's crash on a fresh app id, forced: the changelog topic appears after Faust's producer
fetched its metadata, and the first table write must still find the topic's partitions. Waiting for
that metadata must not make the broker create the changelogs with its default partition count (the
SLI rebalance regression), and a changelog with a wrong count stops the worker at start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from telemetry_pipeline.app.tables import await_changelog_metadata
from telemetry_pipeline.app.worker import create_app
from telemetry_pipeline.config import load_config
from tests.integration.harness import await_worker_ready, deploy, running_worker

pytestmark = pytest.mark.kafka


def test_table_writes_wait_for_a_changelog_topic_created_after_the_producer_started(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    d = deploy(kafka_bootstrap, tmp_path)
    app = create_app(load_config(d.config_path))
    table = app.tables["sli-state"]
    topic = table.changelog_topic.get_topic_name()

    async def first_write_partition() -> tuple[type[BaseException] | None, int]:
        await app.producer.start()
        try:
            # Created after the producer connected, as Faust does on a new deployment.
            admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
            admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
            try:
                app.producer.key_partition(topic, b"checkout")
                race = None
            except TypeError as exc:  # what the SLI agent died of (issue 13)
                race = type(exc)
            await await_changelog_metadata(app, [table])
            return race, app.producer.key_partition(topic, b"checkout").partition
        finally:
            # aiokafka's producer alone: Faust's producer service takes ~90 s to stop outside a worker.
            await app.producer._ensure_producer().stop()

    race, partition = asyncio.run(asyncio.wait_for(first_write_partition(), 90))
    assert race is TypeError, "the race did not happen: the producer already knew the new topic"
    assert partition in (0, 1)


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
