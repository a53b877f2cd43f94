"""Hostile and broken input through the core (issue 12): each record goes to the DLQ with a reason or
is handled within bounds, the good record after it in the same batch still goes out, and no value
from a record reaches a DLQ reason or a log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.core import MAX_SERVICE_NAME_LENGTH, OTHER_SERVICE, Core, CoreResult, InputRecord
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.enrichment.tests.builders import S, all_log_records, all_spans, logs, traces
from telemetry_pipeline.otlp import Encoding, Message, Signal, decode, encode

NOW_MS = 1_767_225_600_000
# Planted in every hostile record; must never show in a reason or a log line.
MARK = "hostile-7f3a9c"
EMAIL = f"{MARK}@example.com"


@pytest.fixture(autouse=True)
def logs_hold_no_record_values(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    leaked = [r.getMessage() for r in caplog.records if MARK in r.getMessage()]
    assert not leaked, f"a record's value reached the log: {leaked[:1]}"


def _core(**sections: dict) -> Core:
    return Core(PipelineConfig(**sections), trace_store={}, users=UserDirectory(), services={})


def _good() -> InputRecord:
    return InputRecord(Signal.TRACES, b"good", encode(traces([S(9, 9)]), Encoding.PROTO), "otlp_spans[0]", 2)


def _run(core: Core, signal: Signal | None, value: bytes) -> CoreResult:
    """The hostile record, then a good one on the same partition: both finish, the good one goes out."""
    hostile = InputRecord(signal, b"hostile", value, "otlp_spans[0]", 1)
    result = core.process([hostile, _good()], NOW_MS, final=True)
    assert sorted(r.position for r in result.finished) == [1, 2]
    assert any(clean.origin.position == 2 for clean in result.clean), "the record after it did not go out"
    for rejected in result.dlq:
        assert MARK not in rejected.reason
        assert rejected.reason.split(":", 1)[0] in {"decode", "aggregate", "enrich", "redact", "encode"}
    return result


def _rejected(result: CoreResult) -> str:
    [rejected] = [r for r in result.dlq if r.origin.position == 1]
    return rejected.reason


def _span_message(**fields: object) -> Message:
    message = traces([S(1, 1, attributes={"note": EMAIL})])
    span = all_spans(message)[0]
    for name, value in fields.items():
        setattr(span, name, value)
    return message


def test_truncated_protobuf_goes_to_the_dlq() -> None:
    payload = encode(_span_message(), Encoding.PROTO)
    for cut in (1, 7, len(payload) // 2):
        assert _rejected(_run(_core(), Signal.TRACES, payload[:-cut])).startswith("decode: ")


@pytest.mark.parametrize("payload_signal", [Signal.LOGS, Signal.METRICS])
def test_a_record_of_another_signal_goes_to_the_dlq(payload_signal: Signal) -> None:
    from telemetry_pipeline.otlp.tests.sdk_payloads import sdk_logs, sdk_metrics

    payload = {Signal.LOGS: sdk_logs, Signal.METRICS: sdk_metrics}[payload_signal]()
    assert _rejected(_run(_core(), Signal.TRACES, payload)).startswith("decode: ")
    json_payload = encode(decode(payload_signal, payload), Encoding.JSON)
    assert "resourceSpans" in _rejected(_run(_core(), Signal.TRACES, json_payload))


@pytest.mark.parametrize(
    "payload",
    [
        b'{"resourceSpans": [',
        b'{"resourceSpans": [] ',
        b"{" + MARK.encode(),
        b'{"resourceSpans": {"x": 1e9999}}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "' + MARK.encode() + b'"}]}]}]}',
    ],
)
def test_invalid_json_goes_to_the_dlq(payload: bytes) -> None:
    assert _rejected(_run(_core(), Signal.TRACES, payload)).startswith("decode: ")
    # A replay line whose signal is read from the JSON itself.
    assert _rejected(_run(_core(), None, payload)).startswith("decode: ")


def test_invalid_utf8_in_strings_goes_to_the_dlq() -> None:
    placeholder = "n" * 12
    proto = encode(_span_message(name=placeholder), Encoding.PROTO)
    proto = proto.replace(placeholder.encode(), b"\xff\xfe" * 6)
    assert _rejected(_run(_core(), Signal.TRACES, proto)).startswith("decode: ")
    json = encode(_span_message(name=placeholder), Encoding.JSON).replace(placeholder.encode(), b"\xc3(" * 6)
    assert _rejected(_run(_core(), Signal.TRACES, json)).startswith("decode: ")
    # Lone surrogates are invalid UTF-8 even when escaped.
    escaped = encode(_span_message(name=placeholder), Encoding.JSON).replace(placeholder.encode(), b"\\ud800")
    assert _rejected(_run(_core(), Signal.TRACES, escaped)).startswith("decode: ")


def test_a_10_mb_message_goes_to_the_dlq() -> None:
    message = traces([S(1, n + 1, attributes={"blob": "x" * 1000, "note": EMAIL}) for n in range(10_000)])
    payload = encode(message, Encoding.PROTO)
    assert len(payload) > 10_000_000
    started = time.perf_counter()
    result = _run(_core(), Signal.TRACES, payload)
    elapsed = time.perf_counter() - started
    reason = _rejected(result)
    assert reason.startswith("encode: output of ") and "over kafka.max_message_bytes" in reason
    # The DLQ record carries the input; the worker sends one too large for the DLQ as a reference
    # (tests/chaos/test_oversized_record.py), replay writes it whole.
    [rejected] = [r for r in result.dlq if r.origin.position == 1]
    assert rejected.origin.value == payload
    assert elapsed < 30, f"{elapsed:.1f}s for one message"


def test_1_mb_attribute_values_are_redacted_within_bounds_or_go_to_the_dlq() -> None:
    value = ("y" * 500_000) + f" {EMAIL} " + ("z" * 500_000)
    payload = encode(traces([S(1, 1, attributes={"big": value})]), Encoding.PROTO)
    # Over the default 1 MB output limit: to the DLQ.
    assert "over kafka.max_message_bytes" in _rejected(_run(_core(), Signal.TRACES, payload))
    # With room for it: out, and what is in it is still found.
    result = _run(_core(kafka={"max_message_bytes": 4_000_000}), Signal.TRACES, payload)
    [clean] = [c for c in result.clean if c.origin.position == 1]
    assert MARK.encode() not in clean.value
    assert b"[REDACTED:EMAIL]" in clean.value


def _nested_body(depth: int, kind: str) -> LogsData:
    message = logs([(0, 0, {})])
    value = AnyValue(string_value=EMAIL)
    for _ in range(depth):
        outer = AnyValue()
        if kind == "kvlist":
            outer.kvlist_value.values.add(key="k").value.CopyFrom(value)
        else:
            outer.array_value.values.add().CopyFrom(value)
        value = outer
    all_log_records(message)[0].body.CopyFrom(value)
    return message


def _nested_json(depth: int, kind: str) -> bytes:
    body = f'{{"stringValue":"{EMAIL}"}}'
    for _ in range(depth):
        if kind == "kvlist":
            body = '{"kvlistValue":{"values":[{"key":"k","value":' + body + "}]}}"
        else:
            body = '{"arrayValue":{"values":[' + body + "]}}"
    return ('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":' + body + "}]}]}]}").encode()


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _nested_proto(depth: int, kind: str) -> bytes:
    """LogsData bytes with a body nested `depth` deep, written directly (building the message would
    copy it at every level)."""
    value = _field(1, EMAIL.encode())  # AnyValue.string_value
    for _ in range(depth):
        if kind == "kvlist":  # AnyValue.kvlist_value -> KeyValueList.values -> KeyValue{key, value}
            value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))
        else:  # AnyValue.array_value -> ArrayValue.values
            value = _field(5, _field(1, value))
    # LogsData.resource_logs -> ResourceLogs.scope_logs -> ScopeLogs.log_records -> LogRecord.body
    return _field(1, _field(2, _field(2, _field(5, value))))


@pytest.mark.parametrize("kind", ["kvlist", "array"])
def test_log_bodies_nested_10000_deep_go_to_the_dlq(kind: str) -> None:
    # protobuf's own recursion limit (100 messages) stops the parser, in C, before Python's.
    [shallow] = all_log_records(decode(Signal.LOGS, _nested_proto(20, kind)))  # the bytes are right
    assert shallow.body == all_log_records(_nested_body(20, kind))[0].body
    proto = _nested_proto(10_000, kind)
    assert _rejected(_run(_core(), Signal.LOGS, proto)).startswith("decode: ")
    assert _rejected(_run(_core(), Signal.LOGS, _nested_json(10_000, kind))).startswith("decode: ")
    assert _rejected(_run(_core(), None, _nested_json(10_000, kind))).startswith("decode: ")


@pytest.mark.parametrize("kind", ["kvlist", "array"])
def test_bodies_nested_as_deep_as_the_parser_takes_are_masked_below_max_depth(kind: str) -> None:
    for encoding in Encoding:
        payload = encode(_nested_body(30, kind), encoding)
        result = _run(_core(), Signal.LOGS, payload)
        [clean] = [c for c in result.clean if c.origin.position == 1]
        assert MARK.encode() not in clean.value
        assert b"[REDACTED:MAX_DEPTH]" in clean.value


def test_100000_distinct_attribute_keys_in_one_message_stay_within_bounds() -> None:
    message = traces([S(1, 1)])
    span = all_spans(message)[0]
    for n in range(100_000):
        span.attributes.add(key=f"attr.{n}").value.string_value = "v"
    span.attributes.add(key="contact").value.string_value = EMAIL
    for encoding in Encoding:
        core = _core(redaction={"value_cache_size": 1000}, kafka={"max_message_bytes": 16_000_000})
        result = _run(core, Signal.TRACES, encode(message, encoding))
        [clean] = [c for c in result.clean if c.origin.position == 1]
        assert MARK.encode() not in clean.value
        # The per-key rule cache is bounded like the value cache.
        assert len(core.redactor._key_actions) <= 1000


@pytest.mark.parametrize(
    "nanos", [0, 1, 86_400 * 10**9, 2**63 - 1, 2**64 - 1, (NOW_MS + 10 * 365 * 86_400_000) * 10**6]
)
def test_timestamps_zero_far_past_and_far_future_are_handled(nanos: int) -> None:
    message = _span_message(start_time_unix_nano=nanos, end_time_unix_nano=nanos, kind=2)
    core = _core()
    result = _run(core, Signal.TRACES, encode(message, Encoding.PROTO))
    assert [c for c in result.clean if c.origin.position == 1]
    # Whatever the stamps, the SLI side gets at most a partial per record, not one per time bucket.
    assert len([p for p in result.partials if p.offset == 1 and not p.is_redaction_note]) <= 1


def test_10000_character_span_and_service_names() -> None:
    long_service, long_name = "s" * 10_000, f"{MARK}-" + "n" * 10_000
    payload = encode(traces([S(1, 1, service=long_service, name=long_name, attributes={"a": EMAIL})]),
                     Encoding.PROTO)
    core = _core()
    result = _run(core, Signal.TRACES, payload)
    assert [c for c in result.clean if c.origin.position == 1]
    services = {service for service, _ in core.stats.redactions}
    assert services <= {OTHER_SERVICE, "frontend"} and OTHER_SERVICE in services
    assert all(len(service) <= MAX_SERVICE_NAME_LENGTH for service in services)


def test_a_service_name_per_record_keeps_stats_bounded() -> None:
    core = _core(worker={"metrics_max_services": 50})
    for n in range(1_000):
        payload = encode(traces([S(n + 1, 1, service=f"svc-{n}", attributes={"a": EMAIL})]), Encoding.PROTO)
        core.process([InputRecord(Signal.TRACES, None, payload, "otlp_spans[0]", n)], NOW_MS, final=True)
    services = {service for service, _ in core.stats.redactions}
    assert len(services) == 51 and OTHER_SERVICE in services
    # Nothing is lost from the totals, only the names.
    assert core.stats.redactions.total() == 1_000
    assert core.stats.redactions[OTHER_SERVICE, "email"] == 950


def test_dlq_payloads_of_decodable_records_can_be_redacted() -> None:
    message = _span_message()
    payload = encode(message, Encoding.PROTO)
    for redact, expect_mark in ((False, True), (True, False)):
        big = encode(traces([S(1, 1, attributes={"note": EMAIL, "pad": "p" * 1500})]), Encoding.PROTO)
        # The input fits, what enrichment makes of it does not.
        core = _core(dlq={"redact_decodable": redact}, kafka={"max_message_bytes": len(big) + 1})
        result = core.process([InputRecord(Signal.TRACES, None, big, "otlp_spans[0]", 1)], NOW_MS, final=True)
        [rejected] = result.dlq
        assert rejected.reason.startswith("encode: output of ")
        assert (MARK.encode() in rejected.origin.value) is expect_mark
        if redact:
            [span] = all_spans(decode(Signal.TRACES, rejected.origin.value))
            assert b"[REDACTED:EMAIL]" in span.SerializeToString()
    # Undecodable input cannot be redacted: it goes as it came.
    core = _core(dlq={"redact_decodable": True})
    result = _run(core, Signal.TRACES, payload[:-3])
    [rejected] = [r for r in result.dlq if r.origin.position == 1]
    assert rejected.origin.value == payload[:-3]
