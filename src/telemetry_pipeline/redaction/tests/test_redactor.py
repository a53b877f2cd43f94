from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Exemplar,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status, TracesData

from telemetry_pipeline.config import ConfigError, PipelineConfig, load_config
from telemetry_pipeline.core import Core, InputRecord
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.enrichment.config import EnrichmentConfig
from telemetry_pipeline.otlp import Encoding, Signal, decode, encode, message_to_json
from telemetry_pipeline.redaction import Action, Detector, RedactionConfig, RedactionError, Redactor
from telemetry_pipeline.redaction.config import DEV_HMAC_KEY, _warn_dev_key
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer
from telemetry_pipeline.redaction.redactor import BODY_MASKED_COUNT, MASKED_COUNT, MASKED_KEYS, REDACTED_KEYS

KEY = b"unit-test-key-0123456789abcdef"
EMAIL = "anna.meyer42@example.com"
CARD = "4012 8888 8888 1881"
IP = "203.0.113.7"
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b173")


def _kv(key: str, value: str | int | AnyValue) -> KeyValue:
    if isinstance(value, AnyValue):
        return KeyValue(key=key, value=value)
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _resource(service: str = "checkout", *extra: KeyValue) -> Resource:
    return Resource(attributes=[_kv("service.name", service), *extra])


def _redactor(config: RedactionConfig | None = None) -> Redactor:
    return Redactor(config or RedactionConfig(), Pseudonymizer(KEY))


def _attrs(attributes) -> dict[str, AnyValue]:
    return {kv.key: kv.value for kv in attributes}


def _trace() -> TracesData:
    span = Span(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        parent_span_id=SPAN_ID,
        name=f"GET /users/{EMAIL}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_767_225_600_000_000_000,
        end_time_unix_nano=1_767_225_600_500_000_000,
        status=Status(code=Status.STATUS_CODE_ERROR, message=f"card {CARD} declined"),
        attributes=[
            _kv("http.route", "/users/{id}"),
            _kv("http.response.status_code", 500),
            _kv("enduser.id", "user-42"),
            _kv("enduser.pseudo.id", "hmac:00000000000000000000000000000000"),
            _kv("http.request.header.authorization", AnyValue(array_value=ArrayValue(values=[
                AnyValue(string_value="Bearer a1B2c3D4e5F6g7H8i9J0"),
            ]))),
            _kv("db.query.text", f"SELECT id FROM customers WHERE email = '{EMAIL}'"),
            _kv("client.address", IP),
            _kv("app.note", "nothing to see here"),
        ],
        events=[Span.Event(name="exception", attributes=[_kv("exception.message", f"no user {EMAIL}")])],
        links=[Span.Link(trace_id=TRACE_ID, span_id=SPAN_ID, attributes=[_kv("app.origin", f"from {IP}")])],
    )
    scope = InstrumentationScope(name="io.example", attributes=[_kv("app.owner.email", EMAIL)])
    return TracesData(resource_spans=[ResourceSpans(
        resource=_resource("checkout", _kv("host.ip", IP)),
        scope_spans=[ScopeSpans(scope=scope, spans=[span])],
    )])


def test_spans_are_redacted_everywhere_and_structure_is_kept() -> None:
    message = _trace()
    counts = _redactor().redact(message)
    resource_spans = message.resource_spans[0]
    span = resource_spans.scope_spans[0].spans[0]
    attributes = _attrs(span.attributes)

    assert EMAIL not in str(message) and CARD not in str(message) and IP not in str(message)
    assert span.name == "GET /users/[REDACTED:EMAIL]"
    assert span.status.message == "card [REDACTED:CREDIT_CARD] declined"
    [authorization] = attributes["http.request.header.authorization"].array_value.values
    assert authorization.string_value == "[REDACTED:SECRET]"
    assert attributes["enduser.id"].string_value == Pseudonymizer(KEY)("user-42")
    assert attributes["client.address"].string_value == Pseudonymizer(KEY)(IP)
    assert attributes["enduser.pseudo.id"].string_value == "hmac:00000000000000000000000000000000"
    assert attributes["app.note"].string_value == "nothing to see here"
    assert _attrs(resource_spans.resource.attributes)["host.ip"].string_value == "[REDACTED:IPV4]"
    assert span.links[0].attributes[0].value.string_value == "from [REDACTED:IPV4]"
    # Structural fields are never touched.
    assert (span.trace_id, span.span_id, span.parent_span_id) == (TRACE_ID, SPAN_ID, SPAN_ID)
    assert span.start_time_unix_nano == 1_767_225_600_000_000_000
    assert span.kind == Span.SPAN_KIND_SERVER and span.status.code == Status.STATUS_CODE_ERROR
    assert attributes["http.response.status_code"].int_value == 500
    # Not part of the span unless asked for.
    assert MASKED_KEYS not in attributes

    assert counts[("checkout", "email")] == 4  # name, db.query.text, event, scope
    assert counts[("checkout", "credit_card")] == 1
    assert counts[("checkout", "ipv4")] == 2
    assert counts[("checkout", "secret_key")] == 1
    assert counts[("checkout", "person_key")] == 2


def test_log_bodies_of_every_kind_nested_up_to_the_depth_bound() -> None:
    def nest(levels: int) -> AnyValue:
        value = AnyValue(string_value=f"mail {EMAIL}")
        for level in range(levels):
            if level % 2:
                value = AnyValue(array_value=ArrayValue(values=[value]))
            else:
                value = AnyValue(kvlist_value=KeyValueList(values=[_kv("inner", value)]))
        return value

    records = [
        LogRecord(body=AnyValue(string_value=f"reset sent to {EMAIL}"), trace_id=TRACE_ID, span_id=SPAN_ID,
                  attributes=[_kv("user.email", EMAIL), _kv("app.payload", nest(3))]),
        LogRecord(body=nest(5)),
        LogRecord(body=nest(12)),  # deeper than max_depth 8
        LogRecord(body=AnyValue(kvlist_value=KeyValueList(values=[_kv("password", "hunter2"), _kv("n", 3)]))),
    ]
    message = LogsData(resource_logs=[ResourceLogs(resource=_resource("auth"), scope_logs=[
        ScopeLogs(log_records=records)])])
    counts = _redactor().redact(message)

    out = message.resource_logs[0].scope_logs[0].log_records
    assert EMAIL not in str(message) and "hunter2" not in str(message)
    assert out[0].body.string_value == "reset sent to [REDACTED:EMAIL]"
    assert out[0].trace_id == TRACE_ID and out[0].span_id == SPAN_ID
    assert _attrs(out[0].attributes)["user.email"].string_value.startswith("hmac:")
    assert "[REDACTED:EMAIL]" in str(out[1].body)
    assert "[REDACTED:MAX_DEPTH]" in str(out[2].body)
    password, number = out[3].body.kvlist_value.values
    assert password.value.string_value == "[REDACTED:SECRET]" and number.value.int_value == 3
    assert counts[("auth", "max_depth")] == 1
    assert counts[("auth", "email")] == 3


def test_metric_points_of_every_type_and_exemplars() -> None:
    def attributes() -> list[KeyValue]:
        return [_kv("app.customer", EMAIL), _kv("http.route", "/pay")]

    exemplar = Exemplar(filtered_attributes=[_kv("app.customer", EMAIL)], trace_id=TRACE_ID, span_id=SPAN_ID)
    metrics = [
        Metric(name="g", gauge=Gauge(data_points=[
            NumberDataPoint(attributes=attributes(), exemplars=[exemplar])])),
        Metric(name="s", sum=Sum(data_points=[NumberDataPoint(attributes=attributes(), as_int=4)])),
        Metric(name="h", histogram=Histogram(data_points=[
            HistogramDataPoint(attributes=attributes(), count=2)])),
        Metric(name="e", exponential_histogram=ExponentialHistogram(data_points=[
            ExponentialHistogramDataPoint(attributes=attributes(), exemplars=[exemplar])])),
        Metric(name="q", summary=Summary(data_points=[SummaryDataPoint(attributes=attributes())])),
    ]
    message = MetricsData(resource_metrics=[ResourceMetrics(resource=_resource("payment"), scope_metrics=[
        ScopeMetrics(metrics=metrics)])])
    counts = _redactor().redact(message)
    assert EMAIL not in str(message)
    assert counts[("payment", "email")] == 7
    gauge = message.resource_metrics[0].scope_metrics[0].metrics[0].gauge
    assert gauge.data_points[0].exemplars[0].trace_id == TRACE_ID


def test_what_enrichment_adds_is_allowed_and_copied_names_are_redacted_when_learned() -> None:
    redactor = _redactor()
    for key in EnrichmentConfig().added_attribute_names():
        assert redactor.key_action(key) is Action.ALLOW, key
    # The core hands the redactor to the enricher: a root span's name copied to the other records
    # of its trace (trace.root.route, a log's span.name) is redacted when learned, so neither the
    # trace-context store (a changelog topic in the worker) nor the copies hold it.
    store: dict[str, dict] = {}
    core = Core(PipelineConfig(), trace_store=store, users=UserDirectory(), services={})
    child_id = bytes.fromhex("aaa19b7ec3c1b173")
    spans = [Span(trace_id=TRACE_ID, span_id=SPAN_ID, name=f"GET /users/{EMAIL}"),
             Span(trace_id=TRACE_ID, span_id=child_id, parent_span_id=SPAN_ID, name="SELECT users")]
    traces = TracesData(resource_spans=[
        ResourceSpans(resource=_resource(), scope_spans=[ScopeSpans(spans=spans)])])
    logs = LogsData(resource_logs=[ResourceLogs(resource=_resource(), scope_logs=[ScopeLogs(log_records=[
        LogRecord(trace_id=TRACE_ID, span_id=SPAN_ID, body=AnyValue(string_value="done"))])])])
    result = core.process([
        InputRecord(Signal.TRACES, None, encode(traces, Encoding.PROTO), "otlp_spans[0]", 0),
        InputRecord(Signal.LOGS, None, encode(logs, Encoding.PROTO), "otlp_logs[0]", 0),
    ], now_ms=1_767_225_600_000, final=True)
    assert EMAIL not in str(store)
    [clean_traces, clean_logs] = [decode(record.signal, record.value) for record in result.clean]
    child = clean_traces.resource_spans[0].scope_spans[0].spans[1]  # type: ignore[union-attr]
    record = clean_logs.resource_logs[0].scope_logs[0].log_records[0]  # type: ignore[union-attr]
    masked = "GET /users/[REDACTED:EMAIL]"
    assert _attrs(child.attributes)["trace.root.route"].string_value == masked
    assert _attrs(record.attributes)["span.name"].string_value == masked
    assert redactor.redact_text(f"GET /users/{EMAIL}") == masked
    assert redactor.redact_text("GET /users/{id}") == "GET /users/{id}"


def test_allowed_keys_are_not_scanned() -> None:
    config = RedactionConfig(allow_keys=["app.contact"])
    message = LogsData(resource_logs=[ResourceLogs(resource=_resource(), scope_logs=[ScopeLogs(log_records=[
        LogRecord(attributes=[_kv("app.contact", EMAIL), _kv("app.other", EMAIL)])])])])
    _redactor(config).redact(message)
    contact, other = message.resource_logs[0].scope_logs[0].log_records[0].attributes
    assert contact.value.string_value == EMAIL
    assert other.value.string_value == "[REDACTED:EMAIL]"


@pytest.mark.parametrize(
    ("key", "secret"),
    [("db.password", True), ("http.request.header.x-api-key", True), ("app.config.aws_access_key_id", True),
     ("http.request.header.set-cookie", True), ("session.id", True), ("app.ci.token", True),
     ("gen_ai.usage.input_tokens", False), ("app.token_count", False), ("app.key_name", False)],
)
def test_secret_keys_by_name(key: str, secret: bool) -> None:
    assert (_redactor().key_action(key) is Action.MASK) is secret


def test_configured_actions_drop_hash_and_truncate() -> None:
    config = RedactionConfig(
        key_rules={"app.debug": Action.DROP, "client.address": Action.TRUNCATE},
        detectors={
            Detector.EMAIL: Action.HASH,
            Detector.IPV4: Action.TRUNCATE,
            Detector.IPV6: Action.TRUNCATE,
            Detector.CREDIT_CARD: Action.DROP,
        },
        summary_attributes=True,
    )
    span = Span(trace_id=TRACE_ID, span_id=SPAN_ID, name="pay", attributes=[
        _kv("app.debug", "anything"),
        _kv("client.address", "2001:db8:85a3:1:2:8a2e:370:7334"),
        _kv("app.customer", f"mail {EMAIL}"),
        _kv("app.origin", f"from {IP}"),
        _kv("app.card", CARD),
    ])
    message = TracesData(resource_spans=[
        ResourceSpans(resource=_resource(), scope_spans=[ScopeSpans(spans=[span])])])
    counts = _redactor(config).redact(message)
    attributes = _attrs(message.resource_spans[0].scope_spans[0].spans[0].attributes)

    assert "app.debug" not in attributes and "app.card" not in attributes
    assert attributes["client.address"].string_value == "2001:db8:85a3:1::/64"
    assert attributes["app.customer"].string_value == f"mail {Pseudonymizer(KEY)(EMAIL)}"
    assert attributes["app.origin"].string_value == "from 203.0.113.0/24"
    assert attributes[MASKED_KEYS].string_value == "app.customer,app.origin,client.address"
    assert attributes[MASKED_COUNT].int_value == 3
    assert attributes[REDACTED_KEYS].string_value == "app.card,app.debug"
    assert counts[("checkout", "key_rule")] == 2 and counts[("checkout", "credit_card")] == 1


def test_summary_of_a_log_body() -> None:
    record = LogRecord(body=AnyValue(string_value=f"{EMAIL} and {IP}"), attributes=[_kv("app.n", 1)])
    message = LogsData(resource_logs=[ResourceLogs(resource=_resource(), scope_logs=[
        ScopeLogs(log_records=[record, LogRecord(body=AnyValue(string_value="clean"))])])])
    _redactor(RedactionConfig(summary_attributes=True)).redact(message)
    changed, clean = message.resource_logs[0].scope_logs[0].log_records
    assert _attrs(changed.attributes)[BODY_MASKED_COUNT].int_value == 2
    assert MASKED_KEYS not in _attrs(changed.attributes)
    assert len(clean.attributes) == 0


def test_failure_fails_closed_without_leaking_the_value() -> None:
    def broken(value: str) -> str:
        raise ValueError(f"cannot hash {value}")

    message = _trace()
    with pytest.raises(RedactionError) as caught:
        Redactor(RedactionConfig(), broken).redact(message)
    assert "user-42" not in str(caught.value) and "ValueError" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_counts_merge_across_messages_and_services() -> None:
    redactor = _redactor()
    total = redactor.redact(_trace())
    total.update(redactor.redact(_trace()))  # the same values again: served from the cache
    assert total[("checkout", "email")] == 8
    two_services = LogsData(resource_logs=[
        ResourceLogs(resource=_resource(service), scope_logs=[ScopeLogs(log_records=[
            LogRecord(body=AnyValue(string_value=f"{EMAIL} {IP}"))])])
        for service in ("cart", "search")
    ])
    counts = redactor.redact(two_services)
    assert dict(counts) == {
        (service, detector): 1 for service in ("cart", "search") for detector in ("email", "ipv4")
    }


def test_key_loading(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match=r"redaction\.hmac_key"):
        RedactionConfig().load_key(production=True)
    _warn_dev_key.cache_clear()  # the warning is logged once per process
    with caplog.at_level(logging.WARNING):
        assert RedactionConfig().load_key(production=False) == DEV_HMAC_KEY
        assert RedactionConfig().load_key(production=False) == DEV_HMAC_KEY
    assert caplog.text.count("development key") == 1 and DEV_HMAC_KEY.decode() not in caplog.text
    key_file = tmp_path / "key"
    key_file.write_text("production-key-from-a-file\n")
    assert RedactionConfig(hmac_key_file=key_file).load_key(production=True) == b"production-key-from-a-file"
    assert RedactionConfig(hmac_key="k" * 20).load_key(production=True) == b"k" * 20  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="16 bytes"):
        RedactionConfig(hmac_key="short").load_key(production=True)  # type: ignore[arg-type]
    assert "k" * 20 not in repr(RedactionConfig(hmac_key="k" * 20))  # type: ignore[arg-type]


def _core_output(record: InputRecord) -> LogsData:
    core = Core(PipelineConfig(), trace_store={}, users=UserDirectory(), services={})
    result = core.process([record], now_ms=1_767_225_600_000, final=True)
    [clean] = result.clean
    message = decode(Signal.LOGS, clean.value)
    assert isinstance(message, LogsData)
    return message


@pytest.mark.parametrize("make_value", [lambda m: f"token {m}", lambda m: f"Authorization: Bearer {m}"])
def test_kafka_path_and_replay_redact_the_same_way(make_value: Callable[[str], str]) -> None:
    secret = make_value("ghp_gn3qg6UOcdEZ5EyscioeZIiDWnqO7pDcwi9I")
    record = LogRecord(body=AnyValue(string_value=f"{secret} for {EMAIL}"),
                       attributes=[_kv("enduser.id", "user-7"), _kv("app.detail", secret)])
    message = LogsData(resource_logs=[
        ResourceLogs(resource=_resource("orders"), scope_logs=[ScopeLogs(log_records=[record])])])
    kafka = _core_output(InputRecord(Signal.LOGS, None, encode(message, Encoding.PROTO), "otlp_logs[0]", 0))
    replay = _core_output(InputRecord(None, None, orjson.dumps(message_to_json(message)), "in.jsonl", 1))
    assert message_to_json(kafka) == message_to_json(replay)
    assert "ghp_" not in str(kafka) and EMAIL not in str(kafka) and "user-7" not in str(kafka)


def test_value_cache_is_bounded_and_skips_long_strings() -> None:
    redactor = _redactor(RedactionConfig(value_cache_size=4))
    for index in range(10):
        redactor.scan(f"order {index} for {EMAIL}")
        assert redactor.cached_values <= 4
    redactor.scan("x" * 600 + " " + EMAIL)  # a long log line is scanned but not kept
    assert redactor.cached_values <= 4
    scan = redactor.scan("x" * 600 + " " + EMAIL)
    assert scan is not None and scan.text.endswith("[REDACTED:EMAIL]")
    uncached = _redactor(RedactionConfig(value_cache_size=0))
    assert uncached.scan(f"mail {EMAIL}") is not None and uncached.cached_values == 0


def test_disabled_detectors_and_allowed_rules() -> None:
    config = RedactionConfig(disabled_detectors=[Detector.PHONE], key_rules={"app.contact": Action.ALLOW})
    redactor = _redactor(config)
    scan = redactor.scan(f"call +44 20 7946 0123 or {EMAIL}")
    assert scan is not None and scan.text == "call +44 20 7946 0123 or [REDACTED:EMAIL]"
    assert redactor.key_action("app.contact") is Action.ALLOW
    with pytest.raises(ValueError, match="disabled_detectors"):
        RedactionConfig(detectors={Detector.EMAIL: Action.ALLOW})


def test_regions_select_the_national_id_families() -> None:
    german_tax_id, us_npi = "Steuer-ID 12345678903", "NPI 1234567893"
    everywhere = _redactor()
    assert everywhere.redact_text(german_tax_id) == "Steuer-ID [REDACTED:NATIONAL_ID]"
    assert everywhere.redact_text(us_npi) == "NPI [REDACTED:NATIONAL_ID]"
    europe = _redactor(RedactionConfig(regions=["eu"]))
    assert europe.redact_text(german_tax_id) == "Steuer-ID [REDACTED:NATIONAL_ID]"
    assert europe.redact_text(us_npi) == us_npi
    assert _redactor(RedactionConfig(regions=[])).redact_text(german_tax_id) == german_tax_id


def test_an_unknown_region_fails_at_start_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("redaction:\n  regions: [eu, atlantis-7f3a]\n")
    with pytest.raises(ConfigError) as failure:
        load_config(path, environ={})
    assert "redaction.regions.1" in str(failure.value)
    assert "atlantis-7f3a" not in str(failure.value)
