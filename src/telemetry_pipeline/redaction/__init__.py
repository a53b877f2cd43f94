"""Redaction of PII and secrets in OTLP records."""

from telemetry_pipeline.redaction.config import Action, RedactionConfig
from telemetry_pipeline.redaction.detectors import Detector
from telemetry_pipeline.redaction.redactor import RedactionCounts, RedactionError, Redactor

__all__ = ["Action", "Detector", "RedactionConfig", "RedactionCounts", "RedactionError", "Redactor"]
