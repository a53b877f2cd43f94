"""How an engine's per-service state sits in the shell's store (a Faust table with a changelog).

One key per service: `<service>` -> {"version": 3, "max_event_ms", "evaluated_ms", "late_dropped",
"watermark_ms", "sources": {source: mark}, "tiers": [[bucket, ...] per tier], "series": {series
digest: {"cut", "points"}}}: a mark says which offsets of the source are applied, in the layout of
`offset_marks` (version 3 added its holes; a version 1 or 2 mark, [offset, max_time_ms], loads with none:
every offset up to it counts as applied, as those versions read it). `series` holds the recent points
of the service's cumulative histogram series, in the layout of `cumulative` (version 2 added it; a
version 1 value loads with none). The version lets a rolling deploy tell layouts apart: a value without
one is version 1, a version this code does not know fails recovery with an error naming it rather than
being misread. Change the layout only with a new version and a migration in `_migrate`.

A service's buckets, series and the input offsets they include are one value, written by one
assignment: whatever a restart recovers, the buckets hold exactly the partials up to those offsets,
which is what lets the engine skip redelivered input without ever counting it twice or losing it.
Buckets use the layout of `windows`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

STATE_VERSION = 3


class StateFormatError(ValueError):
    """A stored SLI state this code cannot read (written by a newer or unknown version)."""


@dataclass(slots=True)
class ServiceState:
    service: str
    max_event_ms: int
    evaluated_ms: int  # end of the last evaluation step emitted
    late_dropped: int = 0
    watermark_ms: int | None = None  # the engine's, when this state was last written
    # Per input source (partition or file): which of its offsets are applied, its newest event time
    # (layout of `offset_marks`).
    sources: dict[str, list] = field(default_factory=dict)
    tiers: list[list[list]] = field(default_factory=list)  # per tier, buckets sorted by start
    series: dict[str, dict] = field(default_factory=dict)  # cumulative series (layout of `cumulative`)


class StateStore:
    def __init__(self, store: MutableMapping[str, dict]) -> None:
        self._store = store

    def save(self, state: ServiceState) -> None:
        # A copy of the offsets, buckets and series, not the engine's live ones: Faust's memory table keeps
        # the object and serializes it only when its producer sends the changelog record, by which time the
        # engine may have rolled the tiers past `evaluated_ms`; recovered, such a record evaluated those
        # steps again on other buckets and sent them twice with other numbers.
        sources, tiers, series = _detached(state.sources, state.tiers, state.series)
        self._store[state.service] = {
            "version": STATE_VERSION,
            "max_event_ms": state.max_event_ms,
            "evaluated_ms": state.evaluated_ms,
            "late_dropped": state.late_dropped,
            "watermark_ms": state.watermark_ms,
            "sources": sources,
            "tiers": tiers,
            "series": series,
        }

    def forget(self, service: str) -> None:
        self._store.pop(service, None)

    def load(self) -> dict[str, ServiceState]:
        return {service: _state(service, stored) for service, stored in self._store.items()}

    def load_one(self, service: str) -> ServiceState | None:
        stored = self._store.get(service)
        return None if stored is None else _state(service, stored)


def _state(service: str, stored: dict[str, Any]) -> ServiceState:
    value = _migrate(service, stored)
    # Detached from the stored value too: it may be a record still waiting to be sent.
    sources, tiers, series = _detached(value["sources"], value["tiers"], value["series"])
    return ServiceState(
        service,
        value["max_event_ms"],
        value["evaluated_ms"],
        value["late_dropped"],
        value["watermark_ms"],
        sources,
        tiers,
        series,
    )


def _detached(sources: dict, tiers: list, series: dict) -> tuple[dict, list, dict]:
    """Copies sharing nothing with the arguments (plain JSON, as the changelog holds them)."""
    return tuple(orjson.loads(orjson.dumps([sources, tiers, series])))  # type: ignore[return-value]


def _migrate(service: str, value: dict[str, Any]) -> dict[str, Any]:
    """The value in the current layout. Names the service (an operator's name, not telemetry data)
    and the version, never the value."""
    version = value.get("version", 1)  # values written before versions have version 1's fields
    if version == 1:
        # Cumulative deltas were computed at ingest, so no series points: the next point of each series
        # only sets a baseline.
        value = {**value, "series": {}}
    if version in (1, 2):
        return {**value, "sources": {source: [*mark, ""] for source, mark in value["sources"].items()}}
    if version != STATE_VERSION:
        shown = str(version) if isinstance(version, int) else "that is not a number"
        raise StateFormatError(
            f"SLI state of service {service!r} has version {shown}; this worker reads version "
            f"{STATE_VERSION} (a newer worker wrote it? roll back that worker or upgrade this one)"
        )
    return value
