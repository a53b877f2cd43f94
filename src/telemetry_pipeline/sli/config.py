"""Configuration of the SLI stage: SLOs (a contract, top-level keys) and the `sli:` section."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> int:
    """'90s', '5m', '6h', '30d' -> milliseconds."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"duration must look like 30s, 5m, 6h or 30d, got {text!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def _valid_duration(text: str) -> str:
    duration_ms(text)
    return text


Duration = Annotated[str, AfterValidator(_valid_duration)]
Percent = Annotated[float, Field(gt=0, lt=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SloLatency(_Model):
    threshold_ms: float = Field(gt=0)
    objective: Percent = 99.0


class SloConfig(_Model):
    """One `slos:` entry; fields left out fall back to `slo_defaults`."""

    service: str = Field(min_length=1)
    availability: Percent | None = None
    latency: SloLatency | None = None
    period: Duration | None = None


class SloDefaults(_Model):
    availability: Percent = 99.5
    # A threshold for every service, so `latency_good_ratio` is always defined.
    latency: SloLatency = SloLatency(threshold_ms=500.0, objective=99.0)
    period: Duration = "30d"


class BucketTier(_Model):
    """Buckets of `size` keep data until it is `until` old, then roll into the next, coarser tier."""

    size: Duration
    until: Duration
    # Each level halves the latency sketch's resolution (relative accuracy roughly doubles) to keep
    # long-lived buckets small: level 0 is `latency_relative_accuracy`, level 1 about twice that.
    sketch_collapse: int = Field(0, ge=0, le=4)


class CompletenessWeights(_Model):
    traces: float = Field(25, ge=0)
    metrics: float = Field(20, ge=0)
    logs: float = Field(15, ge=0)
    log_trace_correlation: float = Field(20, ge=0)
    resource_attributes: float = Field(20, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> CompletenessWeights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one completeness weight must be positive")
        return self


_DEFAULT_TIERS = [
    BucketTier(size="1m", until="1h"),
    BucketTier(size="10m", until="6h", sketch_collapse=1),
    BucketTier(size="1h", until="3d", sketch_collapse=2),
    BucketTier(size="6h", until="30d", sketch_collapse=3),
]


class SliConfig(_Model):
    windows: list[Duration] = ["5m", "30m", "1h", "6h", "1d", "3d"]  # plus each service's SLO period
    burn_rate_windows: list[Duration] = ["5m", "30m", "1h", "6h", "1d", "3d"]
    # Finest first. The first tier's size is the ingest bucket; the last tier's `until` bounds the
    # longest window (and SLO period) that can be evaluated.
    bucket_tiers: list[BucketTier] = _DEFAULT_TIERS
    evaluation_step: Duration = "1m"
    # When idle input lets the wall clock move the watermark, a service this far behind it (silent
    # for days) jumps ahead and is evaluated only for the last stretch: catching up step by step would
    # emit thousands of snapshots nobody reads and block the worker's event loop for seconds. Moves
    # by data (a backlog, replay) evaluate every step, so the output does not depend on the pace.
    max_catch_up: Duration = "1h"
    allowed_lateness: Duration = "2m"
    # Wall time after which an input source (a partition, or the whole input) with no data stops
    # holding the watermark back, so silent services and partitions are still evaluated.
    idle_after: Duration = "30s"
    # Ingest skips items stamped further ahead of the shell's clock than this (when it passes one).
    max_clock_skew: Duration = "10m"
    latency_relative_accuracy: float = Field(0.01, gt=0, le=0.1)
    # A resource attribute requirement is met by any of the '|'-separated keys.
    recommended_resource_attributes: list[str] = [
        "service.name",
        "service.version",
        "service.namespace",
        "service.instance.id",
        "deployment.environment.name|deployment.environment",
        "telemetry.sdk.language",
    ]
    completeness_weights: CompletenessWeights = CompletenessWeights()
    # Span attribute keys feed the cardinality estimate from 1 span in this many (chosen by span id):
    # reading every attribute list would cost more than all else here.
    attribute_key_sampling: int = Field(16, gt=0, le=256)  # a span id byte decides
    max_services: int = Field(2_000, gt=0)  # per SLI engine (one worker); more are counted and dropped
    # Cumulative histogram series kept per service, and their points not yet evaluated in all: they live
    # in its sli-state value (1 MB record limit; ~170 bytes a point measured, a service of 69 series at
    # 4,039 points wrote 686 KB, hence the ceiling). Points beyond the budget go oldest first, from the
    # longest series; a point older than its series keeps is then late.
    metric_series_cache_size: int = Field(200, gt=0)
    metric_points_per_service: int = Field(4_096, gt=0, le=4_096)

    @model_validator(mode="after")
    def _consistent(self) -> SliConfig:
        fine = duration_ms(self.bucket_tiers[0].size) if self.bucket_tiers else 0
        if not self.bucket_tiers:
            raise ValueError("bucket_tiers must not be empty")
        previous_size, previous_until = 0, 0
        for tier in self.bucket_tiers:
            size, until = duration_ms(tier.size), duration_ms(tier.until)
            if previous_size and size % previous_size:
                raise ValueError(f"tier size {tier.size} is not a multiple of the finer tier's size")
            if until % size or until <= previous_until:
                raise ValueError(f"tier until {tier.until} must grow and be a multiple of {tier.size}")
            previous_size, previous_until = size, until
        step = duration_ms(self.evaluation_step)
        if step % fine:
            raise ValueError("evaluation_step must be a multiple of the finest bucket size")
        # Late data must still land in the finest tier.
        if duration_ms(self.allowed_lateness) + step > duration_ms(self.bucket_tiers[0].until):
            raise ValueError("allowed_lateness + evaluation_step must fit in the finest tier")
        longest = max(duration_ms(w) for w in [*self.windows, *self.burn_rate_windows])
        if longest > previous_until:
            raise ValueError(f"a window is longer than the last tier keeps ({self.bucket_tiers[-1].until})")
        return self

    @property
    def fine_bucket_ms(self) -> int:
        return duration_ms(self.bucket_tiers[0].size)

    @property
    def retention_ms(self) -> int:
        return duration_ms(self.bucket_tiers[-1].until)
