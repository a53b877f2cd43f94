"""The analysis core both shells run: SLO resolution, the SLI engine, their state and when it is
persisted (detection joins here). No Kafka here; sibling of `core.py`, which does the per-record half.

A shell declares its input sources (`set_sources`), hands over decoded partials (`add`) and asks for
the steps their event time allows (`advance`, or `flush` at the end of replay's input). Each step
comes back as an `AnalysisStep`: the snapshots to send and whether the state was persisted, after
which the shell may acknowledge the partials it added before that call. `_step` is the one place
where each step's output comes out and the state is persisted: detection observes the snapshots
there and persists its state at the same point, so a restart neither forgets nor repeats it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.detection import Detection, IncidentEvent, MaintenanceWindow
from telemetry_pipeline.sli import JsonValues, SliEngine, SliPartial, SliSnapshot, SloResolver

# The key of a service's detection state inside its value in the store (next to its SLI state).
DETECTION_KEY = "detection"


@dataclass
class AnalysisStep:
    snapshots: list[SliSnapshot]
    persisted: bool  # the state now holds every partial added before the call that returned this
    # Incident events of these steps, in order.
    incidents: list[IncidentEvent] = field(default_factory=list)
    # With `advance(..., write=False)`: the state is due to be written (`persist`) once these are sent.
    persist_due: bool = False


class _WithDetection(MutableMapping[str, dict]):
    """The store as the SLI engine sees it: every value it writes for a service carries the service's
    detection state too (`DETECTION_KEY`), so both are one assignment, one changelog record."""

    def __init__(self, store: MutableMapping[str, dict]) -> None:
        self.store = store
        self.detection_states: dict[str, dict] = {}  # by service, taken just before the engine persists
        self.written: set[str] = set()

    def __getitem__(self, service: str) -> dict:
        return self.store[service]

    def __setitem__(self, service: str, value: dict) -> None:
        self.store[service] = {**value, DETECTION_KEY: self.detection_states.get(service)}
        self.written.add(service)

    def __delitem__(self, service: str) -> None:
        del self.store[service]

    def __iter__(self) -> Iterator[str]:
        return iter(self.store)

    def __len__(self) -> int:
        return len(self.store)


class Analysis:
    def __init__(
        self,
        config: PipelineConfig,
        *,
        services: Mapping[str, dict],
        store: MutableMapping[str, bytes],
        persist_interval_ms: int | None = None,
    ) -> None:
        """`services`: the service catalog (SLO overrides), live. `store`: where the state persists,
        one JSON value per service (the worker's changelogged table, or a dict; sli/state.py). Without
        `persist_interval_ms` the state is written only at evaluation steps."""
        self.slos = SloResolver(
            config.slos, config.slo_defaults, services, max_period_ms=config.sli.retention_ms
        )
        self.detection = Detection(config.detection, self.slos, services, config.maintenance)
        self._store = _WithDetection(JsonValues(store))
        self.engine = SliEngine(config.sli, self.slos, self._store)
        self._restore_detection(set(), self.engine.services())
        self._noted: set[str] = set()  # services with redaction notes the engine did not apply
        self._persist_interval_ms = persist_interval_ms
        self._last_persist_ms: int | None = None
        self._unpersisted = False

    def adopt(self, owned: Callable[[str], bool] | None = None) -> None:
        """After a rebalance: keep only the services `owned`, load those the store brought (their SLI
        and detection state both)."""
        before = self.engine.services()
        self.engine.adopt(owned)
        self._restore_detection(before, self.engine.services())

    def set_maintenance(self, windows: Sequence[MaintenanceWindow]) -> None:
        """The maintenance windows now in force (config and the worker's `maintenance` topic)."""
        self.detection.set_maintenance(windows)

    def set_sources(
        self,
        caught_up: Mapping[str, bool],
        wall_ms: int | None = None,
        channels: Iterable[str] | None = None,
    ) -> None:
        """The shell's input sources (assigned partitions, files), each with whether it is caught up,
        and the channels partials come on (`SliEngine.set_sources`)."""
        self.engine.set_sources(caught_up, wall_ms, channels)

    def add(
        self, partials: Iterable[SliPartial], wall_ms: int | None = None, channel: str | None = None
    ) -> list[SliPartial]:
        """Merge partials; returns those applied (not redelivered, not refused). Detection notes
        those and every redaction note (it tells redelivered notes apart itself)."""
        partials = list(partials)
        before = self.engine.services()
        applied = self.engine.add(partials, wall_ms, channel)
        # Services the engine loaded from the store now (owned since the last `adopt`) bring theirs.
        loaded = {s for s in self.engine.services() - before if s in self._store.store}
        self._restore_detection(before, before | loaded)
        applied_ids = {id(partial) for partial in applied}
        noted = [p for p in partials if id(p) in applied_ids or p.is_redaction_note]
        self.detection.note(noted)
        # A note the engine did not apply leaves its service clean for the engine: `_step` writes it.
        self._noted.update(p.service for p in noted if id(p) not in applied_ids)
        self._unpersisted = self._unpersisted or bool(noted)
        return applied

    def advance(self, now_ms: int | None = None, *, idle: bool = False, write: bool = True) -> AnalysisStep:
        """Evaluate the steps the watermark passed. `now_ms`: the shell's wall clock (none in replay);
        `idle`: all input is caught up and quiet, so wall time may move the watermark. `write=False`:
        the state is not written here but flagged `persist_due`, for a shell that sends the snapshots
        first and then calls `persist` (a state written before its snapshots are delivered, then a
        crash, loses them: the restart resumes after steps never sent)."""
        return self._step(self.engine.advance(idle_now_ms=now_ms if idle else None), now_ms, write)

    def flush(self) -> AnalysisStep:
        """End of input (replay): every step up to the newest event."""
        return self._step(self.engine.flush(), None)

    def late_dropped_by_source(self) -> dict[str, int]:
        return self.engine.late_dropped_by_source()

    def stats(self) -> dict[str, int]:
        return self.engine.stats()

    def _step(self, snapshots: list[SliSnapshot], now_ms: int | None, write: bool = True) -> AnalysisStep:
        # Persist after every step that emitted snapshots (a restart must not emit them again with
        # other numbers), and otherwise when the last write is `persist_interval_ms` old, so input is
        # acknowledged steadily even between steps. The first interval starts with the first call.
        if self._last_persist_ms is None:
            self._last_persist_ms = now_ms
        due = (
            self._unpersisted
            and now_ms is not None
            and self._last_persist_ms is not None
            and self._persist_interval_ms is not None
            and now_ms - self._last_persist_ms >= self._persist_interval_ms
        )
        incidents = [
            event
            for _end, step in itertools.groupby(snapshots, key=lambda snapshot: snapshot.window_end)
            for event in self.detection.observe(list(step))
        ]
        if snapshots or due:
            if not write:
                return AnalysisStep(snapshots, persisted=False, incidents=incidents, persist_due=True)
            self.persist(now_ms)
            return AnalysisStep(snapshots, persisted=True, incidents=incidents)
        return AnalysisStep(snapshots, persisted=not self._unpersisted, incidents=incidents)

    def persist(self, now_ms: int | None = None) -> None:
        """Write the state: after every step that emitted snapshots (a restart must not emit them again
        with other numbers), or when due (`persist_due`)."""
        self._persist()
        self._last_persist_ms = now_ms if now_ms is not None else self._last_persist_ms
        self._unpersisted = False

    def _persist(self) -> None:
        """The engine writes the services it changed, each value with its detection state; services
        only detection changed (redaction notes) are written again with theirs."""
        self._store.detection_states = self.detection.service_states()
        self._store.written = set()
        self.engine.persist()
        owned, states, store = self.engine.services(), self._store.detection_states, self._store.store
        for service in sorted(self._noted - self._store.written):
            stored = store.get(service)
            if stored is not None and service in owned:
                store[service] = {**stored, DETECTION_KEY: states.get(service)}
        self._noted.clear()
        self._store.detection_states = {}

    def _restore_detection(self, before: set[str], after: set[str]) -> None:
        """Detection follows the engine: services gone are forgotten, services loaded bring theirs."""
        changes: dict[str, dict | None] = dict.fromkeys(before - after)
        changes.update({service: self._store.store[service].get(DETECTION_KEY) for service in after - before})
        if changes:
            self.detection.replace_services(changes)
