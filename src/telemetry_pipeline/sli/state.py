"""How an engine's per-service state sits in the shell's store (a Faust table with a changelog).

Two layouts (`SliConfig.state_keys`):
- "service": one key per service, `<service>` -> {"max_event_ms", "evaluated_ms", "late_dropped",
  "tiers": [[bucket, ...] per tier]}. Every write carries the whole state (~100 KiB at 30 days), but
  a service's state is one key, so any partitioning of the table keeps it whole.
- "bucket": `<service>|meta` -> the three counters, and `<service>|<tier>|<start>` -> {"bucket": [...]}.
  A batch rewrites only the buckets it touched (well under 1 KiB), but all keys of a service must
  land in the same table partition: write them from the service's own `sli-partials` partition
  (Faust's default, without `use_partitioner`), or partition by `service_of_key`.
Buckets use the layout of `windows`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

_META = "meta"


@dataclass(slots=True)
class ServiceState:
    service: str
    max_event_ms: int
    evaluated_ms: int  # end of the last evaluation step emitted
    late_dropped: int = 0
    tiers: list[list[list]] = field(default_factory=list)  # per tier, buckets sorted by start


def service_of_key(key: str) -> str:
    """The service a store key belongs to, in either layout (parsed from the right)."""
    if key.endswith(f"|{_META}"):
        return key[: -len(_META) - 1]
    parts = key.rsplit("|", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].lstrip("-").isdigit():
        return parts[0]
    return key


class StateStore:
    def __init__(self, store: MutableMapping[str, dict], tier_count: int, *, per_bucket: bool) -> None:
        self._store = store
        self._tier_count = tier_count
        self._per_bucket = per_bucket

    def save(self, state: ServiceState, changed: dict[tuple[int, int], list | None]) -> None:
        """Write a service's state; `changed` maps (tier, start) to each bucket written or None if removed."""
        counters = {
            "max_event_ms": state.max_event_ms,
            "evaluated_ms": state.evaluated_ms,
            "late_dropped": state.late_dropped,
        }
        if not self._per_bucket:
            self._store[state.service] = {**counters, "tiers": state.tiers}
            return
        for (level, start), bucket in changed.items():
            key = f"{state.service}|{level}|{start}"
            if bucket is None:
                self._store.pop(key, None)
            else:
                self._store[key] = {"bucket": bucket}
        self._store[f"{state.service}|{_META}"] = counters

    def forget(self, state: ServiceState) -> None:
        if not self._per_bucket:
            self._store.pop(state.service, None)
            return
        for level, buckets in enumerate(state.tiers):
            for bucket in buckets:
                self._store.pop(f"{state.service}|{level}|{bucket[0]}", None)
        self._store.pop(f"{state.service}|{_META}", None)

    def load(self) -> dict[str, ServiceState]:
        """Every service in the store, whichever layout wrote it."""
        states: dict[str, ServiceState] = {}
        buckets: dict[str, list[tuple[int, list]]] = {}
        for key, value in self._store.items():
            if "bucket" in value:
                service, level, _ = key.rsplit("|", 2)
                buckets.setdefault(service, []).append((int(level), value["bucket"]))
                continue
            service = key if "tiers" in value else service_of_key(key)
            states[service] = ServiceState(
                service,
                value["max_event_ms"],
                value["evaluated_ms"],
                value["late_dropped"],
                value.get("tiers") or [[] for _ in range(self._tier_count)],
            )
        for service, found in buckets.items():
            tiers = states[service].tiers
            for level, bucket in found:
                tiers[level].append(bucket)
            for tier in tiers:
                tier.sort(key=lambda bucket: bucket[0])
        return states
