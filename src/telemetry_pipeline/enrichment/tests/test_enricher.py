from __future__ import annotations

import json

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from telemetry_pipeline.enrichment import Enricher, EnrichmentConfig, UserDirectory
from telemetry_pipeline.enrichment import enricher as enricher_module
from telemetry_pipeline.enrichment.tests.builders import (
    KEY,
    S,
    all_log_records,
    all_spans,
    attr,
    logs,
    metrics,
    traces,
)
from telemetry_pipeline.otlp import Message, Signal
from telemetry_pipeline.otlp.attributes import set_strs
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer

ALICE = "alice@example.com"
PSEUDO = Pseudonymizer(KEY)
ROOT_ATTRIBUTES = {"enduser.id": ALICE, "http.route": "/checkout/{cart}"}


def make(config: EnrichmentConfig | None = None, store: dict | None = None,
         users: UserDirectory | None = None, services: dict | None = None) -> Enricher:
    if users is None:
        users = UserDirectory()
        users.update(ALICE, {"tenant": "acme", "plan": "gold", "region": "eu-west-1"})
    return Enricher(config or EnrichmentConfig(), {} if store is None else store, users,
                    services if services is not None else {}, PSEUDO)


def run(enricher: Enricher, signal: Signal, message: Message, now_ms: int = 1_000,
        final: bool = False) -> bool:
    enricher.learn(signal, message, now_ms)
    return enricher.enrich(signal, message, final=final)


def a_trace(trace: int = 1) -> list[S]:
    return [
        S(trace, 1, service="frontend", name="GET /checkout", kind=Span.SPAN_KIND_SERVER,
          attributes=ROOT_ATTRIBUTES),
        S(trace, 2, 1, service="frontend", name="cart.lookup"),
        S(trace, 3, 2, service="frontend", name="POST payments", kind=Span.SPAN_KIND_CLIENT),
        S(trace, 4, 3, service="payments", name="charge", kind=Span.SPAN_KIND_SERVER,
          status=Status.STATUS_CODE_ERROR),
    ]


def assert_user_context(span_or_log: Span | LogRecord) -> None:
    assert attr(span_or_log, "enduser.pseudo.id") == PSEUDO(ALICE)
    assert attr(span_or_log, "enduser.tenant") == "acme"
    assert attr(span_or_log, "enduser.plan") == "gold"
    assert attr(span_or_log, "enduser.region") == "eu-west-1"


def test_context_propagates_within_one_message() -> None:
    enricher = make()
    message = traces(a_trace())
    assert run(enricher, Signal.TRACES, message)
    for span in all_spans(message):
        assert_user_context(span)
        assert attr(span, "trace.root.service") == "frontend"
        assert attr(span, "trace.root.route") == "/checkout/{cart}"
    # The raw id stays only where it was (the redactor pseudonymises it in place); no copy of it.
    spans = all_spans(message)
    assert attr(spans[0], "enduser.id") == ALICE
    assert all(attr(span, "enduser.id") is None for span in spans[1:])
    stats = enricher.stats()
    assert (stats.spans, stats.spans_with_user, stats.spans_with_trace_context) == (4, 4, 4)
    assert stats.span_user_coverage == 1.0


def test_context_propagates_across_messages_and_children_wait_for_their_root() -> None:
    enricher = make()
    root, *children = a_trace()
    early = traces(children)
    before = early.SerializeToString()
    assert not run(enricher, Signal.TRACES, early)
    assert early.SerializeToString() == before, "a declined message must be left untouched"

    assert run(enricher, Signal.TRACES, traces([root]))
    assert enricher.enrich(Signal.TRACES, early, final=False)
    for span in all_spans(early):
        assert_user_context(span)
    assert enricher.stats().released_without_context == 0


def test_final_releases_without_context_and_counts() -> None:
    enricher = make()
    _, *children = a_trace()
    message = traces(children)
    assert run(enricher, Signal.TRACES, message, final=True)
    assert all(attr(span, "enduser.pseudo.id") is None for span in all_spans(message))
    stats = enricher.stats()
    assert stats.released_without_context == 3
    assert stats.messages_released_without_context == 1
    assert stats.spans_with_trace_context == 0


def test_root_without_user_still_completes_the_trace_context() -> None:
    enricher = make()
    message = traces([S(1, 1, name="GET /health", kind=Span.SPAN_KIND_SERVER), S(1, 2, 1)])
    assert run(enricher, Signal.TRACES, message)
    for span in all_spans(message):
        assert attr(span, "enduser.pseudo.id") is None
        assert attr(span, "trace.root.service") == "frontend"
        assert attr(span, "trace.root.route") == "GET /health"  # no route attribute: the root's name
    assert enricher.stats().spans_with_user == 0


def test_user_from_a_server_span_when_the_root_has_none() -> None:
    enricher = make()
    message = traces([
        S(1, 1, service="gateway", name="GET /checkout", kind=Span.SPAN_KIND_SERVER),
        S(1, 2, 1, service="checkout", kind=Span.SPAN_KIND_SERVER, attributes={"enduser.id": ALICE}),
        S(1, 3, 2, service="checkout"),
    ])
    assert run(enricher, Signal.TRACES, message)
    for span in all_spans(message):
        assert_user_context(span)
        assert attr(span, "trace.root.service") == "gateway"


def test_root_tenant_overrides_the_profile_tenant() -> None:
    enricher = make()
    root = S(1, 1, kind=Span.SPAN_KIND_SERVER, attributes={**ROOT_ATTRIBUTES, "tenant.id": "globex"})
    message = traces([root, S(1, 2, 1)])
    assert run(enricher, Signal.TRACES, message)
    for span in all_spans(message):
        assert attr(span, "enduser.tenant") == "globex"
        assert attr(span, "enduser.plan") == "gold"


def test_logs_get_trace_context_and_their_owning_span() -> None:
    enricher = make()
    spans = traces(a_trace())
    run(enricher, Signal.TRACES, spans)
    message = logs([(1, 4, {}), (1, 99, {}), (0, 0, {})], service="payments")
    assert run(enricher, Signal.LOGS, message)
    in_charge, unknown_span, no_trace = all_log_records(message)
    assert_user_context(in_charge)
    assert attr(in_charge, "trace.root.route") == "/checkout/{cart}"
    assert attr(in_charge, "span.service") == "payments"
    assert attr(in_charge, "span.name") == "charge"
    assert attr(in_charge, "span.status") == "ERROR"
    assert_user_context(unknown_span)
    assert attr(unknown_span, "span.name") is None
    assert attr(no_trace, "enduser.pseudo.id") is None
    stats = enricher.stats()
    assert (stats.logs, stats.logs_with_trace_id, stats.logs_with_trace_context, stats.logs_with_span) == (
        3, 2, 2, 1)
    assert stats.log_trace_coverage == 1.0


def test_logs_wait_for_their_trace_but_logs_without_trace_id_never_wait() -> None:
    enricher = make()
    assert not run(enricher, Signal.LOGS, logs([(7, 1, {}), (0, 0, {})]))
    untraced = logs([(0, 0, {"enduser.id": ALICE})])
    assert run(enricher, Signal.LOGS, untraced)
    # A user id on the record itself is enough for the profile fields.
    assert_user_context(all_log_records(untraced)[0])


def test_user_context_update_and_tombstone_change_later_records() -> None:
    users = UserDirectory()
    users.update(ALICE, {"tenant": "acme", "plan": "gold", "region": "eu-west-1"})
    enricher = make(users=users)
    first = traces(a_trace(1))
    run(enricher, Signal.TRACES, first)

    users.update(ALICE, {"tenant": "acme", "plan": "platinum", "region": "eu-west-1"})
    second = traces(a_trace(2))
    run(enricher, Signal.TRACES, second)
    assert {attr(span, "enduser.plan") for span in all_spans(first)} == {"gold"}
    assert {attr(span, "enduser.plan") for span in all_spans(second)} == {"platinum"}

    users.update(ALICE, None)
    third = traces(a_trace(3))
    run(enricher, Signal.TRACES, third)
    for span in all_spans(third):
        assert attr(span, "enduser.pseudo.id") == PSEUDO(ALICE)  # still known through the trace
        assert attr(span, "enduser.plan") is None


def test_trace_store_holds_no_raw_user_id() -> None:
    store: dict[str, dict] = {}
    enricher = make(store=store)
    run(enricher, Signal.TRACES, traces(a_trace()))
    dumped = json.dumps(store)
    assert ALICE not in dumped
    assert PSEUDO(ALICE) in dumped
    assert list(store) == [(1).to_bytes(16, "big").hex()]


def test_ttl_eviction() -> None:
    store: dict[str, dict] = {}
    enricher = make(EnrichmentConfig(trace_ttl_ms=1_000), store=store)
    run(enricher, Signal.TRACES, traces(a_trace(1)), now_ms=0)
    run(enricher, Signal.TRACES, traces(a_trace(2)), now_ms=600)
    run(enricher, Signal.TRACES, traces(a_trace(3)), now_ms=1_200)  # trace 1 last seen 1,200 ms ago
    assert sorted(int(key, 16) for key in store) == [2, 3]
    assert not enricher.knows_trace((1).to_bytes(16, "big").hex())
    assert enricher.stats().traces_evicted_ttl == 1
    # A late child of the evicted trace waits again rather than getting stale context.
    assert not run(enricher, Signal.TRACES, traces([S(1, 9, 2)]), now_ms=1_300)


def test_size_bound_evicts_least_recently_seen() -> None:
    store: dict[str, dict] = {}
    enricher = make(EnrichmentConfig(max_traces=2), store=store)
    run(enricher, Signal.TRACES, traces(a_trace(1)), now_ms=1)
    run(enricher, Signal.TRACES, traces(a_trace(2)), now_ms=2)
    run(enricher, Signal.TRACES, traces([S(1, 9, 1)]), now_ms=3)  # trace 1 seen again
    run(enricher, Signal.TRACES, traces(a_trace(3)), now_ms=4)
    assert sorted(int(key, 16) for key in store) == [1, 3]
    stats = enricher.stats()
    assert (stats.traces, stats.traces_evicted_size) == (2, 1)


def test_span_summaries_per_trace_are_bounded() -> None:
    store: dict[str, dict] = {}
    enricher = make(EnrichmentConfig(max_spans_per_trace=2), store=store)
    run(enricher, Signal.TRACES, traces(a_trace()))
    (key,) = store
    assert len(enricher.traces.span_summaries(key)) == 2
    assert enricher.stats().span_summaries_dropped == 2


def test_traces_share_one_object_per_distinct_route_tenant_and_span_summary() -> None:
    store: dict[str, list] = {}
    enricher = make(store=store)
    root_attributes = {**ROOT_ATTRIBUTES, "tenant.id": "globex"}
    for trace in (1, 2):  # one message each: every string read from protobuf is a new object
        root = S(trace, 1, service="frontend", name="GET /checkout", kind=Span.SPAN_KIND_SERVER,
                 attributes=root_attributes)
        run(enricher, Signal.TRACES, traces([root, S(trace, 2, 1, service="frontend", name="cart.lookup")]))
    first, second = (enricher.traces.load(key) for key in store)
    assert first["root_route"] == "/checkout/{cart}" and first["tenant"] == "globex"
    for field in ("root_service", "root_route", "tenant"):
        assert first[field] is second[field], field
    assert [*first["spans"].values()] == [*second["spans"].values()]
    assert all(a is b for a, b in zip(first["spans"].values(), second["spans"].values(), strict=True))


def test_index_is_rebuilt_from_the_store_after_a_restart() -> None:
    store: dict[str, dict] = {}
    run(make(store=store), Signal.TRACES, traces(a_trace()))
    restarted = make(store=store)
    late = traces([S(1, 5, 2)])
    assert restarted.enrich(Signal.TRACES, late, final=False)
    assert_user_context(all_spans(late)[0])
    assert restarted.stats().traces == 1


def test_service_catalog_goes_onto_resources_of_every_signal() -> None:
    services = {"payments": {"owner": "team-pay", "tier": 1, "runbook": "https://rb/payments",
                             "route": "pay-oncall", "slo": {"availability": 99.9}}}
    enricher = make(services=services)
    spans = traces(a_trace())
    run(enricher, Signal.TRACES, spans)
    by_service = {attr(rs.resource, "service.name"): rs.resource for rs in spans.resource_spans}
    assert attr(by_service["payments"], "service.owner") == "team-pay"
    assert attr(by_service["payments"], "service.tier") == "1"
    assert attr(by_service["payments"], "service.runbook.url") == "https://rb/payments"
    assert attr(by_service["payments"], "service.paging.route") == "pay-oncall"
    assert attr(by_service["frontend"], "service.owner") is None
    points = metrics("payments")
    assert run(enricher, Signal.METRICS, points)
    assert attr(points.resource_metrics[0].resource, "service.owner") == "team-pay"
    assert enricher.stats().resources_with_service_context == 2


def test_existing_attributes_are_replaced_not_duplicated() -> None:
    enricher = make()
    message = traces([S(1, 1, attributes={**ROOT_ATTRIBUTES, "enduser.plan": "stale"})])
    run(enricher, Signal.TRACES, message)
    keys = [kv.key for kv in all_spans(message)[0].attributes]
    assert keys.count("enduser.plan") == 1
    assert attr(all_spans(message)[0], "enduser.plan") == "gold"


def test_logs_existing_keys_are_replaced_and_their_own_user_wins() -> None:
    enricher = make()
    enricher.users.update("bob", {"tenant": "initech", "plan": "free"})
    run(enricher, Signal.TRACES, traces(a_trace()))
    message = logs([(1, 4, {"span.name": "stale", "enduser.id": "bob"})], service="payments")
    assert run(enricher, Signal.LOGS, message)
    (record,) = all_log_records(message)
    keys = [kv.key for kv in record.attributes]
    assert keys.count("span.name") == 1
    assert attr(record, "span.name") == "charge"
    assert attr(record, "enduser.pseudo.id") == PSEUDO("bob")
    assert attr(record, "enduser.tenant") == "initech"
    assert attr(record, "trace.root.service") == "frontend"


@pytest.mark.parametrize("signal", [Signal.TRACES, Signal.LOGS])
def test_given_payload_gives_the_same_result(signal: Signal) -> None:
    def build() -> Message:
        return traces(a_trace()) if signal is Signal.TRACES else logs([(1, 4, {}), (1, 2, {}), (0, 0, {})])

    results = []
    for with_payload in (False, True):
        enricher = make()
        enricher.learn(Signal.TRACES, traces(a_trace()), 0)
        message = build()
        payload = message.SerializeToString() if with_payload else None
        assert enricher.enrich(signal, message, final=False, payload=payload)
        results.append(message.SerializeToString())
    assert results[0] == results[1]
    assert PSEUDO(ALICE).encode() in results[0]


def test_set_due_makes_the_next_enrich_final() -> None:
    enricher = make()
    message = traces([S(1, 2, 1)])
    enricher.learn(Signal.TRACES, message, 0)
    enricher.set_due([message])
    assert enricher.enrich(Signal.TRACES, message, final=False)
    assert enricher.stats().released_without_context == 1
    assert not enricher.enrich(Signal.TRACES, message, final=False), "due applies to one enrich only"


def test_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="grace_period"):
        EnrichmentConfig(grace_period=5)


@pytest.mark.parametrize("record_type", [Span, LogRecord])
def test_encoded_attributes_are_what_protobuf_appends(record_type: type[Span] | type[LogRecord],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enricher_module, "_MAX_ENCODED_PAIRS", 2)  # the cache starts over midway
    encode = enricher_module._AttributeEncoder(record_type)
    for attributes in ({"a": "1", "b": ""}, {"route": "/é/" + "x" * 200, "a": "1"}, {}):
        expected, record = record_type(), record_type()
        for built in (expected, record):
            set_strs(built.attributes, {"existing": "kept"})
        set_strs(expected.attributes, attributes)
        record.MergeFromString(encode(attributes))
        assert record.SerializeToString() == expected.SerializeToString()


def test_key_search_is_literal() -> None:
    search = enricher_module._literal_search(["enduser.plan", "trace.root.route"])
    assert search(b"..enduser.plan..")
    assert search(b"\x00trace.root.route")
    assert not search(b"enduser-plan trace.root_route")
