"""The workload shapes the detection scenarios need: daily cycle, one signal stopping, span names
exploding after a deploy, isolated errors, and a consumer-only service."""

from __future__ import annotations

from collections import Counter

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from telemetry_pipeline.generate import GeneratorConfig, iter_messages
from telemetry_pipeline.generate.tests.support import logs, spans

START_NS = GeneratorConfig().start_ns()
MINUTE = 60_000_000_000
HOUR = 60 * MINUTE


def _messages(**fields: object) -> list:
    return list(iter_messages(GeneratorConfig.model_validate({"services": 4, **fields})))


def _roots_per_hour(messages: list) -> Counter[int]:
    return Counter(
        (r.span.start_time_unix_nano - START_NS) // HOUR
        for r in spans(messages)
        if r.service == "frontend" and not r.span.parent_span_id
    )


def test_daily_cycle_peaks_in_the_afternoon_and_keeps_the_mean_rate() -> None:
    per_hour = _roots_per_hour(_messages(duration="24h", rate=0.2, daily_cycle=0.6, signals=["traces"]))
    # 15:00 UTC is the peak (1.6x), 03:00 the trough (0.4x): a ratio of 4.
    assert per_hour[15] / per_hour[3] > 2.5, per_hour
    assert abs(sum(per_hour.values()) - 0.2 * 86_400) < 0.05 * 0.2 * 86_400
    flat = _roots_per_hour(_messages(duration="24h", rate=0.2, signals=["traces"]))
    assert flat[15] / flat[3] < 1.5, flat


def test_one_signal_stops_while_the_others_go_on() -> None:
    fault = {"kind": "signal_stop", "service": "cart", "signal": "logs", "at": "2m", "for": "2m"}
    messages = _messages(duration="6m", rate=20, faults=[fault])
    log_minutes = {
        (e.record.time_unix_nano - START_NS) // MINUTE for e in logs(messages) if e.service == "cart"
    }
    span_minutes = {
        (r.span.end_time_unix_nano - START_NS) // MINUTE for r in spans(messages) if r.service == "cart"
    }
    assert {2, 3} & log_minutes == set() and {0, 1, 4, 5} <= log_minutes
    assert {0, 1, 2, 3, 4, 5} <= span_minutes


def test_isolated_errors_fail_exactly_that_many_requests() -> None:
    fault = {"kind": "isolated_errors", "service": "checkout", "count": 3, "at": "1m", "for": "4m"}
    messages = _messages(duration="6m", rate=5, base_error_rate=0.0, faults=[fault])
    failed = [
        r.span
        for r in spans(messages)
        if r.service == "checkout"
        and r.span.kind == Span.SPAN_KIND_SERVER
        and r.span.status.code == 2
        and any(e.name == "exception" for e in r.span.events)
    ]
    assert len(failed) == 3
    assert all(START_NS + MINUTE <= s.start_time_unix_nano < START_NS + 5 * MINUTE for s in failed)


def test_a_deploy_can_put_ids_into_span_names() -> None:
    fault = {"kind": "deploy", "service": "cart", "at": "3m", "span_name_ids": True}
    messages = _messages(duration="6m", rate=10, faults=[fault], incomplete_resource_share=0.0)
    names: dict[str, set[str]] = {"before": set(), "after": set()}
    for r in spans(messages):
        if r.service == "cart" and r.span.kind == Span.SPAN_KIND_SERVER:
            names["before" if r.span.start_time_unix_nano < START_NS + 3 * MINUTE else "after"].add(
                r.span.name
            )
    assert len(names["before"]) <= 5 and len(names["after"]) > 100
    assert any(name.startswith("GET /v1/carts/") and name[-1].isdigit() for name in names["after"])


def test_a_consumer_service_has_consumer_spans_only_and_its_callers_produce() -> None:
    messages = _messages(services=13, duration="2m", rate=10, consumer_services=["notification"])
    kinds = Counter(r.span.kind for r in spans(messages) if r.service == "notification")
    assert kinds[Span.SPAN_KIND_CONSUMER] > 0 and kinds[Span.SPAN_KIND_SERVER] == 0
    producers = {r.service for r in spans(messages) if r.span.kind == Span.SPAN_KIND_PRODUCER}
    assert producers == {"checkout"}  # the one caller of notification


def test_a_leak_burst_puts_one_kind_of_value_into_one_service() -> None:
    fault = {"kind": "leak", "service": "cart", "leak": "card", "share": 0.5, "at": "1m", "for": "1m"}
    messages = _messages(duration="3m", rate=10, pii_share=0.0, faults=[fault])
    carrying = Counter(
        r.service
        for r in spans(messages)
        if any(kv.key == "app.payment.card_number" for kv in r.span.attributes)
        and START_NS + MINUTE <= r.span.start_time_unix_nano < START_NS + 2 * MINUTE
    )
    assert set(carrying) == {"cart"} and carrying["cart"] > 20
