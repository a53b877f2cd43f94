"""Enrichment with trace, user and service context (runs before redaction, in both shells).

`context_sources` (the worker's followers of the compacted context topics) is imported on its own:
it needs aiokafka, the rest of the stage does not.
"""

from telemetry_pipeline.enrichment.config import AddedAttributeNames, ContextConfig, EnrichmentConfig
from telemetry_pipeline.enrichment.context_tables import UserDirectory, load_context_file
from telemetry_pipeline.enrichment.enricher import Enricher, EnrichmentStats
from telemetry_pipeline.enrichment.hold import HoldBuffer
from telemetry_pipeline.enrichment.trace_context import TraceContext, TraceContextTable

__all__ = [
    "AddedAttributeNames",
    "ContextConfig",
    "Enricher",
    "EnrichmentConfig",
    "EnrichmentStats",
    "HoldBuffer",
    "TraceContext",
    "TraceContextTable",
    "UserDirectory",
    "load_context_file",
]
