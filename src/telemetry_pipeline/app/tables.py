"""Faust tables whose changelog records go out with the outputs, and the wait for their topics.

Faust writes a table's changelog one record per write through its own producer, and that path cost
the worker a quarter of its CPU per span (26,090 / 26,173 spans per worker CPU second on the 200k
pre-load against 35,446 / 34,081 with no changelog record sent at all; benchmarks/README.md, "The
changelog through the outputs' producer"). A `DeliveredTable` keeps its writes since they were last
taken, the newest value per key, and the shell produces them with the run that made them, through
the same confluent-kafka producer and delivery wait as that run's outputs: the run's input is
released only once its table changes are written too. Faust still recovers the table from those
records (same key and value bytes, the partition of the key's murmur2 as Faust's `use_partitioner`
chose it) on every assignment.

The changelog topics must exist before the first record goes to them: a produce request naming a
topic that does not exist yet makes a broker with `auto.create.topics.enable` (Kafka's default)
create it with its default partition count (`num.partitions`, 1), before Faust's table declares it
with `topic_partitions`. A changelog with fewer partitions than `sli-partials` puts every service's
state on partition 0, so after a rebalance a worker recovers none of the state of the services it
was given. So the agents wait, listing all topics (which creates none), until each table has declared
its changelog.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import faust
import orjson

from telemetry_pipeline.app.delivery import OutboundRecord

# How a table's value serializer writes a value, as Faust's codec of that name would (Faust's
# recovery reads the records back with its own codec).
_VALUE_ENCODERS: dict[str, Callable[[Any], bytes]] = {"json": orjson.dumps, "raw": lambda value: value}


class DeliveredTable(faust.Table):
    """A table keyed by `str`, written through like a dict; `take_changes` hands its changelog records
    to the caller instead of Faust's producer sending one per write."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._changes: dict[str, Any] = {}  # key -> newest value since the last take (None: deleted)

    def on_key_set(self, key: str, value: Any) -> None:
        self._changes[key] = value

    def on_key_del(self, key: str) -> None:
        self._changes[key] = None

    def take_changes(self) -> list[OutboundRecord]:
        """The changelog records of the writes since the last call: one per key, its newest value or
        a tombstone."""
        if not self._changes:
            return []
        changes, self._changes = self._changes, {}
        topic = self.changelog_topic.get_topic_name()
        encode = _VALUE_ENCODERS[str(self.value_serializer)]
        return [
            OutboundRecord(topic, key.encode(), None if value is None else encode(value))
            for key, value in changes.items()
        ]


async def await_changelog_topics(app: faust.App, tables: Iterable[faust.Table]) -> None:
    """Return once every table's changelog topic exists (Faust's table declares it as it starts)."""
    client = app.producer._ensure_producer().client  # type: ignore[attr-defined]
    for table in tables:
        topic = table.changelog_topic.get_topic_name()
        while topic not in (await client.fetch_all_metadata()).topics():
            await asyncio.sleep(0.1)
