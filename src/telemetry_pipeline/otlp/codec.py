"""Decode and encode OTLP payloads.

Protobuf goes through the generated classes (upb, C speed). OTLP/JSON differs from the generic
protobuf JSON mapping in one place that matters: trace and span ids are hex strings, not base64
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding). Everything else (lowerCamelCase
names, int64 as string or number, enums as integers) the protobuf JSON mapping already accepts.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

Message = TracesData | MetricsData | LogsData


class Signal(StrEnum):
    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"

    @property
    def message_type(self) -> type[Message]:
        return _MESSAGE_TYPES[self]

    @property
    def json_key(self) -> str:
        """The top-level OTLP/JSON key: resourceSpans, resourceMetrics or resourceLogs."""
        return _JSON_KEYS[self]

    @property
    def resource_field(self) -> str:
        """The repeated top-level protobuf field: resource_spans, resource_metrics or resource_logs."""
        return _RESOURCE_FIELDS[self]

    @classmethod
    def of(cls, message: Message) -> Signal:
        return _SIGNAL_OF_TYPE[type(message)]


class Encoding(StrEnum):
    """Names follow the Collector's kafkaexporter `encoding` setting."""

    PROTO = "otlp_proto"
    JSON = "otlp_json"


_MESSAGE_TYPES: dict[Signal, type[Message]] = {
    Signal.TRACES: TracesData,
    Signal.METRICS: MetricsData,
    Signal.LOGS: LogsData,
}
_SIGNAL_OF_TYPE = {v: k for k, v in _MESSAGE_TYPES.items()}
_JSON_KEYS = {
    Signal.TRACES: "resourceSpans",
    Signal.METRICS: "resourceMetrics",
    Signal.LOGS: "resourceLogs",
}
_RESOURCE_FIELDS = {
    Signal.TRACES: "resource_spans",
    Signal.METRICS: "resource_metrics",
    Signal.LOGS: "resource_logs",
}
_SIGNAL_OF_JSON_KEY = {v: k for k, v in _JSON_KEYS.items()}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field")
_METRIC_DATA_FIELDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


class DecodeError(ValueError):
    """The payload is not a valid OTLP message of the expected signal; the text is the DLQ reason.

    Reasons name the structural problem only, never a value from the payload (it may hold PII).
    """


def sniff_encoding(payload: bytes) -> Encoding:
    # A serialized *Data message starts with field 1 (tag 0x0a); '{' (0x7b) would be a protobuf
    # start-group on field 15, which these messages never contain, so the first byte decides.
    # Leading whitespace before JSON is skipped, but not "\n": that is the protobuf tag, and a
    # first resource group of 123 bytes (length byte 0x7b, '{') made such a message look like JSON
    # (found by the fuzz test).
    return Encoding.JSON if payload.lstrip(b" \t\r")[:1] == b"{" else Encoding.PROTO


def decode(signal: Signal, payload: bytes, encoding: Encoding | None = None) -> Message:
    encoding = encoding or sniff_encoding(payload)
    if encoding is Encoding.JSON:
        obj = _load_json_object(payload)
        if signal.json_key not in obj:
            raise DecodeError(f"OTLP/JSON {signal} payload must be an object with {signal.json_key!r}")
        message = _parse_json(signal, obj)
    else:
        message = signal.message_type()
        try:
            message.ParseFromString(payload)
        except ProtobufDecodeError:
            raise DecodeError(f"not a protobuf {message.DESCRIPTOR.name}") from None
        # Arbitrary bytes can parse as a message made only of unknown fields; an OTLP producer never
        # sends a non-empty payload with no resource entries, so treat that as garbage.
        if payload and not getattr(message, signal.resource_field):
            raise DecodeError(f"payload decoded to an empty {message.DESCRIPTOR.name}")
    _check_records(signal, message)
    return message


# Where each signal keeps its records: (scope groups field, records field).
_RECORD_FIELDS = {
    Signal.TRACES: ("scope_spans", "spans"),
    Signal.METRICS: ("scope_metrics", "metrics"),
    Signal.LOGS: ("scope_logs", "log_records"),
}


def _check_records(signal: Signal, message: Message) -> None:
    """Reject what parses but is not this signal's data. The three *Data messages share their outer
    layout, so another signal's payload (a wrong topic) parses too: its records then carry known
    field numbers with another wire type (kept as unknown fields), and spans lack valid ids. Only
    the first record of each scope is checked for that (all records of a foreign payload are
    foreign); the ids of every span and log record are checked, since other stages key by them."""
    scopes_field, records_field = _RECORD_FIELDS[signal]
    for group in getattr(message, signal.resource_field):
        for scope in getattr(group, scopes_field):
            records = getattr(scope, records_field)
            if records and _has_mistyped_fields(records[0]):
                raise DecodeError(f"{records_field} hold fields of another type: not {signal} data")
            if signal is Signal.TRACES:
                for span in records:
                    parent = len(span.parent_span_id)
                    if len(span.trace_id) != 16 or len(span.span_id) != 8 or parent not in (0, 8):
                        raise DecodeError("span without a 16-byte trace id and an 8-byte span id")
            elif signal is Signal.LOGS:
                for record in records:
                    if len(record.trace_id) not in (0, 16) or len(record.span_id) not in (0, 8):
                        raise DecodeError("log record whose trace id is not 16 bytes or span id not 8")


def _has_mistyped_fields(record: Any) -> bool:
    """A field number this schema defines, sent with another wire type. Unknown field numbers are
    fine (a newer OTLP version may add fields)."""
    known = record.DESCRIPTOR.fields_by_number
    return any(field.field_number in known for field in UnknownFieldSet(record))


def encode(message: Message, encoding: Encoding) -> bytes:
    if encoding is Encoding.JSON:
        return orjson.dumps(message_to_json(message))
    return message.SerializeToString()


def message_from_json(obj: dict[str, Any]) -> tuple[Signal, Message]:
    """Parse one OTLP/JSON object (a line of the Collector's file exporter); the key names the signal."""
    for key, signal in _SIGNAL_OF_JSON_KEY.items():
        if key in obj:
            return signal, _parse_json(signal, obj)
    raise DecodeError("OTLP/JSON object has none of resourceSpans, resourceMetrics, resourceLogs")


def decode_json_line(line: bytes) -> tuple[Signal, Message]:
    """Decode one OTLP/JSON Lines record whose signal is unknown until its top-level key is read."""
    return message_from_json(_load_json_object(line))


def _load_json_object(payload: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON at byte {exc.pos}") from None
    if not isinstance(obj, dict):
        raise DecodeError("OTLP/JSON payload must be a JSON object")
    return obj


def message_to_json(message: Message) -> dict[str, Any]:
    obj = json_format.MessageToDict(message, use_integers_for_enums=True)
    _convert_ids(obj, _base64_to_hex)
    # MessageToDict leaves empty lists out; an empty message must still name its signal, or it
    # does not decode again (found by the fuzz test).
    obj.setdefault(Signal.of(message).json_key, [])
    return obj


def _parse_json(signal: Signal, obj: dict[str, Any]) -> Message:
    message = signal.message_type()
    try:
        _convert_ids(obj, _hex_to_base64)
        json_format.ParseDict(obj, message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, AttributeError) as exc:
        raise DecodeError(f"invalid OTLP/JSON {signal}: {_strip_values(str(exc))}") from None
    return message


def _strip_values(text: str) -> str:
    # protobuf's parse errors quote the offending value, which may be PII: keep only the field path.
    path = ".".join(_FAILED_FIELD.findall(text))
    return f"bad value at {path}" if path else "bad value"


def _hex_to_base64(value: Any) -> str:
    if not isinstance(value, str):
        raise DecodeError("trace/span id must be a hex string")
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except ValueError:
        raise DecodeError("trace/span id is not valid hex") from None


def _base64_to_hex(value: str) -> str:
    try:
        return base64.b64decode(value).hex()
    except binascii.Error:  # pragma: no cover - MessageToDict always writes valid base64
        raise DecodeError("invalid id bytes") from None


def _convert_ids(obj: dict[str, Any], convert: Callable[[Any], str]) -> None:
    """Rewrite the id fields in place along the paths where OTLP carries them."""
    for holder in _id_holders(obj):
        if not isinstance(holder, dict):
            continue
        for field in _ID_FIELDS:
            if field in holder:
                holder[field] = convert(holder[field])


def _items(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _id_holders(obj: dict[str, Any]) -> Iterator[Any]:
    for resource_spans in _items(obj, "resourceSpans"):
        for scope_spans in _items(resource_spans, "scopeSpans"):
            for span in _items(scope_spans, "spans"):
                yield span
                yield from _items(span, "links")
    for resource_logs in _items(obj, "resourceLogs"):
        for scope_logs in _items(resource_logs, "scopeLogs"):
            yield from _items(scope_logs, "logRecords")
    for resource_metrics in _items(obj, "resourceMetrics"):
        for scope_metrics in _items(resource_metrics, "scopeMetrics"):
            for metric in _items(scope_metrics, "metrics"):
                for data_field in _METRIC_DATA_FIELDS:
                    data = metric.get(data_field) if isinstance(metric, dict) else None
                    for point in _items(data, "dataPoints"):
                        yield from _items(point, "exemplars")
