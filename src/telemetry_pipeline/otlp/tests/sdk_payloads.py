"""OTLP payloads encoded by the OpenTelemetry Python SDK's own exporter code: what real producers write."""

from __future__ import annotations

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

RESOURCE = Resource.create({"service.name": "checkout", "service.version": "1.2.3"})


def sdk_spans() -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "GET /cart", kind=SpanKind.SERVER, attributes={"http.route": "/cart"}
    ) as root:
        with tracer.start_as_current_span(
            "SELECT", kind=SpanKind.CLIENT, links=[Link(root.get_span_context())]
        ) as c:
            c.add_event("exception", {"exception.type": "Timeout"})
            c.set_status(Status(StatusCode.ERROR, "boom"))
        with tracer.start_as_current_span("render", attributes={"n": 3, "ratio": 0.5, "tags": ["a", "b"]}):
            pass
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def sdk_metrics() -> bytes:
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=RESOURCE,
        metric_readers=[reader],
        views=[View(instrument_name="exp", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("test")
    meter.create_counter("requests").add(5, {"route": "/cart"})
    meter.create_up_down_counter("inflight").add(-2)
    meter.create_histogram("http.server.request.duration", unit="s").record(
        0.12, {"http.response.status_code": 200}
    )
    meter.create_histogram("exp").record(3.0)
    meter.create_gauge("temperature").set(21.5)
    return encode_metrics(reader.get_metrics_data()).SerializeToString()


def sdk_logs() -> bytes:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("test")
    for body in ("plain", {"user": "a", "items": [1, 2.5, True]}, 7):
        logger.emit(body=body, severity_number=SeverityNumber.WARN, attributes={"k": "v"})
    return encode_logs(exporter.get_finished_logs()).SerializeToString()
