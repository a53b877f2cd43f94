"""How an engine's per-service state sits in the shell's store (a Faust table with a changelog).

One key per service: `<service>` -> {"max_event_ms", "evaluated_ms", "late_dropped", "watermark_ms",
"sources": {source: [offset, max_time_ms]}, "tiers": [[bucket, ...] per tier]}. A service's buckets
and the input offsets they include are one value, written by one assignment: whatever a restart
recovers, the buckets hold exactly the partials up to those offsets, which is what lets the engine
skip redelivered input without ever counting it twice or losing it. Buckets use the layout of
`windows`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class ServiceState:
    service: str
    max_event_ms: int
    evaluated_ms: int  # end of the last evaluation step emitted
    late_dropped: int = 0
    watermark_ms: int | None = None  # the engine's, when this state was last written
    # Per input source (partition or file): the highest offset applied and its newest event time.
    sources: dict[str, list[int]] = field(default_factory=dict)
    tiers: list[list[list]] = field(default_factory=list)  # per tier, buckets sorted by start


class StateStore:
    def __init__(self, store: MutableMapping[str, dict]) -> None:
        self._store = store

    def save(self, state: ServiceState) -> None:
        self._store[state.service] = {
            "max_event_ms": state.max_event_ms,
            "evaluated_ms": state.evaluated_ms,
            "late_dropped": state.late_dropped,
            "watermark_ms": state.watermark_ms,
            "sources": state.sources,
            "tiers": state.tiers,
        }

    def forget(self, service: str) -> None:
        self._store.pop(service, None)

    def load(self) -> dict[str, ServiceState]:
        return {
            service: ServiceState(
                service,
                value["max_event_ms"],
                value["evaluated_ms"],
                value["late_dropped"],
                value["watermark_ms"],
                value["sources"],
                value["tiers"],
            )
            for service, value in self._store.items()
        }
