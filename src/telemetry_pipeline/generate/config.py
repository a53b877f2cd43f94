"""Settings of the synthetic OTLP load generator (`telemetry-pipeline generate`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from telemetry_pipeline.generate.estate import service_names
from telemetry_pipeline.generate.pii import LEAKS
from telemetry_pipeline.otlp import Signal

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# A fixed default epoch keeps runs reproducible; `start_time="now"` opts into the wall clock.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LEAK_KINDS = frozenset(leak.kind for leak in LEAKS)


def parse_duration(value: Any) -> Any:
    """Accept `90s`, `10m`, `1h30m`, `2d`, `250ms` and plain seconds besides what pydantic reads."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return timedelta(seconds=float(text))
        if text and _DURATION_PART.sub("", text) == "":
            return timedelta(
                seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
            )
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Fault(BaseModel):
    """A switch over a window of event time; it acts on the requests that start inside the window."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    at: Duration = Field(default=timedelta(0), description="offset from the start of the run")


class _ServiceFault(_Fault):
    service: str
    duration: Duration = Field(default=timedelta(minutes=5), alias="for")


class ErrorSpike(_ServiceFault):
    """The service's own requests fail at `rate`; failures propagate to its callers. A small rate for
    hours (e.g. rate 0.01 for 6h) is a slow burn."""

    kind: Literal["error_spike"] = "error_spike"
    rate: Share = 0.3


class LatencyRegression(_ServiceFault):
    """The service's own work (self time, its db and cache calls) takes `factor` times longer."""

    kind: Literal["latency_regression"] = "latency_regression"
    factor: float = Field(default=3.0, gt=0.0)


class Silent(_ServiceFault):
    """The service keeps serving but sends no spans, logs or metrics."""

    kind: Literal["silent"] = "silent"


class SignalStop(_ServiceFault):
    """The service stops sending one signal (say its logs) while it keeps serving and sending the others."""

    kind: Literal["signal_stop"] = "signal_stop"
    signal: Signal


class IsolatedErrors(_ServiceFault):
    """Exactly `count` of the service's requests fail, spread evenly over the window (the next request
    after each of `count` evenly spaced moments)."""

    kind: Literal["isolated_errors"] = "isolated_errors"
    count: int = Field(default=3, ge=1)


class LeakBurst(_ServiceFault):
    """A `share` of the service's server spans carry one kind of sensitive value (`kind`, a leak kind
    of `pii.LEAKS`: card, iban, jwt, bearer, aws_key, ...) in that leak's attribute."""

    kind: Literal["leak"] = "leak"
    leak: str = "card"
    share: Share = 0.2

    @model_validator(mode="after")
    def _known_leak(self) -> LeakBurst:
        if self.leak not in LEAK_KINDS:
            raise ValueError(f"unknown leak {self.leak!r} (known: {sorted(LEAK_KINDS)})")
        return self


class Deploy(_Fault):
    """`service.version` (and the pod names) change at `at`; optionally with a regression from then on."""

    kind: Literal["deploy"] = "deploy"
    service: str
    version: str | None = Field(default=None, description="new version; default: the next minor version")
    duration: Duration | None = Field(
        default=None, alias="for", description="how long the regression lasts; default: to the end"
    )
    latency_factor: float = Field(default=1.0, gt=0.0)
    error_rate: Share | None = None
    span_name_ids: bool = Field(
        default=False, description="the new version puts each request's id into its server span names"
    )


class Garbage(_Fault):
    """A `share` of extra messages whose payload decodes neither as OTLP protobuf nor as OTLP/JSON."""

    kind: Literal["garbage"] = "garbage"
    share: Share = 0.01
    duration: Duration | None = Field(default=None, alias="for", description="default: to the end")


Fault = Annotated[
    ErrorSpike | LatencyRegression | Silent | SignalStop | IsolatedErrors | LeakBurst | Deploy | Garbage,
    Field(discriminator="kind"),
]


class OutputTopics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    traces: str = "otlp_spans"
    metrics: str = "otlp_metrics"
    logs: str = "otlp_logs"
    user_context: str = "user-context"
    service_catalog: str = "service-catalog"

    def for_signal(self, signal: Signal) -> str:
        return getattr(self, str(signal))


class GeneratorConfig(BaseModel):
    """Every field has a default; the same config (with a fixed start time) gives the same bytes."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 1
    services: int = Field(default=8, ge=1, le=64, description="traced services (frontend first)")
    metrics_only_service: bool = Field(
        default=True, description="add `gateway`, which sends request metrics but no traces or logs"
    )
    duration: Duration = timedelta(minutes=10)
    rate: float = Field(default=50.0, gt=0.0, description="requests (traces) per second of event time")
    daily_cycle: Share = Field(
        default=0.0,
        description="amplitude of a daily traffic cycle around `rate`, peaking at 15:00 UTC "
        "(0.6: 1.6x the rate at the peak, 0.4x at 03:00)",
    )
    consumer_services: list[str] = Field(
        default_factory=list,
        description="services reached through a queue: their spans are CONSUMER, their callers' PRODUCER",
    )
    start_time: datetime | Literal["now"] = DEFAULT_START
    signals: list[Signal] = Field(
        default_factory=lambda: list(Signal), description="signals to emit; the traffic simulated is the same"
    )

    spans_per_message: int = Field(default=500, ge=1)
    logs_per_message: int = Field(default=500, ge=1)
    key: Literal["trace_id", "none"] = "none"
    split_traces: Share = Field(
        default=0.0, description="share of traces whose root span is sent in a later message"
    )

    attributes_per_span: tuple[int, int] = (10, 20)
    pii_share: Share = Field(default=0.05, description="share of spans and of log records carrying PII")
    users: int = Field(default=500, ge=1)
    tenants: int = Field(default=20, ge=1)
    anonymous_share: Share = Field(default=0.05, description="requests without enduser.id")
    unknown_user_share: Share = Field(default=0.01, description="requests by users missing from context")
    replicas: int = Field(default=2, ge=1, description="pods per service")
    incomplete_resource_share: Share = Field(
        default=0.25, description="share of services omitting some recommended resource attributes"
    )
    base_error_rate: Share = 0.002
    client_error_rate: Share = Field(default=0.01, description="4xx answers at the entry service")
    link_share: Share = 0.02
    db_span_kind: Literal["internal", "client"] = Field(
        default="internal", description="kind of db and cache spans (the semantic conventions say client)"
    )

    log_share: Share = Field(default=0.5, description="chance a SERVER span writes a log (errors always do)")
    uncorrelated_log_share: Share = Field(default=0.1, description="share of logs without trace context")

    metrics_interval: Duration = timedelta(seconds=60)
    metrics_temporality: Literal["cumulative", "delta"] = "cumulative"

    environment: str = "production"
    namespace: str = "shop"
    faults: list[Fault] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> GeneratorConfig:
        low, high = self.attributes_per_span
        if not 1 <= low <= high:
            raise ValueError("attributes_per_span must be (low, high) with 1 <= low <= high")
        if self.metrics_interval <= timedelta(0):
            raise ValueError("metrics_interval must be positive")
        known = set(service_names(self.services, self.metrics_only_service))
        for name in self.consumer_services:
            if name not in known:
                raise ValueError(f"consumer_services: unknown service {name!r} (known: {sorted(known)})")
        for fault in self.faults:
            service = getattr(fault, "service", None)
            if service is not None and service not in known:
                raise ValueError(f"fault {fault.kind}: unknown service {service!r} (known: {sorted(known)})")
        return self

    def start_ns(self) -> int:
        start = datetime.now(UTC) if self.start_time == "now" else self.start_time
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return (start - _EPOCH) // timedelta(microseconds=1) * 1000
