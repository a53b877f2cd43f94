from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from telemetry_pipeline.generate import GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.generate.model import DURATION_BUCKETS
from telemetry_pipeline.generate.tests.support import logs, spans
from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.otlp.attributes import get_str, get_value

_CODE = "http.response.status_code"
START_NS = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000_000


@pytest.fixture(scope="module")
def run() -> list:
    return list(iter_messages(GeneratorConfig(duration="2m", rate=40, metrics_temporality="delta")))


@pytest.fixture(scope="module")
def by_trace(run: list) -> dict[bytes, list]:
    traces = defaultdict(list)
    for record in spans(run):
        traces[record.span.trace_id].append(record)
    return traces


def test_same_seed_gives_identical_bytes_and_another_seed_does_not() -> None:
    config = GeneratorConfig(duration="90s", rate=20, faults=[{"kind": "garbage", "share": 0.2}])

    def fingerprint(cfg: GeneratorConfig) -> list[tuple]:
        return [(m.signal, m.key, m.payload, m.event_time_ns) for m in iter_messages(cfg)]

    first = fingerprint(config)
    assert first == fingerprint(config)
    assert first != fingerprint(config.model_copy(update={"seed": 2}))


def test_payload_is_the_canonical_encoding_of_the_message(run: list) -> None:
    for message in run:
        assert message.message.SerializeToString() == message.payload


def test_every_parent_exists_and_each_trace_has_one_server_root_at_the_front(by_trace: dict) -> None:
    assert len(by_trace) == 40 * 120
    for records in by_trace.values():
        ids = {r.span.span_id for r in records}
        roots = [r for r in records if not r.span.parent_span_id]
        assert len(roots) == 1
        assert roots[0].service == "frontend" and roots[0].span.kind == Span.SPAN_KIND_SERVER
        for record in records:
            assert not record.span.parent_span_id or record.span.parent_span_id in ids


def test_client_spans_have_a_server_child_in_the_called_service(by_trace: dict) -> None:
    calls = 0
    for records in by_trace.values():
        children = defaultdict(list)
        for record in records:
            children[record.span.parent_span_id].append(record)
        for record in records:
            if record.span.kind != Span.SPAN_KIND_CLIENT:
                continue
            calls += 1
            (child,) = children[record.span.span_id]
            assert child.span.kind == Span.SPAN_KIND_SERVER
            assert get_str(record.span.attributes, "server.address").startswith(child.service + ".")
            assert child.span.start_time_unix_nano >= record.span.start_time_unix_nano
            assert child.span.end_time_unix_nano <= record.span.end_time_unix_nano
            assert (
                get_value(record.span.attributes, "http.response.status_code").int_value
                == get_value(child.span.attributes, "http.response.status_code").int_value
            )
    assert calls > 10_000


def test_internal_db_spans_and_links_and_exception_events_occur(run: list) -> None:
    kinds, db_systems, links, events = Counter(), set(), 0, 0
    for record in spans(run):
        kinds[record.span.kind] += 1
        if get_str(record.span.attributes, "db.system"):
            assert record.span.kind == Span.SPAN_KIND_INTERNAL
            assert get_str(record.span.attributes, "db.query.text")
            db_systems.add(get_str(record.span.attributes, "db.system"))
        links += len(record.span.links)
        if record.span.status.code == Status.STATUS_CODE_ERROR:
            assert record.span.kind == Span.SPAN_KIND_CLIENT or record.span.events[0].name == "exception"
        events += len(record.span.events)
    assert {"postgresql", "redis", "elasticsearch"} <= db_systems
    assert set(kinds) == {Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL}
    assert links > 0 and events > 0


def test_only_root_spans_carry_the_user_and_users_match_the_context_table(run: list) -> None:
    users, _ = context_records(GeneratorConfig())
    roots = known = 0
    for record in spans(run):
        user = get_str(record.span.attributes, "enduser.id")
        if record.span.parent_span_id:
            assert user is None and get_str(record.span.attributes, "tenant.id") is None
            continue
        roots += 1
        if user in users:
            known += 1
            assert get_str(record.span.attributes, "tenant.id") == users[user]["tenant"]
    assert 0.9 < known / roots < 0.97  # default: 5% anonymous, 1% unknown users
    for entry in logs(run):
        assert all(kv.key != "enduser.id" for kv in entry.record.attributes)


def test_attribute_counts_stay_in_the_configured_range() -> None:
    messages = iter_messages(GeneratorConfig(duration="30s", attributes_per_span=(12, 16), pii_share=0.0))
    counts = Counter(len(record.span.attributes) for record in spans(messages))
    assert min(counts) >= 12 and max(counts) <= 16
    assert len(counts) >= 3


def test_services_differ_in_resource_completeness(run: list) -> None:
    keys_by_service = defaultdict(set)
    for message in run:
        for resource_spans in getattr(message.message, message.signal.resource_field):
            names = frozenset(kv.key for kv in resource_spans.resource.attributes)
            keys_by_service[get_str(resource_spans.resource.attributes, "service.name")].add(names)
    assert len({frozenset().union(*sets) for sets in keys_by_service.values()}) >= 2
    assert {"frontend", "checkout", "gateway"} <= set(keys_by_service)


def test_logs_are_mostly_correlated_to_existing_spans_with_varied_bodies(run: list, by_trace: dict) -> None:
    span_ids = {r.span.span_id for records in by_trace.values() for r in records}
    entries = list(logs(run))
    correlated = [e for e in entries if e.record.trace_id]
    assert 0.86 < len(correlated) / len(entries) < 0.94  # default: 10% uncorrelated
    assert all(e.record.span_id in span_ids and e.record.trace_id in by_trace for e in correlated)
    bodies = Counter(e.record.body.WhichOneof("value") for e in entries)
    assert set(bodies) == {"string_value", "kvlist_value", "array_value"}
    severities = Counter(e.record.severity_text for e in entries)
    assert {"INFO", "WARN", "ERROR"} <= set(severities)


def test_request_histograms_count_every_server_span_and_the_gateway_every_trace(run: list) -> None:
    server_spans = Counter(r.service for r in spans(run) if r.span.kind == Span.SPAN_KIND_SERVER)
    histogram_counts: Counter[str] = Counter()
    metric_names = set()
    times = set()
    for message in run:
        if message.signal is not Signal.METRICS:
            continue
        times.add(message.event_time_ns)
        for resource_metrics in message.message.resource_metrics:
            service = get_str(resource_metrics.resource.attributes, "service.name")
            for metric in resource_metrics.scope_metrics[0].metrics:
                metric_names.add(metric.name)
                if metric.name != "http.server.request.duration":
                    continue
                assert metric.unit == "s"
                for point in metric.histogram.data_points:
                    assert list(point.explicit_bounds) == list(DURATION_BUCKETS)
                    assert sum(point.bucket_counts) == point.count
                    assert get_str(point.attributes, "http.route") and get_str(
                        point.attributes, "http.response.status_code"
                    )
                    histogram_counts[service] += point.count
    assert times == {START_NS + 60_000_000_000, START_NS + 120_000_000_000}
    assert {"process.cpu.utilization", "process.memory.usage", "process.runtime.gc.count"} <= metric_names
    assert histogram_counts.pop("gateway") == 40 * 120
    assert histogram_counts == server_spans


def test_event_time_starts_at_the_configured_start_and_follows_the_rate(by_trace: dict) -> None:
    starts = sorted(min(r.span.start_time_unix_nano for r in records) for records in by_trace.values())
    assert START_NS <= starts[0] < START_NS + 100_000_000
    assert starts[-1] < START_NS + 120_000_000_000
    per_second = Counter((s - START_NS) // 1_000_000_000 for s in starts)
    assert set(per_second.values()) <= {39, 40, 41}


def test_a_long_run_of_metrics_only_is_cheap() -> None:
    config = GeneratorConfig(duration="2d", rate=0.05, metrics_interval="5m", signals=["metrics"])
    messages = list(iter_messages(config))
    assert len(messages) == 2 * 24 * 12
    assert messages[-1].event_time_ns == START_NS + 2 * 86_400 * 1_000_000_000


def test_latency_grows_along_the_call_path(by_trace: dict) -> None:
    durations = defaultdict(list)
    for records in by_trace.values():
        for r in records:
            if r.span.kind == Span.SPAN_KIND_SERVER:
                durations[r.service].append(r.span.end_time_unix_nano - r.span.start_time_unix_nano)
    # the checkout entry path holds payment's 35 ms card authorisation
    assert statistics.median(durations["checkout"]) > statistics.median(durations["payment"]) > 30e6


def test_choosing_signals_or_adding_garbage_leaves_the_traces_unchanged() -> None:
    def traces(**update) -> list[bytes]:
        config = GeneratorConfig(duration="2m", rate=10, **update)
        return [m.payload for m in iter_messages(config) if m.signal is Signal.TRACES and not m.is_garbage]

    everything = traces()
    assert traces(signals=["traces"]) == everything
    assert traces(faults=[{"kind": "garbage", "share": 0.5}]) == everything


def test_cumulative_histograms_only_grow_and_restart_with_a_deploy() -> None:
    config = GeneratorConfig(
        duration="5m", rate=20, faults=[{"kind": "deploy", "service": "cart", "at": "150s"}]
    )
    series: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for message in iter_messages(config):
        if message.signal is not Signal.METRICS:
            continue
        for resource_metrics in message.message.resource_metrics:
            resource = tuple((kv.key, kv.value.string_value) for kv in resource_metrics.resource.attributes)
            histogram = resource_metrics.scope_metrics[0].metrics[0].histogram
            for point in histogram.data_points:
                key = (
                    resource,
                    *(get_str(point.attributes, k) for k in ("http.request.method", "http.route", _CODE)),
                )
                series[key].append((point.start_time_unix_nano, point.count))
    starts = set()
    for points in series.values():
        assert len({start for start, _ in points}) == 1
        assert [count for _, count in points] == sorted(count for _, count in points)
        starts.add(points[0][0])
    assert starts == {START_NS, START_NS + 150_000_000_000}
