import pytest

from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.sli import (
    PartialAggregator,
    PartialsError,
    SliConfig,
    SliPartial,
    SloConfig,
    SloDefaults,
    SloResolver,
    decode_partials,
    encode_partials,
)
from telemetry_pipeline.sli.sketch import LatencyMapping, hll_estimate, hll_packed, quantile_ms
from telemetry_pipeline.sli.slo import CATALOG_SLO_KEY
from telemetry_pipeline.sli.tests.builders import (
    CLIENT,
    CONSUMER,
    ERROR,
    INTERNAL,
    MINUTE_NS,
    MS,
    OK,
    SERVER,
    T0_NS,
    checkout_request_durations,
    histogram,
    logs,
    traces,
)
from telemetry_pipeline.sli.windows import (
    ERRORS,
    GOOD,
    KEYS,
    LOGS,
    LOGS_TRACED,
    METRIC_REQ,
    NAMES,
    POINTS,
    REQUESTS,
    RESOURCE_ATTRS,
    RESOURCES,
    SKETCH,
    SPAN_REQ,
    SPANS,
    START,
    ZEROS,
)

T0_MS = T0_NS // MS


def aggregator(threshold_ms: float = 300.0) -> PartialAggregator:
    slos = SloResolver([SloConfig(service="checkout", latency={"threshold_ms": threshold_ms})], SloDefaults())
    return PartialAggregator(SliConfig(), slos)


def only(partials: list[SliPartial]) -> SliPartial:
    assert len(partials) == 1
    return partials[0]


def only_bucket(partials: list[SliPartial]) -> list:
    [bucket] = only(partials).buckets
    return bucket


def flat(partials: list[SliPartial]) -> list[tuple[str, list]]:
    return [(p.service, bucket) for p in partials for bucket in p.buckets]


def test_requests_are_server_consumer_or_root_spans() -> None:
    agg = aggregator()
    agg.add(
        Signal.TRACES,
        traces(
            "checkout",
            [
                {"end_ns": T0_NS, "kind": SERVER, "parent": True},
                {"end_ns": T0_NS, "kind": CONSUMER, "parent": True},
                {"end_ns": T0_NS, "kind": INTERNAL},  # root
                {"end_ns": T0_NS, "kind": CLIENT, "parent": True},  # not a request
                {"end_ns": T0_NS, "kind": INTERNAL, "parent": True},  # not a request
            ],
        ),
    )
    partial = only(agg.drain())
    assert partial.service == "checkout"
    [bucket] = partial.buckets
    assert bucket[START] == T0_MS
    assert bucket[SPANS] == 5
    assert bucket[SPAN_REQ][REQUESTS] == 3
    assert bucket[METRIC_REQ] is None
    assert agg.drain() == []  # drained


def test_errors_are_status_error_or_http_5xx_on_unset_server_spans() -> None:
    agg = aggregator()
    agg.add(
        Signal.TRACES,
        traces(
            "checkout",
            [
                {"end_ns": T0_NS, "status": ERROR},
                {"end_ns": T0_NS, "attrs": {"http.response.status_code": 503}},  # unset status, new key
                {"end_ns": T0_NS, "attrs": {"http.status_code": "500"}},  # unset status, old key, string
                {"end_ns": T0_NS, "attrs": {"http.response.status_code": 404}},
                {"end_ns": T0_NS, "status": OK, "attrs": {"http.response.status_code": 503}},  # status wins
                {
                    "end_ns": T0_NS,
                    "kind": CONSUMER,
                    "attrs": {"http.response.status_code": 503},
                },  # not HTTP server
                {"end_ns": T0_NS, "kind": CLIENT, "parent": True, "status": ERROR},  # not a request
            ],
        ),
    )
    requests = only_bucket(agg.drain())[SPAN_REQ]
    assert (requests[REQUESTS], requests[ERRORS]) == (6, 3)


def test_latency_good_count_and_sketch() -> None:
    agg = aggregator(threshold_ms=300.0)
    latencies = [10.0, 100.0, 299.0, 300.0, 301.0, 2000.0, 0.0]
    agg.add(Signal.TRACES, traces("checkout", [{"end_ns": T0_NS, "latency_ms": v} for v in latencies]))
    requests = only_bucket(agg.drain())[SPAN_REQ]
    assert requests[GOOD] == 5  # <= 300 ms, the zero-length span included
    assert requests[ZEROS] == 1
    mapping = LatencyMapping(0.01)
    assert quantile_ms(requests[ZEROS], requests[SKETCH], 1.0, mapping, 0) == pytest.approx(2000.0, rel=0.01)
    assert quantile_ms(requests[ZEROS], requests[SKETCH], 0.5, mapping, 0) == pytest.approx(299.0, rel=0.01)


def test_spans_go_to_the_bucket_of_their_end_time_and_services_stay_apart() -> None:
    agg = aggregator()
    agg.add(
        Signal.TRACES,
        traces(
            "checkout",
            [
                {"end_ns": T0_NS + 59_999 * MS},
                {"end_ns": T0_NS + MINUTE_NS},
                {"end_ns": T0_NS + MINUTE_NS + 5 * MS},
            ],
        ),
    )
    agg.add(Signal.TRACES, traces("cart", [{"end_ns": T0_NS}]))
    partials = agg.drain()
    assert [(service, b[START], b[SPANS]) for service, b in flat(partials)] == [
        ("cart", T0_MS, 1),
        ("checkout", T0_MS, 1),
        ("checkout", T0_MS + 60_000, 2),
    ]
    assert [p.max_time_ms for p in partials] == [T0_MS, T0_MS + 60_005]  # one partial per service


def test_resource_completeness_counts_requirements_met_once_per_resource() -> None:
    agg = aggregator()
    full = {
        "service.version": "1.2",
        "service.namespace": "shop",
        "service.instance.id": "a",
        "deployment.environment": "prod",
        "telemetry.sdk.language": "python",
    }  # older environment key
    agg.add(Signal.TRACES, traces("checkout", [{"end_ns": T0_NS}] * 3, resource=full))
    agg.add(Signal.TRACES, traces("checkout", [{"end_ns": T0_NS}], resource={"service.version": "1.2"}))
    bucket = only_bucket(agg.drain())
    assert (bucket[RESOURCES], bucket[RESOURCE_ATTRS]) == (2, 6 + 2)


def test_missing_or_placeholder_service_name_does_not_count() -> None:
    agg = aggregator()
    agg.add(Signal.TRACES, traces(None, [{"end_ns": T0_NS}]))
    agg.add(Signal.TRACES, traces("unknown_service:python", [{"end_ns": T0_NS}]))
    partials = agg.drain()
    assert [(service, b[RESOURCE_ATTRS]) for service, b in flat(partials)] == [
        ("unknown_service", 0),
        ("unknown_service:python", 0),
    ]


def test_cardinality_sketches_of_span_names_and_attribute_keys() -> None:
    agg = aggregator()
    agg.add(
        Signal.TRACES,
        traces(
            "checkout",
            [
                {
                    "end_ns": T0_NS,
                    "name": f"op{i % 7}",
                    "kind": INTERNAL,
                    "parent": True,
                    "attrs": {f"k{i % 3}": 1, "x": 2},
                }
                for i in range(50)
            ],
        ),
    )
    bucket = only_bucket(agg.drain())
    # Small sets are counted almost exactly (linear counting); a register collision costs one.
    assert 6 <= hll_estimate(hll_packed(bucket[NAMES])) <= 7
    assert 3 <= hll_estimate(hll_packed(bucket[KEYS])) <= 4


def test_logs_count_presence_and_trace_correlation() -> None:
    agg = aggregator()
    agg.add(Signal.LOGS, logs("checkout", [(T0_NS, True), (T0_NS, False), (T0_NS + 1, True)]))
    bucket = only_bucket(agg.drain())
    assert (bucket[LOGS], bucket[LOGS_TRACED], bucket[SPANS], bucket[SPAN_REQ]) == (3, 2, 0, None)


def test_delta_histogram_feeds_requests_errors_good_and_latency() -> None:
    agg = aggregator(threshold_ms=300.0)
    # Seconds (the current convention), bounds 0.1 s and 0.5 s: 6 <= 100 ms, 4 in (100, 500] ms, 2 above.
    agg.add(
        Signal.METRICS,
        checkout_request_durations(error_status=503),
    )
    bucket = only_bucket(agg.drain())
    requests = bucket[METRIC_REQ]
    assert bucket[SPAN_REQ] is None
    assert bucket[POINTS] == 2
    assert (requests[REQUESTS], requests[ERRORS]) == (12, 2)
    assert requests[GOOD] == 6 + 2  # half of (100, 500] is under 300 ms, assuming an even spread
    mapping = LatencyMapping(0.01)
    assert quantile_ms(0, requests[SKETCH], 0.0, mapping, 0) == pytest.approx(50.0, rel=0.01)  # midpoint


@pytest.mark.parametrize(
    ("attrs", "error"),
    [
        ({"http.status_code": 500}, True),
        ({"error.type": "timeout"}, True),
        ({"rpc.grpc.status_code": 14}, True),  # UNAVAILABLE
        ({"rpc.grpc.status_code": 5}, False),  # NOT_FOUND is the caller's problem
        ({"http.status_code": 429}, False),
    ],
)
def test_metric_error_attributes(attrs: dict, error: bool) -> None:
    agg = aggregator()
    agg.add(
        Signal.METRICS,
        histogram(
            "checkout",
            "rpc.server.duration",
            [{"time_ns": T0_NS, "bounds": [10.0], "counts": [1, 0], "attrs": attrs}],
        ),
    )
    assert only_bucket(agg.drain())[METRIC_REQ][ERRORS] == (1 if error else 0)


def test_cumulative_points_travel_raw_for_the_engine_per_series() -> None:
    """Deltas of cumulative series are the engine's (`test_cumulative`): only it sees every point of a
    series, whatever partition or worker brought it. The partial carries the points as they are."""
    agg = aggregator()
    for instance, minute in (("i-1", 0), ("i-2", 0), ("i-1", 1)):
        agg.add(
            Signal.METRICS,
            histogram(
                "checkout",
                "http.server.duration",
                [{"time_ns": T0_NS + minute * MINUTE_NS, "bounds": [100.0], "counts": [5 + minute, 1]}],
                unit="ms",
                cumulative=True,
                instance=instance,
            ),
        )
    partial = only(agg.drain())
    assert all(b[METRIC_REQ] is None for b in partial.buckets)  # nothing counted at ingest
    assert sum(b[POINTS] for b in partial.buckets) == 3
    series = [entry[0] for entry in partial.cumulative]
    assert series[0] == series[2] != series[1]  # per resource, metric name and point attributes
    assert partial.cumulative[2][1] == [
        T0_NS + MINUTE_NS, T0_NS - MINUTE_NS, 7, [6, 1], 0, ["x", [100.0]], 1.0, 0
    ]
    assert decode_partials(encode_partials([partial])) == [partial]


def test_other_metrics_only_count_as_presence() -> None:
    agg = aggregator()
    agg.add(
        Signal.METRICS,
        histogram(
            "checkout",
            "http.client.request.duration",
            [{"time_ns": T0_NS, "bounds": [1.0], "counts": [1, 1]}],
        ),
    )
    bucket = only_bucket(agg.drain())
    assert (bucket[POINTS], bucket[METRIC_REQ]) == (1, None)


def test_exponential_histogram_buckets_become_latencies() -> None:
    from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

    message = MetricsData()
    resource_metrics = message.resource_metrics.add()
    resource_metrics.resource.attributes.add(key="service.name").value.string_value = "checkout"
    metric = resource_metrics.scope_metrics.add().metrics.add(name="http.server.request.duration", unit="s")
    metric.exponential_histogram.aggregation_temporality = 1
    point = metric.exponential_histogram.data_points.add(time_unix_nano=T0_NS, count=5, scale=0, zero_count=1)
    point.positive.offset = -4  # buckets (2^-4, 2^-3] s = (62.5, 125] ms and (125, 250] ms
    point.positive.bucket_counts.extend([3, 1])
    agg = aggregator(threshold_ms=300.0)
    agg.add(Signal.METRICS, message)
    requests = only_bucket(agg.drain())[METRIC_REQ]
    assert (requests[REQUESTS], requests[GOOD], requests[ZEROS]) == (5, 5, 1)
    mapping = LatencyMapping(0.01)
    assert quantile_ms(1, requests[SKETCH], 1.0, mapping, 0) == pytest.approx((125 * 250) ** 0.5, rel=0.01)


def test_future_items_are_counted_and_skipped_when_the_shell_gives_its_clock() -> None:
    agg = aggregator()
    now_ms = T0_MS
    agg.add(
        Signal.TRACES, traces("checkout", [{"end_ns": T0_NS}, {"end_ns": T0_NS + 3_600_000 * MS}]), now_ms
    )
    assert only_bucket(agg.drain())[SPANS] == 1
    assert agg.stats.future_dropped == 1


def test_partials_round_trip_through_a_record_value() -> None:
    agg = aggregator()
    agg.add(Signal.TRACES, traces("checkout", [{"end_ns": T0_NS, "latency_ms": 12.5, "status": ERROR}]))
    first = only(agg.drain())
    first.source, first.offset = "otlp_spans[2]", 41
    agg.add(Signal.TRACES, traces("checkout", [{"end_ns": T0_NS + MINUTE_NS}, {"end_ns": T0_NS}]))
    second = only(agg.drain())
    assert len(second.buckets) == 2 and second.offset == -1  # untagged until the core tags it
    note = SliPartial("checkout", T0_MS, [], "otlp_logs[0]", 7, redactions={"credit_card": 2})
    assert note.is_redaction_note and not first.is_redaction_note
    assert decode_partials(encode_partials([first, second, note])) == [first, second, note]


def test_a_partial_names_each_service_version_with_its_first_event_time() -> None:
    agg = aggregator()
    agg.add(
        Signal.TRACES,
        traces("checkout", [{"end_ns": T0_NS + MINUTE_NS}], resource={"service.version": "1.2"}),
    )
    agg.add(Signal.TRACES, traces("checkout", [{"end_ns": T0_NS}], resource={"service.version": "1.2"}))
    agg.add(
        Signal.TRACES,
        traces("checkout", [{"end_ns": T0_NS + 2 * MINUTE_NS}], resource={"service.version": "1.3"}),
    )
    assert only(agg.drain()).versions == {"1.2": T0_MS, "1.3": T0_MS + 2 * MINUTE_NS // MS}
    agg.add(Signal.TRACES, traces("checkout", [{"end_ns": T0_NS}]))
    assert only(agg.drain()).versions == {}  # per drain, and only when the resource names one


def test_catalog_override_moves_the_threshold_once_slos_are_re_read() -> None:
    catalog: dict[str, dict] = {}
    agg = PartialAggregator(SliConfig(), SloResolver([], SloDefaults(), catalog))
    spans = [{"end_ns": T0_NS, "latency_ms": 400.0}]
    agg.add(Signal.TRACES, traces("cart", spans))
    assert only_bucket(agg.drain())[SPAN_REQ][GOOD] == 1  # default threshold 500 ms
    catalog["cart"] = {"owner": "team-a", CATALOG_SLO_KEY: {"latency": {"threshold_ms": 250}}}
    agg.add(Signal.TRACES, traces("cart", spans))
    assert only_bucket(agg.drain())[SPAN_REQ][GOOD] == 1  # thresholds are read once per batch
    agg.forget_slos()  # what the core does after each batch
    agg.add(Signal.TRACES, traces("cart", spans))
    assert only_bucket(agg.drain())[SPAN_REQ][GOOD] == 0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"service": "checkout"}', "no version"),
        (b'[["checkout", 1, [], "otlp_spans[0]", 1]]', "unversioned (version 1)"),
        (b'{"v": 2, "partials": []}', "version 2; this worker reads 3"),
        (b'{"v": 4, "partials": []}', "version 4; this worker reads 3"),
        (b'{"v": 3, "partials": [{"service": "checkout"}]}', "not a list of partials"),
        (b'{"v": 3, "partials": [{"service": "c", "max_time_ms": "soon", "buckets": []}]}', "wrong type"),
        (b'{"v": 3, "partials": [{"service": "c", "max_time_ms": 1, "buckets": [[0, 1]]}]}', "wrong type"),
        (
            b'{"v": 3, "partials": [{"service": "c", "max_time_ms": 1, "buckets": [], '
            b'"redactions": {"x": "1"}}]}',
            "wrong type",
        ),
        (
            b'{"v": 3, "partials": [{"service": "c", "max_time_ms": 1, "buckets": [], '
            b'"cumulative": [["s", [1, 0, 2, [2], 0, ["x", []], 1.0]]]}]}',
            "wrong type",
        ),
    ],
)
def test_a_record_that_is_not_partials_is_refused_with_a_reason(value: bytes, reason: str) -> None:
    with pytest.raises(PartialsError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode_partials(value)
