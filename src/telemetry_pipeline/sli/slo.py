"""SLO resolution: explicit `slos:` entries, service-catalog overrides, then `slo_defaults`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from telemetry_pipeline.sli.config import SloConfig, SloDefaults, SloLatency, duration_ms

# The key of a service-catalog value that may carry an SLO, e.g. {"slo": {"availability": 99.95}}.
CATALOG_SLO_KEY = "slo"


@dataclass(frozen=True, slots=True)
class ResolvedSlo:
    availability: float  # objective as a fraction, e.g. 0.999
    latency_threshold_ms: float
    latency_objective: float  # fraction
    period: str  # e.g. "30d", also the snapshot's window label
    period_ms: int


class SloResolver:
    """`slo_for(service)`: field by field, a catalog override beats the `slos:` entry beats the defaults.

    The catalog is read on every call (it is a live, compacted table in the worker); an override
    that does not validate is ignored and counted in `invalid_overrides`.
    """

    def __init__(
        self,
        slos: list[SloConfig],
        defaults: SloDefaults,
        catalog: Mapping[str, dict[str, Any]] | None = None,
        *,
        max_period_ms: int | None = None,
    ) -> None:
        self._configured = {slo.service: slo for slo in slos}
        self._defaults = defaults
        self._catalog = catalog if catalog is not None else {}
        self._max_period_ms = max_period_ms
        self.invalid_overrides = 0
        for slo in [defaults, *slos]:
            if slo.period and max_period_ms and duration_ms(slo.period) > max_period_ms:
                raise ValueError(f"SLO period {slo.period} is longer than the SLI stage keeps data")

    def slo_for(self, service: str) -> ResolvedSlo:
        configured = self._configured.get(service)
        override = self._override(service)
        layers = [layer for layer in (override, configured) if layer is not None]
        availability = next((x.availability for x in layers if x.availability), self._defaults.availability)
        latency: SloLatency = next((x.latency for x in layers if x.latency), self._defaults.latency)
        period = next((x.period for x in layers if x.period), self._defaults.period)
        return ResolvedSlo(
            availability=availability / 100,
            latency_threshold_ms=latency.threshold_ms,
            latency_objective=latency.objective / 100,
            period=period,
            period_ms=duration_ms(period),
        )

    def explicit_objectives(self, service: str) -> set[str]:
        """The objectives ("availability", "latency") an `slos:` entry or a catalog override sets for
        the service, as opposed to `slo_defaults`: detection alerts on burn rates for these only."""
        layers = [layer for layer in (self._override(service), self._configured.get(service)) if layer]
        return {name for name in ("availability", "latency") if any(getattr(x, name) for x in layers)}

    def _override(self, service: str) -> SloConfig | None:
        entry = self._catalog.get(service)
        raw = entry.get(CATALOG_SLO_KEY) if isinstance(entry, dict) else None
        if not isinstance(raw, dict):
            return None
        try:
            override = SloConfig.model_validate({**raw, "service": service})
        except ValidationError:
            self.invalid_overrides += 1
            return None
        if override.period and self._max_period_ms and duration_ms(override.period) > self._max_period_ms:
            self.invalid_overrides += 1
            return None
        return override
