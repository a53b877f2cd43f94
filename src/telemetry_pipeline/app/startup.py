"""Start-up checks: waiting for the broker, as the Collector and the Kafka clients do, for a bounded
time; and the table changelogs' partition counts."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from telemetry_pipeline.config import KafkaConfig

log = logging.getLogger(__name__)


class BrokerUnreachable(RuntimeError):
    """The broker did not answer within the start-up timeout; the message is one line for the operator."""


class ChangelogPartitionsMismatch(RuntimeError):
    """A table's changelog topic exists with another partition count than the tables use; one line."""


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


def check_changelog_partitions(
    kafka: KafkaConfig, topics: Iterable[str], partitions: int, timeout_s: float
) -> None:
    """Raise ChangelogPartitionsMismatch if one of the changelog `topics` exists with other than
    `partitions` partitions. A service's state and its partials are placed by the same murmur2 over
    `partitions`; on a changelog of another count (e.g. auto-created by the broker with its default of 1)
    a rebalance hands a worker services whose state it does not recover, and their SLIs restart
    silently. Topics not there yet are fine: the worker declares them."""
    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    existing = admin.list_topics(timeout=timeout_s).topics  # all topics: naming one would auto-create it
    wrong = {
        topic: len(existing[topic].partitions)
        for topic in topics
        if topic in existing and len(existing[topic].partitions) != partitions
    }
    if wrong:
        found = ", ".join(f"{topic} has {count}" for topic, count in sorted(wrong.items()))
        raise ChangelogPartitionsMismatch(
            f"table changelog partitions differ from worker.table_partitions ({partitions}): {found}; "
            "recreate those topics with that many partitions (the state they hold is lost) or use a new "
            "worker.app_id"
        )
