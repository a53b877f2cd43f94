"""Property-based fuzzing (hypothesis) of the OTLP decoders, the core and the redactor, on a bounded
budget: a fixed number of cases per property (3,700 in all), the whole module well under a minute.

- Decoders: any bytes or any JSON either decode or raise DecodeError, never anything else; what
  decodes encodes again, in both encodings, to something that decodes.
- Core: whatever the input, nothing escapes `process`, every record finishes exactly once (clean or
  DLQ), every clean output decodes.
- Redaction: secrets planted anywhere the redactor scans (attribute values of any key it does not
  allow, nested values, span and event names, status messages, log bodies) never reach .clean; the
  prefilter's wire walks (C) take any bytes, and never change what is redacted.
"""

from __future__ import annotations

import string
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.core import Core, InputRecord
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.otlp import DecodeError, Encoding, Signal, decode, decode_json_line, encode
from telemetry_pipeline.otlp.tests.sdk_payloads import sdk_logs, sdk_metrics, sdk_spans
from telemetry_pipeline.redaction import RedactionConfig, Redactor
from telemetry_pipeline.redaction.config import DEFAULT_ALLOW_KEYS
from telemetry_pipeline.redaction.prefilter import LOG_RECORD, SPAN
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,  # machines are shared; the budget is the example count
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


NOW_MS = 1_767_225_600_000
SEEDS = {Signal.TRACES: sdk_spans(), Signal.METRICS: sdk_metrics(), Signal.LOGS: sdk_logs()}
SECRETS = [
    "anna.meyer42@example.com",
    "4012 8888 8888 1881",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5abcdef",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    "DE89370400440532013000",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
]
ALLOWED = frozenset(DEFAULT_ALLOW_KEYS)

signals = st.sampled_from(list(Signal))


def _core() -> Core:
    return Core(PipelineConfig(), trace_store={}, users=UserDirectory(), services={})


CORE = _core()  # one for the module: its caches and tables see every example, as a worker's would
REDACTOR = Redactor(RedactionConfig(), Pseudonymizer(b"fuzz-test-key-0123456789abcdef"))


def _edited(draw: st.DrawFn, data: bytes, most_edits: int, most_inserted: int) -> bytearray:
    """`data` with up to `most_edits` bytes flipped, runs inserted or bytes cut."""
    payload = bytearray(data)
    for _ in range(draw(st.integers(0, most_edits))):
        position = draw(st.integers(0, max(len(payload) - 1, 0)))
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip" and payload:
            payload[position] = draw(st.integers(0, 255))
        elif action == "insert":
            payload[position:position] = draw(st.binary(min_size=1, max_size=most_inserted))
        elif payload:
            del payload[position]
    return payload


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Signal, bytes]:
    """An SDK payload of a signal with bytes flipped, inserted or cut: mostly almost-valid input."""
    signal = draw(signals)
    payload = _edited(draw, SEEDS[draw(signals)], most_edits=8, most_inserted=8)
    if draw(st.booleans()):
        payload = payload[: draw(st.integers(0, len(payload)))]
    return signal, bytes(payload)


def _assert_re_encodes(signal: Signal, message: Any) -> None:
    for encoding in Encoding:
        decode(signal, encode(message, encoding), encoding)


@fuzz(1000)
@given(signal=signals, payload=st.binary(max_size=512))
def test_any_bytes_decode_or_raise_decode_error(signal: Signal, payload: bytes) -> None:
    try:
        message = decode(signal, payload)
    except DecodeError:
        return
    _assert_re_encodes(signal, message)


@fuzz(1000)
@given(case=mutated())
def test_mutated_payloads_decode_or_raise_decode_error(case: tuple[Signal, bytes]) -> None:
    signal, payload = case
    try:
        message = decode(signal, payload, Encoding.PROTO)
    except DecodeError:
        return
    _assert_re_encodes(signal, message)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Field names OTLP/JSON uses, so random objects hit real fields with wrong types.
otlp_names = st.sampled_from([
    "resourceSpans", "resourceLogs", "resourceMetrics", "resource", "attributes", "scopeSpans", "scopeLogs",
    "scopeMetrics", "spans", "logRecords", "metrics", "traceId", "spanId", "parentSpanId", "name", "kind",
    "startTimeUnixNano", "body", "value", "stringValue", "intValue", "kvlistValue", "arrayValue", "values",
    "key", "gauge", "sum", "histogram", "dataPoints", "exemplars", "asInt", "asDouble", "status", "code",
])
otlp_json = st.recursive(
    json_values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(otlp_names, inner, max_size=4),
    max_leaves=30,
)


@fuzz(400)
@given(signal=signals, body=otlp_json)
def test_any_json_decodes_or_raises_decode_error(signal: Signal, body: Any) -> None:
    line = orjson.dumps({signal.json_key: body})
    for decoder in (lambda: decode(signal, line), lambda: decode_json_line(line)[1]):
        try:
            message = decoder()
        except DecodeError:
            continue
        _assert_re_encodes(signal, message)


@fuzz(300)
@given(
    records=st.lists(
        st.one_of(
            mutated(),
            st.tuples(signals, st.binary(max_size=256)),
            st.tuples(signals, otlp_json.map(lambda body: orjson.dumps({"resourceSpans": body}))),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_nothing_escapes_the_core_and_every_record_finishes_once(records: list[tuple[Signal, bytes]]) -> None:
    inputs = [InputRecord(signal, None, value, "fuzz[0]", n) for n, (signal, value) in enumerate(records)]
    result = CORE.process(inputs, NOW_MS, final=True)
    assert sorted(record.position for record in result.finished) == list(range(len(records)))
    assert len(result.clean) + len(result.dlq) == len(records)
    for clean in result.clean:
        decode(clean.signal, clean.value)


# -- redaction ----------------------------------------------------------------------------------

filler = st.text(alphabet=string.ascii_letters + " .,:/-_", max_size=16)
keys = st.one_of(
    st.sampled_from(["user.email", "note", "password", "db.statement", "http.url", "message", "x-api-key",
                     "enduser.id", "exception.message", "payload", "client.address"]),
    st.text(alphabet=string.ascii_lowercase + "._-", min_size=1, max_size=12),
).filter(lambda key: key not in ALLOWED)


@st.composite
def texts(draw: st.DrawFn, planted: list[str]) -> str:
    """Filler text, often with a secret in it (recorded in `planted`), set off by separators."""
    if draw(st.booleans()):
        return draw(filler)
    secret = draw(st.sampled_from(SECRETS))
    planted.append(secret)
    return f"{draw(filler)} ; {secret} ; {draw(filler)}"


def _any_value(draw: st.DrawFn, planted: list[str], depth: int) -> AnyValue:
    kinds = ["string", "int", "bool", "bytes", "array", "kvlist"] if depth < 12 else ["string"]
    kind = draw(st.sampled_from(kinds))
    if kind == "string":
        return AnyValue(string_value=draw(texts(planted)))
    if kind == "int":
        return AnyValue(int_value=draw(st.integers(-(2**63), 2**63 - 1)))
    if kind == "bool":
        return AnyValue(bool_value=draw(st.booleans()))
    if kind == "bytes":
        return AnyValue(bytes_value=draw(st.binary(max_size=8)))
    if kind == "array":
        value = AnyValue()
        for _ in range(draw(st.integers(0, 2))):
            value.array_value.values.append(_any_value(draw, planted, depth + 1))
        return value
    value = AnyValue()
    value.kvlist_value.values.extend(_attributes(draw, planted, depth + 1, 2))
    return value


def _attributes(draw: st.DrawFn, planted: list[str], depth: int = 0, most: int = 3) -> list[KeyValue]:
    return [KeyValue(key=draw(keys), value=_any_value(draw, planted, depth))
            for _ in range(draw(st.integers(0, most)))]


def _resource_attributes(draw: st.DrawFn, planted: list[str], service: str) -> list[KeyValue]:
    return [KeyValue(key="service.name", value=AnyValue(string_value=service)), *_attributes(draw, planted)]


@st.composite
def planted_traces(draw: st.DrawFn) -> tuple[TracesData, list[str]]:
    planted: list[str] = []
    message = TracesData()
    for r in range(draw(st.integers(1, 2))):
        group = message.resource_spans.add()
        group.resource.attributes.extend(_resource_attributes(draw, planted, f"svc-{r}"))
        scope = group.scope_spans.add()
        scope.scope.attributes.extend(_attributes(draw, planted))
        trace_id = draw(st.binary(min_size=16, max_size=16))
        for n in range(draw(st.integers(1, 3))):
            span = scope.spans.add(trace_id=trace_id, span_id=(n + 1).to_bytes(8, "big"),
                                   name=draw(texts(planted)), kind=draw(st.integers(0, 5)))
            span.attributes.extend(_attributes(draw, planted))
            if draw(st.booleans()):
                span.status.code = 2
                span.status.message = draw(texts(planted))
            for _ in range(draw(st.integers(0, 2))):
                event = span.events.add(name=draw(texts(planted)))
                event.attributes.extend(_attributes(draw, planted))
    return message, planted


@st.composite
def planted_logs(draw: st.DrawFn) -> tuple[LogsData, list[str]]:
    planted: list[str] = []
    message = LogsData()
    group = message.resource_logs.add()
    group.resource.attributes.extend(_resource_attributes(draw, planted, "svc-logs"))
    scope = group.scope_logs.add()
    for _ in range(draw(st.integers(1, 4))):
        record = scope.log_records.add(severity_number=draw(st.integers(0, 24)))
        record.body.CopyFrom(_any_value(draw, planted, 0))
        record.attributes.extend(_attributes(draw, planted))
    return message, planted


@fuzz(400)
@given(case=st.one_of(planted_traces(), planted_logs()), encoding=st.sampled_from(list(Encoding)))
def test_redaction_never_lets_a_planted_secret_through(
    case: tuple[Any, list[str]], encoding: Encoding
) -> None:
    message, planted = case
    signal = Signal.of(message)
    payload = encode(message, encoding)
    result = CORE.process([InputRecord(signal, None, payload, "fuzz[0]", 0)], NOW_MS, final=True)
    assert len(result.finished) == 1
    for clean in result.clean:
        decode(clean.signal, clean.value)  # the output decodes
        leaked = [secret for secret in set(planted) if secret.encode() in clean.value]
        assert not leaked, f"planted secrets reached .clean: {leaked}"
    for rejected in result.dlq:
        assert not any(secret in rejected.reason for secret in planted)


@st.composite
def mutated_planted(draw: st.DrawFn) -> tuple[Signal, bytes]:
    """A planted message's bytes with a few flipped, inserted or cut: odd but often still decodable
    input for the prefilter's wire walks (C, redaction/_wire.c)."""
    message, _planted = draw(st.one_of(planted_traces(), planted_logs()))
    payload = _edited(draw, encode(message, Encoding.PROTO), most_edits=4, most_inserted=4)
    return Signal.of(message), bytes(payload)


@fuzz(600)
@given(case=st.one_of(mutated_planted(), st.tuples(st.sampled_from([Signal.TRACES, Signal.LOGS]),
                                                   st.binary(max_size=512))))
def test_the_prefilter_walks_any_bytes_and_changes_no_redaction(case: tuple[Signal, bytes]) -> None:
    """Any bytes give the prefilter a selection or None (the full walk), never another error; where
    they decode, redacting with them equals redacting every record."""
    signal, payload = case
    kind = SPAN if signal is Signal.TRACES else LOG_RECORD
    REDACTOR._prefilter.select(payload, kind)
    try:
        message = decode(signal, payload, Encoding.PROTO)
    except DecodeError:
        return
    full, prefiltered = type(message)(), type(message)()
    full.CopyFrom(message)
    prefiltered.CopyFrom(message)
    assert REDACTOR.redact(prefiltered, payload) == REDACTOR.redact(full)
    assert prefiltered == full
