"""The metrics partitions are read in step, by event time.

The points of a cumulative histogram series come through every metrics partition (metrics are sent
unkeyed), and the SLI engine places each point between its neighbours within a budget of points per
service (`sli.metric_points_per_service`, sli/cumulative.py); a point older than what its series keeps
is late. In a backlog one partition can be read hours of event time ahead of another (seen: 3 h in
`benchmarks/event_time.py`, where a metrics-only service with 73 series had 61 points late past its
4,096-point budget). So a metrics partition read more than `worker.metrics_partition_lead_s` ahead of
the slowest one not yet read to its end is paused: Faust stops fetching it, what it fetched still
reaches the agent, and it resumes once the others close up. A partition with a backlog and nothing
read yet counts as the slowest of all. Only the metrics are paced so: nothing waits for them, whereas
the logs agent waits for the spans (the enrichment hold), so pausing spans could stop both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from telemetry_pipeline.app.progress import newest_by_source
from telemetry_pipeline.sli import SliPartial


class MetricsAlignment:
    def __init__(self, topic: str, lead_ms: int) -> None:
        self._prefix = f"{topic}["
        self._lead_ms = lead_ms
        self._newest: dict[str, int] = {}  # per metrics partition ("topic[n]"): the newest event time read

    def observe(self, partials: Iterable[SliPartial]) -> None:
        """An ingest batch's partials: how far each metrics partition has been read."""
        for source, newest in newest_by_source(partials).items():
            if source.startswith(self._prefix):
                self._newest[source] = max(self._newest.get(source, newest), newest)

    def ahead(self, caught_up: Mapping[str, bool]) -> set[str]:
        """Of this worker's input partitions (with whether each is read to its end), the metrics ones to
        pause now."""
        behind = [name for name, done in caught_up.items() if not done and name.startswith(self._prefix)]
        read = {source: self._newest[source] for source in behind if source in self._newest}
        if len(read) < len(behind):
            return set(read)  # one not read at all yet: every one read is ahead of it
        floor = min(read.values(), default=0) + self._lead_ms
        return {source for source, newest in read.items() if newest > floor}
