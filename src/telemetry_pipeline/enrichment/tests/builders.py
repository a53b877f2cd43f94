"""Small OTLP message builders for the enrichment tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from telemetry_pipeline.otlp.attributes import get_str

KEY = b"k" * 32


def trace_id(n: int) -> bytes:
    return n.to_bytes(16, "big")


def span_id(n: int) -> bytes:
    return n.to_bytes(8, "big")


@dataclass
class S:
    """A span: trace number, span number, parent span number (0 = root)."""

    trace: int
    span: int
    parent: int = 0
    service: str = "frontend"
    name: str = "op"
    kind: int = Span.SPAN_KIND_INTERNAL
    status: int = Status.STATUS_CODE_UNSET
    attributes: Mapping[str, str] = field(default_factory=dict)


def _set(attributes: RepeatedCompositeFieldContainer[KeyValue], values: Mapping[str, str]) -> None:
    for key, value in values.items():
        attributes.append(KeyValue(key=key))
        attributes[-1].value.string_value = value


def traces(spans: Iterable[S]) -> TracesData:
    message = TracesData()
    by_service: dict[str, object] = {}
    for s in spans:
        group = by_service.get(s.service)
        if group is None:
            group = by_service[s.service] = message.resource_spans.add()
            _set(group.resource.attributes, {"service.name": s.service})
            group.scope_spans.add()
        span = group.scope_spans[0].spans.add(
            trace_id=trace_id(s.trace), span_id=span_id(s.span), name=s.name, kind=s.kind,
            parent_span_id=span_id(s.parent) if s.parent else b"",
        )
        span.status.code = s.status
        _set(span.attributes, s.attributes)
    return message


def logs(records: Iterable[tuple[int, int, Mapping[str, str]]], service: str = "frontend") -> LogsData:
    """Log records as (trace number or 0, span number or 0, attributes)."""
    message = LogsData()
    group = message.resource_logs.add()
    _set(group.resource.attributes, {"service.name": service})
    scope = group.scope_logs.add()
    for trace, span, attributes in records:
        record: LogRecord = scope.log_records.add(
            trace_id=trace_id(trace) if trace else b"", span_id=span_id(span) if span else b""
        )
        record.body.string_value = "something happened"
        _set(record.attributes, attributes)
    return message


def metrics(service: str) -> MetricsData:
    message = MetricsData()
    group = message.resource_metrics.add()
    _set(group.resource.attributes, {"service.name": service})
    group.scope_metrics.add().metrics.add(name="requests")
    return message


def all_spans(message: TracesData) -> list[Span]:
    return [span for rs in message.resource_spans for ss in rs.scope_spans for span in ss.spans]


def all_log_records(message: LogsData) -> list[LogRecord]:
    return [r for rl in message.resource_logs for sl in rl.scope_logs for r in sl.log_records]


def attr(item: Span | LogRecord | Resource, key: str) -> str | None:
    return get_str(item.attributes, key)
