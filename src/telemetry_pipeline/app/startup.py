"""Waiting for the broker at start-up, as the Collector and the Kafka clients do, for a bounded time."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from telemetry_pipeline.config import KafkaConfig

log = logging.getLogger(__name__)


class BrokerUnreachable(RuntimeError):
    """The broker did not answer within the start-up timeout; the message is one line for the operator."""


def await_broker(kafka: KafkaConfig, timeout_s: float, max_backoff_s: float = 5.0) -> None:
    """Return once the cluster answers a metadata request; retry with backoff, one log line per failed
    attempt, and raise BrokerUnreachable (naming the address and the settings) after `timeout_s`."""
    # librdkafka's own connection errors would repeat what the attempt lines say, several per second.
    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    start = time.monotonic()
    backoff = 0.5
    attempt = 0
    while True:
        attempt += 1
        remaining = timeout_s - (time.monotonic() - start)
        try:
            admin.list_topics(timeout=max(0.2, min(1.0, remaining)))
            return
        except KafkaException:
            waited = time.monotonic() - start
            if waited + backoff > timeout_s:
                raise BrokerUnreachable(
                    f"no Kafka broker answered at {kafka.bootstrap_servers} within {timeout_s:g}s "
                    "(worker.startup_timeout_s); the address is kafka.bootstrap_servers "
                    "(environment: TP_KAFKA__BOOTSTRAP_SERVERS)"
                ) from None
            log.warning(
                "broker at %s not reachable (attempt %d, %.0fs of %gs); retrying in %gs",
                kafka.bootstrap_servers,
                attempt,
                waited,
                timeout_s,
                backoff,
            )
            time.sleep(backoff)
            backoff = min(max_backoff_s, backoff * 2)
