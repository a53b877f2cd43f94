"""Producing outputs with confluent-kafka and waiting for the broker's acknowledgement.

Faust's own producer awaits per message and ignores most tuning (FAUST-NOTES, Transports), so the
outputs go through librdkafka: produce a batch, wait for every record's delivery report, and only then
let the caller acknowledge the inputs the outputs came from.

Producing and waiting are separate steps, so a caller can decode and process its next batch while
the last one is in flight (the ingest agents do; their acknowledgements still follow delivery, in order).
Each record is produced once and waited for until librdkafka reports on it (delivered, or failed after
its own `message.timeout.ms`): a wait that lasts past the timeout is logged and waited out, never
answered by producing the batch again. Only records reported failed are produced again.
A record too large for the client or the broker (`message.max.bytes`, a topic's `max.message.bytes`)
can never succeed: its `if_too_large` record goes instead (for DLQ and .clean records, a DLQ reference
naming where the original is); a record without one fails the send with `UndeliverableRecord`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from telemetry_pipeline.app.lograte import RateLimitedLog

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]

# Too large for the client (librdkafka's message.max.bytes) or the broker (MESSAGE_TOO_LARGE).
_TOO_LARGE = {KafkaError.MSG_SIZE_TOO_LARGE}
# The longest one wait for delivery reports blocks a thread; it returns as soon as one comes.
_POLL_S = 0.1


@dataclass(slots=True)
class OutboundRecord:
    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone
    headers: Headers | None = None
    # Sent instead when this record is too large to ever be accepted.
    if_too_large: OutboundRecord | None = None


class DeliveryError(RuntimeError):
    pass


class UndeliverableRecord(DeliveryError):
    """A record the broker will never accept, with nothing to send in its place."""


@dataclass(slots=True)
class Sending:
    """The records of one produce pass, and their delivery reports as librdkafka's callbacks bring them
    (on whichever thread polls: `list.append` is atomic, and a failure is listed before its report)."""

    records: list[OutboundRecord]
    reports: list[KafkaError | None] = field(default_factory=list)
    failed: list[tuple[OutboundRecord, KafkaError]] = field(default_factory=list)
    produced: int = 0

    def reporter(self, record: OutboundRecord) -> Callable[[KafkaError | None, object], None]:
        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                self.failed.append((record, err))
            self.reports.append(err)

        return on_delivery

    def reported(self) -> bool:
        return len(self.reports) >= self.produced


class Delivery:
    """One librdkafka producer. `send` returns once every record of the batch is acknowledged; `produce`
    and `acknowledged` split it, so the caller can work on the next batch while one is in flight."""

    def __init__(self, producer_config: dict[str, Any], timeout_s: float) -> None:
        # librdkafka's own log lines go through logging, where repeats are summarised (app/lograte.py).
        self._producer = Producer({**producer_config, "logger": logging.getLogger("librdkafka")})
        self._timeout_s = timeout_s
        self._failures = RateLimitedLog(log, "delivery failed, retrying the failed records")
        self._queued = RateLimitedLog(log, "delivery reports outstanding; waiting, not producing again")

    async def send(self, records: Sequence[OutboundRecord]) -> None:
        await self.acknowledged(await self.produce(records))

    async def produce(self, records: Sequence[OutboundRecord]) -> Sending:
        """Queue every record in librdkafka (waiting only while its queue is full); the reports come later."""
        sending = Sending(list(records))
        produce = self._producer.produce
        for record in sending.records:
            while True:
                try:
                    produce(
                        record.topic,
                        record.value,
                        record.key,
                        headers=record.headers,
                        on_delivery=sending.reporter(record),
                    )
                    sending.produced += 1
                    break
                except BufferError:
                    # librdkafka's queue is full: let it drain; this is where backpressure turns into lag.
                    await asyncio.to_thread(self._producer.poll, _POLL_S)
                except KafkaException as exc:  # refused before queueing, e.g. larger than message.max.bytes
                    sending.failed.append((record, exc.args[0]))
                    break
        return sending

    async def acknowledged(self, sending: Sending) -> None:
        """Wait until the broker acknowledges every record of `sending`, producing again the records
        reported failed until it does.

        A retry may duplicate a record the broker wrote but could not confirm (at-least-once); not
        retrying would lose it.
        """
        attempt = 0
        while True:
            await self._reported(sending)
            retry, replacements = [], []
            for record, error in sending.failed:
                if error.code() not in _TOO_LARGE:
                    retry.append(record)
                elif record.if_too_large is not None:
                    log.warning(
                        "a record of %d bytes is too large for topic %s; sending its replacement to %s",
                        len(record.value or b""),
                        record.topic,
                        record.if_too_large.topic,
                    )
                    replacements.append(record.if_too_large)
                else:
                    size = len(record.value or b"")
                    raise UndeliverableRecord(f"a record of {size} bytes is too large for {record.topic}")
            if retry:
                attempt += 1
                self._failures.record(
                    f"{retry_error(sending.failed)} ({len(retry)} records, attempt {attempt})"
                )
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
            if not retry and not replacements:
                return
            sending = await self.produce(replacements + retry)

    async def _reported(self, sending: Sending) -> None:
        """Serve librdkafka's delivery reports until every record of `sending` has one. Each record was
        produced once and is waited for until librdkafka reports on it, never produced again meanwhile.
        Polling, not flushing: a flush would also wait for the records produced after these."""
        waited_s = 0.0
        while not sending.reported():
            started = time.monotonic()
            await asyncio.to_thread(self._producer.poll, _POLL_S)
            waited_s += time.monotonic() - started
            if waited_s >= self._timeout_s and not sending.reported():
                outstanding = sending.produced - len(sending.reports)
                self._queued.record(f"{outstanding} records after {waited_s:.0f}s")
                waited_s = 0.0

    def close(self) -> None:
        self._producer.flush(self._timeout_s)


def retry_error(failed: list[tuple[OutboundRecord, KafkaError]]) -> str:
    return next(error.str() for _record, error in failed if error.code() not in _TOO_LARGE)
