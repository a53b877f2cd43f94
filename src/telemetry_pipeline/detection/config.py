"""Configuration of detection: the `detection:` section (detectors, incident lifecycle) and the
`maintenance:` windows (a contract key, top level)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from telemetry_pipeline.sli.config import Duration

Routing = Literal["page", "ticket"]
Severity = Literal["critical", "error", "warning", "info"]
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MaintenanceWindow(_Model):
    """Planned work: incidents of these services that begin inside the window page nobody."""

    id: str = Field(min_length=1)
    services: list[str] = Field(min_length=1, description='service names, or ["*"] for all')
    start: dt.datetime
    end: dt.datetime

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone (RFC 3339, e.g. 2026-10-03T13:50:00Z)")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def covers(self, service: str, time_ms: int) -> bool:
        inside = self.start.timestamp() * 1000 <= time_ms < self.end.timestamp() * 1000
        return inside and ("*" in self.services or service in self.services)


class BurnRateAlert(_Model):
    """Both windows burn at `factor` or more (factor written for `reference_period`)."""

    long: Duration
    short: Duration
    factor: float = Field(gt=0)
    routing: Routing
    severity: Severity


# The SRE Workbook's multi-window, multi-burn-rate table (for a 30-day SLO).
_SRE_WORKBOOK = [
    BurnRateAlert(long="1h", short="5m", factor=14.4, routing="page", severity="critical"),
    BurnRateAlert(long="6h", short="30m", factor=6.0, routing="page", severity="error"),
    BurnRateAlert(long="3d", short="6h", factor=1.0, routing="ticket", severity="warning"),
]


class DetectorConfig(_Model):
    """What every detector but the burn rate's (whose rows say it) has: a switch, and where its
    incidents go."""

    enabled: bool = True
    routing: Routing = "ticket"
    severity: Severity = "warning"


class ConfirmedConfig(DetectorConfig):
    """A condition fires once it held in `confirm` of the last `of` evaluation steps."""

    confirm: int = Field(2, ge=1)
    of: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _fits(self) -> ConfirmedConfig:
        if self.confirm > self.of:
            raise ValueError("confirm must not exceed of")
        return self


class BaselinedConfig(ConfirmedConfig):
    """The baseline is the median (and MAD) of samples of the service's own past, one per
    `sample_every`, the last `samples` of them, taken only while the detector is quiet."""

    window: Duration = "5m"
    sample_every: Duration = "5m"
    samples: int = Field(144, ge=3)  # 12 hours at 5m: spans a good part of a daily cycle
    min_samples: int = Field(6, ge=3)
    min_requests: int = Field(50, ge=1)


class SloBurnRateConfig(_Model):
    """Page rows and ticket rows make separate incidents (subjects `<objective>:page` and
    `<objective>:ticket`), as in the SRE Workbook: a fast burn pages and resolves soon after
    recovery, while the budget it spent may keep a ticket open for days."""

    enabled: bool = True
    alerts: list[BurnRateAlert] = _SRE_WORKBOOK
    # Factors are for this SLO period and are scaled to each service's: a 7-day SLO burning at 3.36
    # spends the same 2% of its budget in an hour as a 30-day one burning at 14.4.
    reference_period: Duration = "30d"
    # Guards so a low-traffic service does not page on one failed request: the long window needs
    # this many requests and this many bad ones.
    min_requests: int = Field(100, ge=1)
    min_bad: int = Field(10, ge=1)
    # The short window needs a few bad events too: one error among few requests must not keep a
    # page open while the long window still remembers the outage.
    min_bad_short: int = Field(2, ge=1)
    latency: bool = Field(True, description="alert on the latency objective too, when the SLO sets one")


class LatencyRegressionConfig(BaselinedConfig):
    severity: Severity = "error"
    quantile: Literal["p95", "p99"] = "p95"
    ratio: float = Field(1.5, gt=1, description="fires at this multiple of the baseline median")
    mad_factor: float = Field(4.0, ge=0, description="... and this many (scaled) MADs above it")
    clear_ratio: float = Field(1.2, ge=1, description="stays open until below this multiple")
    min_increase_ms: float = Field(
        10.0, ge=0, description="... and this many ms above it (half to stay open)"
    )
    confirm: int = 3
    of: int = 5


class ErrorRateSpikeConfig(BaselinedConfig):
    """For services without an SLO of their own (no `slos:` entry, no catalog override)."""

    routing: Routing = "page"
    severity: Severity = "error"
    ratio: float = Field(5.0, gt=1, description="fires at this multiple of the baseline median ...")
    min_increase: float = Field(0.03, gt=0, le=1, description="... and at least this much above it")
    clear_increase: float = Field(0.02, ge=0, le=1, description="stays open while this much above it")
    min_errors: int = Field(10, ge=1)


class TelemetryGapConfig(DetectorConfig):
    """A service that was sending goes silent (no spans, metrics or logs in `window`)."""

    routing: Routing = "page"
    severity: Severity = "error"
    window: Duration = "5m"
    baseline_window: Duration = "1h"
    # Requests the service's recent rate (baseline window, before the silence) makes expected during
    # the silence; chance alone leaves a Poisson stream silent that long with probability e^-10.
    min_expected: float = Field(10.0, gt=0)


class CompletenessDropConfig(DetectorConfig):
    """A signal a service always sent disappears while others go on, or its score falls."""

    window: Duration = "5m"
    presence_alpha: float = Field(0.05, gt=0, le=1, description="EWMA weight of one step's presence")
    established: float = Field(0.98, gt=0, le=1, description="presence EWMA a signal needs to be missed")
    min_steps: int = Field(30, ge=1, description="steps observed before anything counts as established")
    missing_steps: int = Field(10, ge=1, description="consecutive steps without the signal")
    score_drop: float = Field(25.0, gt=0, le=100, description="score points below its EWMA")


# Credentials and payment data (the redactor's value detectors): found in telemetry, they mean a
# service logs what it must not. Other PII (emails, IPs) and attributes masked for their key name
# (`secret_key`: session ids, tokens by design) are routine redaction work.
_LEAK_DETECTORS = [
    "credit_card", "iban", "jwt", "bearer_token", "basic_auth", "url_credentials", "aws_access_key",
    "aws_secret_key", "github_token", "gitlab_token", "slack_token", "slack_webhook", "stripe_key",
    "google_api_key", "private_key", "generic_secret",
]  # fmt: skip


class PiiLeakConfig(DetectorConfig):
    detectors: list[str] = _LEAK_DETECTORS
    window: Duration = "15m"
    min_count: int = Field(1, ge=1, description="values found in the window (each message counted once)")
    max_messages: int = Field(10_000, ge=1, description="messages per service remembered for deduplication")
    # The redactor removed the values before anything left the pipeline: the service must stop
    # sending them, which is work for its owners and security, not a 3 a.m. page: a ticket (the
    # default routing), critical.
    severity: Severity = "critical"


class CardinalityExplosionConfig(BaselinedConfig):
    span_names_bound: int = Field(2_000, ge=1, description="fires above this many distinct names")
    attribute_keys_bound: int = Field(1_000, ge=1)
    factor: float = Field(4.0, gt=1, description="... or at this multiple of the baseline median")
    min_increase: int = Field(50, ge=1, description="... when that is this many more than it")
    min_requests: int = 1


class IncidentsConfig(_Model):
    resolve_after: Duration = Field("10m", description="clear this long before an incident resolves")
    cooldown: Duration = Field("30m", description="after a resolve, no new trigger of the same key")
    renotify_every: Duration = Field("4h", description="an open incident is updated at least this often")
    material_change: float = Field(0.5, gt=0, description="relative change of the value worth an update")
    group_window: Duration = Field("30m", description="incidents of a service this close share a group")
    deploy_lookback: Duration = Field("1h", description="a version change this long before is named")
    source: str = Field("telemetry-pipeline", min_length=1, description="CloudEvents ce_source")


class DetectionConfig(_Model):
    slo_burn_rate: SloBurnRateConfig = SloBurnRateConfig()
    latency_regression: LatencyRegressionConfig = LatencyRegressionConfig()
    error_rate_spike: ErrorRateSpikeConfig = ErrorRateSpikeConfig()
    telemetry_gap: TelemetryGapConfig = TelemetryGapConfig()
    completeness_drop: CompletenessDropConfig = CompletenessDropConfig()
    pii_leak: PiiLeakConfig = PiiLeakConfig()
    cardinality_explosion: CardinalityExplosionConfig = CardinalityExplosionConfig()
    incidents: IncidentsConfig = IncidentsConfig()

    def windows(self) -> set[str]:
        """The SLI windows detection reads: each must be among `sli.windows`."""
        labels = {alert.long for alert in self.slo_burn_rate.alerts}
        labels |= {alert.short for alert in self.slo_burn_rate.alerts}
        labels |= {
            self.latency_regression.window,
            self.error_rate_spike.window,
            self.telemetry_gap.window,
            self.telemetry_gap.baseline_window,
            self.completeness_drop.window,
            self.cardinality_explosion.window,
        }
        return labels
