"""Producing outputs with confluent-kafka and waiting for the broker's acknowledgement.

Faust's own producer awaits per message and ignores most tuning (FAUST-NOTES, Transports), so the
outputs go through librdkafka: produce a batch, flush in a thread, and only then let the caller
acknowledge the inputs the outputs came from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Producer

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


@dataclass(slots=True)
class OutboundRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None


class DeliveryError(RuntimeError):
    pass


class Delivery:
    """One librdkafka producer; `send` returns once every record of the batch is acknowledged."""

    def __init__(self, producer_config: dict[str, Any], timeout_s: float) -> None:
        self._producer = Producer(producer_config)
        self._timeout_s = timeout_s

    async def send(self, records: Sequence[OutboundRecord]) -> None:
        """Deliver the batch, retrying it whole until the broker acknowledges all of it.

        A retry may duplicate records (at-least-once); not retrying would lose them.
        """
        attempt = 0
        while records:
            try:
                await self._send_once(records)
                return
            except DeliveryError as exc:
                attempt += 1
                log.warning("delivery failed (attempt %d), retrying: %s", attempt, exc)
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))

    async def _send_once(self, records: Sequence[OutboundRecord]) -> None:
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                errors.append(err)

        produce = self._producer.produce
        for record in records:
            while True:
                try:
                    produce(
                        record.topic,
                        record.value,
                        record.key,
                        headers=record.headers,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    # librdkafka's queue is full: let it drain; this is where backpressure turns into lag.
                    await asyncio.to_thread(self._producer.poll, 0.05)
        remaining = await asyncio.to_thread(self._producer.flush, self._timeout_s)
        if errors or remaining:
            first = (
                errors[0].str() if errors else f"{remaining} records unacknowledged after {self._timeout_s}s"
            )
            raise DeliveryError(first)

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
