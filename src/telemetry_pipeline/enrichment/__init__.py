"""Enrichment with trace, user and service context (runs before redaction, in both shells).

The worker follows the compacted context topics with `app.context_sources` (Kafka I/O stays in
the shell); this package only holds the tables.
"""

from telemetry_pipeline.enrichment.config import AddedAttributeNames, ContextConfig, EnrichmentConfig
from telemetry_pipeline.enrichment.context_tables import ContextFileError, UserDirectory, load_context_file
from telemetry_pipeline.enrichment.enricher import Enricher, EnrichmentStats
from telemetry_pipeline.enrichment.hold import HoldBuffer
from telemetry_pipeline.enrichment.trace_context import TraceContext, TraceContextTable

__all__ = [
    "AddedAttributeNames",
    "ContextConfig",
    "ContextFileError",
    "Enricher",
    "EnrichmentConfig",
    "EnrichmentStats",
    "HoldBuffer",
    "TraceContext",
    "TraceContextTable",
    "UserDirectory",
    "load_context_file",
]
