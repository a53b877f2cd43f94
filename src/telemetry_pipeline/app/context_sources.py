"""Following the compacted context topics (user-context, service-catalog) in the worker (Kafka I/O:
the tables they fill are `enrichment.context_tables`, pure).

Every worker needs the whole of both tables, so each reads every partition from the beginning
with no consumer group (nothing to commit, no rebalances) and keeps polling, applying each record
to a table as it comes: updates take effect without a restart. `ready` is set once the consumer
has caught up to the end offsets it found at start. Chosen over Faust's GlobalTable, which can
loop in recovery with several workers (FAUST-NOTES, #283).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from mode import Service

from telemetry_pipeline.kafka.connection import aiokafka_settings

if TYPE_CHECKING:
    from telemetry_pipeline.config import KafkaConfig

log = logging.getLogger(__name__)

# Called with the record's key and its JSON object value, or None for a tombstone.
ApplyRecord = Callable[[str, dict | None], None]


class CompactedTopicFollower(Service):
    """Applies every record of a compacted topic, from the beginning, for as long as it runs.

    Works as a Faust app service (`app.service(follower)`) or on its own (`await follower.start()`,
    `await follower.ready.wait()`, `await follower.stop()`).
    """

    def __init__(self, kafka: KafkaConfig, topic: str, apply: ApplyRecord, *,
                 poll_timeout_ms: int = 500, topic_retry_s: float = 5.0, **service_kwargs: Any) -> None:
        self.topic = topic
        self._settings = aiokafka_settings(kafka)
        self._apply_record = apply
        self._poll_timeout_ms = poll_timeout_ms
        self._topic_retry_s = topic_retry_s
        self._consumer: AIOKafkaConsumer | None = None
        self.ready = asyncio.Event()
        self.applied = 0
        self.skipped = 0  # records whose key is not UTF-8 or whose value is not a JSON object
        super().__init__(**service_kwargs)

    @property
    def label(self) -> str:
        return f"{type(self).__name__}: {self.topic}"

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **self._settings
        )
        await self._consumer.start()

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    @Service.task
    async def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        await self._wait_for_topic(consumer)
        # Without a group, aiokafka assigns every partition of a subscribed topic (new ones too);
        # nothing is committed, so each start reads from the beginning.
        consumer.subscribe([self.topic])
        while not consumer.assignment():
            await self.sleep(0.05)
        partitions = sorted(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        # Caught up when the position reaches the end offset each partition had at start.
        behind = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end > 0}
        if not behind:
            self.ready.set()
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=self._poll_timeout_ms)
            for records in batches.values():
                for record in records:
                    self._apply(record)
            if behind:
                for tp, end in list(behind.items()):
                    if await consumer.position(tp) >= end:
                        del behind[tp]
                if not behind:
                    log.info("%s: loaded %d records (%d skipped)", self.topic, self.applied, self.skipped)
                    self.ready.set()

    async def _wait_for_topic(self, consumer: AIOKafkaConsumer) -> None:
        """Wait for the topic to exist (without asking for it by name, which could auto-create it
        uncompacted); until then the table is empty, and so ready."""
        while self.topic not in await consumer.topics():
            if not self.ready.is_set():
                log.warning("context topic %s does not exist yet: its table stays empty", self.topic)
                self.ready.set()
            await self.sleep(self._topic_retry_s)

    def _apply(self, record: ConsumerRecord) -> None:
        try:
            key = record.key.decode("utf-8") if record.key is not None else None
            value = None if record.value is None else orjson.loads(record.value)
        except (UnicodeDecodeError, orjson.JSONDecodeError):
            key = None
        if key is None or not (value is None or isinstance(value, dict)):
            # The key and value may be personal data: name only the record's position.
            log.warning("%s[%d]@%d: skipped, the key must be text and the value a JSON object or null",
                        record.topic, record.partition, record.offset)
            self.skipped += 1
            return
        self._apply_record(key, value)
        self.applied += 1
