"""Helpers shared by the generator tests: flatten generated messages into records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from telemetry_pipeline.generate import GeneratedMessage
from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.otlp.attributes import get_str, service_name


@dataclass
class SpanRecord:
    service: str
    version: str | None
    message_index: int
    span: Span


@dataclass
class LogEntry:
    service: str
    record: LogRecord


def spans(messages: Iterable[GeneratedMessage]) -> Iterator[SpanRecord]:
    for index, message in enumerate(messages):
        if message.signal is not Signal.TRACES or message.is_garbage:
            continue
        for resource_spans in message.message.resource_spans:
            service = service_name(resource_spans.resource)
            version = get_str(resource_spans.resource.attributes, "service.version")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    yield SpanRecord(service, version, index, span)


def logs(messages: Iterable[GeneratedMessage]) -> Iterator[LogEntry]:
    for message in messages:
        if message.signal is not Signal.LOGS or message.is_garbage:
            continue
        for resource_logs in message.message.resource_logs:
            service = service_name(resource_logs.resource)
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    yield LogEntry(service, record)


def strings(value: AnyValue) -> Iterator[str]:
    """Every string inside an AnyValue, however nested."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        yield value.string_value
    elif kind == "array_value":
        for item in value.array_value.values:
            yield from strings(item)
    elif kind == "kvlist_value":
        for item in value.kvlist_value.values:
            yield from strings(item.value)


def attribute_strings(attributes: Iterable[KeyValue], skip: frozenset[str] = frozenset()) -> Iterator[str]:
    for kv in attributes:
        if kv.key not in skip:
            yield from strings(kv.value)
