"""The SLI snapshot (a contract: DESIGN.md, `topics/sli.schema.json`)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "topics" / "sli.schema.json"

Ratio = float | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencyQuantiles(_Model):
    """Milliseconds; null when the window has no requests."""

    p50: float | None
    p95: float | None
    p99: float | None


class Completeness(_Model):
    traces: bool = Field(description="spans seen in the window")
    metrics: bool = Field(description="metric data points seen in the window")
    logs: bool = Field(description="log records seen in the window")
    log_trace_correlation: float = Field(ge=0, le=1, description="share of log records with a trace id")
    resource_attributes: float = Field(ge=0, le=1, description="share of recommended resource attributes set")
    score: float = Field(ge=0, le=100, description="weighted 0-100 score (weights in the SLI README)")


class Cardinality(_Model):
    """HyperLogLog estimates (~9% standard error) of distinct span names and span attribute keys."""

    span_names: int
    attribute_keys: int


class SliSnapshot(_Model):
    """One service's SLIs over one window ending at an evaluation step. Ratios are fractions (0-1)."""

    service: str
    window: str = Field(description="window length, e.g. 5m, 1h, 30d (the SLO period)")
    window_end: str = Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", description="RFC 3339 UTC")
    requests: int = Field(ge=0)
    errors: int = Field(ge=0)
    availability: Ratio = Field(description="1 - error_rate; null without requests")
    error_rate: Ratio = Field(description="errors / requests; null without requests")
    latency_ms: LatencyQuantiles
    latency_good_ratio: Ratio = Field(description="share of requests at or under the SLO latency threshold")
    throughput_rps: float = Field(ge=0, description="requests per second over the window")
    burn_rate: dict[str, float] = Field(
        description="availability error-budget burn rate per burn-rate window ending at window_end"
    )
    latency_burn_rate: dict[str, float] = Field(description="the same for the latency objective")
    error_budget_remaining: float = Field(
        description="share of the SLO period's availability budget left (negative when overspent)"
    )
    completeness: Completeness
    cardinality: Cardinality | None = Field(description="for windows within the finest tier, else null")

    def to_json_bytes(self) -> bytes:
        # model_dump keeps field declaration order, so the bytes are deterministic.
        return orjson.dumps(self.model_dump(mode="json"))


def sli_json_schema() -> dict:
    schema = SliSnapshot.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "sli.schema.json"
    return schema


def render_sli_schema() -> str:
    """The text of `topics/sli.schema.json`."""
    return json.dumps(sli_json_schema(), indent=2, sort_keys=True) + "\n"


def write_sli_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(render_sli_schema(), encoding="utf-8")
