"""The incident event (a contract: DESIGN.md, `topics/incidents.schema.json`) and its Kafka headers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from telemetry_pipeline.detection.config import Routing, Severity

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "topics" / "incidents.schema.json"
CLOUDEVENTS_SPEC_VERSION = "1.0"
CE_TYPE_PREFIX = "io.github.telemetry-pipeline.incident."
# Event ids are UUIDs derived from (dedup_key, action, observed_at): a replay or a restart that emits
# the same event again emits it with the same id, so downstream deduplication works.
_ID_NAMESPACE = uuid.UUID("4b0c6f7e-5d1a-4f61-9c53-2a7e0d3b9f10")

IncidentType = Literal[
    "slo_burn_rate",
    "latency_regression",
    "error_rate_spike",
    "telemetry_gap",
    "completeness_drop",
    "pii_leak",
    "cardinality_explosion",
]
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


class IncidentEvent(BaseModel):
    """One step in an incident's life: trigger, update or resolve. Times are event time (RFC 3339 UTC)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="unique per event; a UUID derived from dedup_key, action and observed_at")
    dedup_key: str = Field(description="stable per incident: type, service and objective or signal")
    action: Literal["trigger", "update", "resolve"]
    type: IncidentType
    severity: Severity
    routing: Routing
    service: str
    summary: str = Field(max_length=1024)
    started_at: str = Field(pattern=RFC3339, description="when the condition first held")
    observed_at: str = Field(pattern=RFC3339, description="the evaluation step that emitted this event")
    resolved_at: str | None = Field(pattern=RFC3339, description="when the condition cleared (resolve only)")
    labels: dict[str, str] = Field(description="owner, tier, paging_route (service catalog), environment")
    evidence: dict[str, Any] = Field(
        description="the numbers that fired it: values against thresholds and baselines, sample counts, "
        "burn rates per window, redaction counts by detector, the deploy that preceded it"
    )
    exemplars: list[str] = Field(description="trace ids (hex) of example requests, when known")
    links: dict[str, str] = Field(description="runbook, dashboard")
    suppressed_by: str | None = Field(description="maintenance window id, or null")
    group_key: str = Field(description="incidents of one service close in time share it")

    def to_json_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    def headers(self, source: str) -> list[tuple[str, bytes]]:
        """CloudEvents binary-mode headers (Kafka protocol binding)."""
        return [
            ("ce_specversion", CLOUDEVENTS_SPEC_VERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", source.encode()),
            ("ce_type", (CE_TYPE_PREFIX + self.action).encode()),
            ("ce_time", self.observed_at.encode()),
            ("content-type", b"application/json"),
        ]


def event_id(dedup_key: str, action: str, observed_at: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{dedup_key}|{action}|{observed_at}"))


def incidents_json_schema() -> dict:
    schema = IncidentEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "incidents.schema.json"
    return schema


def render_incidents_schema() -> str:
    """The text of `topics/incidents.schema.json`."""
    return json.dumps(incidents_json_schema(), indent=2, sort_keys=True) + "\n"


def write_incidents_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(render_incidents_schema(), encoding="utf-8")
