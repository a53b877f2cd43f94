"""Rolling SLIs and observability completeness per service (pure core; no Kafka here).

Ingest side: `PartialAggregator` turns redacted OTLP messages into per-(service, bucket)
`SliPartial`s. SLI stage: `SliEngine` merges them into tiered buckets kept in the shell's store and
emits `SliSnapshot`s on event time. See README.md in this directory for the rules and figures.
"""

from telemetry_pipeline.sli.config import (
    BucketTier,
    CompletenessWeights,
    SliConfig,
    SloConfig,
    SloDefaults,
    SloLatency,
    duration_ms,
)
from telemetry_pipeline.sli.engine import EngineStats, SliEngine
from telemetry_pipeline.sli.partials import AggregatorStats, PartialAggregator, SliPartial
from telemetry_pipeline.sli.slo import ResolvedSlo, SloResolver
from telemetry_pipeline.sli.snapshot import SliSnapshot, render_sli_schema, sli_json_schema, write_sli_schema

__all__ = [
    "AggregatorStats",
    "BucketTier",
    "CompletenessWeights",
    "EngineStats",
    "PartialAggregator",
    "ResolvedSlo",
    "SliConfig",
    "SliEngine",
    "SliPartial",
    "SliSnapshot",
    "SloConfig",
    "SloDefaults",
    "SloLatency",
    "SloResolver",
    "duration_ms",
    "render_sli_schema",
    "sli_json_schema",
    "write_sli_schema",
]
