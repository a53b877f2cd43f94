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

The store keeps each value as its JSON bytes (`JsonValues` over the worker's Faust table, or over a
dict in replay): a write is then a snapshot and a read a fresh copy, so neither side ever shares an
object with the engine's live state. That matters because a value kept as objects is serialized
only when its changelog record is made, later than the write (Faust's producer did it when sending,
by which time the engine had rolled the tiers past `evaluated_ms`; recovered, such a record evaluated
those steps again on other buckets and sent them twice with other numbers). The bytes also take
about a quarter of what the decoded objects take.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
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


class JsonValues(MutableMapping[str, Any]):
    """A mapping of JSON bytes (a Faust table with a raw value serializer, or a dict) seen as one of
    decoded values: each write encodes the value, each read decodes a fresh copy (see the module doc).
    The bytes are the JSON Faust's json serializer writes, so either reads the other's changelog."""

    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        self.table = table

    def __getitem__(self, key: str) -> Any:
        return orjson.loads(self.table[key])

    def __setitem__(self, key: str, value: Any) -> None:
        self.table[key] = orjson.dumps(value)

    def __delitem__(self, key: str) -> None:
        del self.table[key]

    def __contains__(self, key: object) -> bool:  # without decoding the value
        return key in self.table

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)


class StateStore:
    def __init__(self, store: MutableMapping[str, dict]) -> None:
        """`store` keeps a snapshot of each value written and reads back a fresh copy (`JsonValues`):
        the values written here hold the engine's live offsets, buckets and series."""
        self._store = store

    def save(self, state: ServiceState) -> None:
        self._store[state.service] = {
            "version": STATE_VERSION,
            "max_event_ms": state.max_event_ms,
            "evaluated_ms": state.evaluated_ms,
            "late_dropped": state.late_dropped,
            "watermark_ms": state.watermark_ms,
            "sources": state.sources,
            "tiers": state.tiers,
            "series": state.series,
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
    return ServiceState(
        service,
        value["max_event_ms"],
        value["evaluated_ms"],
        value["late_dropped"],
        value["watermark_ms"],
        value["sources"],
        value["tiers"],
        value["series"],
    )


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
