"""Table writes need the producer's metadata for the table's changelog topic.

A table with `use_partitioner=True` picks the changelog partition of every write with Faust's
producer (`Producer.key_partition` -> aiokafka `_partition` -> `partitions_for_topic`). The producer
fetched its metadata when it connected; on a new deployment Faust creates the changelog topics after
that, and the producer's next periodic refresh is minutes away (`metadata_max_age_ms`, 5 min), so
the first write found no partitions: `TypeError: 'NoneType' object is not iterable` (issue 13, 1 in
5 fresh app ids). Waiting for the topic's metadata before the first write removes the race.
"""

from __future__ import annotations

from collections.abc import Iterable

import faust


async def await_changelog_metadata(app: faust.App, tables: Iterable[faust.Table]) -> None:
    """Return once Faust's producer knows the partitions of every table's changelog topic (aiokafka
    adds the topics to its metadata and refreshes until they appear, up to its request timeout)."""
    client = app.producer._ensure_producer().client  # type: ignore[attr-defined]
    for table in tables:
        await client._wait_on_metadata(table.changelog_topic.get_topic_name())
