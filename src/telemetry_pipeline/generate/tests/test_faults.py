from __future__ import annotations

import statistics

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from telemetry_pipeline.generate import GeneratorConfig, iter_messages
from telemetry_pipeline.generate.config import ErrorSpike
from telemetry_pipeline.generate.tests.support import logs, spans
from telemetry_pipeline.otlp import DecodeError, Signal, decode
from telemetry_pipeline.otlp.attributes import get_str

START_NS = GeneratorConfig().start_ns()
MINUTE = 60_000_000_000


def _run(fault: dict, duration: str = "3m") -> list:
    # every service reports service.version, which the deploy tests read
    config = GeneratorConfig(duration=duration, rate=60, faults=[fault], incomplete_resource_share=0.0)
    return list(iter_messages(config))


def _in_window(time_ns: int) -> bool:
    return START_NS + MINUTE <= time_ns < START_NS + 2 * MINUTE


def _server_spans(messages: list, service: str) -> list[Span]:
    return [r.span for r in spans(messages) if r.service == service and r.span.kind == Span.SPAN_KIND_SERVER]


def test_error_spike_raises_the_error_rate_of_the_service_during_the_window() -> None:
    messages = _run({"kind": "error_spike", "service": "checkout", "at": "1m", "for": "1m", "rate": 0.5})
    inside, outside = [], []
    for span in _server_spans(messages, "checkout"):
        (inside if _in_window(span.start_time_unix_nano) else outside).append(
            span.status.code == Status.STATUS_CODE_ERROR
        )
    assert 0.4 < sum(inside) / len(inside) < 0.65
    assert sum(outside) / len(outside) < 0.05
    # the failures reach the users: the entry spans of checkout requests fail too
    roots = [
        r.span
        for r in spans(messages)
        if r.service == "frontend"
        and not r.span.parent_span_id
        and r.span.name == "POST /api/checkout"
        and _in_window(r.span.start_time_unix_nano)
    ]
    assert sum(s.status.code == Status.STATUS_CODE_ERROR for s in roots) / len(roots) > 0.4


def test_latency_regression_multiplies_the_service_latency_during_the_window() -> None:
    messages = _run(
        {"kind": "latency_regression", "service": "payment", "at": "1m", "for": "1m", "factor": 3}
    )
    inside, outside = [], []
    for span in _server_spans(messages, "payment"):
        duration = span.end_time_unix_nano - span.start_time_unix_nano
        (inside if _in_window(span.start_time_unix_nano) else outside).append(duration)
    assert 2.6 < statistics.median(inside) / statistics.median(outside) < 3.4


def test_silent_service_sends_no_signal_during_the_window_but_does_before_and_after() -> None:
    messages = _run({"kind": "silent", "service": "cart", "at": "1m", "for": "1m"})
    cart_spans = [s.start_time_unix_nano for s in _server_spans(messages, "cart")]
    # faults act on requests by their start time: one that began before the window may end inside it
    assert not any(_in_window(t - 1_000_000_000) and _in_window(t) for t in cart_spans)
    assert min(cart_spans) < START_NS + MINUTE and max(cart_spans) >= START_NS + 2 * MINUTE
    cart_logs = [e.record.time_unix_nano for e in logs(messages) if e.service == "cart"]
    assert cart_logs and not any(_in_window(t - 1_000_000_000) and _in_window(t) for t in cart_logs)
    metric_times = {
        m.event_time_ns
        for m in messages
        if m.signal is Signal.METRICS
        and any(
            get_str(rm.resource.attributes, "service.name") == "cart" for rm in m.message.resource_metrics
        )
    }
    assert metric_times == {START_NS + 2 * MINUTE, START_NS + 3 * MINUTE}
    # callers still call it: their CLIENT spans now point at parents nobody sent
    assert any(
        r.service == "frontend" and "cart" in r.span.name
        for r in spans(messages)
        if r.span.kind == Span.SPAN_KIND_CLIENT and _in_window(r.span.start_time_unix_nano)
    )


def test_deploy_changes_the_version_at_its_time_with_the_optional_regression() -> None:
    messages = _run(
        {"kind": "deploy", "service": "catalog", "at": "1m", "version": "5.1.0", "latency_factor": 2.0}
    )
    versions = {}
    before, after = [], []
    for record in spans(messages):
        if record.service != "catalog" or record.span.kind != Span.SPAN_KIND_SERVER:
            continue
        late = record.span.start_time_unix_nano >= START_NS + MINUTE
        versions.setdefault(late, set()).add(record.version)
        (after if late else before).append(record.span.end_time_unix_nano - record.span.start_time_unix_nano)
    assert versions == {False: {"5.0.3"}, True: {"5.1.0"}}
    assert 1.7 < statistics.median(after) / statistics.median(before) < 2.3


def test_default_deploy_version_is_the_next_minor() -> None:
    messages = _run({"kind": "deploy", "service": "checkout", "at": "1m"}, duration="2m")
    assert {r.version for r in spans(messages) if r.service == "checkout"} == {"3.2.1", "3.3.0"}


def test_garbage_is_a_share_of_extra_messages_that_no_decoder_accepts() -> None:
    clean = list(iter_messages(GeneratorConfig(duration="2m", spans_per_message=100)))
    messages = list(
        iter_messages(
            GeneratorConfig(duration="2m", spans_per_message=100, faults=[{"kind": "garbage", "share": 0.2}])
        )
    )
    garbage = [m for m in messages if m.is_garbage]
    assert [m.payload for m in messages if not m.is_garbage] == [m.payload for m in clean]
    assert 0.14 < len(garbage) / len(clean) < 0.26
    assert len({m.payload[:1] for m in garbage}) >= 2
    for message in garbage:
        assert message.message is None and message.key is None
        with pytest.raises(DecodeError):
            decode(message.signal, message.payload)


def test_faults_combine_and_unknown_services_are_rejected() -> None:
    config = GeneratorConfig(
        faults=[
            {"kind": "error_spike", "service": "checkout", "at": "1m", "for": "2m", "rate": 0.3},
            {"kind": "silent", "service": "gateway", "at": "30s", "for": "1m"},
            {"kind": "latency_regression", "service": "checkout", "at": "90s", "for": "10m", "factor": 2},
        ]
    )
    assert isinstance(config.faults[0], ErrorSpike) and config.faults[2].duration.total_seconds() == 600
    with pytest.raises(ValueError, match="unknown service"):
        GeneratorConfig(faults=[{"kind": "silent", "service": "email"}])  # only in estates of 16
