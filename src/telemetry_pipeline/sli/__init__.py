"""Rolling SLIs and observability completeness per service (pure core; no Kafka here).

Ingest side: `PartialAggregator` turns each decoded OTLP message into one `SliPartial` per service
(a bucket per minute it touches), tagged by the core with the message's source and offset. SLI
stage: `SliEngine` merges them, once per input message, into tiered buckets kept in the shell's
store and emits `SliSnapshot`s on event time. See README.md in this directory for the rules and figures.
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
from telemetry_pipeline.sli.partials import (
    AggregatorStats,
    PartialAggregator,
    PartialsError,
    SliPartial,
    SourceProgress,
    decode_partials,
    decode_record,
    encode_partials,
    encode_progress,
)
from telemetry_pipeline.sli.slo import ResolvedSlo, SloResolver
from telemetry_pipeline.sli.snapshot import SliSnapshot, render_sli_schema, sli_json_schema, write_sli_schema
from telemetry_pipeline.sli.state import JsonValues

__all__ = [
    "AggregatorStats",
    "BucketTier",
    "CompletenessWeights",
    "EngineStats",
    "JsonValues",
    "PartialAggregator",
    "PartialsError",
    "ResolvedSlo",
    "SliConfig",
    "SliEngine",
    "SliPartial",
    "SliSnapshot",
    "SloConfig",
    "SloDefaults",
    "SloLatency",
    "SloResolver",
    "SourceProgress",
    "decode_partials",
    "decode_record",
    "duration_ms",
    "encode_partials",
    "encode_progress",
    "render_sli_schema",
    "sli_json_schema",
    "write_sli_schema",
]
