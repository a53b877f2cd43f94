"""Cumulative histogram series turned into per-minute deltas exactly, whatever order the points come in.

Unkeyed metric messages reach the pipeline through several partitions (and several workers), so a
series' points arrive out of order. The SLI engine, which sees every partial of a service, keeps each
series' recent points sorted by time: a point inserted between `prev` and `next` adds its delta against
`prev` to its own minute and replaces `next`'s delta (against `prev`) by `next`'s delta against it. The
per-minute sums are then those of the points taken in time order, for any arrival order.

A point, as the ingest side sends it and the engine keeps it (JSON, in the `sli-partials` record and
the `sli-state` changelog): [time_ns, start_ns, total, counts, zeros, layout, to_ms, error], where
`layout` is ["x", bounds] (explicit buckets) or ["e", scale, offset] (exponential, positive buckets),
`to_ms` the factor from the metric's unit to ms and `error` 1 when the series' points are errors.

A series, as the engine keeps it: {"cut": time_ns, "head": [layout, to_ms, error], "points": [[time_ns,
start_ns, total, counts, zeros], ...]} sorted by time (what all its points share is kept once: a point
with another layout, newer than those kept, starts the series again as a baseline; older, it is
late). Only points not yet evaluated are kept, and the newest evaluated one (the next one's predecessor),
within a budget per service (`bound`): `cut` is the time of the oldest point kept after older ones went,
and a point older than it cannot be inserted exactly (its predecessor is gone), so the engine counts it as
late instead.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math

TIME, START_NS, TOTAL, COUNTS, ZEROS, LAYOUT, TO_MS, ERROR = range(8)
POINT_FIELDS = 8

Delta = tuple[int, list[int], int]  # requests, per-bucket counts, zero count


def delta(previous: list | None, point: list) -> Delta | None:
    """A point's counts since the series' previous point; None when it only sets a baseline.

    A new start time is a reset (the counts are all new); the first point of a series, a changed bucket
    layout and counts going back without a reset only set a baseline.
    """
    if previous is None:
        return None
    if point[START_NS] != previous[START_NS]:
        return point[TOTAL], point[COUNTS], point[ZEROS]
    counts, prev_counts = point[COUNTS], previous[COUNTS]
    if len(counts) != len(prev_counts) or point[TOTAL] < previous[TOTAL]:
        return None
    return (
        point[TOTAL] - previous[TOTAL],
        [c - p for c, p in zip(counts, prev_counts, strict=True)],
        point[ZEROS] - previous[ZEROS],
    )


def new_series() -> dict:
    return {"cut": 0, "head": None, "points": []}


def accepts(series: dict, point: list) -> bool:
    """Whether `point` can be placed exactly: not older than the series' cut, and of its layout unless
    newer than every point kept (a new layout)."""
    if point[TIME] < series["cut"]:
        return False
    points = series["points"]
    return series["head"] in (None, point[LAYOUT:]) or not points or point[TIME] > points[-1][TIME]


def insert(series: dict, point: list) -> list[tuple[list, int, Delta]] | None:
    """Insert an accepted `point` (full layout) into a series and return the changes to the per-minute
    deltas: (the point whose minute changes, in full, +1 or -1, a delta). None: a point of that time
    is there already (input sent twice), nothing changes."""
    head = point[LAYOUT:]
    if series["head"] != head:  # the series' first point, or a new layout (older points cannot follow)
        cut = 0 if series["head"] is None else point[TIME]
        series.update(cut=cut, head=head, points=[point[:LAYOUT]])
        return []
    points = series["points"]
    point = point[:LAYOUT]
    position = bisect.bisect_left(points, point[TIME], key=lambda p: p[TIME])
    if position < len(points) and points[position][TIME] == point[TIME]:
        return None
    previous = points[position - 1] if position else None
    following = points[position] if position < len(points) else None
    changes = []
    own = delta(previous, point)
    if own is not None:
        changes.append((point + head, 1, own))
    if following is not None:
        replaced, replacing = delta(previous, following), delta(point, following)
        if replaced is not None:
            changes.append((following + head, -1, replaced))
        if replacing is not None:
            changes.append((following + head, 1, replacing))
    points.insert(position, point)
    return changes


def bound(series: dict[str, dict], max_points: int) -> None:
    """Keep a service's series within `max_points` points in all. The longest lose their oldest points
    (each keeps at least its newest): a budget per service, not per series, so the points of a series read
    far ahead of the watermark (one partition of a backlog an hour ahead of another) all stay placeable
    while its service has few series."""
    lengths = sorted(len(entry["points"]) for entry in series.values())
    if sum(lengths) <= max_points:
        return
    remaining, cap = max_points, 1
    for index, length in enumerate(lengths):
        share = remaining // (len(lengths) - index)
        if length > share:  # this series and every longer one get the same share
            cap = max(share, 1)
            break
        remaining -= length
    for entry in series.values():
        points = entry["points"]
        if len(points) > cap:
            del points[: len(points) - cap]
            entry["cut"] = points[0][TIME]


def prune(series: dict[str, dict], before_ns: int, forget_before_ns: int, limit: int) -> None:
    """Bound a service's series: points older than `before_ns` (their minutes are evaluated, so nothing
    can be inserted before them any more) except the newest of them, which a later point needs as its
    predecessor; series whose newest point is older than `forget_before_ns`; beyond `limit` series,
    those with the oldest newest point."""
    for key in list(series):
        points = series[key]["points"]
        if not points or points[-1][TIME] < forget_before_ns:
            del series[key]
            continue
        keep_from = bisect.bisect_left(points, before_ns, key=lambda p: p[TIME]) - 1
        if keep_from > 0:
            del points[:keep_from]
            series[key]["cut"] = points[0][TIME]
    if len(series) > limit:
        for key in sorted(series, key=lambda k: (series[k]["points"][-1][TIME], k))[: len(series) - limit]:
            del series[key]


def representatives(layout: list, buckets: int, to_ms: float) -> list[tuple[float, float, float]]:
    """(low, representative, high) in ms for each bucket of a layout.

    Explicit buckets: the midpoint, and the lower bound for the overflow bucket (its upper end is
    unknown), so quantiles from metrics are only as fine as the histogram's buckets. Exponential: the
    geometric midpoint."""
    if layout[0] == "x":
        return _explicit_representatives(tuple(layout[1]), to_ms)
    _, scale, offset = layout
    base = 2.0 ** (2.0**-scale)
    values = []
    for i in range(buckets):
        low, high = base ** (offset + i) * to_ms, base ** (offset + i + 1) * to_ms
        values.append((low, math.sqrt(low * high), high))
    return values


@functools.lru_cache(maxsize=256)  # a handful of bucket layouts serve every series
def _explicit_representatives(bounds: tuple[float, ...], to_ms: float) -> list[tuple[float, float, float]]:
    edges = [0.0, *(b * to_ms for b in bounds)]
    result = [(low, (low + high) / 2, high) for low, high in itertools.pairwise(edges)]
    result.append((edges[-1], edges[-1], math.inf))
    return result
