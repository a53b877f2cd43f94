"""Producing outputs with confluent-kafka and waiting for the broker's acknowledgement.

Faust's own producer awaits per message and ignores most tuning (FAUST-NOTES, Transports), so the
outputs go through librdkafka: produce a batch, wait for every record's delivery report, and only then
let the caller acknowledge the inputs the outputs came from.

Each record is produced once and waited for until librdkafka reports on it (delivered, or failed after
its own `message.timeout.ms`): a flush that times out while copies are still queued is waited out,
never answered by producing the batch again. Only records reported failed are produced again.
A record too large for the client or the broker (`message.max.bytes`, a topic's `max.message.bytes`)
can never succeed: its `if_too_large` record goes instead (for DLQ and .clean records, a DLQ reference
naming where the original is); a record without one fails the send with `UndeliverableRecord`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from telemetry_pipeline.app.lograte import RateLimitedLog

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]

# Too large for the client (librdkafka's message.max.bytes) or the broker (MESSAGE_TOO_LARGE).
_TOO_LARGE = {KafkaError.MSG_SIZE_TOO_LARGE}


@dataclass(slots=True)
class OutboundRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None
    # Sent instead when this record is too large to ever be accepted.
    if_too_large: OutboundRecord | None = None


class DeliveryError(RuntimeError):
    pass


class UndeliverableRecord(DeliveryError):
    """A record the broker will never accept, with nothing to send in its place."""


class Delivery:
    """One librdkafka producer; `send` returns once every record of the batch is acknowledged."""

    def __init__(self, producer_config: dict[str, Any], timeout_s: float) -> None:
        # librdkafka's own log lines go through logging, where repeats are summarised (app/lograte.py).
        self._producer = Producer({**producer_config, "logger": logging.getLogger("librdkafka")})
        self._timeout_s = timeout_s
        self._failures = RateLimitedLog(log, "delivery failed, retrying the failed records")
        self._queued = RateLimitedLog(log, "delivery reports outstanding; waiting, not producing again")

    async def send(self, records: Sequence[OutboundRecord]) -> None:
        """Deliver the batch, retrying the records reported failed until the broker acknowledges all.

        A retry may duplicate a record the broker wrote but could not confirm (at-least-once); not
        retrying would lose it.
        """
        pending = list(records)
        attempt = 0
        while pending:
            failed = await self._send_once(pending)
            retry, replacements = [], []
            for record, error in failed:
                if error.code() not in _TOO_LARGE:
                    retry.append(record)
                elif record.if_too_large is not None:
                    log.warning(
                        "a record of %d bytes is too large for topic %s; sending its replacement to %s",
                        len(record.value),
                        record.topic,
                        record.if_too_large.topic,
                    )
                    replacements.append(record.if_too_large)
                else:
                    size = len(record.value)
                    raise UndeliverableRecord(f"a record of {size} bytes is too large for {record.topic}")
            if retry:
                attempt += 1
                self._failures.record(f"{retry_error(failed)} ({len(retry)} records, attempt {attempt})")
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
            pending = replacements + retry

    async def _send_once(self, records: Sequence[OutboundRecord]) -> list[tuple[OutboundRecord, KafkaError]]:
        """Produce each record once and wait for all their delivery reports; returns the failures."""
        failed: list[tuple[OutboundRecord, KafkaError]] = []
        outstanding = 0

        def reporter(record: OutboundRecord):
            def on_delivery(err: KafkaError | None, _msg: object) -> None:
                nonlocal outstanding
                outstanding -= 1
                if err is not None:
                    failed.append((record, err))

            return on_delivery

        produce = self._producer.produce
        for record in records:
            while True:
                try:
                    produce(
                        record.topic,
                        record.value,
                        record.key,
                        headers=record.headers,
                        on_delivery=reporter(record),
                    )
                    outstanding += 1
                    break
                except BufferError:
                    # librdkafka's queue is full: let it drain; this is where backpressure turns into lag.
                    await asyncio.to_thread(self._producer.poll, 0.05)
                except KafkaException as exc:  # refused before queueing, e.g. larger than message.max.bytes
                    failed.append((record, exc.args[0]))
                    break
        while outstanding > 0:
            await asyncio.to_thread(self._producer.flush, self._timeout_s)
            if outstanding > 0:
                self._queued.record(f"{outstanding} records after {self._timeout_s}s")
        return failed

    def close(self) -> None:
        self._producer.flush(self._timeout_s)


def retry_error(failed: list[tuple[OutboundRecord, KafkaError]]) -> str:
    return next(error.str() for _record, error in failed if error.code() not in _TOO_LARGE)
