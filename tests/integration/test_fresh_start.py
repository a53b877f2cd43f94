"""Issue 13's crash on a fresh app id, forced: the changelog topic appears after Faust's producer
fetched its metadata, and the first table write must still find the topic's partitions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from telemetry_pipeline.app.tables import await_changelog_metadata
from telemetry_pipeline.app.worker import create_app
from telemetry_pipeline.config import load_config
from tests.integration.harness import deploy

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
