"""Start-up of the worker: its malloc arenas, the objects it starts with kept out of garbage
collections, and the check of the table changelogs' partition counts.
(The bounded wait for the broker, shared with the commands, is `kafka.connection.await_broker`.)"""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Iterable

from confluent_kafka.admin import AdminClient

from telemetry_pipeline.config import KafkaConfig

_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int | None) -> bool:
    """Cap glibc's malloc arenas at `arenas` (worker.malloc_arenas); call before any thread starts.
    False when not applied: no cap asked, MALLOC_ARENA_MAX set (the operator's word wins), or no glibc."""
    if arenas is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # musl, macOS: no such library or no mallopt
        return False


def freeze_startup_objects() -> None:
    """Move every object made so far (modules, classes, functions, the configuration, the core with
    its rule databases: ~50,000) to the collector's permanent generation. None is ever garbage, and
    each full collection walked them again, a pause every agent waits through: 52-108 ms against
    10-45 ms without them in a paced run (benchmarks/README.md, "The latency tail at half
    capacity"). Objects let go are still freed by reference counting."""
    gc.collect()
    gc.freeze()


class ChangelogPartitionsMismatch(RuntimeError):
    """A table's changelog topic exists with another partition count than the tables use; one line."""


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
