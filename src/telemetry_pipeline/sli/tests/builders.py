"""Small OTLP messages built field by field, so each test states exactly what it feeds in."""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from telemetry_pipeline.sli import JsonValues

T0_NS = 1_800_000_000_000_000_000  # 2027-01-15T08:00:00Z, a whole hour
MS = 1_000_000
MINUTE_NS = 60_000 * MS
SERVER, CLIENT, INTERNAL, CONSUMER = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL, 5
ERROR, OK = Status.STATUS_CODE_ERROR, Status.STATUS_CODE_OK


def attributes(target, values: dict[str, object]) -> None:
    for key, value in values.items():
        kv: KeyValue = target.add(key=key)
        if isinstance(value, bool):
            kv.value.bool_value = value
        elif isinstance(value, int):
            kv.value.int_value = value
        elif isinstance(value, float):
            kv.value.double_value = value
        else:
            kv.value.string_value = str(value)


def traces(service: str | None, spans: list[dict], resource: dict[str, object] | None = None) -> TracesData:
    """spans: dicts with end_ns, latency_ms, and optional kind, parent, status, name, attrs."""
    message = TracesData()
    resource_spans = message.resource_spans.add()
    attributes(
        resource_spans.resource.attributes,
        {**({"service.name": service} if service else {}), **(resource or {})},
    )
    scope = resource_spans.scope_spans.add()
    for i, spec in enumerate(spans):
        span = scope.spans.add(name=spec.get("name", "GET /"), kind=spec.get("kind", SERVER))
        span.trace_id = bytes([1]) * 16
        span.span_id = (i + 1).to_bytes(8, "big")
        if spec.get("parent"):
            span.parent_span_id = bytes([9]) * 8
        span.end_time_unix_nano = spec["end_ns"]
        span.start_time_unix_nano = spec["end_ns"] - round(spec.get("latency_ms", 1.0) * MS)
        if "status" in spec:
            span.status.code = spec["status"]
        attributes(span.attributes, spec.get("attrs", {}))
    return message


def logs(service: str, records: list[tuple[int, bool]]) -> LogsData:
    """records: (time_ns, carries a trace id)."""
    message = LogsData()
    resource_logs = message.resource_logs.add()
    attributes(resource_logs.resource.attributes, {"service.name": service})
    scope = resource_logs.scope_logs.add()
    for time_ns, traced in records:
        record = scope.log_records.add(time_unix_nano=time_ns)
        record.body.string_value = "hello"
        if traced:
            record.trace_id = bytes([7]) * 16
    return message


def histogram(
    service: str,
    name: str,
    points: list[dict],
    *,
    unit: str = "",
    cumulative: bool = False,
    instance: str = "i-1",
) -> MetricsData:
    """points: dicts with time_ns, bounds, counts, optional start_ns and attrs."""
    message = MetricsData()
    resource_metrics = message.resource_metrics.add()
    attributes(
        resource_metrics.resource.attributes, {"service.name": service, "service.instance.id": instance}
    )
    metric = resource_metrics.scope_metrics.add().metrics.add(name=name, unit=unit)
    metric.histogram.aggregation_temporality = 2 if cumulative else 1
    for spec in points:
        point = metric.histogram.data_points.add(
            time_unix_nano=spec["time_ns"],
            start_time_unix_nano=spec.get("start_ns", T0_NS - MINUTE_NS),
            count=sum(spec["counts"]),
        )
        point.explicit_bounds.extend(spec["bounds"])
        point.bucket_counts.extend(spec["counts"])
        attributes(point.attributes, spec.get("attrs", {}))
    return message


def checkout_request_durations(error_status: int) -> MetricsData:
    """checkout's http.server.request.duration (seconds, bounds 100 ms and 500 ms): 6 requests
    <= 100 ms and 4 in (100, 500] ms answered 200, and 2 above 500 ms answered `error_status`."""
    return histogram(
        "checkout",
        "http.server.request.duration",
        [
            {
                "time_ns": T0_NS,
                "bounds": [0.1, 0.5],
                "counts": [6, 4, 0],
                "attrs": {"http.response.status_code": 200},
            },
            {
                "time_ns": T0_NS,
                "bounds": [0.1, 0.5],
                "counts": [0, 0, 2],
                "attrs": {"http.response.status_code": error_status},
            },
        ],
        unit="s",
    )


class ChangelogStore(JsonValues):
    """The worker's store over a dict: what is assigned is kept as JSON, as a changelog-backed table
    keeps it, so a change made in place and never assigned back is lost on recovery here too.
    `recovered`: the store whose records a changelog recovery gives back, copied."""

    def __init__(self, recovered: ChangelogStore | None = None) -> None:
        super().__init__(dict(recovered.table) if recovered is not None else {})
