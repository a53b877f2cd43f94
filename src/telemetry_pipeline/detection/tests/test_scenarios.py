"""Generated workloads through the pure pipeline (Core -> Analysis), no Kafka.

`pytest -s` prints the detection delay per fault type, triggers per incident and the steady run's
triggers: the figures the issue asks for.
"""

from __future__ import annotations

import functools
import re
from collections import Counter

from telemetry_pipeline.detection import IncidentEvent
from telemetry_pipeline.detection.tests.scenario import (
    FAULTS_RUN,
    QUIET,
    SLOW_BURN_PIPELINE,
    SLOW_BURN_RUN,
    STEADY_RUN,
    Run,
    minutes_after_start,
    run_scenario,
)

_CARD_LIKE = re.compile(r"\d(?:[ -]?\d){12,18}")


@functools.cache
def faults_run() -> Run:
    return run_scenario(FAULTS_RUN)


def _first_trigger(run: Run, type_: str, service: str, subject: str | None = None) -> dict:
    triggers = [
        e for e in run.of(type_, service, "trigger") if subject is None or e.dedup_key.endswith("/" + subject)
    ]
    assert triggers, f"no {type_} trigger for {service}; events: {[(e.type, e.service) for e in run.events]}"
    return triggers[0]


def _delay(run: Run, type_: str, service: str, fault_at_min: float, subject: str | None = None) -> float:
    trigger = _first_trigger(run, type_, service, subject)
    delay = minutes_after_start(trigger.observed_at) - fault_at_min
    print(f"\n[detection delay] {type_} on {service}: {delay:.0f} min of event time ({trigger.routing})")
    return delay


def test_error_spike_pages_within_five_minutes_and_resolves_after_recovery() -> None:
    run = faults_run()
    assert _delay(run, "error_rate_spike", "cart", 40) <= 5
    trigger = _first_trigger(run, "error_rate_spike", "cart")
    assert trigger.routing == "page" and trigger.labels["owner"] == "team-orders"
    assert trigger.links["runbook"].endswith("/cart")
    [resolve] = run.of("error_rate_spike", "cart", "resolve")
    assert resolve.dedup_key == trigger.dedup_key and resolve.resolved_at is not None
    assert 45 <= minutes_after_start(resolve.observed_at) <= 70
    # The SLO services that call cart burn their budget fast: they page too, within minutes.
    assert _delay(run, "slo_burn_rate", "checkout", 40, "availability:page") <= 5
    assert run.of("slo_burn_rate", "checkout", "resolve")


def test_latency_regression_silent_service_logs_stop_card_leak_and_span_names_hit_the_right_service() -> None:
    run = faults_run()
    assert 0 < _delay(run, "latency_regression", "payment", 50) <= 10
    assert 0 < _delay(run, "telemetry_gap", "payment", 90) <= 10
    assert 0 < _delay(run, "completeness_drop", "checkout", 60, "logs") <= 20
    assert 0 <= _delay(run, "pii_leak", "checkout", 30) <= 5
    assert 0 < _delay(run, "cardinality_explosion", "cart", 80, "span_names") <= 10
    # Only the service whose logs stopped, only the service that leaked.
    assert {e.service for e in run.of("completeness_drop")} == {"checkout"}
    assert {e.service for e in run.of("pii_leak")} == {"checkout"}
    assert {e.service for e in run.of("telemetry_gap")} == {"payment"}
    assert {e.service for e in run.of("cardinality_explosion")} == {"cart"}
    leak = _first_trigger(run, "pii_leak", "checkout")
    assert set(leak.evidence["counts"]) == {"credit_card"} and leak.routing == "ticket"
    explosion = _first_trigger(run, "cardinality_explosion", "cart")
    assert explosion.evidence["deploy"]["new_version"] != explosion.evidence["deploy"]["old_version"]
    assert minutes_after_start(explosion.evidence["deploy"]["at"]) == 80


def test_every_incident_triggers_once_and_events_are_valid_json() -> None:
    run = faults_run()
    triggers = Counter(e.dedup_key for e in run.events if e.action == "trigger")
    print(f"\n[triggers per incident] faults run: {dict(sorted(triggers.items()))}")
    assert set(triggers.values()) == {1}
    assert len({e.id for e in run.events}) == len(run.events)
    for event in run.events:
        assert IncidentEvent.model_validate_json(event.to_json_bytes()) == event
    for event in run.of("pii_leak"):  # counts by detector only: no value, not even a redacted one
        assert not _CARD_LIKE.search(event.to_json_bytes().decode()) and "REDACTED" not in event.summary


def test_a_restart_with_open_incidents_emits_exactly_what_an_uninterrupted_run_does() -> None:
    restarted = run_scenario(FAULTS_RUN, restart_at_step=47)
    uninterrupted = faults_run()
    before = {e.dedup_key for e in uninterrupted.events if minutes_after_start(e.observed_at) <= 47}
    assert len(before) >= 5  # open at the restart: the error spike, the pages it caused, the card leak
    assert [e.to_json_bytes() for e in restarted.events] == [e.to_json_bytes() for e in uninterrupted.events]


def test_slow_burn_opens_a_ticket_and_never_pages() -> None:
    run = run_scenario(SLOW_BURN_RUN, SLOW_BURN_PIPELINE)
    tickets = run.of("slo_burn_rate", "cart", "trigger")
    assert [e.routing for e in tickets] == ["ticket"], [(e.routing, e.summary) for e in run.events]
    _delay(run, "slo_burn_rate", "cart", 30, "availability:ticket")
    assert not run.pages(), [e.summary for e in run.pages()]


def test_an_outage_inside_a_maintenance_window_is_suppressed_and_after_it_pages() -> None:
    window = {
        "id": "mw-checkout",
        "services": ["*"],
        "start": "2026-01-01T00:25:00Z",
        "end": "2026-01-01T00:50:00Z",
    }
    spikes = [
        {"kind": "error_spike", "service": "checkout", "rate": 0.5, "at": "30m", "for": "10m"},
        {"kind": "error_spike", "service": "checkout", "rate": 0.5, "at": "100m", "for": "10m"},
    ]
    run = run_scenario({**QUIET, "duration": "2h", "rate": 2, "faults": spikes}, {"maintenance": [window]})
    during = [e for e in run.events if e.action == "trigger" and minutes_after_start(e.observed_at) < 60]
    assert during and all(e.suppressed_by == "mw-checkout" and e.routing == "ticket" for e in during)
    assert any(e.evidence.get("routing_without_maintenance") == "page" for e in during)
    after = [e for e in run.pages() if e.service == "checkout" and minutes_after_start(e.observed_at) >= 100]
    assert after and all(e.suppressed_by is None for e in after)
    print(f"\n[maintenance] suppressed triggers: {len(during)}, pages after the window: {len(after)}")


def test_a_steady_day_with_a_daily_cycle_isolated_errors_and_a_consumer_service_pages_nobody() -> None:
    run = run_scenario(STEADY_RUN)
    triggers = [e for e in run.events if e.action == "trigger"]
    print(
        f"\n[steady 24h] steps {run.steps}, triggers {len(triggers)}: "
        f"{Counter((e.type, e.service, e.routing) for e in triggers)}"
    )
    assert not run.pages(), [e.summary for e in run.pages()]
