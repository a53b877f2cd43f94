"""Faust tables: the producer's metadata their writes need, and a bound on their pending writes.

Table writes need the producer's metadata for the table's changelog topic.

A table with `use_partitioner=True` picks the changelog partition of every write with Faust's
producer (`Producer.key_partition` -> aiokafka `_partition` -> `partitions_for_topic`). The producer
fetched its metadata when it connected; on a new deployment Faust creates the changelog topics after
that, and the producer's next periodic refresh is minutes away (`metadata_max_age_ms`, 5 min), so
the first write found no partitions: `TypeError: 'NoneType' object is not iterable` (issue 13, 1 in
5 fresh app ids). Waiting for the topic's metadata before the first write removes the race.

The wait must not be what creates the topic: a metadata request naming a topic that does not exist
yet makes a broker with `auto.create.topics.enable` (Kafka's default) create it with its default
partition count (`num.partitions`, 1), before Faust's table declares it with `topic_partitions`. A
changelog with fewer partitions than `sli-partials` puts every service's state on partition 0, so
after a rebalance a worker recovers none of the state of the services it was given and restarts them
from their next partial: their steps in between are never evaluated. So the wait first lists all
topics (which creates none) until the table has declared its changelog, and only then names it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import faust


async def await_changelog_metadata(app: faust.App, tables: Iterable[faust.Table]) -> None:
    """Return once every table's changelog topic exists (Faust's table declares it as it starts) and
    Faust's producer knows its partitions (aiokafka adds the topic to its metadata and refreshes until
    it appears, up to its request timeout)."""
    client = app.producer._ensure_producer().client  # type: ignore[attr-defined]
    for table in tables:
        topic = table.changelog_topic.get_topic_name()
        while topic not in (await client.fetch_all_metadata()).topics():
            await asyncio.sleep(0.1)
        await client._wait_on_metadata(topic)


async def keep_changelog_metadata(app: faust.App, tables: Iterable[faust.Table]) -> None:
    """Before each batch of table writes: a dict look-up while the producer knows every changelog's
    partitions; a wait for them when a metadata refresh has dropped one (seen under load after the
    wait at start: the same TypeError on a later write)."""
    client = app.producer._ensure_producer().client  # type: ignore[attr-defined]
    for table in tables:
        topic = table.changelog_topic.get_topic_name()
        if not client.cluster.partitions_for_topic(topic):
            await client._wait_on_metadata(topic)


async def drain_changelogs(app: faust.App, max_pending: int) -> None:
    """Return once Faust's producer buffer holds at most `max_pending` changelog records.

    Every table write queues one (serialized) in that buffer, which Faust 0.15.3 never bounds (its
    `wait_until_ebb` has no caller): with a backlog the agents write faster than the buffer drains
    between their batches, and it grew with the backlog (89 MB of pending JSON at 200k spans,
    benchmarks/README.md). Waiting here after a batch turns that into consumer lag."""
    buffer = app.producer.buffer
    while buffer.size > max_pending:
        buffer.message_sent.clear()
        # Re-check now and then: message_sent is also cleared by Faust's own flushes.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(buffer.message_sent.wait(), timeout=1.0)
