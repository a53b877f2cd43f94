"""Round trips of the OTLP codecs on the protocol's own examples and on SDK-encoded payloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from telemetry_pipeline.otlp import (
    DecodeError,
    Encoding,
    Signal,
    decode,
    decode_json_line,
    encode,
    message_from_json,
)
from telemetry_pipeline.otlp.tests.sdk_payloads import sdk_logs, sdk_metrics, sdk_spans

DATA = Path(__file__).parent / "data"
EXAMPLES = {Signal.TRACES: "trace.json", Signal.METRICS: "metrics.json", Signal.LOGS: "logs.json"}


@pytest.mark.parametrize("signal", list(Signal))
def test_protocol_examples_round_trip_through_both_encodings(signal: Signal) -> None:
    payload = (DATA / EXAMPLES[signal]).read_bytes()
    message = decode(signal, payload)
    assert getattr(message, signal.resource_field)
    for encoding in Encoding:
        again = decode(signal, encode(message, encoding), encoding)
        assert again == message


def test_example_ids_are_read_as_hex_not_base64() -> None:
    traces = decode(Signal.TRACES, (DATA / "trace.json").read_bytes())
    span = traces.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174"
    assert span.parent_span_id.hex() == "eee19b7ec3c1b173"
    # Our JSON writes ids back as hex as well.
    written = json.loads(encode(traces, Encoding.JSON))
    assert written["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] == "eee19b7ec3c1b174"


def test_int64_as_string_or_number_and_lowercase_ids() -> None:
    line = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1544712660300000000",
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "severityNumber": 9,
                                "body": {"intValue": "42"},
                            },
                            {"timeUnixNano": 1544712660300000001, "body": {"intValue": 43}},
                        ]
                    }
                ]
            }
        ]
    }
    signal, logs = message_from_json(line)
    records = logs.resource_logs[0].scope_logs[0].log_records
    assert signal is Signal.LOGS
    assert [r.time_unix_nano for r in records] == [1544712660300000000, 1544712660300000001]
    assert [r.body.int_value for r in records] == [42, 43]
    assert records[0].severity_number == 9
    assert records[0].trace_id.hex() == "5b8efff798038103d269b633813fc60c"


def test_every_metric_type_round_trips_in_json() -> None:
    line = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {"name": "g", "gauge": {"dataPoints": [{"asDouble": 1.5, "timeUnixNano": "1"}]}},
                            {
                                "name": "s",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [{"asInt": "7", "timeUnixNano": "1"}],
                                },
                            },
                            {
                                "name": "h",
                                "histogram": {
                                    "aggregationTemporality": 1,
                                    "dataPoints": [
                                        {
                                            "count": "3",
                                            "sum": 6,
                                            "bucketCounts": ["1", "2"],
                                            "explicitBounds": [2.5],
                                            "exemplars": [
                                                {"asDouble": 2, "traceId": "AB" * 16, "spanId": "CD" * 8}
                                            ],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "e",
                                "exponentialHistogram": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [
                                        {
                                            "count": "4",
                                            "scale": 2,
                                            "zeroCount": "1",
                                            "positive": {"offset": -1, "bucketCounts": ["1", "2"]},
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "q",
                                "summary": {
                                    "dataPoints": [
                                        {
                                            "count": "2",
                                            "sum": 3,
                                            "quantileValues": [{"quantile": 0.5, "value": 1.5}],
                                        }
                                    ]
                                },
                            },
                        ]
                    }
                ]
            }
        ]
    }
    _, metrics = message_from_json(line)
    kinds = [m.WhichOneof("data") for m in metrics.resource_metrics[0].scope_metrics[0].metrics]
    assert kinds == ["gauge", "sum", "histogram", "exponential_histogram", "summary"]
    exemplar = metrics.resource_metrics[0].scope_metrics[0].metrics[2].histogram.data_points[0].exemplars[0]
    assert exemplar.trace_id == bytes.fromhex("ab" * 16)
    assert decode(Signal.METRICS, encode(metrics, Encoding.JSON)) == metrics


def test_log_bodies_of_every_anyvalue_kind_round_trip() -> None:
    from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

    logs = LogsData()
    records = logs.resource_logs.add().scope_logs.add().log_records
    bodies = [
        AnyValue(string_value="text"),
        AnyValue(bool_value=True),
        AnyValue(int_value=-(2**63)),
        AnyValue(double_value=0.25),
        AnyValue(bytes_value=b"\x00\xff"),
    ]
    nested = AnyValue()
    nested.kvlist_value.values.add(key="k").value.array_value.values.add().kvlist_value.values.add(
        key="deep"
    ).value.string_value = "x"
    bodies.append(nested)
    for body in bodies:
        records.add(time_unix_nano=1).body.CopyFrom(body)
    for encoding in Encoding:
        assert decode(Signal.LOGS, encode(logs, encoding), encoding) == logs


def test_sdk_encoded_payloads_decode_and_round_trip() -> None:
    spans = decode(Signal.TRACES, sdk_spans())
    names = sorted(s.name for rs in spans.resource_spans for ss in rs.scope_spans for s in ss.spans)
    assert names == ["GET /cart", "SELECT", "render"]
    metrics = decode(Signal.METRICS, sdk_metrics())
    kinds = {
        m.name: m.WhichOneof("data")
        for rm in metrics.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert kinds == {
        "requests": "sum",
        "inflight": "sum",
        "http.server.request.duration": "histogram",
        "exp": "exponential_histogram",
        "temperature": "gauge",
    }
    logs = decode(Signal.LOGS, sdk_logs())
    bodies = [
        r.body.WhichOneof("value")
        for rl in logs.resource_logs
        for sl in rl.scope_logs
        for r in sl.log_records
    ]
    assert bodies == ["string_value", "kvlist_value", "int_value"]
    for signal, message in ((Signal.TRACES, spans), (Signal.METRICS, metrics), (Signal.LOGS, logs)):
        for encoding in Encoding:
            assert decode(signal, encode(message, encoding), encoding) == message


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\x00garbage", "not a protobuf TracesData"),
        (b"\x0a\x05hello", "not a protobuf TracesData"),
        (b'{"resourceSpans": [', "invalid JSON"),
        (b'{"resourceLogs": []}', "must be an object with 'resourceSpans'"),
        (b"[1, 2]", "not a protobuf TracesData"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "not valid hex"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}',
            "bad value at resourceSpans.scopeSpans.spans.name",
        ),
    ],
)
def test_garbage_is_a_decode_error_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(Signal.TRACES, payload)


def test_decode_error_text_never_quotes_the_payload() -> None:
    secret = "alice@example.com"
    payload = json.dumps(
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"droppedAttributesCount": secret}]}]}]}
    ).encode()
    with pytest.raises(DecodeError) as info:
        decode(Signal.TRACES, payload)
    assert secret not in str(info.value)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"[1, 2]", "must be a JSON object"),
        (b'{"resourceWidgets": []}', "has none of resourceSpans"),
        (b"{", "invalid JSON"),
    ],
)
def test_json_lines_name_their_signal_or_are_rejected(line: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_json_line(line)
    signal, message = decode_json_line((DATA / "logs.json").read_bytes())
    assert signal is Signal.LOGS
    assert message.resource_logs[0].scope_logs[0].log_records[0].body.string_value == "Example log record"


SDK_PAYLOADS = {Signal.TRACES: sdk_spans, Signal.METRICS: sdk_metrics, Signal.LOGS: sdk_logs}


@pytest.mark.parametrize(
    ("topic_signal", "payload_signal"),
    [(a, b) for a in Signal for b in Signal if a is not b],
)
def test_another_signals_payload_is_a_decode_error(topic_signal: Signal, payload_signal: Signal) -> None:
    # The three *Data messages share their outer layout: a wrong topic's payload parses unless the
    # records themselves are checked.
    payload = SDK_PAYLOADS[payload_signal]()
    with pytest.raises(DecodeError):
        decode(topic_signal, payload, Encoding.PROTO)


def test_spans_and_log_records_need_well_formed_ids() -> None:
    traces = decode(Signal.TRACES, sdk_spans())
    traces.resource_spans[0].scope_spans[0].spans[-1].trace_id = b"\x01" * 5
    with pytest.raises(DecodeError, match="16-byte trace id"):
        decode(Signal.TRACES, encode(traces, Encoding.PROTO))
    logs = decode(Signal.LOGS, sdk_logs())
    logs.resource_logs[0].scope_logs[0].log_records[0].span_id = b"\x01" * 3
    for encoding in Encoding:
        with pytest.raises(DecodeError, match="span id not 8"):
            decode(Signal.LOGS, encode(logs, encoding), encoding)


def test_protobuf_whose_first_resource_group_is_123_bytes_is_not_taken_for_json() -> None:
    # Its bytes start "\n{": the tag of field 1, then the length 123, which is '{'.
    traces = TracesData()
    group = traces.resource_spans.add()
    group.scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="")
    pad = 123 - group.ByteSize()
    group.scope_spans[0].spans[0].name = "n" * (pad - 2)  # its tag and length take 2 bytes
    payload = encode(traces, Encoding.PROTO)
    assert payload[:2] == b"\n{"
    assert decode(Signal.TRACES, payload) == traces
    # OTLP/JSON after spaces, tabs or carriage returns is still JSON.
    assert decode(Signal.TRACES, b" \r\t" + encode(traces, Encoding.JSON)) == traces


def test_an_empty_message_encodes_to_json_that_decodes() -> None:
    for signal in Signal:
        empty = decode(signal, b"")
        assert decode(signal, encode(empty, Encoding.JSON), Encoding.JSON) == empty
