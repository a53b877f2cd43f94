"""Detection: the analysis stage after the SLI engine. Pure (no Kafka), event time only.

The analysis object feeds it, in order, the partials the SLI engine applied (`note`) and all the
snapshots of each evaluation step (`observe`), and persists `state()` at the same point as the SLI
state, so a restart or a redelivery emits the same events and never re-triggers an open incident.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import orjson

from telemetry_pipeline.detection.config import DetectionConfig, MaintenanceWindow
from telemetry_pipeline.detection.detectors import (
    CardinalityExplosion,
    CompletenessDrop,
    ErrorRateSpike,
    Finding,
    LatencyRegression,
    PiiLeak,
    SloBurnRate,
    Step,
    TelemetryGap,
    Versions,
)
from telemetry_pipeline.detection.events import IncidentEvent
from telemetry_pipeline.detection.incidents import IncidentManager
from telemetry_pipeline.sli.partials import SliPartial
from telemetry_pipeline.sli.slo import SloResolver
from telemetry_pipeline.sli.snapshot import SliSnapshot

STATE_VERSION = 1


class DetectionStateError(ValueError):
    """A persisted detection state this version cannot read."""


class Detection:
    def __init__(
        self,
        config: DetectionConfig,
        slos: SloResolver,
        catalog: Mapping[str, dict],
        maintenance: Sequence[MaintenanceWindow] = (),
    ) -> None:
        self._burn = SloBurnRate(config.slo_burn_rate, slos)
        self._pii = PiiLeak(config.pii_leak)
        # Detectors with state, by name; the burn-rate detector reads only the snapshots.
        self._stateful = {
            d.name: d
            for d, enabled in (
                (ErrorRateSpike(config.error_rate_spike, slos), config.error_rate_spike.enabled),
                (LatencyRegression(config.latency_regression), config.latency_regression.enabled),
                (TelemetryGap(config.telemetry_gap), config.telemetry_gap.enabled),
                (CompletenessDrop(config.completeness_drop), config.completeness_drop.enabled),
                (self._pii, config.pii_leak.enabled),
                (CardinalityExplosion(config.cardinality_explosion), config.cardinality_explosion.enabled),
            )
            if enabled
        }
        self._burn_enabled = config.slo_burn_rate.enabled
        self._versions = Versions()
        self.incidents = IncidentManager(config.incidents, catalog, maintenance, self._versions.deploy_before)

    def set_maintenance(self, windows: Sequence[MaintenanceWindow]) -> None:
        """Replace the maintenance windows (the worker follows a `maintenance` topic)."""
        self.incidents.maintenance = list(windows)

    def note(self, partials: Iterable[SliPartial]) -> None:
        """Partials the SLI engine applied, and every redaction note (`SliPartial.is_redaction_note`):
        notes reach the stage after their message's buckets, so the engine would skip them as
        duplicates; pii_leak counts each (service, source, offset) once itself."""
        for partial in partials:
            self._versions.note(partial)
            if partial.redactions and "pii_leak" in self._stateful:
                self._pii.note(partial)

    def observe(self, snapshots: Sequence[SliSnapshot]) -> list[IncidentEvent]:
        """All snapshots of one evaluation step (steps in order): the incident events it causes. A
        service missing from a step is one the engine no longer evaluates: its detector state goes."""
        if not snapshots:
            return []
        end = snapshots[0].window_end
        services: dict[str, dict[str, SliSnapshot]] = {}
        for snapshot in snapshots:
            if snapshot.window_end != end:
                raise ValueError("observe takes the snapshots of one evaluation step")
            services.setdefault(snapshot.service, {})[snapshot.window] = snapshot
        end_ms = int(dt.datetime.strptime(end, "%Y-%m-%dT%H:%M:%S%z").timestamp() * 1000)
        step = Step(end_ms, dict(sorted(services.items())), self.incidents.open.keys())
        findings: list[Finding] = []
        if self._burn_enabled:
            findings.extend(self._burn.observe(step))
        for detector in self._stateful.values():
            findings.extend(detector.observe(step))
            detector.retain(step.services.keys())
        return self.incidents.step(end_ms, findings)

    def state(self) -> dict:
        return {
            "v": STATE_VERSION,
            "detectors": {name: detector.state() for name, detector in self._stateful.items()},
            "versions": self._versions.seen,
            "incidents": self.incidents.state(),
        }

    def restore(self, state: dict) -> None:
        if not isinstance(state, dict) or state.get("v") != STATE_VERSION:
            version = state.get("v") if isinstance(state, dict) else None
            raise DetectionStateError(
                f"detection state version {version if type(version) is int else '?'}; "
                f"this worker reads {STATE_VERSION}"
            )
        for name, detector in self._stateful.items():
            if name in state["detectors"]:
                detector.restore(state["detectors"][name])
        self._versions.seen = state["versions"]
        self.incidents.restore(state["incidents"])

    # Per service: the worker keeps each service's detection state inside the service's value of the
    # changelogged `sli-state` table (one key per service), so it is written with the SLI state in one
    # assignment and follows the service across rebalances as the SLI state does.

    def service_states(self) -> dict[str, dict]:
        """The whole state split by service: each value holds only that service's part (versioned
        like `state()`), detached from the live state."""
        split: dict[str, dict] = {}
        for part, fields in self._parts().items():
            for name, keyed in fields.items():
                for key, value in keyed.items():
                    service = _service_of(part, name, key)
                    parts = split.setdefault(service, {"v": STATE_VERSION, "parts": {}})["parts"]
                    parts.setdefault(part, {}).setdefault(name, {})[key] = value
        return {service: orjson.loads(orjson.dumps(state)) for service, state in split.items()}

    def replace_services(self, states: Mapping[str, dict | None]) -> None:
        """Replace the named services' state with the given ones (from `service_states`); None
        forgets a service (moved to another worker). Other services are untouched."""
        parts = self._parts()
        for service, state in states.items():
            if state is not None and (not isinstance(state, dict) or state.get("v") != STATE_VERSION):
                self.restore(state)  # raises DetectionStateError naming the version
            for part, fields in parts.items():
                for name, keyed in fields.items():
                    for key in [key for key in keyed if _service_of(part, name, key) == service]:
                        del keyed[key]
                    if state is not None:
                        keyed.update(state["parts"].get(part, {}).get(name, {}))
        self.restore(
            {
                "v": STATE_VERSION,
                "detectors": {name: parts[name] for name in self._stateful},
                "versions": parts["versions"]["seen"],
                "incidents": parts["incidents"],
            }
        )

    def _parts(self) -> dict[str, dict[str, dict]]:
        """The state as part -> field -> key -> value, with fresh dicts down to the keys."""
        state = self.state()
        parts = {
            **state["detectors"],
            "versions": {"seen": state["versions"]},
            "incidents": state["incidents"],
        }
        return {part: {name: dict(keyed) for name, keyed in fields.items()} for part, fields in parts.items()}


def _service_of(part: str, field: str, key: str) -> str:
    """The service a key of the state belongs to: most are service names; incidents and cooldowns are
    keyed `<type>/<service>/<subject>`, cardinality baselines `<service>/<what>`."""
    if part == "incidents" and field != "groups":
        return key.partition("/")[2].rpartition("/")[0]
    if part == "cardinality_explosion":
        return key.rpartition("/")[0]
    return key
