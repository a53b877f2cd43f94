"""Progress reports: how far this worker has read its input partitions, sent on every `sli-partials`
partition so that every SLI engine, whichever worker runs it, knows every input partition
(`SliEngine.add_progress`) and holds its watermark for one another worker has not read to its end.

A report follows the partials it covers on each partition (one idempotent producer, one send): after
every ingest batch, the newest event time of the batch's partials per source (not caught up: more may
follow); on the tick, each assigned partition with whether it is read to its end, when that changed or
every `_REPEAT_MS` (a peer that restarted, or got another `sli-partials` partition, hears it again).
A few records per batch and per tick, never per input record.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

from aiokafka.partitioner import murmur2

from telemetry_pipeline.app.delivery import OutboundRecord
from telemetry_pipeline.sli import SliPartial, SourceProgress, encode_progress

_REPEAT_MS = 5_000


class ProgressReporter:
    def __init__(self, topic: str, partitions: int) -> None:
        self._topic = topic
        self._keys = keys_per_partition(partitions)
        self._reported: dict[str, bool] = {}  # per source, the caught-up flag last sent
        self._reported_ms = 0

    def after_batch(self, partials: Iterable[SliPartial]) -> list[OutboundRecord]:
        """Records to send after (in the same send as) the partials of an ingest batch."""
        newest = newest_by_source(partials)
        if not newest:
            return []
        self._reported.update(dict.fromkeys(newest, False))
        return self._records([SourceProgress(source, newest[source], False) for source in sorted(newest)])

    def on_tick(self, caught_up: Mapping[str, bool], now_ms: int) -> list[OutboundRecord]:
        """Records saying which assigned partitions are read to their end, when that changed or is due."""
        if dict(caught_up) == self._reported and now_ms - self._reported_ms < _REPEAT_MS:
            return []
        self._reported, self._reported_ms = dict(caught_up), now_ms
        reports = [SourceProgress(source, None, done) for source, done in sorted(caught_up.items())]
        return self._records(reports)

    def _records(self, progress: list[SourceProgress]) -> list[OutboundRecord]:
        value = encode_progress(progress)
        return [OutboundRecord(self._topic, key, value) for key in self._keys]


def newest_by_source(partials: Iterable[SliPartial]) -> dict[str, int]:
    """Per source, the newest event time of the partials (redaction notes carry none of their own)."""
    newest: dict[str, int] = {}
    for partial in partials:
        if partial.buckets:
            newest[partial.source] = max(newest.get(partial.source, partial.max_time_ms), partial.max_time_ms)
    return newest


def keys_per_partition(partitions: int) -> list[bytes]:
    """A key for each partition (murmur2, as the producer places keyed records): `progress-<n>`, the
    first n that lands there."""
    keys: dict[int, bytes] = {}
    for n in itertools.count():
        key = f"progress-{n}".encode()
        keys.setdefault((murmur2(key) & 0x7FFFFFFF) % partitions, key)
        if len(keys) == partitions:
            return [keys[partition] for partition in range(partitions)]
    raise AssertionError("unreachable")  # pragma: no cover
