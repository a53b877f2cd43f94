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

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.sli import SliEngine, SliPartial, SliSnapshot, SloResolver


@dataclass
class AnalysisStep:
    snapshots: list[SliSnapshot]
    persisted: bool  # the state now holds every partial added before the call that returned this


class Analysis:
    def __init__(
        self,
        config: PipelineConfig,
        *,
        services: Mapping[str, dict],
        store: MutableMapping[str, dict],
        persist_interval_ms: int | None = None,
    ) -> None:
        """`services`: the service catalog (SLO overrides), live. `store`: where the state persists
        (the worker's changelogged table, or a dict). Without `persist_interval_ms` the state is
        written only at evaluation steps."""
        self.slos = SloResolver(
            config.slos, config.slo_defaults, services, max_period_ms=config.sli.retention_ms
        )
        self.engine = SliEngine(config.sli, self.slos, store)
        self._persist_interval_ms = persist_interval_ms
        self._last_persist_ms: int | None = None
        self._unpersisted = False

    def adopt(self, owned: Callable[[str], bool] | None = None) -> None:
        """After a rebalance: keep only the services `owned`, load those the store brought."""
        self.engine.adopt(owned)

    def set_sources(self, caught_up: Mapping[str, bool], wall_ms: int | None = None) -> None:
        """The shell's input sources (assigned partitions, files), each with whether it is caught up."""
        self.engine.set_sources(caught_up, wall_ms)

    def add(self, partials: Iterable[SliPartial], wall_ms: int | None = None) -> list[SliPartial]:
        """Merge partials; returns those applied (not redelivered, not refused), the ones detection
        may count."""
        applied = self.engine.add(partials, wall_ms)
        self._unpersisted = self._unpersisted or bool(applied)
        return applied

    def advance(self, now_ms: int | None = None, *, idle: bool = False) -> AnalysisStep:
        """Evaluate the steps the watermark passed. `now_ms`: the shell's wall clock (none in replay);
        `idle`: all input is caught up and quiet, so wall time may move the watermark."""
        return self._step(self.engine.advance(idle_now_ms=now_ms if idle else None), now_ms)

    def flush(self) -> AnalysisStep:
        """End of input (replay): every step up to the newest event."""
        return self._step(self.engine.flush(), None)

    def late_dropped_by_source(self) -> dict[str, int]:
        return self.engine.late_dropped_by_source()

    def stats(self) -> dict[str, int]:
        return self.engine.stats()

    def _step(self, snapshots: list[SliSnapshot], now_ms: int | None) -> AnalysisStep:
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
        if snapshots or due:
            self.engine.persist()
            self._last_persist_ms = now_ms if now_ms is not None else self._last_persist_ms
            self._unpersisted = False
            return AnalysisStep(snapshots, persisted=True)
        return AnalysisStep(snapshots, persisted=not self._unpersisted)
