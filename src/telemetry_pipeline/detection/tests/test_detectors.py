"""Edges of each detector and of the incident lifecycle, on hand-made snapshots (no pipeline)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from telemetry_pipeline.config import ConfigError, PipelineConfig, load_config
from telemetry_pipeline.core import Core, InputRecord
from telemetry_pipeline.detection import (
    Detection,
    DetectionConfig,
    DetectionStateError,
    IncidentEvent,
    MaintenanceWindow,
    render_incidents_schema,
)
from telemetry_pipeline.detection.events import SCHEMA_PATH
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.otlp import Encoding, Signal, encode
from telemetry_pipeline.sli import SliPartial, SliSnapshot, SloConfig, SloDefaults, SloResolver
from telemetry_pipeline.sli.snapshot import Cardinality, Completeness, LatencyQuantiles

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
MINUTE_MS = 60_000
WINDOWS = ("5m", "30m", "1h", "6h", "3d")
CATALOG = {
    "api": {"owner": "team-a", "tier": "tier-1", "route": "team-a-oncall", "runbook": "https://rb/api"}
}


def at(minute: int) -> str:
    return (T0 + dt.timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot(service: str, window: str, minute: int, **fields: Any) -> SliSnapshot:
    """`fields`: requests, errors, burn (per window, both objectives), p95, signals, score, names, rps."""
    requests, errors = fields.get("requests", 1000), fields.get("errors", 0)
    signals = fields.get("signals", ("traces", "metrics", "logs"))
    burn = fields.get("burn", {})
    return SliSnapshot(
        service=service,
        window=window,
        window_end=at(minute),
        requests=requests,
        errors=errors,
        availability=1 - errors / requests if requests else None,
        error_rate=errors / requests if requests else None,
        latency_ms=LatencyQuantiles(p50=10.0, p95=fields.get("p95", 50.0), p99=80.0),
        latency_good_ratio=1.0,
        throughput_rps=fields.get("rps", 3.0),
        burn_rate={w: burn.get(w, 0.0) for w in WINDOWS},
        latency_burn_rate={w: 0.0 for w in WINDOWS},
        error_budget_remaining=1.0,
        completeness=Completeness(
            traces="traces" in signals,
            metrics="metrics" in signals,
            logs="logs" in signals,
            log_trace_correlation=0.9,
            resource_attributes=1.0,
            score=fields.get("score", 90.0),
        ),
        cardinality=Cardinality(span_names=fields.get("names", 10), attribute_keys=30),
    )


def step(service: str, minute: int, **fields: Any) -> list[SliSnapshot]:
    return [snapshot(service, w, minute, **fields) for w in WINDOWS]


def detection(
    config: dict | None = None, maintenance: list[MaintenanceWindow] = (), period: str = "30d"
) -> Detection:
    slos = SloResolver([SloConfig(service="api", availability=99.9, period=period)], SloDefaults())
    return Detection(DetectionConfig.model_validate(config or {}), slos, CATALOG, maintenance)


def run(d: Detection, service: str, minutes: range, **fields: Any) -> list[IncidentEvent]:
    return [event for minute in minutes for event in d.observe(step(service, minute, **fields))]


FAST_BURN = {"1h": 20.0, "5m": 30.0, "6h": 4.0, "30m": 8.0, "3d": 0.5}


# ---- slo_burn_rate ---------------------------------------------------------------------------------


def test_a_fast_burn_pages_and_one_failed_request_on_a_quiet_service_does_not() -> None:
    quiet = run(detection(), "api", range(1, 30), requests=20, errors=1, burn=FAST_BURN)
    assert quiet == []  # burn rates are huge, but 20 requests and 1 bad one are no evidence
    [page] = run(detection(), "api", range(1, 3), requests=5000, errors=60, burn=FAST_BURN)
    assert (page.action, page.type, page.routing, page.severity) == (
        "trigger",
        "slo_burn_rate",
        "page",
        "critical",
    )
    assert page.dedup_key == "slo_burn_rate/api/availability:page"
    assert page.labels == {"owner": "team-a", "tier": "tier-1", "paging_route": "team-a-oncall"}
    assert page.links == {"runbook": "https://rb/api"} and page.evidence["burn_rate"]["1h"] == 20.0


def test_burn_factors_scale_with_the_slo_period() -> None:
    burn = {"1h": 5.0, "5m": 5.0}  # under 14.4 (30 days), over 14.4 * 7/30 = 3.36 (7 days)
    assert run(detection(), "api", range(1, 5), requests=5000, errors=60, burn=burn) == []
    [page] = run(detection(period="7d"), "api", range(1, 5), requests=5000, errors=60, burn=burn)
    assert page.evidence["alert"]["factor"] == pytest.approx(3.36)


def test_a_service_on_default_slos_gets_no_burn_alerts() -> None:
    assert run(detection(), "svc", range(1, 5), requests=5000, errors=60, burn=FAST_BURN) == []


# ---- lifecycle: hysteresis, resolve, cooldown, updates ---------------------------------------------


def _spiky(d: Detection, start: int, minutes: int, errors: int) -> list[IncidentEvent]:
    return run(d, "svc", range(start, start + minutes), requests=1000, errors=errors)


def test_error_spike_confirms_holds_between_thresholds_resolves_and_cools_down() -> None:
    d = detection()
    assert _spiky(d, 1, 40, 2) == []  # baseline 0.2 %: 8 samples, one per 5 minutes
    assert _spiky(d, 41, 1, 200) == []  # one step is not confirmed (2 of 3)
    [trigger] = _spiky(d, 42, 1, 200)
    assert (trigger.action, trigger.routing, trigger.started_at) == ("trigger", "page", at(42))
    # 3 %: under the trigger threshold, over the clear one (baseline + 2 %): stays open, no resolve;
    # the fall from 20 % is a material change, told once the minimum update interval (15m) is over
    [update] = _spiky(d, 43, 30, 30)
    assert (update.action, update.observed_at, update.evidence["error_rate"]) == ("update", at(57), 0.03)
    # clear from minute 73; resolved once clear for resolve_after (10m)
    [resolve] = _spiky(d, 73, 11, 2)
    assert (resolve.action, resolve.resolved_at, resolve.observed_at) == ("resolve", at(73), at(83))
    assert resolve.dedup_key == trigger.dedup_key and resolve.group_key == trigger.group_key
    # flapping within the 30m cooldown triggers nothing; still bad after it, it triggers again
    assert _spiky(d, 84, 25, 200) == []
    [again] = _spiky(d, 109, 5, 200)
    assert again.action == "trigger" and again.id != trigger.id
    assert d.incidents.stats["held_by_cooldown"] > 0


def test_an_open_incident_is_updated_on_escalation_and_material_change_only() -> None:
    d = detection()
    ticket_burn = {"3d": 2.0, "6h": 2.0}
    [ticket] = run(d, "api", range(1, 2), requests=5000, errors=60, burn=ticket_burn)
    assert ticket.routing == "ticket"
    assert run(d, "api", range(2, 20), requests=5000, errors=60, burn=ticket_burn) == []  # unchanged
    updates = run(d, "api", range(20, 21), requests=5000, errors=60, burn={"3d": 2.0, "6h": 5.0})
    assert updates == []  # the value is the long window's: 3d did not move
    [update] = run(d, "api", range(21, 22), requests=5000, errors=60, burn={"3d": 4.0, "6h": 4.0})
    assert update.action == "update" and update.evidence["burn_rate"]["3d"] == 4.0


# ---- maintenance -----------------------------------------------------------------------------------


def test_maintenance_suppresses_paging_for_incidents_that_begin_inside_it() -> None:
    window = MaintenanceWindow(id="mw-1", services=["api"], start=T0, end=T0 + dt.timedelta(minutes=30))
    d = detection(maintenance=[window])
    events = run(d, "api", range(10, 12), requests=5000, errors=60, burn=FAST_BURN)
    events += run(d, "api", range(12, 60), requests=5000, errors=0)  # outlives the window, then resolves
    assert [e.action for e in events] == ["trigger", "resolve"]
    assert all(e.suppressed_by == "mw-1" and e.routing == "ticket" for e in events)
    assert events[0].evidence["routing_without_maintenance"] == "page"
    [page] = run(d, "api", range(100, 102), requests=5000, errors=60, burn=FAST_BURN)
    assert page.suppressed_by is None and page.routing == "page"
    other = MaintenanceWindow(id="mw-2", services=["billing"], start=T0, end=T0 + dt.timedelta(minutes=30))
    [not_covered] = run(
        detection(maintenance=[other]), "api", range(10, 12), requests=5000, errors=60, burn=FAST_BURN
    )
    assert not_covered.suppressed_by is None
    everything = MaintenanceWindow(id="mw-3", services=["*"], start=T0, end=T0 + dt.timedelta(minutes=30))
    [covered] = run(
        detection(maintenance=[everything]), "api", range(10, 12), requests=5000, errors=60, burn=FAST_BURN
    )
    assert covered.suppressed_by == "mw-3"


def test_maintenance_config_is_checked_at_start(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    window = "{id: mw, services: [a], start: '2026-10-03T14:00:00Z', end: '2026-10-03T13:00:00Z'}"
    path.write_text(f"maintenance:\n  - {window}\n")
    with pytest.raises(ConfigError, match=r"maintenance\.0"):
        load_config(path, environ={})
    path.write_text("sli: {windows: [5m, 1h]}\n")
    with pytest.raises(ConfigError, match="detection reads SLI windows"):
        load_config(path, environ={})


# ---- state -----------------------------------------------------------------------------------------


def test_after_restore_an_open_incident_neither_re_triggers_nor_is_forgotten() -> None:
    d = detection()
    [trigger] = run(d, "api", range(1, 3), requests=5000, errors=60, burn=FAST_BURN)
    saved = orjson.loads(orjson.dumps(d.state()))  # JSON, as the changelog stores it
    restored = detection()
    restored.restore(saved)
    assert run(restored, "api", range(3, 10), requests=5000, errors=60, burn=FAST_BURN) == []
    [resolve] = run(restored, "api", range(10, 25), requests=5000, errors=0)
    assert resolve.dedup_key == trigger.dedup_key and resolve.started_at == trigger.started_at
    with pytest.raises(DetectionStateError, match="version 7"):
        restored.restore({"v": 7})


def test_same_input_same_events() -> None:
    def events() -> list[bytes]:
        d = detection()
        spike = _spiky(d, 1, 40, 2) + _spiky(d, 41, 5, 200) + _spiky(d, 46, 20, 2)
        return [e.to_json_bytes() for e in spike]

    assert events() == events() and len(events()) == 2


# ---- the other detectors ---------------------------------------------------------------------------


def test_latency_regression_needs_n_of_m_steps_and_enough_requests() -> None:
    d = detection()
    assert run(d, "svc", range(1, 40), p95=50.0) == []
    assert run(d, "svc", range(40, 42), p95=200.0) == []  # 2 of 5: not yet
    assert run(d, "svc", range(42, 60), p95=200.0, requests=10) == []  # too few requests to judge
    [trigger] = run(d, "svc", range(60, 63), p95=200.0)
    assert trigger.type == "latency_regression" and trigger.evidence["baseline_ms"] == 50.0


def test_telemetry_gap_needs_a_rate_that_makes_silence_unlikely() -> None:
    for rps, expected in ((3.0, 1), (0.001, 0)):  # 0.001 rps: ~2 requests in a 34-minute silence
        d = detection()
        run(d, "svc", range(1, 10), rps=rps)
        events = run(d, "svc", range(10, 40), signals=(), requests=0, rps=0.0)
        assert [e.action for e in events if e.type == "telemetry_gap"] == ["trigger"] * expected


def test_completeness_drop_flags_a_signal_that_went_missing_but_not_one_never_sent() -> None:
    d = detection()
    assert run(d, "svc", range(1, 40), signals=("metrics",)) == []  # never had traces or logs
    d = detection()
    run(d, "svc", range(1, 40))
    events = run(d, "svc", range(40, 60), signals=("traces", "metrics"))
    [trigger] = [e for e in events if e.action == "trigger"]
    assert trigger.dedup_key == "completeness_drop/svc/logs" and trigger.evidence["missing_steps"] == 10


def test_cardinality_explosion_past_a_multiple_of_the_baseline_or_the_bound() -> None:
    d = detection()
    run(d, "svc", range(1, 40), names=10)
    assert run(d, "svc", range(40, 45), names=45) == []  # 4.5x but only 35 more: under min_increase
    [trigger] = [e for e in run(d, "svc", range(45, 48), names=400) if e.action == "trigger"]
    assert trigger.dedup_key == "cardinality_explosion/svc/span_names"
    [bound] = [e for e in run(detection(), "svc", range(1, 4), names=5000) if e.action == "trigger"]
    assert bound.evidence["bound"] == 2000


def _note(offset: int, minute: int, count: int = 1, detector: str = "credit_card") -> SliPartial:
    time_ms = int((T0 + dt.timedelta(minutes=minute)).timestamp() * 1000)
    return SliPartial("svc", time_ms, [], "otlp_logs[0]", offset, redactions={detector: count})


def test_pii_leak_counts_a_redelivered_message_once_and_ignores_routine_redaction() -> None:
    d = detection({"pii_leak": {"min_count": 3}})
    d.note([_note(7, 1, 2), _note(7, 1, 2), _note(8, 1, 0, "email"), _note(9, 1, 5, "email")])
    assert run(d, "svc", range(2, 3)) == []  # 2 card numbers (the redelivery is not a third): under 3
    d.note([_note(10, 2, 1)])
    [trigger] = run(d, "svc", range(3, 4))
    assert trigger.evidence["counts"] == {"credit_card": 3} and trigger.routing == "ticket"
    assert trigger.severity == "critical" and "credit_card x3" in trigger.summary
    [resolve] = run(d, "svc", range(4, 30))  # out of the 15m window, then clear for 10m
    assert resolve.action == "resolve"


def test_core_sends_redaction_notes_tagged_with_their_message() -> None:
    record = LogRecord(body=AnyValue(string_value="charge declined for card 4111 1111 1111 1111"))
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="billing"))])
    record.time_unix_nano = 1_767_225_600_000_000_000
    message = LogsData(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=[record])])]
    )
    core = Core(PipelineConfig(), trace_store={}, users=UserDirectory(), services={}, wall_clock=False)
    value = encode(message, Encoding.PROTO)
    result = core.process([InputRecord(Signal.LOGS, None, value, "otlp_logs[3]", 41)], 0, final=True)
    [note] = [p for p in result.partials if p.is_redaction_note]
    assert (note.service, note.source, note.offset) == ("billing", "otlp_logs[3]", 41)
    assert note.redactions == {"credit_card": 1} and note.max_time_ms == 1_767_225_600_000
    assert b"4111" not in result.clean[0].value


def test_deploy_shortly_before_an_incident_is_named_in_its_evidence() -> None:
    d = detection()
    first_ms = int(T0.timestamp() * 1000)
    d.note([SliPartial("api", first_ms, [[0]], "s", 1, versions={"1.0": first_ms})])
    d.note([SliPartial("api", first_ms, [[0]], "s", 2, versions={"1.1": first_ms + 5 * MINUTE_MS})])
    [page] = run(d, "api", range(10, 12), requests=5000, errors=60, burn=FAST_BURN)
    assert page.evidence["deploy"] == {"old_version": "1.0", "new_version": "1.1", "at": at(5)}
    [late] = run(d, "api", range(200, 202), requests=5000, errors=60, burn={"3d": 3.0, "6h": 3.0})
    assert "deploy" not in late.evidence  # more than deploy_lookback (1h) after it


def test_the_schema_file_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_incidents_schema(), (
        "regenerate: python -c 'from telemetry_pipeline.detection import write_incidents_schema as w; w()'"
    )


def test_pii_leak_memory_is_bounded_per_service() -> None:
    d = detection({"pii_leak": {"max_messages": 5}})
    d.note([_note(offset, 1) for offset in range(50)])
    d.note([_note(offset, 1) for offset in range(5)])  # the remembered ones are recognised
    [trigger] = run(d, "svc", range(2, 3))
    assert trigger.evidence["counts"] == {"credit_card": 50}
    assert len(d.state()["detectors"]["pii_leak"]["notes"]["svc"]) == 6  # 5 messages + 1 minute merged


def test_services_the_engine_stopped_evaluating_are_forgotten() -> None:
    d = detection()
    run(d, "svc", range(1, 40))
    run(d, "other", range(40, 41))
    detectors = d.state()["detectors"]
    assert all("svc" not in str(state) for name, state in detectors.items() if name != "pii_leak")
    assert "other" in str(detectors["telemetry_gap"])


def test_cloudevents_headers_name_the_event() -> None:
    [page] = run(detection(), "api", range(1, 3), requests=5000, errors=60, burn=FAST_BURN)
    headers = dict(page.headers("telemetry-pipeline/prod"))
    assert headers["ce_id"] == page.id.encode() and headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"io.github.telemetry-pipeline.incident.trigger"
    assert headers["ce_source"] == b"telemetry-pipeline/prod" and headers["ce_time"] == at(1).encode()


def test_a_bad_detection_setting_fails_at_start_naming_the_field(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("detection: {slo_burn_rate: {min_bad: 0}, latency_regression: {confirm: 6, of: 5}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert "detection.slo_burn_rate.min_bad" in str(caught.value)
    assert "detection.latency_regression" in str(caught.value)


def test_a_zero_baseline_is_no_excuse_to_fire() -> None:
    d = detection()
    assert run(d, "svc", range(1, 60), p95=0.0, names=0) == []  # a value equal to a zero baseline
    assert run(d, "svc", range(60, 70), p95=5.0, names=20) == []  # under the absolute increases
    assert {e.type for e in run(d, "svc", range(70, 75), p95=40.0, names=60)} == {
        "latency_regression",
        "cardinality_explosion",
    }
