"""The incident manager: findings of each step in, trigger / update / resolve events out.

An incident is open from its trigger until its condition has been clear for `resolve_after`; a
condition that flaps within that time keeps one incident open instead of paging again, and after a
resolve the same key cannot trigger again for `cooldown`. An open incident is updated when its
severity or routing escalates, when its value changed materially (at most every
`min_update_interval`), and every `renotify_every`. Everything is event time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from telemetry_pipeline.detection.config import SEVERITY_RANK, IncidentsConfig, MaintenanceWindow
from telemetry_pipeline.detection.detectors import Finding, dedup_key
from telemetry_pipeline.detection.events import IncidentEvent, event_id
from telemetry_pipeline.sli.config import duration_ms

# Service-catalog fields copied onto events: label name <- catalog field, link name <- catalog field.
CATALOG_LABELS = {"owner": "owner", "tier": "tier", "paging_route": "route", "environment": "environment"}
CATALOG_LINKS = {"runbook": "runbook", "dashboard": "dashboard"}
_MIN_UPDATE_INTERVAL_MS = 15 * 60_000


def rfc3339(time_ms: int) -> str:
    return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class IncidentManager:
    def __init__(
        self,
        config: IncidentsConfig,
        catalog: Mapping[str, dict],
        maintenance: Sequence[MaintenanceWindow],
        deploy_before: Callable[[str, int, int], dict[str, Any] | None],
    ) -> None:
        self._config = config
        self._catalog = catalog
        self.maintenance = list(maintenance)
        self._deploy_before = deploy_before
        self._resolve_after_ms = duration_ms(config.resolve_after)
        self._cooldown_ms = duration_ms(config.cooldown)
        self._renotify_ms = duration_ms(config.renotify_every)
        self._group_ms = duration_ms(config.group_window)
        self._lookback_ms = duration_ms(config.deploy_lookback)
        self.open: dict[str, dict[str, Any]] = {}  # dedup key -> the incident
        self.cooldown_until: dict[str, int] = {}  # dedup key -> end of its cooldown (ms)
        self.groups: dict[str, list] = {}  # service -> [group key, last trigger ms]
        self.stats = {"triggers": 0, "updates": 0, "resolves": 0, "held_by_cooldown": 0, "suppressed": 0}

    def step(self, end_ms: int, findings: Sequence[Finding]) -> list[IncidentEvent]:
        events: list[IncidentEvent] = []
        seen = set()
        for finding in sorted(findings, key=lambda f: dedup_key(f.type, f.service, f.subject)):
            key = dedup_key(finding.type, finding.service, finding.subject)
            seen.add(key)
            incident = self.open.get(key)
            if incident is None:
                event = self._trigger(key, finding, end_ms)
            else:
                event = self._update(key, incident, finding, end_ms)
            if event is not None:
                events.append(event)
        for key in sorted(self.open.keys() - seen):
            incident = self.open[key]
            if incident["clear_since_ms"] is None:
                incident["clear_since_ms"] = end_ms
            if end_ms - incident["clear_since_ms"] >= self._resolve_after_ms:
                events.append(self._resolve(key, incident, end_ms))
        self.cooldown_until = {k: t for k, t in self.cooldown_until.items() if t > end_ms}
        return events

    def _trigger(self, key: str, finding: Finding, end_ms: int) -> IncidentEvent | None:
        if self.cooldown_until.get(key, end_ms) > end_ms:
            self.stats["held_by_cooldown"] += 1
            return None
        started_ms = min(finding.started_ms or end_ms, end_ms)
        service = finding.service
        group = self.groups.get(service)
        if group is None or end_ms - group[1] > self._group_ms:
            group = [f"{service}/{rfc3339(started_ms)}", end_ms]
        group[1] = end_ms
        self.groups[service] = group
        # Began inside a window (or was first seen there): planned work pages nobody.
        window = next(
            (w for w in self.maintenance if w.covers(service, started_ms) or w.covers(service, end_ms)), None
        )
        evidence = dict(finding.evidence)
        deploy = self._deploy_before(service, started_ms, self._lookback_ms)
        if deploy is not None:
            at_ms = deploy.pop("at_ms")
            evidence["deploy"] = {**deploy, "at": rfc3339(at_ms)}
        incident = {
            "type": finding.type,
            "service": service,
            "severity": finding.severity,
            "routing": finding.routing,
            "started_ms": started_ms,
            "notified_ms": end_ms,
            "value": finding.value,
            "clear_since_ms": None,
            "group_key": group[0],
            "suppressed_by": window.id if window is not None else None,
            "summary": finding.summary,
            "evidence": evidence,
        }
        self.open[key] = incident
        self.stats["triggers"] += 1
        if window is not None:
            self.stats["suppressed"] += 1
        return self._event(key, "trigger", incident, end_ms)

    def _update(self, key: str, incident: dict, finding: Finding, end_ms: int) -> IncidentEvent | None:
        incident["clear_since_ms"] = None
        escalated = SEVERITY_RANK[finding.severity] > SEVERITY_RANK[incident["severity"]] or (
            finding.routing == "page" and incident["routing"] != "page"
        )
        if escalated:  # never de-escalated while open: a flapping severity makes no update storm
            incident["severity"] = max(incident["severity"], finding.severity, key=SEVERITY_RANK.__getitem__)
            incident["routing"] = "page" if "page" in (incident["routing"], finding.routing) else "ticket"
        since = end_ms - incident["notified_ms"]
        previous = incident["value"]
        material = abs(finding.value - previous) >= self._config.material_change * max(abs(previous), 1e-9)
        if not (escalated or since >= self._renotify_ms or (material and since >= _MIN_UPDATE_INTERVAL_MS)):
            return None
        incident.update(
            notified_ms=end_ms,
            value=finding.value,
            summary=finding.summary,
            evidence={**finding.evidence, **_kept(incident["evidence"])},
        )
        self.stats["updates"] += 1
        return self._event(key, "update", incident, end_ms)

    def _resolve(self, key: str, incident: dict, end_ms: int) -> IncidentEvent:
        del self.open[key]
        self.cooldown_until[key] = end_ms + self._cooldown_ms
        self.stats["resolves"] += 1
        incident["summary"] = f"resolved: {incident['summary']}"
        return self._event(key, "resolve", incident, end_ms, resolved_ms=incident["clear_since_ms"])

    def _event(
        self, key: str, action: str, incident: dict, end_ms: int, resolved_ms: int | None = None
    ) -> IncidentEvent:
        service = incident["service"]
        entry = self._catalog.get(service)
        entry = entry if isinstance(entry, dict) else {}
        routing = incident["routing"]
        evidence = incident["evidence"]
        if incident["suppressed_by"] is not None and routing == "page":
            routing = "ticket"  # planned work pages nobody; the evidence keeps what it would have been
            evidence = {**evidence, "routing_without_maintenance": "page"}
        observed_at = rfc3339(end_ms)
        return IncidentEvent(
            id=event_id(key, action, observed_at),
            dedup_key=key,
            action=action,  # type: ignore[arg-type]
            type=incident["type"],
            severity=incident["severity"],
            routing=routing,  # type: ignore[arg-type]
            service=service,
            summary=incident["summary"][:1024],
            started_at=rfc3339(incident["started_ms"]),
            observed_at=observed_at,
            resolved_at=rfc3339(resolved_ms) if resolved_ms is not None else None,
            labels=_strings(entry, CATALOG_LABELS),
            evidence=evidence,
            exemplars=[],
            links=_strings(entry, CATALOG_LINKS),
            suppressed_by=incident["suppressed_by"],
            group_key=incident["group_key"],
        )

    def state(self) -> dict:
        return {"open": self.open, "cooldown_until": self.cooldown_until, "groups": self.groups}

    def restore(self, state: dict) -> None:
        self.open = state["open"]
        self.cooldown_until = state["cooldown_until"]
        self.groups = state["groups"]


def _kept(evidence: dict) -> dict:
    """What an update keeps from the trigger's evidence: the deploy named then."""
    return {"deploy": evidence["deploy"]} if "deploy" in evidence else {}


def _strings(entry: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, str]:
    return {name: entry[field] for name, field in fields.items() if isinstance(entry.get(field), str)}
