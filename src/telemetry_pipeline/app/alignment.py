"""The metrics partitions are read in step, by event time.

The points of a cumulative histogram series come through every metrics partition (metrics are sent
unkeyed), and the SLI engine places each point between its neighbours within a budget of points per
service (`sli.metric_points_per_service`, sli/cumulative.py); a point older than what its series keeps
is late. In a backlog one partition can be read hours of event time ahead of another (seen: 3 h in
`benchmarks/event_time.py`, where a metrics-only service with 73 series had 61 points late past its
4,096-point budget). So a metrics partition read more than `worker.metrics_partition_lead_s` ahead of
the slowest one not yet read to its end is paused: Faust stops fetching it, what it fetched still
reaches the agent, and it resumes once the others close up. A partition with a backlog and nothing
read yet counts as the slowest of all. The metrics are paced against one another: nothing waits for
them. The spans are paced against the logs, only to keep the trace-context table within its bound
(`Core.spans_outrun_logs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

V = TypeVar("V")


def of_topic(topic: str, partitions: Mapping[str, V]) -> dict[str, V]:
    """The entries of `partitions` (keyed by "topic[n]") that are partitions of `topic`."""
    prefix = f"{topic}["
    return {name: value for name, value in partitions.items() if name.startswith(prefix)}


def metrics_ahead(
    topic: str, lead_ms: int, caught_up: Mapping[str, bool], read_to: Mapping[str, int]
) -> set[str]:
    """Of this worker's input partitions (with whether each is read to its end), the metrics ones to
    pause now; `read_to`: the newest event time read from each partition ("topic[n]")."""
    behind = [name for name, done in of_topic(topic, caught_up).items() if not done]
    read = {source: read_to[source] for source in behind if source in read_to}
    if len(read) < len(behind):
        return set(read)  # one not read at all yet: every one read is ahead of it
    floor = min(read.values(), default=0) + lead_ms
    return {source for source, newest in read.items() if newest > floor}
