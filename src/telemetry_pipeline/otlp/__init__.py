"""OTLP codecs: TracesData, MetricsData and LogsData as protobuf or OTLP/JSON."""

from telemetry_pipeline.otlp.codec import (
    DecodeError,
    Encoding,
    Message,
    Signal,
    decode,
    decode_json_line,
    encode,
    message_from_json,
    message_to_json,
    sniff_encoding,
)

__all__ = [
    "DecodeError",
    "Encoding",
    "Message",
    "Signal",
    "decode",
    "decode_json_line",
    "encode",
    "message_from_json",
    "message_to_json",
    "sniff_encoding",
]
