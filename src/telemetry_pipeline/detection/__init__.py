"""Detection and incidents (pure core; no Kafka here): detectors over each evaluation step's SLI
snapshots and the redaction notes, and an incident manager that turns what they find into
trigger / update / resolve events for the `incidents` topic."""

from telemetry_pipeline.detection.config import DetectionConfig, MaintenanceWindow
from telemetry_pipeline.detection.events import (
    IncidentEvent,
    incidents_json_schema,
    render_incidents_schema,
    write_incidents_schema,
)
from telemetry_pipeline.detection.stage import Detection, DetectionStateError

__all__ = [
    "Detection",
    "DetectionConfig",
    "DetectionStateError",
    "IncidentEvent",
    "MaintenanceWindow",
    "incidents_json_schema",
    "render_incidents_schema",
    "write_incidents_schema",
]
