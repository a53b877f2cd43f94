"""Buckets, tiers and windows: the JSON layout of the SLI state and the arithmetic over it.

A bucket is a list (compact in the changelog), indexed by the constants below. Request counters come
in two sources kept apart, spans and HTTP/RPC server duration metrics, and a bucket never counts
both (README, "Spans and metrics"): requests, errors and the good count come from metrics when the
bucket has any (they are not sampled), else from spans; latency quantiles come from spans when it
has any (exact to the sketch's accuracy), else from the metrics' histogram buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from telemetry_pipeline.sli.config import SliConfig, duration_ms
from telemetry_pipeline.sli.sketch import collapse_dense, hll_max, hll_merge, hll_packed, merge_dense

# Bucket fields.
BUCKET_FIELDS = 11
(START, SPANS, POINTS, LOGS, LOGS_TRACED, RESOURCES, RESOURCE_ATTRS, SPAN_REQ, METRIC_REQ, NAMES, KEYS) = (
    range(BUCKET_FIELDS)
)
# Request record fields: [requests, errors, good (under the latency threshold), zeros, dense sketch].
REQUESTS, ERRORS, GOOD, ZEROS, SKETCH = range(5)


def new_bucket(start_ms: int) -> list:
    return [start_ms, 0, 0, 0, 0, 0, 0, None, None, None, None]


def new_requests() -> list:
    return [0, 0, 0, 0, []]


def merge_requests(into: list | None, other: list | None, collapse: int) -> list | None:
    """`other`'s counts added to `into`; `other`'s sketch first collapsed by `collapse` levels."""
    if other is None:
        return into
    into = into if into is not None else new_requests()
    into[REQUESTS] += other[REQUESTS]
    into[ERRORS] += other[ERRORS]
    into[GOOD] += other[GOOD]
    into[ZEROS] += other[ZEROS]
    into[SKETCH] = merge_dense(into[SKETCH], collapse_dense(other[SKETCH], collapse))
    return into


def merge_bucket(into: list, other: list, collapse: int, keep_cardinality: bool) -> None:
    for i in (SPANS, POINTS, LOGS, LOGS_TRACED, RESOURCES, RESOURCE_ATTRS):
        into[i] += other[i]
    into[SPAN_REQ] = merge_requests(into[SPAN_REQ], other[SPAN_REQ], collapse)
    into[METRIC_REQ] = merge_requests(into[METRIC_REQ], other[METRIC_REQ], collapse)
    if keep_cardinality:
        into[NAMES] = hll_merge(into[NAMES], other[NAMES])
        into[KEYS] = hll_merge(into[KEYS], other[KEYS])


def _has_requests(requests: list | None) -> bool:
    return requests is not None and requests[REQUESTS] > 0


def counting_source(bucket: list) -> list | None:
    return bucket[METRIC_REQ] if _has_requests(bucket[METRIC_REQ]) else bucket[SPAN_REQ]


def latency_source(bucket: list) -> list | None:
    return bucket[SPAN_REQ] if _has_requests(bucket[SPAN_REQ]) else bucket[METRIC_REQ]


@dataclass(frozen=True, slots=True)
class Tier:
    size_ms: int
    until_ms: int
    collapse: int


def tiers_of(config: SliConfig) -> list[Tier]:
    return [Tier(duration_ms(t.size), duration_ms(t.until), t.sketch_collapse) for t in config.bucket_tiers]


def add_to_finest(tiers: list[list[list]], partial_bucket: list) -> None:
    """Merge an ingest bucket (finest size) into tier 0, kept sorted by start."""
    finest = tiers[0]
    start = partial_bucket[START]
    position = len(finest)
    # Partials arrive nearly in time order: search from the newest end.
    while position and finest[position - 1][START] > start:
        position -= 1
    if position and finest[position - 1][START] == start:
        bucket = finest[position - 1]
    else:
        bucket = new_bucket(start)
        finest.insert(position, bucket)
    merge_bucket(bucket, partial_bucket, 0, True)


def roll(tiers: list[list[list]], shape: list[Tier], now_ms: int) -> None:
    """Move buckets whose whole span is older than their tier's `until` into the next tier (or drop
    them from the last)."""
    for level, tier in enumerate(shape):
        buckets = tiers[level]
        expired = 0
        while expired < len(buckets) and buckets[expired][START] + tier.size_ms <= now_ms - tier.until_ms:
            expired += 1
        if not expired:
            continue
        moving, tiers[level] = buckets[:expired], buckets[expired:]
        if level + 1 == len(shape):
            continue
        coarser, target = shape[level + 1], tiers[level + 1]
        for bucket in moving:
            start = bucket[START] - bucket[START] % coarser.size_ms
            if not target or target[-1][START] != start:
                target.append(new_bucket(start))
            # Cardinality sketches stay in the finest tier only (they are 2 x 128 bytes per bucket).
            merge_bucket(target[-1], bucket, coarser.collapse - tier.collapse, False)


@dataclass(slots=True)
class WindowTotals:
    requests: int = 0
    errors: int = 0
    good: int = 0
    zeros: int = 0
    sketch: list[int] = field(default_factory=list)
    sketch_level: int = 0
    spans: int = 0
    points: int = 0
    logs: int = 0
    logs_traced: int = 0
    resources: int = 0
    resource_attrs: int = 0
    span_names: int = 0  # packed HyperLogLogs (sketch.hll_packed)
    attribute_keys: int = 0


def window_totals(
    tiers: list[list[list]], shape: list[Tier], end_ms: int, lengths_ms: list[int]
) -> dict[int, WindowTotals]:
    """Totals for each window [end - length, end), in one newest-to-oldest pass over the buckets.

    A bucket counts when its start is in the window, so a window starting inside a coarse bucket
    leaves that bucket out: windows cover their length rounded down to the bucket size there.
    """
    ordered = sorted(set(lengths_ms))
    result: dict[int, WindowTotals] = {}
    running = WindowTotals()
    pending = iter(ordered)
    length = next(pending, None)
    # Newest data lives in tier 0; walk tiers finest first and each tier newest first.
    for level, tier in enumerate(shape):
        for bucket in reversed(tiers[level]):
            start = bucket[START]
            if start >= end_ms:
                continue  # ahead of the evaluated step (within the allowed lateness)
            while length is not None and start < end_ms - length:
                result[length] = _copy(running)
                length = next(pending, None)
            if length is None:
                break
            _accumulate(running, bucket, tier.collapse)
    while length is not None:
        result[length] = _copy(running)
        length = next(pending, None)
    return result


def _accumulate(totals: WindowTotals, bucket: list, level: int) -> None:
    totals.spans += bucket[SPANS]
    totals.points += bucket[POINTS]
    totals.logs += bucket[LOGS]
    totals.logs_traced += bucket[LOGS_TRACED]
    totals.resources += bucket[RESOURCES]
    totals.resource_attrs += bucket[RESOURCE_ATTRS]
    if bucket[NAMES]:
        totals.span_names = hll_max(totals.span_names, hll_packed(bucket[NAMES]))
    if bucket[KEYS]:
        totals.attribute_keys = hll_max(totals.attribute_keys, hll_packed(bucket[KEYS]))
    counted = counting_source(bucket)
    if counted is not None:
        totals.requests += counted[REQUESTS]
        totals.errors += counted[ERRORS]
        totals.good += counted[GOOD]
    timed = latency_source(bucket)
    if timed is not None:
        totals.zeros += timed[ZEROS]
        # Walking to coarser tiers only ever raises the level: collapse what we have, then add.
        if level > totals.sketch_level:
            totals.sketch = collapse_dense(totals.sketch, level - totals.sketch_level)
            totals.sketch_level = level
        totals.sketch = merge_dense(totals.sketch, timed[SKETCH])


def _copy(totals: WindowTotals) -> WindowTotals:
    copied = WindowTotals(**{name: getattr(totals, name) for name in WindowTotals.__slots__})
    copied.sketch = list(totals.sketch)
    return copied
